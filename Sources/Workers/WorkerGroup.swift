import Glibc
import Synchronization
import URing

/// A group of dedicated, pinned worker threads, each owning one ring and one handler.
///
/// `start()` returns once every worker has created its ring and started its handler (or throws
/// the first failure, after stopping the others). `stop()` asks every worker to stop gracefully
/// and joins them: each calls `beginStop`, keeps reaping completions until its handler is drained,
/// calls `finish`, destroys its ring and exits.
public final class WorkerGroup<Handler: WorkerHandler>: @unchecked Sendable {
    public typealias Message = Handler.Message
    public let configuration: WorkerConfiguration
    public let count: Int
    let cpus: [Int?]
    let mailboxes: [Mailbox<Message>]
    let makeHandler: @Sendable (Int) -> Handler
    /// Per-worker engine figures (`EngineCounter`), read by the metrics scrape.
    public let engineCounters: CounterTable
    private var threads: [pthread_t] = []
    private let startup = Mutex<(started: Int, failures: [Int: Errno])>((0, [:]))
    private let stateLock = Mutex(false) // stopped
    /// Worker threads that have entered and not yet left their body (tests check it drops to 0).
    let liveThreads = Atomic<Int>(0)

    /// - Parameter makeHandler: called on each worker's thread with its index; the handler stays
    ///   confined to that thread.
    public init(configuration: WorkerConfiguration = .init(), makeHandler: @escaping @Sendable (Int) -> Handler) throws(Errno) {
        self.configuration = configuration
        let allowed = try CPUSet.allowed()
        count = Self.workerCount(configuration, allowed: allowed)
        engineCounters = CounterTable(workers: count, counters: EngineCounter.allCases.count)
        cpus = (0..<count).map { configuration.pinned && !allowed.isEmpty ? allowed[$0 % allowed.count] : nil }
        var boxes: [Mailbox<Message>] = []
        for _ in 0..<count { boxes.append(try Mailbox()) }
        mailboxes = boxes
        self.makeHandler = makeHandler
    }

    /// How many workers a group with `configuration` runs (servers size their per-worker
    /// counter tables with it before creating the group).
    public static func workerCount(_ configuration: WorkerConfiguration) throws(Errno) -> Int {
        workerCount(configuration, allowed: try CPUSet.allowed())
    }

    static func workerCount(_ configuration: WorkerConfiguration, allowed: [Int]) -> Int {
        max(1, configuration.count ?? allowed.count)
    }

    /// Posts `message` to worker `index` from any thread. False when that worker has exited
    /// (the message was not queued; whatever it would have handed over is still the caller's).
    @discardableResult
    public func post(_ message: Message, to index: Int) -> Bool { mailboxes[index].post(message) }

    /// Spawns the workers and waits until all have started.
    ///
    /// - Throws: the first failure by worker index (pinning, ring setup, the handler's `start`,
    ///   arming the engine's ops), after every worker has stopped and been joined: a worker whose
    ///   handler failed has already been taken through `beginStop`, drained and `finish`ed.
    ///   Call once, from the control thread.
    public func start() throws(Errno) {
        precondition(threads.isEmpty && !stateLock.withLock { $0 }, "WorkerGroup.start() called twice or after stop()")
        for i in 0..<count {
            let box = Unmanaged.passRetained(WorkerBox(group: self, index: i))
            var thread = pthread_t()
            let r = pthread_create(&thread, nil, { raw in
                let box = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! WorkerRunnable
                box.run()
                return nil
            }, box.toOpaque())
            if r != 0 {
                box.release()
                stop()
                throw Errno(rawValue: r)
            }
            threads.append(thread)
        }
        // Wait for every worker to report (as bounded as the handlers' `start`).
        while true {
            let (started, failures) = startup.withLock { ($0.started, $0.failures) }
            if let first = failures.sorted(by: { $0.key < $1.key }).first {
                stop()
                throw first.value
            }
            if started == count { return }
            usleep(1000)
        }
    }

