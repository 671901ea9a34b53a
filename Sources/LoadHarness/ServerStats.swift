import Glibc

/// A server process's CPU time and memory from procfs. `/proc/PID/stat` sums every thread of the
/// process (exited threads included), so no per-task walk is needed.
public struct ServerSample: Sendable {
    public var cpuSeconds: Double
    public var userSeconds: Double
    public var systemSeconds: Double
    /// Peak resident set (VmHWM), KiB: the process's peak over its whole life, not this run's.
    public var peakRSSKiB: Int
    public var rssKiB: Int

    public static func read(pid: Int32) throws(HarnessError) -> ServerSample {
        guard let stat = readSmallFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
            throw HarnessError("cannot read /proc/\(pid)/stat (is --server-pid \(pid) running?)", exitCode: 2)
        }
        // After "pid (comm)": state is field 3; utime is field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else {
            throw HarnessError("unexpected /proc/\(pid)/stat", exitCode: 2)
        }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        var hwm = 0, rss = 0
        for line in (readSmallFile("/proc/\(pid)/status") ?? "").split(separator: "\n") {
            func kib() -> Int { Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map { $0.trimmingTabs } ?? "") ?? 0 }
            if line.hasPrefix("VmHWM:") { hwm = kib() }
            if line.hasPrefix("VmRSS:") { rss = kib() }
        }
        return ServerSample(cpuSeconds: Double(user + system) / hz, userSeconds: Double(user) / hz,
                            systemSeconds: Double(system) / hz, peakRSSKiB: hwm, rssKiB: rss)
    }
}

extension Substring {
    var trimmingTabs: String { String(self.filter { $0 != "\t" }) }
}

/// The server's usage between two samples, per unit of work.
public struct ServerUsage: Sendable {
    public var pid: Int32
    public var cpuSeconds: Double
    public var userSeconds: Double
    public var systemSeconds: Double
    public var peakRSSKiB: Int
    public var rssKiB: Int

    public init(pid: Int32, before: ServerSample, after: ServerSample) {
        self.pid = pid
        cpuSeconds = after.cpuSeconds - before.cpuSeconds
        userSeconds = after.userSeconds - before.userSeconds
        systemSeconds = after.systemSeconds - before.systemSeconds
        peakRSSKiB = after.peakRSSKiB
        rssKiB = after.rssKiB
    }

    func json(perUnit name: String, units: Double) -> JSON { json(per: [(name, units)]) }

    /// The usage with CPU seconds per unit of work for each `(key, units)`.
    func json(per units: [(String, Double)]) -> JSON {
        var o: [(String, JSON)] = [
            ("pid", .int(Int(pid))),
            ("cpu_seconds", .double(cpuSeconds)),
            ("user_seconds", .double(userSeconds)),
            ("system_seconds", .double(systemSeconds)),
        ]
        for (name, n) in units { o.append((name, n > 0 ? .double(cpuSeconds / n) : .null)) }
        o += [("peak_rss_kib", .int(peakRSSKiB)), ("rss_kib", .int(rssKiB))]
        return .object(o)
    }

    /// One table line: CPU split, CPU per unit of work, peak RSS.
    func line(_ label: String, per units: [(String, Double)]) -> String {
        var s = "  server \(label)pid \(pid)  cpu \(fmt(cpuSeconds, 3)) s (user \(fmt(userSeconds, 2)), sys \(fmt(systemSeconds, 2)))"
        for (name, n) in units where n > 0 { s += "  = \(fmt(cpuSeconds / n, 3)) cpu-s per \(name)" }
        return s + "  peak RSS \(peakRSSKiB / 1024) MiB"
    }

    /// Samples `pid` around `body` (nil pid: no sampling).
    static func measure<R>(_ pid: Int32?, _ body: () throws(HarnessError) -> R) throws(HarnessError) -> (R, ServerUsage?) {
        guard let pid else { return (try body(), nil) }
        let before = try ServerSample.read(pid: pid)
        let r = try body()
        return (r, ServerUsage(pid: pid, before: before, after: try ServerSample.read(pid: pid)))
    }
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buf[..<n]
    }
    return String(decoding: out, as: UTF8.self)
}
