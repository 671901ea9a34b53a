import Glibc
import Testing
@testable import URing

/// A connected loopback TCP pair: `client` is blocking (the test drives it directly, with
/// timeouts so nothing can hang), `server` is the accepted, non-blocking end the ring works on.
struct TCPPair: ~Copyable {
    let client: Int32
    let server: Int32

    init(clientReceiveBuffer: Int32 = 0, serverSendBuffer: Int32 = 0) throws {
        let listener = try Socket.tcpListener(.loopbackV4(port: 0), options: .notReusingPort)
        defer { Socket.close(listener) }
        let port = try Socket.localEndpoint(listener).port
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard client >= 0 else { throw Errno.current }
        setTimeouts(client, seconds: 10)
        do {
            if clientReceiveBuffer > 0 { try Socket.setOption(client, SOL_SOCKET, SO_RCVBUF, clientReceiveBuffer) }
            try SocketEndpoint.loopbackV4(port: port).withSockaddr { (sa, len) throws(Errno) in
                _ = try Errno.retryingInterrupts { connect(client, sa, len) }
            }
        } catch {
            Socket.close(client)
            throw error
        }
        // The listener is non-blocking; the handshake is complete, so accept answers within a few tries.
        var accepted: Int32 = -1
        for _ in 0..<1000 where accepted < 0 {
            accepted = accept(listener, nil, nil)
            if accepted < 0 { usleep(1000) }
        }
        guard accepted >= 0 else {
            Socket.close(client)
            throw Errno.current
        }
        // Non-blocking, as the engine's accepted sockets are.
        _ = fcntl(accepted, F_SETFL, fcntl(accepted, F_GETFL) | O_NONBLOCK)
        _ = fcntl(accepted, F_SETFD, FD_CLOEXEC)
        if serverSendBuffer > 0 { _ = try? Socket.setOption(accepted, SOL_SOCKET, SO_SNDBUF, serverSendBuffer) }
        self.client = client
        self.server = accepted
    }

    deinit {
        Socket.close(client)
        Socket.close(server)
    }
}

/// A msghdr for multishot recvmsg whose name area fits any address (the caller deallocates it
/// after the op's final completion).
func recvMsgHeader() -> UnsafeMutablePointer<msghdr> {
    let header = UnsafeMutablePointer<msghdr>.allocate(capacity: 1)
    header.initialize(to: msghdr())
    header.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
    return header
}

extension SocketOptions {
    /// A lone socket: no SO_REUSEPORT group to join by accident.
    static var notReusingPort: SocketOptions { var o = SocketOptions(); o.reusePort = false; return o }
}

/// A pipe of blocking descriptors (ops on it park in the kernel until data or cancellation).
struct Pipe: ~Copyable {
    let readFD: Int32
    let writeFD: Int32
    init() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        readFD = fds[0]
        writeFD = fds[1]
    }
    deinit {
        Socket.close(readFD)
        Socket.close(writeFD)
    }
}

func setTimeouts(_ fd: Int32, seconds: Int) {
    var tv = timeval(tv_sec: seconds, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
}

/// Writes all of `bytes` to a blocking descriptor.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
        if n < 0 && errno == EINTR { continue }
        try #require(n > 0, "write failed: \(Errno.current)")
        offset += n
    }
}

/// Reads exactly `count` bytes from a blocking descriptor (with its receive timeout).
func readExactly(_ fd: Int32, _ count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var offset = 0
    while offset < count {
        let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, count - offset) }
        if n < 0 && errno == EINTR { continue }
        try #require(n > 0, "read returned \(n) after \(offset) of \(count) bytes: \(Errno.current)")
        offset += n
    }
    return out
}

/// Deterministic test bytes (xorshift), so a mismatch names the offset it happened at.
func patternBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}

/// Collects completions from a ring owned by the test thread, with bounded waits.
struct Reaper: ~Copyable {
    var seen: [Completion] = []
    let batch = UnsafeMutableBufferPointer<Completion>.allocate(capacity: 64)
    deinit { batch.deallocate() }

    /// Submits and reaps for up to `milliseconds`, or until `done` holds.
    mutating func pump(_ ring: inout Ring, milliseconds: Int = 5000, until done: ([Completion]) -> Bool) throws {
        let deadline = monotonicMillis() + milliseconds
        while !done(seen) {
            let left = deadline - monotonicMillis()
            if left <= 0 { return }
            try ring.submitAndWait(minimum: 1, timeoutNanos: Int64(min(left, 50)) * 1_000_000)
            while true {
                let n = ring.reapCompletions(into: batch)
                if n == 0 { break }
                seen.append(contentsOf: batch[0..<n])
            }
        }
    }

    /// Waits until `target` has delivered its final completion (no `hasMore`) and returns all of
    /// its completions, in order.
    mutating func final(_ target: UserData, _ ring: inout Ring, milliseconds: Int = 5000) throws -> [Completion] {
        try pump(&ring, milliseconds: milliseconds) { seen in seen.contains { $0.userData == target && !$0.hasMore } }
        return seen.filter { $0.userData == target }
    }

    /// Submits and collects for `milliseconds` without a stop condition (to show nothing arrives).
    mutating func settle(_ ring: inout Ring, milliseconds: Int) throws {
        try pump(&ring, milliseconds: milliseconds) { _ in false }
    }
}

func monotonicMillis() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}
