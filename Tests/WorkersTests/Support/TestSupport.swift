import Glibc
import Synchronization
import Testing
import URing

/// Every engine test in this module runs one at a time: they start worker groups pinned to the
/// same CPUs and count the process's descriptors, which a neighbour would disturb.
@Suite(.serialized)
struct EngineTests {}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: Descriptors

/// What `/proc/self/fd` holds, by kind, plus which socket inodes are whose.
///
/// Other modules' tests run in the same process at the same time, so a bare count could move
/// for reasons unrelated to the engine. Sockets are therefore attributed precisely (those whose
/// local or remote port is the test's own, from `/proc/net/{tcp,udp}{,6}`); the engine's other
/// kinds (io_uring, eventfd, pipe) are compared by count with a bounded settling wait.
struct FDCensus: CustomStringConvertible {
    enum Kind: String, CaseIterable { case socket, ioURing = "io_uring", eventfd, pipe, other }
    var counts: [Kind: Int] = [:]
    var total = 0
    /// fd → socket inode.
    var sockets: [Int32: UInt64] = [:]

    static func take() -> FDCensus {
        var census = FDCensus()
        guard let dir = opendir("/proc/self/fd") else { return census }
        defer { closedir(dir) }
        var link = [CChar](repeating: 0, count: 256)
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            guard let fd = Int32(name) else { continue }
            let n = readlink("/proc/self/fd/\(name)", &link, link.count - 1)
            guard n > 0 else { continue }
            let target = String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let kind: Kind
            if target.hasPrefix("socket:[") {
                kind = .socket
                census.sockets[fd] = UInt64(target.dropFirst(8).dropLast())
            } else if target == "anon_inode:[io_uring]" {
                kind = .ioURing
            } else if target == "anon_inode:[eventfd]" {
                kind = .eventfd
            } else if target.hasPrefix("pipe:[") {
                kind = .pipe
            } else {
                kind = .other
            }
            census.counts[kind, default: 0] += 1
            census.total += 1
        }
        return census
    }

    subscript(kind: Kind) -> Int { counts[kind] ?? 0 }

    /// Our sockets: open descriptors whose socket has `port` at either end.
    func sockets(onPort port: UInt16) -> Int {
        let inodes = Self.socketInodes(port: port)
        return sockets.values.filter { inodes.contains($0) }.count
    }

    /// Inodes of sockets in this network namespace with `port` as local or remote port.
    static func socketInodes(port: UInt16) -> Set<UInt64> {
        var inodes = Set<UInt64>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"] {
            guard let text = readText(table) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9 else { continue }
                let ports = [fields[1], fields[2]].compactMap { $0.split(separator: ":").last.flatMap { UInt16($0, radix: 16) } }
                if ports.contains(port), let inode = UInt64(fields[9]) { inodes.insert(inode) }
            }
        }
        return inodes
    }

    var description: String {
        "total \(total): " + Kind.allCases.map { "\($0.rawValue) \(self[$0])" }.joined(separator: ", ")
    }
}

func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Waits (at most `seconds`) until exactly `sockets` sockets on `port` are open in this process and the engine's
/// other descriptor kinds are back to `baseline` (plus `extra`); records an issue otherwise.
func expectDescriptorsSettle(
    to baseline: FDCensus, port: UInt16, sockets expectedSockets: Int = 0, extra: [FDCensus.Kind: Int] = [:], seconds: Int = 5,
    _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    let kinds: [FDCensus.Kind] = [.ioURing, .eventfd, .pipe]
    let deadline = monotonicMillis() + seconds * 1000
    var now = FDCensus.take()
    var ours = now.sockets(onPort: port)
    while ours != expectedSockets || kinds.contains(where: { now[$0] > baseline[$0] + (extra[$0] ?? 0) }) {
        if monotonicMillis() > deadline {
            Issue.record("\(what): \(ours) socket(s) on port \(port) open, expected \(expectedSockets); now \(now), baseline \(baseline), allowed extra \(extra)", sourceLocation: sourceLocation)
            return
        }
        usleep(20_000)
        now = FDCensus.take()
        ours = now.sockets(onPort: port)
    }
}

// MARK: Time and threads

func monotonicMillis() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Polls `condition` every 2 ms for at most `seconds`; returns whether it became true.
@discardableResult
func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicMillis() + Int(seconds * 1000)
    while !condition() {
        if monotonicMillis() > deadline { return false }
        usleep(2000)
    }
    return true
}

