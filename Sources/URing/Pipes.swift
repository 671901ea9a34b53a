import CURing
import Glibc

/// Pipe syscalls for splicing (the shim holds the `_GNU_SOURCE` parts). Each returns a value or
/// throws `Errno`; descriptors are non-blocking and close-on-exec.
public enum Pipes {
    /// A new pipe, both ends `O_NONBLOCK | O_CLOEXEC`.
    /// - Throws: `Errno`: EMFILE / ENFILE (descriptor limits), ENOMEM.
    /// The corresponding C function is `pipe2`.
    public static func makeNonBlocking() throws(Errno) -> (read: Int32, write: Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        let r = withUnsafeMutableBytes(of: &fds) { CURing_pipe_nonblocking($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        _ = try Errno.check(r)
        return (fds.0, fds.1)
    }

    /// Asks for a capacity of `bytes` (rounded up by the kernel to a power-of-two number of
    /// pages) and returns the capacity now in force.
    /// - Throws: `Errno`: EPERM above `fs.pipe-max-size` or over `fs.pipe-user-pages-soft` for an
    ///   unprivileged user; EBUSY when shrinking below the bytes queued.
    /// The corresponding C function is `fcntl(F_SETPIPE_SZ)`.
    public static func setCapacity(_ fd: Int32, _ bytes: Int) throws(Errno) -> Int {
        Int(try Errno.check(CURing_set_pipe_size(fd, Int32(clamping: bytes))))
    }

    /// The pipe's capacity in bytes. The corresponding C function is `fcntl(F_GETPIPE_SZ)`.
    public static func capacity(_ fd: Int32) throws(Errno) -> Int {
        Int(try Errno.check(CURing_get_pipe_size(fd)))
    }

    /// Bytes queued in the pipe (or unread in a socket's receive queue).
    /// The corresponding C function is `ioctl(FIONREAD)`.
    public static func bytesQueued(_ fd: Int32) throws(Errno) -> Int {
        var n: Int32 = 0
        _ = try Errno.retryingInterrupts { ioctl(fd, UInt(FIONREAD), &n) }
        return Int(n)
    }
}

/// splice(2) between two descriptors (a socket and a pipe) on the calling thread, non-blocking
/// (`SPLICE_F_NONBLOCK | SPLICE_F_MOVE`): the bytes moved, 0 at end of stream, or -errno
/// (-EAGAIN when nothing can move now) — the same value a ring splice completion carries.
@inlinable
public func spliceNow(from input: Int32, to output: Int32, length: Int) -> Int32 {
    Int32(truncatingIfNeeded: CURing_splice(input, output, length, CURing_SPLICE_F_NONBLOCK | CURing_SPLICE_F_MOVE))
}