    /// Stops every worker gracefully and joins them. Idempotent; never call it from a worker.
    public func stop() {
        let already = stateLock.withLock { s -> Bool in defer { s = true }; return s }
        if already { return }
        for m in mailboxes { m.requestStop() }
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    fileprivate func reportStarted(_ index: Int, failure: Errno?) {
        startup.withLock { s in
            if let failure { s.failures[index] = failure } else { s.started += 1 }
        }
    }

    fileprivate func runWorker(index: Int) {
        liveThreads.add(1, ordering: .relaxed)
        defer { liveThreads.subtract(1, ordering: .releasing) }
        if let cpu = cpus[index] {
            do { try CPUSet.pinCurrentThread(to: cpu) } catch { reportStarted(index, failure: error); return }
        }
        let ring: Ring
        do {
            ring = try Ring(entries: configuration.ringEntries, completionEntries: configuration.completionEntries)
        } catch {
            reportStarted(index, failure: error)
            return
        }
        if let limit = configuration.ioWorkerLimit, limit > 0 {
            do {
                try ring.limitIOWorkers(bounded: limit, unbounded: limit)
            } catch {
                reportStarted(index, failure: error)
                return
            }
        }
        var context = WorkerContext<Message>(ring: ring, index: index, cpu: cpus[index], mailboxes: mailboxes,
                                             engineCounters: engineCounters.slot(index))
        context.now = monotonicNanos()
        let handler = makeHandler(index)
        var loop = WorkerLoop(handler: handler, mailbox: mailboxes[index], tickNanos: configuration.tickNanos)
        loop.batch = configuration.waitBatch
        loop.batchMicros = configuration.waitBatchMicros
        var failure: Errno?
        do {
            try handler.start(&context)
            try loop.armMailbox(&context)
            try loop.armTick(&context)
            try context.ring.submit()
        } catch {
            failure = error
        }
        if let failure {
            // The handler may have opened descriptors and submitted ops before it failed: take it
            // through the same stop as a graceful one (its final completions release everything)
            // and only then report, so `start()` throws with nothing of this worker left behind.
            loop.beginStopping(&context)
            loop.run(&context)
            reportStarted(index, failure: failure)
            return
        }
        reportStarted(index, failure: nil)
        loop.run(&context)
    }
}

private protocol WorkerRunnable: AnyObject { func run() }

private final class WorkerBox<Handler: WorkerHandler>: WorkerRunnable {
    let group: WorkerGroup<Handler>
    let index: Int
    init(group: WorkerGroup<Handler>, index: Int) { self.group = group; self.index = index }
    func run() { group.runWorker(index: index) }
}

/// The completion loop of one worker. Engine ops (mailbox wake-ups, ticks) are handled here;
/// everything else goes to the handler. Nothing here allocates per completion.
///
/// Engine ops are (re-)armed at the top of each iteration rather than from inside dispatch, so a
/// submission that fails (a full SQ whose submit the kernel refused with EBUSY) is retried on the
/// next iteration instead of leaving the worker deaf to its mailbox, which would hang `stop()`.
/// The loop exits only when the handler is drained, no engine op is in flight and the mailbox,
/// now closed, holds nothing more to deliver.
struct WorkerLoop<Handler: WorkerHandler>: ~Copyable {
    typealias Message = Handler.Message
    let handler: Handler
    let mailbox: Mailbox<Message>
    let tickNanos: UInt64
    let counter: UnsafeMutableRawBufferPointer = .allocate(byteCount: 8, alignment: 8)
    let tickSpec: UnsafeMutablePointer<KernelTimespec> = .allocate(capacity: 1)
    let completions: UnsafeMutableBufferPointer<Completion> = .allocate(capacity: 256)
    /// Messages taken from the mailbox; swapped with its queue so neither side reallocates.
    var inbox: [Message] = []
    var mailboxArmed = false
    var tickArmed = false
    var stopping = false
    var mailboxCancelRequested = false
    var tickCancelRequested = false
    /// `WorkerConfiguration.waitBatch` / `waitBatchMicros`.
    var batch = 1
    var batchMicros: UInt32 = 0
    /// Completions handled after the latest wait.
    var lastReaped = 0