/// Runs `body(i)` for `i` in `0..<count` on that many plain threads and joins them. Failures are
/// collected (swift-testing expectations belong on the test's own thread) and returned.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [String] {
    final class Failures: Sendable { let list = Mutex<[String]>([]) }
    final class Job: Sendable {
        let index: Int
        let body: @Sendable (Int) throws -> Void
        let failures: Failures
        init(_ index: Int, _ body: @escaping @Sendable (Int) throws -> Void, _ failures: Failures) {
            self.index = index; self.body = body; self.failures = failures
        }
    }
    let failures = Failures()
    var threads: [pthread_t] = []
    let jobs = (0..<count).map { Job($0, body, failures) }
    for job in jobs {
        var thread = pthread_t()
        let r = pthread_create(&thread, nil, { raw in
            let job = Unmanaged<Job>.fromOpaque(raw!).takeUnretainedValue()
            do { try job.body(job.index) } catch { job.failures.list.withLock { $0.append("thread \(job.index): \(error)") } }
            return nil
        }, Unmanaged.passUnretained(job).toOpaque())
        precondition(r == 0, "pthread_create: \(r)")
        threads.append(thread)
    }
    for t in threads { pthread_join(t, nil) }
    return withExtendedLifetime(jobs) { failures.list.withLock { $0 } }
}

// MARK: Blocking clients

/// A blocking TCP or UDP client socket (closed when released) with 10 s timeouts: a stuck server fails the test instead
/// of hanging it.
final class Client: Sendable {
    let fd: Int32

    init(tcpTo endpoint: SocketEndpoint, receiveBuffer: Int32 = 0) throws {
        fd = socket(endpoint.family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(Errno.current)") }
        Self.setTimeouts(fd)
        if receiveBuffer > 0 { try Socket.setOption(fd, SOL_SOCKET, SO_RCVBUF, receiveBuffer) }
        do {
            try endpoint.withSockaddr { (sa, len) throws(Errno) in _ = try Errno.retryingInterrupts { connect(fd, sa, len) } }
        } catch {
            // The instance is complete: its deinit closes the socket.
            throw TestFailure("connect to \(endpoint): \(error)")
        }
    }

    init(udpTo endpoint: SocketEndpoint) throws {
        fd = socket(endpoint.family, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(Errno.current)") }
        Self.setTimeouts(fd, milliseconds: 1000)
        do {
            try endpoint.withSockaddr { (sa, len) throws(Errno) in _ = try Errno.retryingInterrupts { connect(fd, sa, len) } }
        } catch {
            // The instance is complete: its deinit closes the socket.
            throw TestFailure("connect to \(endpoint): \(error)")
        }
    }

    deinit { Glibc.close(fd) }

    static func setTimeouts(_ fd: Int32, milliseconds: Int = 10_000) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func writeAll(_ bytes: [UInt8]) throws { try sendAll(fd, bytes) }
    func readExactly(_ count: Int) throws -> [UInt8] { try receiveExactly(fd, count) }

    /// Reads until EOF or a reset (what a client sees when the server closes); nil on timeout.
    func readUntilClosed() -> Int? {
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { total += n; continue }
            if n == 0 || errno == ECONNRESET { return total }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Closes with an RST instead of a FIN (SO_LINGER 0) when the owner is about to drop it.
    func abortOnClose() {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }
}

/// Sends all of `bytes` on a blocking socket.
func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw TestFailure("send after \(offset) of \(bytes.count) bytes: \(Errno.current)") }
        offset += n
    }
}

/// Receives exactly `count` bytes from a blocking socket (bounded by its receive timeout).
func receiveExactly(_ fd: Int32, _ count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var offset = 0
    while offset < count {
        let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw TestFailure("recv returned \(n) after \(offset) of \(count) bytes: \(n < 0 ? "\(Errno.current)" : "EOF")") }
        offset += n
    }
    return out
}

/// Deterministic test bytes (xorshift).
func patternBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}

/// `count` sockets of one SO_REUSEPORT group on loopback: the first binds port 0, the rest bind
/// the port the kernel chose. Returns the descriptors and the port.
func reusePortGroup(_ count: Int, tcp: Bool, ipv6: Bool = false) throws -> (fds: [Int32], port: UInt16) {
    func endpoint(_ port: UInt16) -> SocketEndpoint {
        ipv6 ? SocketEndpoint(ipv6: Array(repeating: 0, count: 15) + [1], port: port) : .loopbackV4(port: port)
    }
    let first = tcp ? try Socket.tcpListener(endpoint(0)) : try Socket.udp(endpoint(0))
    var fds = [first]
    let port = try Socket.localEndpoint(first).port
    do {
        for _ in 1..<count {
            fds.append(tcp ? try Socket.tcpListener(endpoint(port)) : try Socket.udp(endpoint(port)))
        }
    } catch {
        for fd in fds { Socket.close(fd) }
        throw error
    }
    return (fds, port)
}
