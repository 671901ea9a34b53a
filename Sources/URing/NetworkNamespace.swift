import CURing
import Glibc

/// Sockets in another network namespace (tests and the load harness give clients non-loopback
/// source addresses this way). A socket keeps the namespace it was created in, so only the
/// `socket(2)` call runs on a short-lived thread moved into the namespace; the descriptor is then
/// used from any thread.
public enum NetworkNamespace {
    /// Creates a socket inside the namespace at `path` (e.g. `/var/run/netns/NAME`).
    /// The corresponding C functions are `setns` and `socket`.
    public static func socket(inNamespaceAt path: String, domain: Int32, type: Int32) throws(Errno) -> Int32 {
        final class Job: @unchecked Sendable {
            let path: String, domain: Int32, type: Int32
            var result: Int32 = -EINVAL
            init(_ p: String, _ d: Int32, _ t: Int32) { path = p; domain = d; type = t }
        }
        let job = Job(path, domain, type)
        let raw = Unmanaged.passRetained(job).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(&thread, nil, { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeUnretainedValue()
            let ns = open(job.path, O_RDONLY | O_CLOEXEC)
            guard ns >= 0 else { job.result = -errno; return nil }
            defer { close(ns) }
            let s = CURing_setns_net(ns)
            guard s == 0 else { job.result = s; return nil }
            let fd = Glibc.socket(job.domain, job.type | Int32(SOCK_CLOEXEC.rawValue), 0)
            job.result = fd >= 0 ? fd : -errno
            return nil
        }, raw)
        guard r == 0 else { Unmanaged<Job>.fromOpaque(raw).release(); throw Errno(rawValue: r) }
        pthread_join(thread, nil)
        Unmanaged<Job>.fromOpaque(raw).release()
        return try Errno.check(job.result)
    }
}
