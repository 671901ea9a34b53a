/// The primary key of a `peer` row: 16 random bytes (UUID v4) in rows RingDesk or upstream
/// inserts. Rows written by other tools are read as they are, whatever their length.
public struct PeerGUID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// A new random UUID v4 (RFC 9562: version nibble 4, variant bits 10), from the system
    /// generator (getrandom).
    public static func random() -> PeerGUID {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<2).flatMap { _ -> [UInt8] in
            let word = generator.next() as UInt64
            return (0..<8).map { UInt8(truncatingIfNeeded: word >> ($0 * 8)) }
        }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        return PeerGUID(bytes: bytes)
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// One `peer` row as hbbs uses it (PROTOCOL.md §10.3 "Load by ID").
public struct PeerRow: Hashable, Sendable {
    public var guid: PeerGUID
    public var id: String
    /// `RegisterPk.uuid`, never changed after insertion.
    public var uuid: [UInt8]
    /// `RegisterPk.pk`.
    public var pk: [UInt8]
    /// Pro-only; NULL (nil) in rows OSS servers write. Read as bytes whatever type Pro stored.
    public var user: [UInt8]?
    /// Pro-only; NULL (nil) in rows OSS servers write.
    public var status: Int64?
    /// `info.ip`: the textual IP last registered; empty when `info` is missing or malformed.
    public var ip: String

    public init(guid: PeerGUID, id: String, uuid: [UInt8], pk: [UInt8], user: [UInt8]? = nil,
                status: Int64? = nil, ip: String) {
        self.guid = guid
        self.id = id
        self.uuid = uuid
        self.pk = pk
        self.user = user
        self.status = status
        self.ip = ip
    }
}

/// The `info` column: a JSON object `{"ip":"<textual IP>"}` (PROTOCOL.md §10.2).
public enum PeerInfo {
    /// `{"ip":"…"}` with the string escaped as JSON requires (quote, backslash, control characters).
    public static func json(ip: String) -> String {
        var out = #"{"ip":""#
        for scalar in ip.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\"}"
    }

    /// The `ip` member of an `info` value, read the way upstream's serde does: a JSON object
    /// whose other members are ignored. Anything else — not JSON, not an object, `ip` missing,
    /// not a string or given twice, nesting deeper than `maxDepth` — yields "" and never traps.
    public static func ip(fromJSON text: String) -> String {
        var parser = LenientJSON(Array(text.utf8))
        return (try? parser.ipMember()) ?? ""
    }

    /// Nesting limit for the members skipped while looking for `ip`.
    public static let maxDepth = 64
}

/// Just enough JSON to find one string member: validates structure, skips every other value.
private struct LenientJSON {
    struct Malformed: Error {}
    let bytes: [UInt8]
    var i = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func ipMember() throws(Malformed) -> String {
        skipBlanks()
        try expect(UInt8(ascii: "{"))
        var ip: String?
        skipBlanks()
        if peek() == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                skipBlanks()
                let key = try string()
                skipBlanks()
                try expect(UInt8(ascii: ":"))
                skipBlanks()
                if key == "ip" {
                    // serde refuses a duplicate field and a non-string value: the whole info is unusable.
                    guard ip == nil, peek() == UInt8(ascii: "\"") else { throw Malformed() }
                    ip = try string()
                } else {
                    try skipValue(depth: 1)
                }
                skipBlanks()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"))
                break
            }
        }
        skipBlanks()
        guard i == bytes.count else { throw Malformed() }
        return ip ?? ""
    }

    func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func expect(_ b: UInt8) throws(Malformed) {
        guard peek() == b else { throw Malformed() }
        i += 1
    }

    mutating func skipBlanks() {
        while let b = peek(), b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 }
    }

    mutating func string() throws(Malformed) -> String {
        try expect(UInt8(ascii: "\""))
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flushRaw() throws(Malformed) {
            guard let s = String(validating: raw, as: UTF8.self) else { throw Malformed() }
            scalars.append(contentsOf: s.unicodeScalars)
            raw.removeAll()
        }
        while let b = peek() {
            i += 1
            switch b {
            case UInt8(ascii: "\""):
                try flushRaw()
                return String(scalars)
            case UInt8(ascii: "\\"):
                try flushRaw()
                guard let e = peek() else { throw Malformed() }
                i += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        try expect(UInt8(ascii: "\\"))
                        try expect(UInt8(ascii: "u"))
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Malformed() }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw Malformed() }
                    scalars.append(scalar)
                default:
                    throw Malformed()
                }
            case 0x00..<0x20:
                throw Malformed()
            default:
                raw.append(b)
            }
        }
        throw Malformed()
    }

    mutating func hex4() throws(Malformed) -> UInt32 {
        guard i + 4 <= bytes.count else { throw Malformed() }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            i += 1
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw Malformed()
            }
            v = v << 4 | UInt32(digit)
        }
        return v
    }

    mutating func skipValue(depth: Int) throws(Malformed) {
        guard depth <= PeerInfo.maxDepth, let b = peek() else { throw Malformed() }
        switch b {
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = b == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            i += 1
            skipBlanks()
            if peek() == close { i += 1; return }
            while true {
                skipBlanks()
                if close == UInt8(ascii: "}") {
                    _ = try string()
                    skipBlanks()
                    try expect(UInt8(ascii: ":"))
                    skipBlanks()
                }
                try skipValue(depth: depth + 1)
                skipBlanks()
                if peek() == UInt8(ascii: ",") { i += 1; continue }
                try expect(close)
                return
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default:
            try number()
        }
    }

    mutating func literal(_ word: String) throws(Malformed) {
        for b in word.utf8 { try expect(b) }
    }

    mutating func number() throws(Malformed) {
        let start = i
        if peek() == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while let b = peek(), b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") { i += 1 }
            return i - s
        }
        let intStart = i
        let intDigits = digits()
        guard intDigits > 0, !(intDigits > 1 && bytes[intStart] == UInt8(ascii: "0")) else { throw Malformed() }
        if peek() == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw Malformed() }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            i += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw Malformed() }
        }
        guard i > start else { throw Malformed() }
    }
}
