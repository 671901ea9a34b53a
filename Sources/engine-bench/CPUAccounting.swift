import Glibc
import Synchronization

/// Per-thread CPU time of this process's tasks.
///
/// CPU time comes from the kernel's per-thread CPU clock of the task (`sum_exec_runtime`,
/// nanoseconds, user + system, the running slice included), which any thread of the same process
/// may read with `clock_gettime`. The clock ID is the kernel's encoding
/// `MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)` = `(~tid << 3) | 6`, the one glibc's
/// `pthread_getcpuclockid` returns; it also works for threads that have no `pthread_t`, such as
/// io_uring's io-wq workers (`iou-wrk-<tid of the submitting thread>`), which are threads of this
/// process. The user/system split comes from `/proc/self/task/<tid>/stat` (clock ticks).
enum TaskCPU {
    /// CPU nanoseconds of task `tid` of this process; nil once it has exited.
    static func nanos(_ tid: Int32) -> UInt64? {
        let clock = clockid_t(truncatingIfNeeded: (~Int64(tid)) << 3 | 6)
        var ts = timespec()
        guard clock_gettime(clock, &ts) == 0 else { return nil }
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// User and system clock ticks (`utime`, `stime`) of task `tid`.
    static func ticks(_ tid: Int32) -> (user: UInt64, system: UInt64)? {
        ticks(statPath: "/proc/self/task/\(tid)/stat")
    }

    /// `utime` and `stime` from a procfs `stat` file.
    static func ticks(statPath: String) -> (user: UInt64, system: UInt64)? {
        guard let stat = readSmallFile(statPath), let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": state is field 3, utime field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return (user, system)
    }

    /// The task's name (`comm`, at most 15 bytes).
    static func name(_ tid: Int32) -> String? {
        readSmallFile("/proc/self/task/\(tid)/comm").map { String($0.prefix(while: { $0 != "\n" })) }
    }

    /// The tasks (threads) of this process now.
    static func taskIDs() -> [Int32] { numericEntries("/proc/self/task") }

    /// The kernel's softirq threads (`ksoftirqd/<cpu>`), system-wide. Loopback packet processing
    /// normally runs in the sending thread's context; when the kernel defers it, it runs here,
    /// outside this process, and no thread of the bench is charged for it.
    static func softirqThreads() -> [Int32] {
        numericEntries("/proc").filter { pid in
            readSmallFile("/proc/\(pid)/comm")?.hasPrefix("ksoftirqd/") == true
        }
    }

    /// Ticks (user + system) of the processes `pids`.
    static func processTicks(_ pids: [Int32]) -> UInt64 {
        pids.reduce(0) { sum, pid in
            let t = ticks(statPath: "/proc/\(pid)/stat") ?? (0, 0)
            return sum + t.user + t.system
        }
    }

    static func numericEntries(_ path: String) -> [Int32] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if let tid = Int32(name) { out.append(tid) }
        }
        return out
    }

    static var ticksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

    static func processNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// CPU used during one measured phase, split by who used it.
struct PhaseCPU: Sendable {
    /// The server's own threads (io_uring workers or baseline threads). With io_uring this
    /// includes the completion work the kernel runs in the worker's context (DEFER_TASKRUN task
    /// work, inline sends and receives), which lands in system time.
    var serverSeconds = 0.0
    var serverUserSeconds = 0.0
    var serverSystemSeconds = 0.0
    /// io-wq workers named after a server thread (`iou-wrk-<server tid>`): splices, and anything
    /// io_uring punts to a worker. Sampled every `CPUWatch.samplePeriod`; a worker that exits
    /// between samples loses its last slice (see `ioWorkersExited`).
    var ioWorkerSeconds = 0.0
    var ioWorkerThreads = 0
    var ioWorkersExited = 0
    /// io-wq workers of any other thread (expected: none).
    var otherIoWorkerSeconds = 0.0
    /// The whole process (`CLOCK_PROCESS_CPUTIME_ID`, exited threads included).
    var processSeconds = 0.0
    /// `ksoftirqd/*` threads, system-wide (ticks): network work deferred out of every process,
    /// this one's and the neighbours'. Not part of any figure above.
    var softirqThreadSeconds = 0.0

    var serverTotalSeconds: Double { serverSeconds + ioWorkerSeconds }
}