    init(handler: Handler, mailbox: Mailbox<Message>, tickNanos: UInt64) {
        self.handler = handler
        self.mailbox = mailbox
        self.tickNanos = tickNanos
        tickSpec.pointee = KernelTimespec(tv_sec: Int64(tickNanos / 1_000_000_000), tv_nsec: Int64(tickNanos % 1_000_000_000))
        inbox.reserveCapacity(64)
    }

    deinit {
        counter.deallocate()
        tickSpec.deallocate()
        completions.deallocate()
    }

    mutating func armMailbox(_ context: inout WorkerContext<Message>) throws(Errno) {
        try context.ring.read(fd: mailbox.eventFD, into: counter, userData: UserData(op: WorkerOp.mailbox))
        mailboxArmed = true
    }

    mutating func armTick(_ context: inout WorkerContext<Message>) throws(Errno) {
        guard tickNanos > 0 else { return }
        try context.ring.timeout(tickSpec, userData: UserData(op: WorkerOp.tick))
        tickArmed = true
    }

    /// Graceful stop: the handler cancels or closes its work; the engine's own ops are cancelled
    /// (from the top of the loop, where a failed submission is retried).
    mutating func beginStopping(_ context: inout WorkerContext<Message>) {
        guard !stopping else { return }
        stopping = true
        handler.beginStop(&context)
    }

    mutating func run(_ context: inout WorkerContext<Message>) {
        while true {
            if stopping {
                // The cancel's own completion is `.ignored`; the target's -ECANCELED (or its
                // ordinary completion, if it won the race) clears the armed flag.
                if mailboxArmed && !mailboxCancelRequested {
                    mailboxCancelRequested = (try? context.ring.cancel(UserData(op: WorkerOp.mailbox))) != nil
                }
                if tickArmed && !tickCancelRequested {
                    tickCancelRequested = (try? context.ring.cancel(UserData(op: WorkerOp.tick))) != nil
                }
                if handler.isDrained && !mailboxArmed && !tickArmed {
                    // Messages that raced with the stop are still delivered (they may carry
                    // descriptors); later posts are refused and stay with their senders.
                    mailbox.close(into: &inbox)
                    if inbox.isEmpty { break }
                    deliverInbox(&context)
                    continue
                }
            } else {
                if !mailboxArmed { try? armMailbox(&context) }
                if !tickArmed { try? armTick(&context) }
            }
            do {
                // A batched wait only while the last one did not fill its batch: a worker that
                // reaped a whole batch is saturated, and holding out would only cap it (the
                // kernel lets one multishot receive post ~32 completions per wake-up).
                if batch > 1 && !stopping && lastReaped < batch {
                    try context.ring.submitAndWait(minimum: batch, minWaitMicros: batchMicros)
                } else {
                    try context.ring.submitAndWait(minimum: 1)
                }
            } catch {
                // EBADF/EFAULT on our own ring would be a bug; anything else is transient.
                precondition(error.rawValue != EBADF && error.rawValue != EFAULT, "io_uring_enter failed on the worker's own ring")
            }
            context.now = monotonicNanos()
            lastReaped = 0
            while true {
                let n = context.ring.reapCompletions(into: completions)
                if n == 0 { break }
                for i in 0..<n { dispatch(completions[i], &context) }
                context.engineCounters.add(.cqes, UInt64(n))
                lastReaped += n
            }
            context.engineCounters.set(EngineCounter.sqes.rawValue, context.ring.sqesQueued)
        }
        handler.finish(&context)
    }

    mutating func dispatch(_ c: Completion, _ context: inout WorkerContext<Message>) {
        switch c.userData.op {
        case 0:
            return
        case WorkerOp.mailbox:
            mailboxArmed = false
            mailboxCancelRequested = false
            let stop = mailbox.drain(into: &inbox)
            deliverInbox(&context)
            if stop { beginStopping(&context) }
        case WorkerOp.tick:
            tickArmed = false
            tickCancelRequested = false
            if !stopping { handler.tick(&context) }
        default:
            handler.handle(c, &context)
        }
    }

    mutating func deliverInbox(_ context: inout WorkerContext<Message>) {
        for m in inbox { handler.receive(m, &context) }
        inbox.removeAll(keepingCapacity: true)
    }
}
