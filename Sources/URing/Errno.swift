import Glibc

/// A POSIX error number, the one error type of the syscall layer (STYLE.md habit 1).
///
/// Wrappers in this module return `>= 0` or throw `Errno`; `Errno(returning:)` is the one place a
/// negative `-errno` result from liburing or the shim becomes a Swift error.
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's `errno`.
    public static var current: Errno { Errno(rawValue: Glibc.errno) }

    public static let interrupted = Errno(rawValue: EINTR)
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    public static let permissionDenied = Errno(rawValue: EPERM)
    public static let accessDenied = Errno(rawValue: EACCES)
    public static let notImplemented = Errno(rawValue: ENOSYS)
    public static let invalidArgument = Errno(rawValue: EINVAL)
    public static let noBuffers = Errno(rawValue: ENOBUFS)
    public static let canceled = Errno(rawValue: ECANCELED)
    public static let timedOut = Errno(rawValue: ETIME)
    public static let connectionRefused = Errno(rawValue: ECONNREFUSED)
    public static let connectionReset = Errno(rawValue: ECONNRESET)
    public static let brokenPipe = Errno(rawValue: EPIPE)
    public static let inProgress = Errno(rawValue: EINPROGRESS)
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    public static let addressInUse = Errno(rawValue: EADDRINUSE)

    public var description: String {
        guard let s = strerror(rawValue) else { return "errno \(rawValue)" }
        return "\(String(cString: s)) (errno \(rawValue))"
    }
}

extension Errno {
    /// Converts a liburing / shim style result (`>= 0` success, `-errno` failure).
    @inlinable
    public static func check(_ result: Int32) throws(Errno) -> Int32 {
        if result < 0 { throw Errno(rawValue: -result) }
        return result
    }

    /// Runs a libc call that returns -1 and sets errno, retrying on EINTR.
    @inlinable
    public static func retryingInterrupts<T: FixedWidthInteger>(_ call: () -> T) throws(Errno) -> T {
        while true {
            let r = call()
            if r != -1 { return r }
            let e = Errno.current
            if e != .interrupted { throw e }
        }
    }
}
