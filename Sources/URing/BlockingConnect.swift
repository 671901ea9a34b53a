import Glibc

/// A bounded, blocking TCP connect for diagnostics (`rustdesk-utils doctor`): it answers "does
/// something accept connections at this address and port, within this time?". Not for servers,
/// which connect through the ring.
public enum BlockingConnect {
    /// Connects a TCP socket to `address`:`port`, waiting at most `timeout`, then closes it without
    /// sending anything. Returns normally once the three-way handshake completed.
    ///
    /// The socket is non-blocking so the wait can be bounded with `poll`; an `EINTR` during the wait
    /// resumes it with the remaining time.
    ///
    /// The corresponding C functions are `socket`, `connect`, `poll`, `getsockopt(SO_ERROR)` and `close`.
    /// - Throws: `Errno`: `ETIMEDOUT` when `timeout` elapses first; otherwise the connect error,
    ///   typically `ECONNREFUSED`, `EHOSTUNREACH`, `ENETUNREACH`, `EADDRNOTAVAIL` (no IPv6 route),
    ///   or the `socket` error (`EAFNOSUPPORT` when the host has no IPv6).
    public static func connectAndClose(to address: ResolvedAddress, port: UInt16, timeout: Duration) throws(Errno) {
        let deadline = ContinuousClock.now + timeout
        let family = address.isIPv4 ? AF_INET : AF_INET6
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = try Errno.retryingInterrupts { socket(family, type, 0) }
        defer { close(fd) }

        let started = try address.withSocketAddress(port: port) { (sockaddr, length) throws(Errno) -> Bool in
            if connect(fd, sockaddr, length) == 0 { return true }
            let failure = Errno.current
            // EINTR on a non-blocking connect: the handshake carries on in the kernel, like EINPROGRESS.
            guard failure == .inProgress || failure == .interrupted else { throw failure }
            return false
        }
        if started { return }

        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { throw Errno(rawValue: ETIMEDOUT) }
            let (seconds, attoseconds) = remaining.components
            // Round up so a sub-millisecond remainder still waits instead of spinning.
            let milliseconds = Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            let ready = poll(&entry, 1, milliseconds)
            if ready == -1 {
                let failure = Errno.current
                if failure == .interrupted { continue }
                throw failure
            }
            if ready == 1 { break }
        }

        var socketError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try Errno.retryingInterrupts { getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length) }
        if socketError != 0 { throw Errno(rawValue: socketError) }
    }
}
