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
    private var threads: [pthread_t] = []
    private let startup = Mutex<(started: Int, failures: [Int: Errno])>((0, [:]))
    private let stateLock = Mutex(false) // stopped

    /// - Parameter makeHandler: called on each worker's thread with its index; the handler stays
    ///   confined to that thread.
    public init(configuration: WorkerConfiguration = .init(), makeHandler: @escaping @Sendable (Int) -> Handler) throws(Errno) {
        self.configuration = configuration
        let allowed = try CPUSet.allowed()
        count = max(1, configuration.count ?? allowed.count)
        cpus = (0..<count).map { configuration.pinned && !allowed.isEmpty ? allowed[$0 % allowed.count] : nil }
        var boxes: [Mailbox<Message>] = []
        for _ in 0..<count { boxes.append(try Mailbox()) }
        mailboxes = boxes
        self.makeHandler = makeHandler
    }

    /// Posts `message` to worker `index` from any thread.
    public func post(_ message: Message, to index: Int) { mailboxes[index].post(message) }

    /// Spawns the workers and waits until all have started.
    public func start() throws(Errno) {
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
        // Wait for every worker to report (bounded: a ring setup cannot block).
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

    /// Stops every worker gracefully and joins them. Idempotent.
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
        if let cpu = cpus[index] {
            do { try CPUSet.pinCurrentThread(to: cpu) } catch { reportStarted(index, failure: error); return }
        }
        var ring: Ring
        do {
            ring = try Ring(entries: configuration.ringEntries, completionEntries: configuration.completionEntries)
        } catch {
            reportStarted(index, failure: error)
            return
        }
        var context = WorkerContext<Message>(ring: ring, index: index, cpu: cpus[index], mailboxes: mailboxes)
        context.now = monotonicNanos()
        let handler = makeHandler(index)
        let mailbox = mailboxes[index]
        var loop = WorkerLoop(tickNanos: configuration.tickNanos)
        do {
            try loop.armMailbox(&context, mailbox)
            try loop.armTick(&context)
            try handler.start(&context)
            try context.ring.submit()
        } catch {
            reportStarted(index, failure: error)
            loop.abandon(&context)
            return
        }
        reportStarted(index, failure: nil)
        loop.run(handler: handler, mailbox: mailbox, context: &context)
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
struct WorkerLoop: ~Copyable {
    let tickNanos: UInt64
    let counter: UnsafeMutableRawBufferPointer = .allocate(byteCount: 8, alignment: 8)
    let tickSpec: UnsafeMutablePointer<KernelTimespec> = .allocate(capacity: 1)
    let completions: UnsafeMutableBufferPointer<Completion> = .allocate(capacity: 256)
    var mailboxArmed = false
    var tickArmed = false
    var stopping = false

    init(tickNanos: UInt64) {
        self.tickNanos = tickNanos
        tickSpec.pointee = KernelTimespec(tv_sec: Int64(tickNanos / 1_000_000_000), tv_nsec: Int64(tickNanos % 1_000_000_000))
    }

    deinit {
        counter.deallocate()
        tickSpec.deallocate()
        completions.deallocate()
    }

    mutating func armMailbox<M>(_ context: inout WorkerContext<M>, _ mailbox: Mailbox<M>) throws(Errno) {
        try context.ring.read(fd: mailbox.eventFD, into: counter, userData: UserData(op: WorkerOp.mailbox))
        mailboxArmed = true
    }

    mutating func armTick<M>(_ context: inout WorkerContext<M>) throws(Errno) {
        guard tickNanos > 0 else { return }
        try context.ring.timeout(tickSpec, userData: UserData(op: WorkerOp.tick))
        tickArmed = true
    }

    /// Startup failed after some ops were submitted: cancel and reap them so nothing the kernel
    /// holds points at memory about to be freed.
    mutating func abandon<M>(_ context: inout WorkerContext<M>) {
        try? context.ring.cancel(fd: -1)
        try? context.ring.cancel(UserData(op: WorkerOp.mailbox))
        try? context.ring.cancel(UserData(op: WorkerOp.tick))
        var spins = 0
        while (mailboxArmed || tickArmed) && spins < 100 {
            try? context.ring.submitAndWait(minimum: 1, timeoutNanos: 10_000_000)
            let n = context.ring.reapCompletions(into: completions)
            for i in 0..<n {
                let c = completions[i]
                if c.userData.op == WorkerOp.mailbox { mailboxArmed = false }
                if c.userData.op == WorkerOp.tick { tickArmed = false }
            }
            spins += 1
        }
    }

    mutating func run<H: WorkerHandler>(handler: H, mailbox: Mailbox<H.Message>, context: inout WorkerContext<H.Message>) {
        while true {
            do {
                try context.ring.submitAndWait(minimum: 1)
            } catch {
                // EBADF/EFAULT on our own ring would be a bug; anything else is transient.
                precondition(error.rawValue != EBADF && error.rawValue != EFAULT, "io_uring_enter: \(error)")
            }
            context.now = monotonicNanos()
            while true {
                let n = context.ring.reapCompletions(into: completions)
                if n == 0 { break }
                for i in 0..<n { dispatch(completions[i], handler: handler, mailbox: mailbox, context: &context) }
            }
            if stopping && handler.isDrained && !mailboxArmed && !tickArmed { break }
        }
        handler.finish(&context)
    }

    mutating func dispatch<H: WorkerHandler>(_ c: Completion, handler: H, mailbox: Mailbox<H.Message>, context: inout WorkerContext<H.Message>) {
        switch c.userData.op {
        case 0:
            return
        case WorkerOp.mailbox:
            mailboxArmed = false
            let (messages, stop) = mailbox.takeAll()
            for m in messages { handler.receive(m, &context) }
            if stop && !stopping {
                stopping = true
                handler.beginStop(&context)
                if tickArmed { try? context.ring.cancel(UserData(op: WorkerOp.tick)) }
            }
            if !stopping { try? armMailbox(&context, mailbox) }
        case WorkerOp.tick:
            tickArmed = false
            if !stopping {
                handler.tick(&context)
                try? armTick(&context)
            }
        default:
            handler.handle(c, &context)
        }
    }
}
