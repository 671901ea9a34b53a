import CURing

/// Kernel time spec as io_uring timeouts take it.
public typealias KernelTimespec = __kernel_timespec

/// CPU affinity of the calling thread (the `CPU_*` macros live in the shim).
public enum Affinity {
    /// CPUs of the calling thread's affinity mask, ascending. This already reflects a cgroup
    /// cpuset. The corresponding C function is `sched_getaffinity`.
    public static func allowedCPUs() throws(Errno) -> [Int] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let n = try Errno.check(cpus.withUnsafeMutableBufferPointer { CURing_current_affinity($0.baseAddress, Int32($0.count)) })
        return cpus[..<Int(n)].map(Int.init)
    }

    /// Pins the calling thread to `cpu`. The corresponding C function is `sched_setaffinity`.
    public static func pinCurrentThread(to cpu: Int) throws(Errno) {
        _ = try Errno.check(CURing_pin_current_thread(Int32(cpu)))
    }
}

/// An eventfd for cross-thread wake-ups. The corresponding C function is `eventfd`.
public enum EventFD {
    public static func make() throws(Errno) -> Int32 { try Errno.check(CURing_eventfd()) }
}
