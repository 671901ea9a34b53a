/// Textual IP addresses, socket addresses and prefixes as they appear in settings.
///
/// ServerConfig depends on nothing but the standard library, so it carries its own small literal
/// parser; the server converts `octets` into its socket types. The accepted forms follow Rust's
/// `IpAddr`/`SocketAddr` parsers, which upstream uses for the same settings: dotted-quad IPv4
/// without leading zeros, RFC 4291 IPv6 (with `::` and an IPv4 tail), no zone suffix, no brackets
/// around a bare address.

/// An IPv4 or IPv6 address literal.
public struct IPLiteral: Hashable, Sendable, CustomStringConvertible {
    /// 4 octets (IPv4) or 16 (IPv6), network order.
    public let octets: [UInt8]
    /// The text it was parsed from.
    public let text: String

    public var isIPv4: Bool { octets.count == 4 }

    /// Parses an IPv4 or IPv6 literal; nil if `text` is neither.
    public init?(_ text: some StringProtocol) {
        let s = Substring(text)
        if let v4 = Self.parseIPv4(s) {
            octets = v4
        } else if let v6 = Self.parseIPv6(s) {
            octets = v6
        } else {
            return nil
        }
        self.text = String(text)
    }

    public var description: String { text }

    static func parseIPv4(_ s: Substring) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count),
                  part.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  !(part.utf8.count > 1 && part.utf8.first == UInt8(ascii: "0")),
                  let n = UInt8(part) else { return nil }
            out.append(n)
        }
        return out
    }

    static func parseIPv6(_ s: Substring) -> [UInt8]? {
        guard s.contains(":"), s.utf8.count <= 45 else { return nil }
        // Groups before and after a single "::"; the last group of the address may be IPv4.
        func groups(_ part: Substring, ipv4TailAllowed: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, field) in fields.enumerated() {
                if ipv4TailAllowed && i == fields.count - 1 && field.contains(".") {
                    guard let v4 = parseIPv4(field) else { return nil }
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                } else {
                    guard (1...4).contains(field.utf8.count),
                          field.utf8.allSatisfy({ isHexDigit($0) }),
                          let n = UInt16(field, radix: 16) else { return nil }
                    out.append(n)
                }
            }
            return out
        }
        var all: [UInt16]
        if let gap = s.firstRange(of: "::") {
            let tailText = s[gap.upperBound...]
            guard !tailText.contains("::"),
                  let head = groups(s[..<gap.lowerBound], ipv4TailAllowed: false),
                  let tail = groups(tailText, ipv4TailAllowed: true),
                  head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let g = groups(s, ipv4TailAllowed: true), g.count == 8 else { return nil }
            all = g
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8(truncatingIfNeeded: $0)] }
    }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))
            || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }
}

/// An `ip:port` literal: `1.2.3.4:21116` or `[::1]:21116`.
public struct SocketAddressLiteral: Hashable, Sendable, CustomStringConvertible {
    public let ip: IPLiteral
    public let port: UInt16

    public init(ip: IPLiteral, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `a.b.c.d:port` or `[ipv6]:port`; nil for anything else (a bare address, a name).
    public init?(_ text: some StringProtocol) {
        let s = Substring(text)
        guard let colon = s.lastIndex(of: ":") else { return nil }
        let host = s[..<colon]
        let portText = s[s.index(after: colon)...]
        guard (1...5).contains(portText.utf8.count),
              portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = UInt16(portText) else { return nil }
        let ip: IPLiteral?
        if host.first == "[" && host.last == "]" {
            ip = IPLiteral(host.dropFirst().dropLast()).flatMap { $0.isIPv4 ? nil : $0 }
        } else {
            ip = IPLiteral(host).flatMap { $0.isIPv4 ? $0 : nil }
        }
        guard let ip else { return nil }
        self.init(ip: ip, port: port)
    }

    public var description: String { ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)" }
}

/// An address block in CIDR form (`10.0.0.0/8`, `fd00::/8`); a bare address is a single host.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPLiteral
    /// Prefix length in bits: 0…32 for IPv4, 0…128 for IPv6.
    public let length: Int

    public init?(address: IPLiteral, length: Int) {
        guard (0...(address.isIPv4 ? 32 : 128)).contains(length) else { return nil }
        self.address = address
        self.length = length
    }

    /// Parses `address` or `address/length`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPLiteral(parts[0]) else { return nil }
        var length = address.isIPv4 ? 32 : 128
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.utf8.count),
                  digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let n = Int(digits) else { return nil }
            length = n
        }
        self.init(address: address, length: length)
    }

    public var description: String { "\(address)/\(length)" }
}
