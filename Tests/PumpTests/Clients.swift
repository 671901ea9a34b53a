import Crypto
import Glibc
import Synchronization
import URing

// Blocking loopback clients on plain threads (never on the Swift concurrency pool, whose few
// threads must not sit in recv). Every socket has send and receive timeouts, so a stuck relay
// fails a test instead of hanging it.

struct ClientError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
    static func errno(_ what: String) -> ClientError { ClientError("\(what): \(Errno.current)") }
}

/// A blocking TCP connection to 127.0.0.1:`port` with `timeoutSeconds` on sends and receives.
func connectClient(port: UInt16, timeoutSeconds: Int = 60) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw ClientError.errno("socket") }
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let r = try SocketEndpoint.loopbackV4(port: port).withSockaddr { sa, len in connect(fd, sa, len) }
    guard r == 0 else {
        let e = ClientError.errno("connect")
        close(fd)
        throw e
    }
    return fd
}

func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
    var off = 0
    while off < bytes.count {
        let n = send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
        if n < 0 {
            if errno == EINTR { continue }
            throw ClientError.errno("send")
        }
        off += n
    }
}

func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try sendAll(fd, $0) }
}

/// Reads exactly `count` bytes (fewer only at EOF).
func receiveExactly(_ fd: Int32, _ count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var off = 0
    while off < count {
        let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + off, count - off, 0) }
        if n < 0 {
            if errno == EINTR { continue }
            throw ClientError.errno("recv")
        }
        if n == 0 { break }
        off += n
    }
    return Array(out[..<off])
}

/// Reads until EOF: the first `prefixLength` bytes are returned as they are, the rest is hashed.
func receiveToEOF(_ fd: Int32, prefixLength: Int) throws -> (prefix: [UInt8], restCount: Int, restDigest: [UInt8]) {
    let prefix = try receiveExactly(fd, prefixLength)
    var hasher = SHA256()
    var count = 0
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 64)
    defer { buffer.deallocate() }
    while true {
        let n = recv(fd, buffer.baseAddress!, buffer.count, 0)
        if n < 0 {
            if errno == EINTR { continue }
            throw ClientError.errno("recv after \(count) bytes")
        }
        if n == 0 { break }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        count += n
    }
    return (prefix, count, Array(hasher.finalize()))
}

/// A deterministic pseudo-random byte stream, served from one block whose odd length keeps
/// repetitions from lining up with any pipe, buffer or chunk size.
final class PatternStream: @unchecked Sendable {
    let block: UnsafeMutableRawBufferPointer
    let blockLength: Int

    init(seed: UInt64, blockLength: Int = (1 << 20) + 4093) {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: blockLength + 8, alignment: 8)
        var x = seed | 1
        var i = 0
        while i + 8 <= b.count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            b.storeBytes(of: x, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        block = b
        self.blockLength = blockLength
    }
    deinit { block.deallocate() }

    /// The stream bytes `offset..<offset+count` may span a block boundary: calls `body` per piece.
    func forEachPiece(from offset: Int, count: Int, maxPiece: Int = 256 << 10, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var off = offset
        let end = offset + count
        while off < end {
            let inBlock = off % blockLength
            let n = min(end - off, blockLength - inBlock, maxPiece)
            try body(UnsafeRawBufferPointer(start: block.baseAddress! + inBlock, count: n))
            off += n
        }
    }

    func bytes(from offset: Int, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        forEachPiece(from: offset, count: count) { out.append(contentsOf: $0) }
        return out
    }

    func digest(count: Int) -> [UInt8] {
        var h = SHA256()
        forEachPiece(from: 0, count: count) { h.update(bufferPointer: $0) }
        return Array(h.finalize())
    }
}

/// A plain pthread running `body`; `join()` waits for it.
final class TestThread: @unchecked Sendable {
    private var thread = pthread_t()
    private final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let r = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(r == 0, "pthread_create: \(r)")
    }

    func join() { pthread_join(thread, nil) }
}

/// A value set by one thread and read by another after `join`.
final class Shared<T: Sendable>: Sendable {
    let value: Mutex<T>
    init(_ v: T) { value = Mutex(v) }
    func set(_ v: T) { value.withLock { $0 = v } }
    func get() -> T { value.withLock { $0 } }
}

/// Polls `condition` every 5 ms until it holds or `seconds` pass; returns whether it held.
@discardableResult
func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicSeconds() + seconds
    while monotonicSeconds() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Which kernel object a descriptor number referred to when it was taken; `isOpen` tells whether
/// that number still refers to that object. Unlike a count of open descriptors, this is not
/// blurred by other suites opening and closing descriptors in the same process.
struct DescriptorIdentity: Sendable, Equatable {
    var fd: Int32
    var device: UInt64
    var inode: UInt64

    init?(_ fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        self.fd = fd
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    var isOpen: Bool { DescriptorIdentity(fd) == self }
}

func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

/// The kernel objects this process has descriptors for, as `/proc/self/fd` names them
/// ("socket:[1234]", "pipe:[5678]", "anon_inode:[eventfd]"), with how many descriptors each.
func openDescriptorObjects() -> [String: Int] {
    guard let dir = opendir("/proc/self/fd") else { return [:] }
    let own = dirfd(dir)
    defer { closedir(dir) }
    var out: [String: Int] = [:]
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard let fd = Int32(name), fd != own else { continue }
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/" + name, &buf, 255)
        out[n > 0 ? String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?", default: 0] += 1
    }
    return out
}

/// Sockets, pipes and rings with more descriptors now than in `before`: what was opened since
/// and is still open. Descriptors the test runtime closed meanwhile do not count, nor do reused
/// numbers, nor the runtime's own kinds (libdispatch opens a timerfd when a timer first runs).
func descriptorsOpened(since before: [String: Int]) -> [String] {
    openDescriptorObjects()
        .filter { object, _ in object.hasPrefix("socket:") || object.hasPrefix("pipe:") || object == "anon_inode:[io_uring]" }
        .flatMap { object, n in Array(repeating: object, count: max(0, n - (before[object] ?? 0))) }
        .sorted()
}

/// Bytes waiting in `fd`'s receive queue without blocking (0 when none).
func bytesReadable(_ fd: Int32) -> Int {
    var n: Int32 = 0
    _ = ioctl(fd, UInt(FIONREAD), &n)
    return Int(n)
}
