import Testing
@testable import RustDeskProtocol

private typealias T = WebSocketTestSupport

/// The opening handshake of RFC 6455 §1.3.
private let rfcRequestLines = [
    "GET /chat HTTP/1.1",
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Origin: http://example.com",
    "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Version: 13",
]

private func request(_ lines: [String], ending: String = "\r\n") -> [UInt8] {
    Array((lines.joined(separator: ending) + ending + ending).utf8)
}

/// The RFC request with `name`'s line replaced (or removed when `value` is nil).
private func rfcRequest(replacing name: String, with value: String?) -> [UInt8] {
    request(rfcRequestLines.compactMap { line in
        line.hasPrefix(name + ":") ? value.map { "\(name): \($0)" } : line
    })
}

private func parse(_ bytes: [UInt8]) throws(ProtocolError) -> WebSocketUpgradeRequest? {
    var parser = WebSocketUpgradeParser()
    guard case .complete(let request, _) = try parser.feed(bytes) else { return nil }
    return request
}

@Suite("WebSocket handshake", .timeLimit(.minutes(1)))
struct WebSocketHandshakeTests {
    @Test func theAcceptValueMatchesRFC6455() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func theRFCRequestIsAcceptedAndAnsweredWith101() throws {
        let parsed = try #require(try parse(request(rfcRequestLines)))
        #expect(parsed.target == "/chat")
        #expect(parsed.key == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(parsed.firstValue(forHeader: "origin") == "http://example.com")
        #expect(parsed.headers.count == 7)
        let response = String(decoding: WebSocketHandshake.switchingProtocolsResponse(for: parsed), as: UTF8.self)
        #expect(response == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    }

    @Test func theBadRequestResponseClosesAndNamesVersion13() {
        let response = String(decoding: WebSocketHandshake.badRequestResponse, as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(response.contains("\r\nConnection: close\r\n"))
        #expect(response.contains("\r\nSec-WebSocket-Version: 13\r\n"))
        #expect(response.hasSuffix("\r\n\r\n"))
    }

    @Test(arguments: ["/", "/ws/id", "/ws/relay", "/anything/at/all?x=1", "*", "http://host:21118/ws/id"])
    func anyRequestTargetIsAccepted(target: String) throws {
        var lines = rfcRequestLines
        lines[0] = "GET \(target) HTTP/1.1"
        #expect(try parse(request(lines))?.target == target)
    }

    @Test func theRequestSplitAtEveryByteGivesTheSameResultAndLeftover() throws {
        let frame = T.bytes("82 83 01 02 03 04 83 03 03")
        let bytes = request(rfcRequestLines) + frame
        let headEnd = bytes.count - frame.count
        for split in 0...bytes.count {
            var parser = WebSocketUpgradeParser()
            let first = try parser.feed(bytes[..<split])
            if split < headEnd {
                #expect(first == .needMoreData, "split at \(split)")
                guard case .complete(let parsed, let leftover) = try parser.feed(bytes[split...]) else {
                    Issue.record("split at \(split) did not complete"); continue
                }
                #expect(parsed.key == "dGhlIHNhbXBsZSBub25jZQ==")
                #expect(leftover == frame, "split at \(split)")
            } else {
                guard case .complete(_, let leftover) = first else {
                    Issue.record("split at \(split) did not complete"); continue
                }
                #expect(leftover == Array(bytes[headEnd..<split]), "split at \(split)")
                #expect(try parser.feed(bytes[split...]) == .complete(try #require(try parse(request(rfcRequestLines))), leftover: Array(bytes[split...])))
            }
        }
    }

    @Test func feedingOneByteAtATimeCompletesOnTheFinalLineFeed() throws {
        let bytes = request(rfcRequestLines)
        var parser = WebSocketUpgradeParser()
        for byte in bytes.dropLast() { #expect(try parser.feed([byte]) == .needMoreData) }
        guard case .complete(_, let leftover) = try parser.feed([bytes.last!]) else {
            Issue.record("did not complete"); return
        }
        #expect(leftover.isEmpty)
    }

    @Test func headerNamesAndTokensAreCaseInsensitive() throws {
        let lines = [
            "GET /ws/id HTTP/1.1",
            "UPGRADE: WebSocket",
            "connection: keep-alive, Upgrade",
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
            "SEC-WEBSOCKET-VERSION: 13",
        ]
        #expect(try parse(request(lines))?.key == "dGhlIHNhbXBsZSBub25jZQ==")
    }

    @Test func bareLineFeedsAndExtraWhitespaceAreTolerated() throws {
        var lines = rfcRequestLines
        lines[4] = "Sec-WebSocket-Key: \t dGhlIHNhbXBsZSBub25jZQ== \t"
        #expect(try parse(request(lines, ending: "\n"))?.key == "dGhlIHNhbXBsZSBub25jZQ==")
    }

    @Test func tokensSpreadOverRepeatedHeaderLinesAreFound() throws {
        var lines = rfcRequestLines.filter { !$0.hasPrefix("Connection:") }
        lines += ["Connection: keep-alive", "Connection: upgrade"]
        #expect(try parse(request(lines)) != nil)
    }

    @Test func laterMinorVersionsOfHTTP1AreAccepted() throws {
        var lines = rfcRequestLines
        lines[0] = "GET / HTTP/1.2"
        #expect(try parse(request(lines)) != nil)
    }

    @Test(arguments: [
        "POST /chat HTTP/1.1", "get /chat HTTP/1.1", "GET /chat HTTP/1.0", "GET /chat HTTP/2.0", "GET /chat",
        "GET  /chat HTTP/1.1", "GET /chat HTTP/1.1 ", "GET /chat HTTP/1.10", "GET /a\tb HTTP/1.1",
    ])
    func aWrongRequestLineIsABadRequest(line: String) {
        var lines = rfcRequestLines
        lines[0] = line
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(request(lines)) }
    }

    @Test func aMissingKeyIsABadRequest() {
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(rfcRequest(replacing: "Sec-WebSocket-Key", with: nil)) }
    }

    @Test(arguments: ["", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "AAAAAAAAAAAAAAAAAAAAAAAA",
                      "dGhlIHNhbXBsZSBub25j!Q==", "dGhlIHNhbXBsZSBub25jZQ==AAAA"])
    func aKeyThatIsNotBase64OfSixteenBytesIsABadRequest(key: String) {
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(rfcRequest(replacing: "Sec-WebSocket-Key", with: key)) }
    }

