import Glibc
import Synchronization
import URing

/// The bench's threads are URing's plain pthreads.
typealias BenchThread = PlainThread

/// A value written by one thread and read by another.
final class Shared<T: Sendable>: Sendable {
    private let value: Mutex<T>
    init(_ v: T) { value = Mutex(v) }
    func set(_ v: T) { value.withLock { $0 = v } }
    func get() -> T { value.withLock { $0 } }
    func update<R>(_ body: (inout T) -> R) -> R { value.withLock { body(&$0) } }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// The calling thread's kernel task ID, read from the `/proc/thread-self` link
/// ("<pid>/task/<tid>"): Swift's Glibc module does not declare `gettid`.
func currentThreadID() -> Int32 {
    var buffer = [CChar](repeating: 0, count: 64)
    let n = readlink("/proc/thread-self", &buffer, buffer.count - 1)
    precondition(n > 0, "readlink /proc/thread-self failed")
    let text = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let slash = text.lastIndex(of: "/"), let tid = Int32(text[text.index(after: slash)...]) else {
        preconditionFailure("unexpected /proc/thread-self target \(text)")
    }
    return tid
}

/// CPU time of the calling thread in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`: user + system).
func currentThreadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Reads a small text file (procfs) whole; nil if it cannot be opened (a thread that exited).
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}