/// Measures `PhaseCPU` between `start()` and `stop()`: reads the server threads' CPU clocks at
/// both ends and samples io-wq workers in between, because they come and go during a phase.
final class CPUWatch: @unchecked Sendable {
    static let samplePeriodMicros: UInt32 = 20_000

    private struct State {
        /// io-wq worker tid → (CPU at first sight or phase start, latest CPU, owner tid).
        var ioWorkers: [Int32: (base: UInt64, last: UInt64, owner: Int32?)] = [:]
        var names: [Int32: String] = [:]
        var running = true
    }

    private let serverThreads: [Int32]
    private let serverSet: Set<Int32>
    private let state = Mutex(State())
    private var serverBase: [Int32: UInt64] = [:]
    private var serverTicksBase: [Int32: (user: UInt64, system: UInt64)] = [:]
    private var processBase: UInt64 = 0
    private let softirqThreads = TaskCPU.softirqThreads()
    private var softirqBase: UInt64 = 0
    private var sampler: BenchThread?

    init(serverThreads: [Int32]) {
        self.serverThreads = serverThreads
        serverSet = Set(serverThreads)
    }

    func start() {
        // io-wq workers alive now count from their current CPU, later ones from zero.
        sampleIoWorkers(firstSightIsBase: true)
        for tid in serverThreads {
            serverBase[tid] = TaskCPU.nanos(tid) ?? 0
            serverTicksBase[tid] = TaskCPU.ticks(tid) ?? (0, 0)
        }
        processBase = TaskCPU.processNanos()
        softirqBase = TaskCPU.processTicks(softirqThreads)
        sampler = BenchThread { [self] in
            while state.withLock({ $0.running }) {
                usleep(Self.samplePeriodMicros)
                sampleIoWorkers(firstSightIsBase: false)
            }
        }
    }

    func stop() -> PhaseCPU {
        var cpu = PhaseCPU()
        let processEnd = TaskCPU.processNanos()
        cpu.softirqThreadSeconds = Double(TaskCPU.processTicks(softirqThreads) &- softirqBase) / TaskCPU.ticksPerSecond
        var ticksUser: UInt64 = 0, ticksSystem: UInt64 = 0
        for tid in serverThreads {
            let end = TaskCPU.nanos(tid) ?? serverBase[tid] ?? 0
            cpu.serverSeconds += Double(end &- (serverBase[tid] ?? 0)) / 1e9
            if let t = TaskCPU.ticks(tid), let b = serverTicksBase[tid] {
                ticksUser += t.user &- b.user
                ticksSystem += t.system &- b.system
            }
        }
        cpu.serverUserSeconds = Double(ticksUser) / TaskCPU.ticksPerSecond
        cpu.serverSystemSeconds = Double(ticksSystem) / TaskCPU.ticksPerSecond
        sampleIoWorkers(firstSightIsBase: false)
        state.withLock { $0.running = false }
        sampler?.join()
        let alive = Set(TaskCPU.taskIDs())
        state.withLock { s in
            for (tid, w) in s.ioWorkers where w.last > w.base {
                let seconds = Double(w.last - w.base) / 1e9
                if let owner = w.owner, serverSet.contains(owner) {
                    cpu.ioWorkerSeconds += seconds
                    cpu.ioWorkerThreads += 1
                    if !alive.contains(tid) { cpu.ioWorkersExited += 1 }
                } else {
                    cpu.otherIoWorkerSeconds += seconds
                }
            }
        }
        cpu.processSeconds = Double(processEnd - processBase) / 1e9
        return cpu
    }

    private func sampleIoWorkers(firstSightIsBase: Bool) {
        for tid in TaskCPU.taskIDs() {
            let known = state.withLock { $0.names[tid] }
            let name: String
            if let known { name = known } else {
                guard let n = TaskCPU.name(tid) else { continue }
                name = n
                state.withLock { $0.names[tid] = n }
            }
            guard name.hasPrefix("iou-wrk-"), let now = TaskCPU.nanos(tid) else { continue }
            let owner = Int32(name.dropFirst("iou-wrk-".count))
            state.withLock { s in
                if var w = s.ioWorkers[tid] {
                    w.last = max(w.last, now)
                    s.ioWorkers[tid] = w
                } else {
                    s.ioWorkers[tid] = (firstSightIsBase ? now : 0, now, owner)
                }
            }
        }
    }
}
