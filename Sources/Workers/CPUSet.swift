import URing

/// The CPUs this process may run on: the scheduler affinity mask, which already reflects a cgroup
/// cpuset (containers, systemd `AllowedCPUs=`). Never assumes `0..<nproc`.
public enum CPUSet {
    public static func allowed() throws(Errno) -> [Int] { try Affinity.allowedCPUs() }
    public static func pinCurrentThread(to cpu: Int) throws(Errno) { try Affinity.pinCurrentThread(to: cpu) }
}
