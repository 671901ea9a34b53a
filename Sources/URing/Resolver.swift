import Glibc

/// An IPv4 or IPv6 address as the resolver hands it over: network-order octets, plus the scope
/// (interface index) a link-local IPv6 address needs to be reachable. Plain data, so callers
/// outside this module never see a `sockaddr`.
public struct ResolvedAddress: Sendable, Hashable {
    /// 4 octets (IPv4) or 16 octets (IPv6), network order.
    public let octets: [UInt8]
    /// The IPv6 scope ID (0 for IPv4 and for global addresses).
    public let scopeID: UInt32

    /// - Precondition: `octets` has 4 or 16 elements.
    public init(octets: [UInt8], scopeID: UInt32 = 0) {
        precondition(octets.count == 4 || octets.count == 16, "an IP address has 4 or 16 octets")
        self.octets = octets
        self.scopeID = scopeID
    }

    public var isIPv4: Bool { octets.count == 4 }
    public var isIPv6: Bool { octets.count == 16 }

    /// Calls `body` with this address and `port` as a `sockaddr_in` / `sockaddr_in6`.
    func withSocketAddress<R>(port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(Errno) -> R) throws(Errno) -> R {
        if isIPv4 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: octets) }
            return try withUnsafePointer(to: &address) { (pointer) throws(Errno) -> R in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (generic) throws(Errno) -> R in
                    try body(generic, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        address.sin6_scope_id = scopeID
        withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: octets) }
        return try withUnsafePointer(to: &address) { (pointer) throws(Errno) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (generic) throws(Errno) -> R in
                try body(generic, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }

    /// Reads an AF_INET / AF_INET6 socket address; nil for any other family.
    init?(_ address: UnsafePointer<sockaddr>) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
            self.init(octets: withUnsafeBytes(of: v4.sin_addr) { Array($0) })
        case AF_INET6:
            let v6 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self)
            self.init(octets: withUnsafeBytes(of: v6.sin6_addr) { Array($0) }, scopeID: v6.sin6_scope_id)
        default:
            return nil
        }
    }
}

/// A failed name lookup. `getaddrinfo` / `getnameinfo` report `EAI_*` codes, not errno, so this is
/// the one error type of this file besides `Errno` (which `EAI_SYSTEM` carries).
public enum AddressLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An `EAI_*` code other than `EAI_SYSTEM`, e.g. `EAI_NONAME` for an unknown host.
    case resolver(code: Int32)
    /// `EAI_SYSTEM`: the underlying system call failed with this errno.
    case system(Errno)

    public var description: String {
        switch self {
        case .resolver(let code):
            guard let text = gai_strerror(code) else { return "resolver error \(code)" }
            return String(cString: text)
        case .system(let errno):
            return errno.description
        }
    }

    init(code: Int32) {
        self = code == EAI_SYSTEM ? .system(.current) : .resolver(code: code)
    }
}

/// Blocking name resolution for tools (`rustdesk-utils doctor`) and startup code. Never call it
/// from a worker thread: a lookup can block for the resolver's full timeout.
public enum Resolver {
    /// The IPv4 and IPv6 addresses of `host` (a name or an IP literal), in the resolver's order
    /// (RFC 6724 preference), without duplicates.
    ///
    /// The corresponding C function is `getaddrinfo`.
    /// - Throws: `AddressLookupError`, e.g. `.resolver(code: EAI_NONAME)` for an unknown name.
    public static func addresses(forHost host: String) throws(AddressLookupError) -> [ResolvedAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        // One socket type, or every address comes back once per type (stream, datagram, raw).
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else { throw AddressLookupError(code: status) }
        defer { freeaddrinfo(list) }
        var addresses: [ResolvedAddress] = []
        var entry = list
        while let current = entry {
            if let sockaddr = current.pointee.ai_addr, let address = ResolvedAddress(sockaddr),
               !addresses.contains(address) {
                addresses.append(address)
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }

    /// The name a reverse (PTR or hosts-file) lookup gives for `address`.
    ///
    /// Requires a real name (`NI_NAMEREQD`): when none exists this throws rather than returning the
    /// address as text, so callers can tell "no reverse entry" from a name.
    ///
    /// The corresponding C function is `getnameinfo`.
    /// - Throws: `AddressLookupError`, typically `.resolver(code: EAI_NONAME)` when there is no name.
    public static func hostName(for address: ResolvedAddress) throws(AddressLookupError) -> String {
        // NI_MAXHOST (1025) is hidden behind __USE_MISC in <netdb.h>, which Swift's Glibc may not define.
        var name = [CChar](repeating: 0, count: 1025)
        let status: Int32
        do {
            status = try address.withSocketAddress(port: 0) { (sockaddr, length) throws(Errno) -> Int32 in
                getnameinfo(sockaddr, length, &name, socklen_t(name.count), nil, 0, NI_NAMEREQD)
            }
        } catch {
            throw .system(error)
        }
        guard status == 0 else { throw AddressLookupError(code: status) }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
