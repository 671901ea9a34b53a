import CURing
import Glibc

/// A socket address in kernel form (`sockaddr_in` or `sockaddr_in6` inside `sockaddr_storage`),
/// as the syscalls and io_uring's msghdr take it. Conversions to the protocol's `SocketAddress`
/// live in the Workers module, which sees both.
public struct SocketEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var storage: sockaddr_storage
    public var length: socklen_t

    public init(storage: sockaddr_storage, length: socklen_t) { self.storage = storage; self.length = length }

    /// IPv4 from the four octets (network order value, `1.2.3.4` = 0x01020304).
    public init(ipv4 value: UInt32, port: UInt16) {
        var s = sockaddr_storage()
        withUnsafeMutableBytes(of: &s) { raw in
            let sin = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            sin.pointee.sin_family = sa_family_t(AF_INET)
            sin.pointee.sin_port = port.bigEndian
            sin.pointee.sin_addr.s_addr = value.bigEndian
        }
        self.init(storage: s, length: socklen_t(MemoryLayout<sockaddr_in>.size))
    }

    /// IPv6 from 16 octets in network order.
    public init(ipv6 octets: [UInt8], port: UInt16, scopeID: UInt32 = 0) {
        precondition(octets.count == 16)
        var s = sockaddr_storage()
        withUnsafeMutableBytes(of: &s) { raw in
            let sin6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
            sin6.pointee.sin6_family = sa_family_t(AF_INET6)
            sin6.pointee.sin6_port = port.bigEndian
            sin6.pointee.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.pointee.sin6_addr) { dst in dst.copyBytes(from: octets) }
        }
        self.init(storage: s, length: socklen_t(MemoryLayout<sockaddr_in6>.size))
    }

    public static func loopbackV4(port: UInt16) -> SocketEndpoint { SocketEndpoint(ipv4: 0x7F00_0001, port: port) }
    public static func anyV4(port: UInt16) -> SocketEndpoint { SocketEndpoint(ipv4: 0, port: port) }
    public static func anyV6(port: UInt16) -> SocketEndpoint { SocketEndpoint(ipv6: Array(repeating: 0, count: 16), port: port) }

    public var family: Int32 { Int32(storage.ss_family) }
    public var isIPv6: Bool { family == AF_INET6 }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            family == AF_INET6
                ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    /// IPv4 value (network order integer) if this is AF_INET.
    public var ipv4: UInt32? {
        guard family == AF_INET else { return nil }
        return withUnsafeBytes(of: storage) { UInt32(bigEndian: $0.load(as: sockaddr_in.self).sin_addr.s_addr) }
    }

    /// IPv6 octets if this is AF_INET6.
    public var ipv6: [UInt8]? {
        guard family == AF_INET6 else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            let a = raw.load(as: sockaddr_in6.self).sin6_addr
            return withUnsafeBytes(of: a) { Array($0) }
        }
    }

    public var description: String {
        var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var copy = storage
        let ok: Bool = withUnsafeMutableBytes(of: &copy) { raw in
            if family == AF_INET6 {
                let p = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                return inet_ntop(AF_INET6, &p.pointee.sin6_addr, &host, socklen_t(host.count)) != nil
            }
            let p = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            return inet_ntop(AF_INET, &p.pointee.sin_addr, &host, socklen_t(host.count)) != nil
        }
        guard ok else { return "<family \(family)>" }
        let h = String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(h)]:\(port)" : "\(h):\(port)"
    }

    public static func == (a: SocketEndpoint, b: SocketEndpoint) -> Bool {
        guard a.length == b.length else { return false }
        var x = a.storage, y = b.storage
        return memcmp(&x, &y, Int(a.length)) == 0
    }

    @inlinable
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(Errno) -> R) throws(Errno) -> R {
        var copy = storage
        let len = length
        let result: Result<R, Errno> = withUnsafePointer(to: &copy) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in Result { () throws(Errno) in try body(sa, len) } }
        }
        return try result.get()
    }
}

/// Options for a listening or UDP socket (PROTOCOL.md §1.3).
public struct SocketOptions: Sendable {
    /// SO_REUSEPORT: one socket per worker on the same port, and fast restarts.
    public var reusePort = true
    /// SO_RCVBUF when > 0 (hbbs `rmem`).
    public var receiveBufferSize = 0
    /// listen(2) backlog per listener, capped by the kernel at net.core.somaxconn (4096 on
    /// current kernels). Upstream uses 128, which overflowed (connections reset before pairing)
    /// when a few hundred relay halves connected at once.
    public var backlog: Int32 = SocketOptions.defaultBacklog
    public static let defaultBacklog: Int32 = 4096
    public init() {}
}

