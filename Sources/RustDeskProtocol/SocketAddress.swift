/// IP addresses and socket addresses as the protocol sees them: plain values, no sockets.
///
/// The servers listen dual stack, so IPv4 clients arrive as IPv4-mapped IPv6 addresses.
/// `normalized` applies PROTOCOL.md §3.3 ("try_into_v4"); use it for every comparison and key,
/// and keep the raw form for sending (§1.3).

/// An IPv4 address; `value` holds the four octets big-endian (`1.2.3.4` is `0x01020304`).
public struct IPv4Address: Hashable, Sendable, Comparable {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }
    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value))
    }
    public var isLoopback: Bool { value >> 24 == 127 }
    public var isUnspecified: Bool { value == 0 }
    public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
}

/// An IPv6 address; `high`/`low` hold octets 0–7 and 8–15 big-endian.
public struct IPv6Address: Hashable, Sendable, Comparable {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
    public init(octets: some Collection<UInt8>) {
        precondition(octets.count == 16, "IPv6 address needs 16 octets")
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, o) in octets.enumerated() {
            if i < 8 { h = h << 8 | UInt64(o) } else { l = l << 8 | UInt64(o) }
        }
        high = h; low = l
    }
    public var octets: [UInt8] {
        withOctets { Array($0) }
    }
    /// Calls `body` with the 16 octets in network order, without allocating.
    public func withOctets<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var be = (high.bigEndian, low.bigEndian)
        return try withUnsafeBytes(of: &be, body)
    }
    public static let any = IPv6Address(high: 0, low: 0)
    public static let loopback = IPv6Address(high: 0, low: 1)
    public var isLoopback: Bool { self == .loopback }
    /// `::ffff:a.b.c.d`
    public var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xFFFF }
    /// `::a.b.c.d` (deprecated "IPv4-compatible" form; includes `::`).
    public var isIPv4Compatible: Bool { high == 0 && low >> 32 == 0 }
    public static func < (a: Self, b: Self) -> Bool { (a.high, a.low) < (b.high, b.low) }
}

public enum IPAddress: Hashable, Sendable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// PROTOCOL.md §3.3: IPv4-mapped and IPv4-compatible IPv6 addresses become IPv4, except `::1`.
    public var normalized: IPAddress {
        guard case .v6(let a) = self, a != .loopback, a.isIPv4Mapped || a.isIPv4Compatible else { return self }
        return .v4(IPv4Address(UInt32(truncatingIfNeeded: a.low)))
    }

    /// The IPv4-mapped IPv6 form used to address an IPv4 peer from a dual-stack socket.
    public var mappedToIPv6: IPv6Address {
        switch self {
        case .v4(let a): return IPv6Address(high: 0, low: 0xFFFF_0000_0000 | UInt64(a.value))
        case .v6(let a): return a
        }
    }

    /// Loopback after normalisation: `127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`.
    public var isLoopback: Bool {
        switch normalized {
        case .v4(let a): return a.isLoopback
        case .v6(let a): return a.isLoopback
        }
    }

    public var isIPv4: Bool { if case .v4 = self { return true } else { return false } }

    /// Parses a textual IPv4 (`a.b.c.d`) or IPv6 (RFC 4291 forms, including an embedded IPv4 tail
    /// and `::` compression) literal. Zone suffixes (`%eth0`) and brackets are not accepted.
    public init?(_ text: some StringProtocol) {
        if let v4 = Self.parseIPv4(Substring(text)) { self = .v4(v4); return }
        if let v6 = Self.parseIPv6(Substring(text)) { self = .v6(v6); return }
        return nil
    }

    static func parseIPv4(_ s: Substring) -> IPv4Address? {
        var value: UInt32 = 0
        var parts = 0
        for part in s.split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = UInt32(part), n <= 255 else { return nil }
            // Leading zeros are rejected, as Rust's parser does ("01.2.3.4" is not an address).
            if part.count > 1 && part.first == "0" { return nil }
            value = value << 8 | n
            parts += 1
        }
        return parts == 4 ? IPv4Address(value) : nil
    }

    static func parseIPv6(_ s: Substring) -> IPv6Address? {
        guard s.contains(":"), s.count <= 45 else { return nil }
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        let pieces = s.components(separatedByString: "::")
        guard pieces.count <= 2 else { return nil }
        func groups(_ part: Substring, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if i == fields.count - 1 && allowV4Tail && f.contains(".") {
                    guard let v4 = parseIPv4(f) else { return nil }
                    out.append(UInt16(v4.value >> 16)); out.append(UInt16(truncatingIfNeeded: v4.value))
                } else {
                    guard !f.isEmpty, f.count <= 4, let n = UInt16(f, radix: 16) else { return nil }
                    out.append(n)
                }
            }
            return out
        }
        if pieces.count == 2 {
            sawGap = true
            guard let h = groups(pieces[0], allowV4Tail: false), let t = groups(pieces[1], allowV4Tail: true) else { return nil }
            head = h; tail = t
            guard head.count + tail.count <= 7 else { return nil }
        } else {
            guard let h = groups(pieces[0], allowV4Tail: true), h.count == 8 else { return nil }
            head = h
        }
        var all = head
        if sawGap { all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail }
        var hi: UInt64 = 0, lo: UInt64 = 0
        for (i, g) in all.enumerated() {
            if i < 4 { hi = hi << 16 | UInt64(g) } else { lo = lo << 16 | UInt64(g) }
        }
        return IPv6Address(high: hi, low: lo)
    }
}

