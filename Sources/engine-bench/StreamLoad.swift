import Glibc
import URing

// The TCP load generator of `engine-bench relay`: plain threads with poll(2), independent of the
// engine under test. Every pair has two endpoints, a (the client) and b (the sink); each sends
// `bytes` of a pattern stream and shuts down for writing, and receives the other's `bytes`,
// comparing them with the stream they must be, until EOF.

/// Pair header: "RDEB" | pairID u32 LE | role u8 (0 = a, 1 = b) | 7 × 0. Sent by a to b (direct)
/// or by both to the relay, which strips it, as hbbr strips the RequestRelay frame.
enum PairHeader {
    static let size = 16
    static let magic: [UInt8] = Array("RDEB".utf8)

    static func make(pairID: UInt32, role: UInt8) -> [UInt8] {
        var h = magic
        withUnsafeBytes(of: pairID.littleEndian) { h.append(contentsOf: $0) }
        h.append(role)
        h.append(contentsOf: [UInt8](repeating: 0, count: 7))
        return h
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> (pairID: UInt32, role: UInt8)? {
        guard bytes.count >= size, Array(bytes[0..<4]) == magic else { return nil }
        return (UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)), bytes[8])
    }
}

/// One pseudo-random block every stream is cut from: stream s's byte i is
/// `block[(start(s) + i) % length]`. The odd length keeps repetitions off every pipe, buffer and
/// chunk boundary; distinct starts per stream make bytes of the wrong stream fail the check.
final class Pattern: @unchecked Sendable {
    let length = (1 << 20) + 4093
    let block: UnsafeMutableRawBufferPointer

    init() {
        block = .allocate(byteCount: length + 8, alignment: 64)
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        var i = 0
        while i + 8 <= block.count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            block.storeBytes(of: x, toByteOffset: i, as: UInt64.self)
            i += 8
        }
    }

    deinit { block.deallocate() }

    func start(pairID: UInt32, role: UInt8) -> Int { (Int(pairID) * 2 + Int(role)) * 104_729 % length }

    /// Whether `bytes` equal the stream starting at `start`, from stream offset `offset`.
    func matches(_ bytes: UnsafeRawBufferPointer, start: Int, offset: Int) -> Bool {
        var done = 0
        while done < bytes.count {
            let at = (start + offset + done) % length
            let n = min(bytes.count - done, length - at)
            if memcmp(bytes.baseAddress! + done, block.baseAddress! + at, n) != 0 { return false }
            done += n
        }
        return true
    }
}

/// One socket of the generator.
struct StreamEndpoint {
    var fd: Int32
    let pairID: UInt32
    let sendStart: Int
    let receiveStart: Int
    let total: Int
    var sent = 0
    var received = 0
    var writeShut = false
    var endOfStream = false
    var closed = false
    var failure: String?

    var done: Bool { failure != nil || (writeShut && endOfStream) }
}

/// What one generator thread saw.
struct StreamLoopResult: Sendable {
    var endpoints = 0
    var completed = 0
    var bytesSent = 0
    var bytesReceived = 0
    var failures: [String] = []
    var timedOut = false
    var cpuSeconds = 0.0
}

enum StreamLoop {
    static let maxIO = 1 << 20
    /// Bytes moved per endpoint and readiness event, so one busy socket cannot starve the rest.
    static let maxPerEvent = 4 << 20