/// Socket syscalls. Each returns a descriptor or throws `Errno`; descriptors are CLOEXEC and
/// non-blocking (the engine never blocks on them).
public enum Socket {
    /// A TCP listener bound to `endpoint`. For `[::]` the socket is dual stack (IPV6_V6ONLY=0).
    /// The corresponding C functions are `socket`, `setsockopt`, `bind`, `listen`.
    public static func tcpListener(_ endpoint: SocketEndpoint, options: SocketOptions = .init()) throws(Errno) -> Int32 {
        let fd = try open(endpoint, type: SOCK_STREAM, options: options)
        do {
            _ = try Errno.retryingInterrupts { listen(fd, options.backlog) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// A UDP socket bound to `endpoint`.
    public static func udp(_ endpoint: SocketEndpoint, options: SocketOptions = .init()) throws(Errno) -> Int32 {
        try open(endpoint, type: SOCK_DGRAM, options: options)
    }

    /// Binds the no-address default of §1.3: `[::]:port` dual stack, falling back to `0.0.0.0:port`
    /// when IPv6 is unavailable. Returns the descriptor and the endpoint actually bound.
    public static func bindDefault(port: UInt16, tcp: Bool, options: SocketOptions = .init()) throws(Errno) -> (Int32, SocketEndpoint) {
        do {
            let ep = SocketEndpoint.anyV6(port: port)
            return (tcp ? try tcpListener(ep, options: options) : try udp(ep, options: options), ep)
        } catch let e where e.rawValue == EAFNOSUPPORT || e.rawValue == EADDRNOTAVAIL {
            let ep = SocketEndpoint.anyV4(port: port)
            return (tcp ? try tcpListener(ep, options: options) : try udp(ep, options: options), ep)
        }
    }

    static func open(_ endpoint: SocketEndpoint, type: __socket_type, options: SocketOptions) throws(Errno) -> Int32 {
        let fd = socket(endpoint.family, Int32(type.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current }
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if options.reusePort { try setOption(fd, SOL_SOCKET, CURing_SO_REUSEPORT, 1) }
            if endpoint.isIPv6 && endpoint.ipv6 == Array(repeating: 0, count: 16) {
                try setOption(fd, Int32(IPPROTO_IPV6), CURing_IPV6_V6ONLY, 0)
            }
            if options.receiveBufferSize > 0 { try setOption(fd, SOL_SOCKET, SO_RCVBUF, Int32(options.receiveBufferSize)) }
            _ = try endpoint.withSockaddr { (sa, len) throws(Errno) in try Errno.retryingInterrupts { bind(fd, sa, len) } }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// setsockopt with an Int32 value. The corresponding C function is `setsockopt`.
    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else { throw Errno.current }
    }

    public static func setNoDelay(_ fd: Int32) throws(Errno) { try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }

    /// The locally bound address. The corresponding C function is `getsockname`.
    public static func localEndpoint(_ fd: Int32) throws(Errno) -> SocketEndpoint {
        var s = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard r == 0 else { throw Errno.current }
        return SocketEndpoint(storage: s, length: len)
    }

    /// The connected peer. The corresponding C function is `getpeername`.
    public static func peerEndpoint(_ fd: Int32) throws(Errno) -> SocketEndpoint {
        var s = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) } }
        guard r == 0 else { throw Errno.current }
        return SocketEndpoint(storage: s, length: len)
    }

    /// recv(2) on the calling thread, non-blocking (`MSG_DONTWAIT`; with `peek`, `MSG_PEEK`: the
    /// bytes stay queued): the bytes read, 0 at end of stream, or -errno (-EAGAIN when nothing is
    /// queued) — the same value a ring recv completion carries. The corresponding C function is
    /// `recv`.
    @inlinable
    public static func receiveNow(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, peek: Bool = false) -> Int32 {
        let r = Glibc.recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT) | (peek ? Int32(MSG_PEEK) : 0))
        return r < 0 ? -errno : Int32(truncatingIfNeeded: r)
    }

    /// Drops up to `count` queued bytes of a TCP socket without copying them (recv(2) with
    /// `MSG_TRUNC | MSG_DONTWAIT`, see tcp(7)): the bytes dropped, or -errno. The corresponding C
    /// function is `recv`.
    @inlinable
    public static func discardNow(_ fd: Int32, count: Int) -> Int32 {
        let r = Glibc.recv(fd, nil, count, Int32(MSG_TRUNC | MSG_DONTWAIT))
        return r < 0 ? -errno : Int32(truncatingIfNeeded: r)
    }

    /// send(2) on the calling thread, non-blocking and without SIGPIPE (`MSG_DONTWAIT |
    /// MSG_NOSIGNAL`): the bytes taken (possibly fewer than given), or -errno (-EAGAIN when the
    /// socket has no room) — the same value a ring send completion carries. The corresponding C
    /// function is `send`.
    @inlinable
    public static func sendNow(_ fd: Int32, from buffer: UnsafeRawBufferPointer) -> Int32 {
        let r = Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        return r < 0 ? -errno : Int32(truncatingIfNeeded: r)
    }

    /// close(2). EBADF means our bookkeeping is wrong, which is a bug worth stopping for.
    public static func close(_ fd: Int32) {
        let r = Glibc.close(fd)
        precondition(!(r != 0 && errno == EBADF), "close(\(fd)): EBADF, a descriptor was closed twice")
    }
}
