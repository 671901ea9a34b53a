import Glibc

/// Process resource limits a server adjusts at startup.
public enum ResourceLimits {
    /// Raises the soft limit on open descriptors (`RLIMIT_NOFILE`) to the hard limit: a relay
    /// holds two sockets per session plus pipes, far beyond the usual soft default of 1024.
    /// Returns the soft limit in effect afterwards (unchanged if raising failed).
    /// The corresponding C functions are `getrlimit` and `setrlimit`.
    @discardableResult
    public static func raiseOpenFileLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    private static var RLIMIT_NOFILE_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
}