    /// Runs `endpoints` (non-blocking, connected) until each has sent and received everything or
    /// failed, or until `deadline`. Closes every socket.
    static func run(_ endpoints: [StreamEndpoint], pattern: Pattern, deadline: Double) -> StreamLoopResult {
        let cpuStart = currentThreadCPUNanos()
        var eps = endpoints
        var result = StreamLoopResult(endpoints: eps.count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxIO, alignment: 64)
        defer { buffer.deallocate() }
        var fds: [pollfd] = []
        var index: [Int] = []
        while true {
            fds.removeAll(keepingCapacity: true)
            index.removeAll(keepingCapacity: true)
            for i in eps.indices where !eps[i].closed {
                var events = Int16(POLLIN)
                if !eps[i].writeShut { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: eps[i].fd, events: events, revents: 0))
                index.append(i)
            }
            if fds.isEmpty { break }
            let left = deadline - monotonicSeconds()
            if left <= 0 { result.timedOut = true; break }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(left, 1.0) * 1000) + 1)
            if ready < 0 {
                if errno == EINTR { continue }
                preconditionFailure("poll: \(Errno.current)")
            }
            for k in fds.indices where fds[k].revents != 0 {
                let i = index[k]
                let revents = fds[k].revents
                if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { receive(&eps[i], buffer, pattern) }
                if revents & Int16(POLLOUT) != 0 && !eps[i].writeShut && eps[i].failure == nil { send(&eps[i], pattern) }
                if eps[i].done {
                    close(eps[i].fd)
                    eps[i].closed = true
                    if eps[i].failure == nil { result.completed += 1 }
                }
            }
        }
        for i in eps.indices {
            if !eps[i].closed { close(eps[i].fd) }
            result.bytesSent += eps[i].sent
            result.bytesReceived += eps[i].received
            if let f = eps[i].failure { result.failures.append("pair \(eps[i].pairID): \(f)") }
        }
        result.cpuSeconds = Double(currentThreadCPUNanos() - cpuStart) / 1e9
        return result
    }

    static func send(_ e: inout StreamEndpoint, _ pattern: Pattern) {
        var moved = 0
        while e.sent < e.total && moved < maxPerEvent {
            let at = (e.sendStart + e.sent) % pattern.length
            let n = min(e.total - e.sent, pattern.length - at, maxIO)
            let r = Glibc.send(e.fd, pattern.block.baseAddress! + at, n, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if r < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return }
                e.failure = "send after \(e.sent) bytes: \(Errno.current)"
                return
            }
            e.sent += r
            moved += r
        }
        if e.sent == e.total && !e.writeShut {
            shutdown(e.fd, Int32(SHUT_WR))
            e.writeShut = true
        }
    }

    static func receive(_ e: inout StreamEndpoint, _ buffer: UnsafeMutableRawBufferPointer, _ pattern: Pattern) {
        var moved = 0
        while !e.endOfStream && e.failure == nil && moved < maxPerEvent {
            let r = recv(e.fd, buffer.baseAddress!, buffer.count, Int32(MSG_DONTWAIT))
            if r < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return }
                e.failure = "recv after \(e.received) bytes: \(Errno.current)"
                return
            }
            if r == 0 {
                e.endOfStream = true
                if e.received != e.total { e.failure = "end of stream after \(e.received) of \(e.total) bytes" }
                return
            }
            if e.received + r > e.total {
                e.failure = "more than \(e.total) bytes"
                return
            }
            if !pattern.matches(UnsafeRawBufferPointer(rebasing: buffer[..<r]), start: e.receiveStart, offset: e.received) {
                e.failure = "wrong bytes in \(e.received)..<\(e.received + r)"
                return
            }
            e.received += r
            moved += r
        }
    }
}

/// Blocking helpers for setting connections up (before the measured part).
enum StreamSetup {
    static func connect(port: UInt16) throws(Errno) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let r = try SocketEndpoint.loopbackV4(port: port).withSockaddr { sa, len in Glibc.connect(fd, sa, len) }
        guard r == 0 else {
            let e = Errno.current
            close(fd)
            throw e
        }
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current
            }
            off += n
        }
    }

    static func receiveExactly(_ fd: Int32, _ count: Int) throws(Errno) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var off = 0
        while off < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + off, count - off, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current
            }
            if n == 0 { throw Errno.connectionReset }
            off += n
        }
        return out
    }

    static func setNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
}
