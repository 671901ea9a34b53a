/// A validated WebSocket upgrade request (RFC 6455 §4.2.1).
public struct WebSocketUpgradeRequest: Hashable, Sendable {
    /// One HTTP header field as received: `name` as sent (compare it case-insensitively),
    /// `value` without surrounding whitespace. Bytes that are not UTF-8 appear as U+FFFD.
    public struct HeaderField: Hashable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }

    /// The request-target exactly as sent. Servers accept every path (PROTOCOL.md §1.2).
    public var target: String
    /// Every header field in arrival order.
    public var headers: [HeaderField]
    /// The `Sec-WebSocket-Key` value; base64 of 16 bytes.
    public var key: String

    public init(target: String, headers: [HeaderField], key: String) {
        self.target = target
        self.headers = headers
        self.key = key
    }

    /// The value of the first field called `name` (ASCII case-insensitive), as a lookup in
    /// upstream's header map returns it.
    public func firstValue(forHeader name: String) -> String? {
        headers.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }
}

/// Incremental parser for the HTTP/1.1 request that opens a WebSocket connection. Feed it the
/// bytes read from a new connection until it completes or throws; on either error the server
/// sends `WebSocketHandshake.badRequestResponse` and closes.
///
/// Accepted: `GET <any target> HTTP/1.x` (x ≥ 1), `Upgrade` listing `websocket`, `Connection`
/// listing `upgrade` (both comma lists, case-insensitive, possibly over several lines),
/// `Sec-WebSocket-Version: 13`, and exactly one `Sec-WebSocket-Key` that is base64 of 16 bytes.
/// `Host`, `Origin`, sub-protocols and extensions are not required and are ignored (no
/// sub-protocol or extension is ever agreed). Lines may end in CRLF or a bare LF.
///
/// Rejected as `.webSocketBadRequest`: any other method or version, a missing or wrong upgrade
/// header, a control character, a header name that is not a token or is followed by whitespace
/// before the colon, and obs-fold continuation lines (RFC 7230 §3.2.4 lets a server reject
/// them; no WebSocket client or proxy sends them).
/// Rejected as `.webSocketRequestTooLarge`, as soon as the bytes seen prove it, before buffering
/// more: a head over `maxHeadBytes`, a line over `maxLineBytes`, more than `maxHeaderCount` fields.
///
/// The parser buffers at most `maxHeadBytes`; it never traps on any input.
public struct WebSocketUpgradeParser: Sendable {
    /// 8 KiB for the request line, all header fields and the blank line: upgrade requests from
    /// clients and reverse proxies are a few hundred bytes.
    public static let maxHeadBytes = 8 << 10
    /// 4 KiB for any single line, including the request line with its path.
    public static let maxLineBytes = 4 << 10
    /// 64 header fields.
    public static let maxHeaderCount = 64

    public enum Progress: Sendable, Hashable {
        case needMoreData
        /// The request is complete and valid. `leftover` holds the bytes after the head from the
        /// last input (a client may send its first frame right behind the request); they belong
        /// to the frame decoder.
        case complete(WebSocketUpgradeRequest, leftover: [UInt8])
    }

    private enum State: Sendable {
        case reading
        case complete(WebSocketUpgradeRequest)
        case failed(ProtocolError)
    }

    private var head: [UInt8] = []
    private var state = State.reading
    /// Bytes in the current line so far, its terminator excluded.
    private var lineLength = 0
    /// Lines finished so far, the request line included.
    private var lineCount = 0
    private var previousByte: UInt8 = 0

    public init() {}

    /// Bytes of the unfinished head held so far; never more than `maxHeadBytes`.
    public var bufferedByteCount: Int { head.count }