extension Substring {
    /// Splits on a multi-character separator (Foundation-free).
    fileprivate func components(separatedByString sep: String) -> [Substring] {
        var out: [Substring] = []
        var rest = self[...]
        while let r = rest.firstRange(of: sep) {
            out.append(rest[..<r.lowerBound])
            rest = rest[r.upperBound...]
        }
        out.append(rest)
        return out
    }
}

extension IPv4Address: CustomStringConvertible {
    public var description: String {
        let o = octets
        return "\(o.0).\(o.1).\(o.2).\(o.3)"
    }
}

extension IPv6Address: CustomStringConvertible {
    /// RFC 5952 text: lower case, longest run of two or more zero groups compressed, IPv4-mapped
    /// addresses shown with a dotted tail (`::ffff:1.2.3.4`).
    public var description: String {
        if isIPv4Mapped {
            return "::ffff:" + IPv4Address(UInt32(truncatingIfNeeded: low)).description
        }
        var g = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            let shift = UInt64(48 - 16 * i)
            g[i] = UInt16(truncatingIfNeeded: high >> shift)
            g[i + 4] = UInt16(truncatingIfNeeded: low >> shift)
        }
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(g[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }
}

extension IPAddress: CustomStringConvertible {
    public var description: String {
        switch self {
        case .v4(let a): return a.description
        case .v6(let a): return a.description
        }
    }
}

/// An IP address and a port. `description` uses `ip:port` / `[ip]:port` as Rust's `SocketAddr` does.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16
    public init(ip: IPAddress, port: UInt16) { self.ip = ip; self.port = port }
    public init(_ v4: IPv4Address, port: UInt16) { self.init(ip: .v4(v4), port: port) }
    public init(_ v6: IPv6Address, port: UInt16) { self.init(ip: .v6(v6), port: port) }

    /// `0.0.0.0:0`, what an empty AddrMangle decodes to.
    public static let unspecifiedV4 = SocketAddress(IPv4Address(0), port: 0)
    /// `[::]:0`, what a malformed long AddrMangle decodes to.
    public static let unspecifiedV6 = SocketAddress(IPv6Address.any, port: 0)

    public var normalized: SocketAddress { SocketAddress(ip: ip.normalized, port: port) }

    /// Parses `a.b.c.d:port` or `[v6]:port`.
    public init?(_ text: some StringProtocol) {
        let s = Substring(text)
        if s.first == "[" {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].first == ":",
                  let v6 = IPAddress.parseIPv6(s[s.index(after: s.startIndex)..<close]),
                  let port = UInt16(s[s.index(close, offsetBy: 2)...]) else { return nil }
            self.init(v6, port: port)
        } else {
            guard let colon = s.lastIndex(of: ":"), let v4 = IPAddress.parseIPv4(s[..<colon]),
                  let port = UInt16(s[s.index(after: colon)...]) else { return nil }
            self.init(v4, port: port)
        }
    }

    public var description: String {
        switch ip {
        case .v4(let a): return "\(a):\(port)"
        case .v6(let a): return "[\(a)]:\(port)"
        }
    }
}
