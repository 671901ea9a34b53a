/// Which TCP peers may name the real client in `X-Real-IP` / `X-Forwarded-For` (PROTOCOL.md §2.3).
///
/// Upstream believes every peer, so anyone reaching the WebSocket port directly can claim any
/// address; `.everyone` keeps that behaviour. The default, `.loopbackOnly`, believes only a
/// reverse proxy on the same host.
public enum TrustedProxies: Hashable, Sendable {
    /// Upstream behaviour: the header is honoured whoever sends it.
    case everyone
    /// The header is honoured only from a peer inside one of these prefixes; an empty list never
    /// honours it.
    case only([Prefix])

    /// `127.0.0.0/8` and `::1`: the default.
    public static let loopbackOnly = TrustedProxies.only([
        Prefix(.v4(IPv4Address(127, 0, 0, 0)), length: 8)!,
        Prefix(.v6(.loopback), length: 128)!,
    ])

    /// An address block in CIDR form. The address is normalised (PROTOCOL.md §3.3) and its host
    /// bits cleared, so `::ffff:10.0.0.0/104` and `10.0.0.0/8` are the same prefix. An IPv6
    /// prefix never matches an IPv4 (or IPv4-mapped) peer: list IPv4 blocks as IPv4.
    public struct Prefix: Hashable, Sendable {
        public let address: IPAddress
        public let length: Int

        /// Returns nil if `length` exceeds the family's width (32 or 128) or is negative.
        public init?(_ address: IPAddress, length: Int) {
            var address = address, length = length
            // Only a prefix that lies inside ::ffff:0:0/96 (or ::/96) describes IPv4 addresses.
            if case .v6 = address, case .v4 = address.normalized, length >= 96 {
                address = address.normalized
                length -= 96
            }
            switch address {
            case .v4(let a):
                guard (0...32).contains(length) else { return nil }
                let mask: UInt32 = length == 0 ? 0 : ~0 << (32 - length)
                self.address = .v4(IPv4Address(a.value & mask))
            case .v6(let a):
                guard (0...128).contains(length) else { return nil }
                let (highMask, lowMask) = Self.v6Masks(length)
                self.address = .v6(IPv6Address(high: a.high & highMask, low: a.low & lowMask))
            }
            self.length = length
        }

        /// Parses `address` or `address/length`; a bare address is a single host.
        public init?(_ text: some StringProtocol) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
            var length = address.isIPv4 ? 32 : 128
            if parts.count == 2 {
                guard parts[1].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                      let parsed = Int(parts[1]) else { return nil }
                length = parsed
            }
            self.init(address, length: length)
        }

        /// Whether `ip`, normalised, lies inside this prefix.
        public func contains(_ ip: IPAddress) -> Bool {
            switch (address, ip.normalized) {
            case (.v4(let block), .v4(let a)):
                let mask: UInt32 = length == 0 ? 0 : ~0 << (32 - length)
                return a.value & mask == block.value
            case (.v6(let block), .v6(let a)):
                let (highMask, lowMask) = Self.v6Masks(length)
                return a.high & highMask == block.high && a.low & lowMask == block.low
            default:
                return false
            }
        }

        private static func v6Masks(_ length: Int) -> (UInt64, UInt64) {
            let high: UInt64 = length >= 64 ? ~0 : length == 0 ? 0 : ~0 << (64 - length)
            let low: UInt64 = length >= 128 ? ~0 : length <= 64 ? 0 : ~0 << (128 - length)
            return (high, low)
        }
    }

    /// Whether the header from a TCP peer at `ip` is believed.
    public func trusts(_ ip: IPAddress) -> Bool {
        switch self {
        case .everyone: return true
        case .only(let prefixes): return prefixes.contains { $0.contains(ip) }
        }
    }
}

extension WebSocketUpgradeRequest {
    /// The address this connection is known by (PROTOCOL.md §2.3).
    ///
    /// If `proxies` trusts the TCP peer and the request has `X-Real-IP` (else `X-Forwarded-For`),
    /// and that value is a single IP, the result is that IP with port 0. Otherwise, including
    /// when the value does not parse, it is `peer` unchanged.
    public func clientAddress(peer: SocketAddress, trusting proxies: TrustedProxies) -> SocketAddress {
        guard proxies.trusts(peer.ip),
              let value = firstValue(forHeader: "X-Real-IP") ?? firstValue(forHeader: "X-Forwarded-For"),
              let ip = Self.forwardedIP(value) else { return peer }
        return SocketAddress(ip: ip, port: 0)
    }

    /// Upstream's reading of a forwarding header value: text containing `.` must be a plain
    /// IPv4 address, anything else a plain IPv6 address. So a list (`1.1.1.1, 2.2.2.2`) and the
    /// dotted IPv4-mapped form (`::ffff:1.2.3.4`) are both rejected, while `::ffff:102:304` is
    /// accepted as IPv6.
    static func forwardedIP(_ value: String) -> IPAddress? {
        if value.contains(".") {
            return IPAddress.parseIPv4(Substring(value)).map(IPAddress.v4)
        }
        return IPAddress.parseIPv6(Substring(value)).map(IPAddress.v6)
    }
}