    /// Consumes `bytes`, the next bytes read from the connection.
    ///
    /// After `.complete`, further input is returned unchanged as `leftover`; after a throw, every
    /// later call throws the same error.
    /// - Throws: `.webSocketBadRequest` or `.webSocketRequestTooLarge` (see the type's contract).
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(ProtocolError) -> Progress {
        switch state {
        case .complete(let request): return .complete(request, leftover: Array(bytes))
        case .failed(let error): throw error
        case .reading: break
        }
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            bytes.formIndex(after: &index)
            if head.count == Self.maxHeadBytes { return try fail(.webSocketRequestTooLarge) }
            head.append(byte)
            guard byte == UInt8(ascii: "\n") else {
                lineLength += 1
                previousByte = byte
                // A CR may still turn out to be part of the line ending; allow it one extra byte.
                let limit = byte == UInt8(ascii: "\r") ? Self.maxLineBytes + 1 : Self.maxLineBytes
                if lineLength > limit { return try fail(.webSocketRequestTooLarge) }
                continue
            }
            let isBlank = lineLength == 0 || (lineLength == 1 && previousByte == UInt8(ascii: "\r"))
            lineLength = 0
            previousByte = byte
            if isBlank {
                do throws(ProtocolError) {
                    let request = try Self.parseHead(head)
                    state = .complete(request)
                    head = []
                    return .complete(request, leftover: Array(bytes[index...]))
                } catch {
                    return try fail(error)
                }
            }
            lineCount += 1
            if lineCount > Self.maxHeaderCount + 1 { return try fail(.webSocketRequestTooLarge) }
        }
        return .needMoreData
    }

    private mutating func fail(_ error: ProtocolError) throws(ProtocolError) -> Progress {
        state = .failed(error)
        head = []
        throw error
    }

    // MARK: Parsing the complete head

    /// Parses and validates a head that ends with its blank line.
    static func parseHead(_ head: [UInt8]) throws(ProtocolError) -> WebSocketUpgradeRequest {
        var lines = head.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // The split leaves the blank line and the empty remainder after the final LF.
        lines.removeLast(2)
        guard let requestLine = lines.first else { throw .webSocketBadRequest }
        let target = try parseRequestLine(withoutCR(requestLine))

        var headers: [WebSocketUpgradeRequest.HeaderField] = []
        headers.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() {
            headers.append(try parseField(withoutCR(line)))
        }

        var upgradesToWebSocket = false, connectionUpgrades = false, versionIs13 = false
        var key: String?
        for field in headers {
            switch field.name.lowercasedASCII {
            case "upgrade":
                upgradesToWebSocket = upgradesToWebSocket || listContains(field.value, "websocket")
            case "connection":
                connectionUpgrades = connectionUpgrades || listContains(field.value, "upgrade")
            case "sec-websocket-version":
                versionIs13 = field.value == "13"
                guard versionIs13 else { throw .webSocketBadRequest }
            case "sec-websocket-key":
                guard key == nil else { throw .webSocketBadRequest }
                key = field.value
            default:
                break
            }
        }
        guard upgradesToWebSocket, connectionUpgrades, versionIs13,
              let key, WebSocketHandshake.isValidKey(key) else { throw .webSocketBadRequest }
        return WebSocketUpgradeRequest(target: target, headers: headers, key: key)
    }

    private static func withoutCR(_ line: ArraySlice<UInt8>) throws(ProtocolError) -> ArraySlice<UInt8> {
        let body = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        // Any CR left is a bare CR, and any other control character is invalid too (HTAB aside).
        guard !body.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else { throw .webSocketBadRequest }
        return body
    }

    /// `GET SP request-target SP HTTP/1.x`; returns the target.
    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(ProtocolError) -> String {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].elementsEqual("GET".utf8), !parts[1].isEmpty,
              !parts[1].contains(0x09) else { throw .webSocketBadRequest }
        let version = parts[2]
        guard version.count == 8, version.starts(with: "HTTP/1.".utf8),
              let minor = version.last, minor >= UInt8(ascii: "1"), minor <= UInt8(ascii: "9")
        else { throw .webSocketBadRequest }
        return String(decoding: parts[1], as: UTF8.self)
    }

    /// `field-name ":" OWS field-value OWS`.
    private static func parseField(_ line: ArraySlice<UInt8>) throws(ProtocolError) -> WebSocketUpgradeRequest.HeaderField {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .webSocketBadRequest }
        let name = line[..<colon]
        // Also rejects obs-fold: a continuation line starts with whitespace, which is not a token.
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .webSocketBadRequest }
        let isWhitespace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == 0x09 }
        var value = line[line.index(after: colon)...]
        while let first = value.first, isWhitespace(first) { value.removeFirst() }
        while let last = value.last, isWhitespace(last) { value.removeLast() }
        return WebSocketUpgradeRequest.HeaderField(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
    }

    /// RFC 7230 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Whether the comma-separated `list` has an element equal to `token`, ignoring ASCII case.
    private static func listContains(_ list: String, _ token: String) -> Bool {
        list.split(separator: ",").contains { element in
            asciiCaseInsensitiveEquals(element.trimmingASCIIWhitespace, token)
        }
    }
}

private func asciiCaseInsensitiveEquals(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
    a.utf8.elementsEqual(b.utf8) { asciiLowercase($0) == asciiLowercase($1) }
}

private func asciiLowercase(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
}

extension StringProtocol {
    fileprivate var lowercasedASCII: String {
        String(decoding: utf8.map(asciiLowercase), as: UTF8.self)
    }

    fileprivate var trimmingASCIIWhitespace: SubSequence {
        let isWhitespace = { (c: Character) in c == " " || c == "\t" }
        guard let first = firstIndex(where: { !isWhitespace($0) }),
              let last = lastIndex(where: { !isWhitespace($0) }) else { return self[endIndex...] }
        return self[first...last]
    }
}
