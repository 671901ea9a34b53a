import RustDeskProtocol
import ServerConfig
import URing

extension SocketAddress {
    /// The protocol's view of a kernel address (raw: an IPv4 peer on a dual-stack socket stays
    /// `::ffff:a.b.c.d`). Nil for families other than IPv4/IPv6.
    public init?(_ endpoint: SocketEndpoint) {
        if let v4 = endpoint.ipv4 {
            self.init(IPv4Address(v4), port: endpoint.port)
        } else if let v6 = endpoint.ipv6 {
            self.init(IPv6Address(octets: v6), port: endpoint.port)
        } else {
            return nil
        }
    }

    /// The kernel address for sending from a socket of family `ipv6Socket ? AF_INET6 : AF_INET`:
    /// IPv4 destinations are mapped (`::ffff:a.b.c.d`) on IPv6 sockets (PROTOCOL.md §1.3).
    public func endpoint(forIPv6Socket ipv6Socket: Bool) -> SocketEndpoint? {
        switch ip {
        case .v4(let a):
            return ipv6Socket ? SocketEndpoint(ipv6: IPAddress.v4(a).mappedToIPv6.octets, port: port) : SocketEndpoint(ipv4: a.value, port: port)
        case .v6(let a):
            if ipv6Socket { return SocketEndpoint(ipv6: a.octets, port: port) }
            guard case .v4(let v4) = ip.normalized else { return nil }
            return SocketEndpoint(ipv4: v4.value, port: port)
        }
    }
}

extension IPLiteral {
    /// The protocol's IP value.
    public var ipAddress: IPAddress {
        octets.count == 4 ? .v4(IPv4Address(octets[0], octets[1], octets[2], octets[3])) : .v6(IPv6Address(octets: octets))
    }
}

extension TrustedProxyList {
    /// The protocol layer's trust decision for `X-Real-IP` / `X-Forwarded-For`.
    public var trustedProxies: TrustedProxies {
        switch self {
        case .everyone: return .everyone
        case .only(let prefixes):
            return .only(prefixes.compactMap { TrustedProxies.Prefix($0.address.ipAddress, length: $0.length) })
        }
    }
}

/// Binds a listener or UDP socket on `port` per PROTOCOL.md §1.3: exactly `bind` when given
/// (dual stack when it is `::`), otherwise `[::]` dual stack with an IPv4 fallback.
public func bindSocket(port: UInt16, bind: IPLiteral?, tcp: Bool, options: SocketOptions) throws(Errno) -> (fd: Int32, endpoint: SocketEndpoint) {
    guard let bind else { return try Socket.bindDefault(port: port, tcp: tcp, options: options) }
    let ep = bind.isIPv4
        ? SocketEndpoint(ipv4: UInt32(bind.octets[0]) << 24 | UInt32(bind.octets[1]) << 16 | UInt32(bind.octets[2]) << 8 | UInt32(bind.octets[3]), port: port)
        : SocketEndpoint(ipv6: bind.octets, port: port)
    return (tcp ? try Socket.tcpListener(ep, options: options) : try Socket.udp(ep, options: options), ep)
}
