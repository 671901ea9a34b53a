import Glibc
import URing

/// What a server plugs into a worker. All calls happen on the worker's own thread, which owns
/// the ring and everything the handler holds (STYLE.md habit 5).
///
/// Op codes: a handler tags its SQEs with `UserData.op` values 1…`WorkerOp.maxHandlerOp`; 0 is
/// "ignored" and the values above are the engine's own (mailbox, tick).
public protocol WorkerHandler: AnyObject {
    associatedtype Message: Sendable
    /// The ring exists and the thread is pinned: create sockets, buffer rings, submit the first ops.
    /// If it throws, the worker still calls `beginStop`, reaps until `isDrained` and calls
    /// `finish`, so whatever was opened or submitted before the failure is released the usual way.
    func start(_ context: inout WorkerContext<Message>) throws(Errno)
    /// One completion of an op this handler submitted.
    func handle(_ completion: Completion, _ context: inout WorkerContext<Message>)
    /// A message another thread posted to this worker.
    func receive(_ message: Message, _ context: inout WorkerContext<Message>)
    /// Called every `WorkerConfiguration.tickNanos` (timeouts, accounting).
    func tick(_ context: inout WorkerContext<Message>)
    /// Graceful stop: cancel or close everything. Called once (also after a failed `start`); then
    /// the worker keeps reaping completions until `isDrained` is true and exits. Messages may
    /// still arrive after it (posted before the mailbox closed): release what they carry.
    func beginStop(_ context: inout WorkerContext<Message>)
    /// Every op this handler submitted has delivered its final completion.
    var isDrained: Bool { get }
    /// Called on the worker thread after draining, before the ring is destroyed (unregister
    /// buffer rings here).
    func finish(_ context: inout WorkerContext<Message>)
}

extension WorkerHandler {
    public func tick(_ context: inout WorkerContext<Message>) {}
    public func finish(_ context: inout WorkerContext<Message>) {}
}

public enum WorkerOp {
    public static let maxHandlerOp: UInt8 = 0xEF
    static let mailbox: UInt8 = 0xF0
    static let tick: UInt8 = 0xF1
}

/// A worker's view of itself, handed to its handler: the ring and the way to reach other workers.
public struct WorkerContext<Message: Sendable>: ~Copyable {
    public var ring: Ring
    /// This worker's index in its group (0-based).
    public let index: Int
    /// The CPU it is pinned to, if pinned.
    public let cpu: Int?
    let mailboxes: [Mailbox<Message>]
    /// This worker's engine figures (`EngineCounter`); handlers count buffer-ring exhaustion here.
    public let engineCounters: CounterSlot
    /// Monotonic time of the latest loop iteration, in nanoseconds (cheap "now" for timeouts).
    public internal(set) var now: UInt64 = 0

    public var workerCount: Int { mailboxes.count }

    /// Posts `message` to worker `index` (itself included: delivered on a later loop iteration).
    /// False when that worker has already exited; the message was not queued.
    @discardableResult
    public func post(_ message: Message, to index: Int) -> Bool { mailboxes[index].post(message) }
}

/// Worker group settings.
public struct WorkerConfiguration: Sendable {
    /// Number of workers; nil: one per CPU of the affinity mask.
    public var count: Int?
    /// Pin each worker to one CPU (round-robin over the allowed CPUs).
    public var pinned = true
    /// SQ entries per ring (CQ is twice that, or more for multishot-heavy loads).
    public var ringEntries: UInt32 = 1024
    public var completionEntries: UInt32 = 8192
    /// Period of `WorkerHandler.tick`; 0 disables it.
    public var tickNanos: UInt64 = 1_000_000_000
    /// Cap on the kernel's io-wq threads per worker ring (both kinds; see `Ring.limitIOWorkers`).
    /// nil keeps the kernel's defaults (bounded: min(SQ entries, 4 × CPUs); unbounded: the
    /// process limit RLIMIT_NPROC), under which every splice in flight may get its own thread.
    public var ioWorkerLimit: UInt32?
    /// Wake-up batching: each wait holds out for `waitBatch` completions, at most
    /// `waitBatchMicros` µs, then settles for one (`Ring.submitAndWait(minimum:minWaitMicros:)`;
    /// kernel 6.12+, otherwise ignored). A loaded worker handles several completions per wake-up
    /// instead of one, each up to `waitBatchMicros` later; an idle one still wakes for its first
    /// event at once. 1 = off.
    public var waitBatch = 1
    public var waitBatchMicros: UInt32 = 0
    public init() {}
}

/// Monotonic clock in nanoseconds.
@inlinable
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