    @Test func twoKeysAreABadRequest() {
        let lines = rfcRequestLines + ["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="]
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(request(lines)) }
    }

    @Test(arguments: [nil, "8", "12", "13, 8", "14"])
    func aVersionOtherThan13IsABadRequest(version: String?) {
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(rfcRequest(replacing: "Sec-WebSocket-Version", with: version)) }
    }

    @Test(arguments: [nil, "h2c", "websocketx"])
    func aMissingWebSocketUpgradeIsABadRequest(upgrade: String?) {
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(rfcRequest(replacing: "Upgrade", with: upgrade)) }
    }

    @Test(arguments: [nil, "keep-alive", "upgraded", "close"])
    func aConnectionHeaderWithoutUpgradeIsABadRequest(connection: String?) {
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(rfcRequest(replacing: "Connection", with: connection)) }
    }

    @Test(arguments: ["Bad Name: x", "NoColon", ": empty-name", "Name : space-before-colon", " folded continuation",
                      "Ctl: a\u{01}b", "Bare: a\rb"])
    func aMalformedHeaderLineIsABadRequest(line: String) {
        var lines = rfcRequestLines
        lines.insert(line, at: 2)
        #expect(throws: ProtocolError.webSocketBadRequest) { try parse(request(lines)) }
    }

    @Test func anEmptyRequestIsABadRequest() {
        var parser = WebSocketUpgradeParser()
        #expect(throws: ProtocolError.webSocketBadRequest) { try parser.feed(Array("\r\n".utf8)) }
    }

    @Test func aHeadOverTheLimitIsRejectedBeforeItEnds() throws {
        var parser = WebSocketUpgradeParser()
        var lines = rfcRequestLines
        for i in 0..<40 { lines.append("X-Filler-\(i): " + String(repeating: "a", count: 250)) }
        let bytes = request(lines)
        #expect(bytes.count > WebSocketUpgradeParser.maxHeadBytes)
        #expect(try parser.feed(bytes[..<WebSocketUpgradeParser.maxHeadBytes]) == .needMoreData)
        #expect(parser.bufferedByteCount == WebSocketUpgradeParser.maxHeadBytes)
        #expect(throws: ProtocolError.webSocketRequestTooLarge) { try parser.feed(bytes[WebSocketUpgradeParser.maxHeadBytes...]) }
        // The failure sticks.
        #expect(throws: ProtocolError.webSocketRequestTooLarge) { try parser.feed(Array("\r\n".utf8)) }
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func aLineOverTheLimitIsRejectedWithoutWaitingForItsEnd() {
        var parser = WebSocketUpgradeParser()
        let longLine = Array(("GET /" + String(repeating: "a", count: WebSocketUpgradeParser.maxLineBytes)).utf8)
        #expect(throws: ProtocolError.webSocketRequestTooLarge) { try parser.feed(longLine) }
    }

    @Test func aLineAtTheLimitIsAccepted() throws {
        var lines = rfcRequestLines
        let prefix = "X-Long: "
        lines.append(prefix + String(repeating: "b", count: WebSocketUpgradeParser.maxLineBytes - prefix.count))
        #expect(try parse(request(lines)) != nil)
    }

    @Test func tooManyHeaderFieldsAreRejected() throws {
        let filler = WebSocketUpgradeParser.maxHeaderCount - rfcRequestLines.count + 1
        let atLimit = rfcRequestLines + (0..<filler).map { "X-\($0): 1" }
        #expect(try parse(request(atLimit))?.headers.count == WebSocketUpgradeParser.maxHeaderCount)
        #expect(throws: ProtocolError.webSocketRequestTooLarge) { try parse(request(atLimit + ["X-One-More: 1"])) }
    }

    @Test func randomInputNeverCrashesOrBuffersBeyondTheHeadLimit() {
        var rng = T.SeededGenerator(seed: 0xAB5EED)
        let valid = request(rfcRequestLines)
        let alphabet = Array("GET /HTP1.:\r\n \tUpgrade: websocketConnection".utf8) + [0, 0x7F, 0xFF]
        for round in 0..<800 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = alphabet.randomElement(using: &rng)!
                }
            } else {
                bytes = (0..<Int.random(in: 0...9000, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            }
            var parser = WebSocketUpgradeParser()
            var index = 0
            while index < bytes.count {
                let end = min(bytes.count, index + Int.random(in: 1...700, using: &rng))
                guard (try? parser.feed(bytes[index..<end])) == .needMoreData else { break }
                #expect(parser.bufferedByteCount <= WebSocketUpgradeParser.maxHeadBytes)
                index = end
            }
        }
    }
}
