import Glibc
import Synchronization
import URing
import Workers

enum RelayMode: String, Sendable, CaseIterable {
    /// Client and sink connected to each other: the baseline.
    case direct
    /// Through the relay with `SplicePump`.
    case splice
    /// Through the relay with `BufferedPump`.
    case buffered
}

struct RelayOptions {
    var pairs = 1
    var bytes = 1 << 30
    var modes: [RelayMode] = RelayMode.allCases
    var workers = 1
    var bufferSize = 64 << 10
    var pool = PipePool.Configuration()
    var timeoutSeconds = 120.0
    var rounds = 1
    var pin = false
}

/// What one relay worker did, reported when it finishes.
struct RelayWorkerStats: Sendable {
    var pairsCompleted = 0
    var pairsFailed = 0
    var failures: [String] = []
    var bytesForwarded: UInt64 = 0
    /// Chunks copied through a buffer because every pipe was lent (`PipePool.refusals`).
    var poolRefusals = 0
    var undersizedPipes = 0
    var discardedPipes = 0
    var peakPipesOpen = 0

    mutating func add(_ o: RelayWorkerStats) {
        pairsCompleted += o.pairsCompleted
        pairsFailed += o.pairsFailed
        failures += o.failures
        bytesForwarded += o.bytesForwarded
        poolRefusals += o.poolRefusals
        undersizedPipes += o.undersizedPipes
        discardedPipes += o.discardedPipes
        peakPipesOpen = max(peakPipesOpen, o.peakPipesOpen)
    }
}

final class RelayBoard: Sendable {
    struct State {
        var threads: [Int: Int32] = [:]
        var ports: [Int: UInt16] = [:]
        var ended: [Int: Int] = [:]
        var stats: [Int: RelayWorkerStats] = [:]
    }
    let state = Mutex(State())

    var threadIDs: [Int32] { state.withLock { $0.threads.sorted { $0.key < $1.key }.map(\.value) } }
    func port(_ worker: Int) -> UInt16 { state.withLock { $0.ports[worker] ?? 0 } }
    var pairsEnded: Int { state.withLock { $0.ended.values.reduce(0, +) } }
    var totals: RelayWorkerStats { state.withLock { $0.stats.values.reduce(into: RelayWorkerStats()) { $0.add($1) } } }
}

/// A connection whose pair header is still being read.
struct PendingHalf {
    var fd: Int32
    var buffer: UnsafeMutableRawBufferPointer
    var filled = 0
    var receiving = false
    var pairID: UInt32 = 0
    var role: UInt8 = 0
}

/// A pump in a slot table (the pump's tag is made from the slot's handle).
final class PumpSlot {
    var pump: Pump!
}

/// A minimal hbbr on the engine: accepts, reads each connection's pair header, pairs the two
/// halves of a pair and pumps between them with the configured pump until both directions end.
/// The shape of `Tests/PumpTests/RelayHarness.swift` without its instrumentation.
final class BenchRelayHandler: WorkerHandler {
    typealias Message = NoMessage

    enum Op {
        static let accept: UInt8 = 1
        static let header: UInt8 = 2
        static let pump: UInt8 = 3
    }

    let index: Int
    let mode: RelayMode
    let options: RelayOptions
    let board: RelayBoard
    var pool: PipePool?
    var copyBuffers: CopyBufferPool?
    var listener: Int32 = -1
    var acceptArmed = false
    var stopping = false
    var halves = SlotTable<PendingHalf>(capacity: 4096)
    var pumps = SlotTable<PumpSlot>(capacity: 4096)
    var waiting: [UInt32: SlotTable<PendingHalf>.Handle] = [:]
    var stats = RelayWorkerStats()

    init(index: Int, mode: RelayMode, options: RelayOptions, board: RelayBoard) {
        precondition(mode != .direct)
        self.index = index
        self.mode = mode
        self.options = options
        self.board = board
    }

    func start(_ context: inout WorkerContext<NoMessage>) throws(Errno) {
        let tid = currentThreadID()
        if mode == .splice {
            pool = try PipePool(configuration: options.pool)
            var c = CopyBufferPool.Configuration()
            c.bufferSize = options.bufferSize
            copyBuffers = CopyBufferPool(configuration: c)
        }
        var socketOptions = SocketOptions()
        socketOptions.reusePort = false
        socketOptions.backlog = 4096
        listener = try Socket.tcpListener(.loopbackV4(port: 0), options: socketOptions)
        let port = try Socket.localEndpoint(listener).port
        try context.ring.multishotAccept(fd: listener, userData: UserData(op: Op.accept))
        acceptArmed = true
        board.state.withLock { $0.threads[index] = tid; $0.ports[index] = port }
    }

    func handle(_ c: Completion, _ context: inout WorkerContext<NoMessage>) {
        switch c.userData.op {
        case Op.accept: handleAccept(c, &context)
        case Op.header: handleHeader(c, &context)
        case Op.pump: handlePump(c, &context)
        default: break
        }
    }

    func handleAccept(_ c: Completion, _ context: inout WorkerContext<NoMessage>) {
        if !c.hasMore {
            acceptArmed = false
            if !stopping {
                try? context.ring.multishotAccept(fd: listener, userData: UserData(op: Op.accept))
                acceptArmed = true
            }
        }
        guard c.result >= 0 else { return }
        let fd = c.result
        if stopping { Socket.close(fd); return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        guard let h = halves.insert(PendingHalf(fd: fd, buffer: buffer)) else {
            buffer.deallocate()
            Socket.close(fd)
            return
        }
        receiveHeader(h, &context)
    }

    func receiveHeader(_ h: SlotTable<PendingHalf>.Handle, _ context: inout WorkerContext<NoMessage>) {
        let half = halves[h]!
        let rest = UnsafeMutableRawBufferPointer(rebasing: half.buffer[half.filled...])
        do {
            try context.ring.recv(fd: half.fd, into: rest, userData: h.userData(op: Op.header))
            halves.withElement(h) { $0.receiving = true }
        } catch {
            drop(h)
        }
    }

    func drop(_ h: SlotTable<PendingHalf>.Handle) {
        guard let half = halves.remove(h) else { return }
        half.buffer.deallocate()
        Socket.close(half.fd)
        if waiting[half.pairID] == h { waiting[half.pairID] = nil }
    }

    func handleHeader(_ c: Completion, _ context: inout WorkerContext<NoMessage>) {
        let h = SlotTable<PendingHalf>.Handle(c.userData)
        guard var half = halves[h] else { return }
        half.receiving = false
        halves[h] = half
        if c.result <= 0 || stopping { drop(h); return }
        half.filled += Int(c.result)
        halves[h] = half
        if half.filled < PairHeader.size { receiveHeader(h, &context); return }
        guard let (pairID, role) = PairHeader.parse(UnsafeRawBufferPointer(half.buffer)) else {
            stats.failures.append("bad pair header")
            drop(h)
            return
        }
        half.pairID = pairID
        half.role = role
        halves[h] = half
        if let other = waiting[pairID], let partner = halves[other], partner.role != role {
            waiting[pairID] = nil
            startPump(role == 0 ? h : other, role == 0 ? other : h, &context)
        } else {
            waiting[pairID] = h
        }
    }

    func startPump(_ ha: SlotTable<PendingHalf>.Handle, _ hb: SlotTable<PendingHalf>.Handle, _ context: inout WorkerContext<NoMessage>) {
        let a = halves.remove(ha)!
        let b = halves.remove(hb)!
        let pendingA = Array(UnsafeRawBufferPointer(rebasing: a.buffer[PairHeader.size..<a.filled]))
        let pendingB = Array(UnsafeRawBufferPointer(rebasing: b.buffer[PairHeader.size..<b.filled]))
        a.buffer.deallocate()
        b.buffer.deallocate()
        // The pump's tag needs the slot's handle, so the slot is taken first.
        let slot = PumpSlot()
        guard let h = pumps.insert(slot) else {
            Socket.close(a.fd)
            Socket.close(b.fd)
            stats.pairsFailed += 1
            return
        }
        let tag = h.userData(op: Op.pump)
        let pump: Pump
        switch mode {
        case .splice:
            pump = SplicePump(a: a.fd, b: b.fd, tag: tag, pool: pool!, copyBuffers: copyBuffers!, pendingAToB: pendingA,
                              pendingBToA: pendingB)
        case .buffered, .direct:
            // Through the ring only, like the splice mode above: this bench measures the engine's
            // ring-driven pumps (docs/PERFORMANCE.md, "Engine and servers"); hbbr's inline paths
            // are measured through hbbr (Benchmarks/scripts/hbbr-bench.sh).
            pump = BufferedPump(a: a.fd, b: b.fd, tag: tag, bufferSize: options.bufferSize, pendingAToB: pendingA,
                                pendingBToA: pendingB, inline: false)
        }
        slot.pump = pump
        react(pump.start(ring: &context.ring), h, &context)
    }

    func handlePump(_ c: Completion, _ context: inout WorkerContext<NoMessage>) {
        let h = SlotTable<PumpSlot>.Handle(c.userData)
        guard let pump = pumps[h]?.pump else { return }
        react(pump.handle(c, ring: &context.ring), h, &context)
    }

    func react(_ event: PumpEvent, _ h: SlotTable<PumpSlot>.Handle, _ context: inout WorkerContext<NoMessage>) {
        guard let pump = pumps[h]?.pump else { return }
        if let pool { stats.peakPipesOpen = max(stats.peakPipesOpen, pool.open) }
        var event = event
        if case .finished(let end) = event {
            switch end {
            case .completed: stats.pairsCompleted += 1
            case .failed(let e, let d): stats.pairsFailed += 1; stats.failures.append("pump \(d): \(e)")
            }
            board.state.withLock { $0.ended[index, default: 0] += 1 }
            event = pump.close(ring: &context.ring)
        }
        if event == .drained {
            stats.bytesForwarded += pump.counters(.aToB).bytesWritten + pump.counters(.bToA).bytesWritten
            pumps.remove(h)
        }
    }

    func receive(_ message: NoMessage, _ context: inout WorkerContext<NoMessage>) {}

    func beginStop(_ context: inout WorkerContext<NoMessage>) {
        stopping = true
        if acceptArmed { try? context.ring.cancel(UserData(op: Op.accept)) }
        for h in pumps.handles { react(pumps[h]!.pump.close(ring: &context.ring), h, &context) }
        for h in halves.handles {
            if halves[h]!.receiving { try? context.ring.cancel(h.userData(op: Op.header)) } else { drop(h) }
        }
    }

    var isDrained: Bool { !acceptArmed && pumps.count == 0 && halves.count == 0 }

    func finish(_ context: inout WorkerContext<NoMessage>) {
        Socket.close(listener)
        if let pool {
            stats.poolRefusals = pool.refusals
            stats.undersizedPipes = pool.undersizedPipes
            stats.discardedPipes = pool.discarded
            pool.closeIdle()
        }
        let s = stats
        board.state.withLock { $0.stats[index] = s }
    }
}

/// One mode's run.
struct RelayPhaseResult: Sendable {
    var mode: RelayMode
    var pairs: Int
    var bytesEachWay: Int
    var wallSeconds = 0.0
    var cpu = PhaseCPU()
    var clients = StreamLoopResult()
    var sinks = StreamLoopResult()
    var relay: RelayWorkerStats?

    /// Payload bytes delivered, both directions of every pair.
    var bytesDelivered: Int { clients.bytesReceived + sinks.bytesReceived }
    var gigabytesPerSecond: Double { Double(bytesDelivered) / wallSeconds / 1e9 }
    var relayCPUSecondsPerGB: Double? { relay == nil ? nil : cpu.serverTotalSeconds / (Double(bytesDelivered) / 1e9) }
    var generatorSeconds: Double { clients.cpuSeconds + sinks.cpuSeconds }
    var restSeconds: Double { cpu.processSeconds - cpu.serverTotalSeconds - cpu.otherIoWorkerSeconds - generatorSeconds }
    var failures: [String] { clients.failures + sinks.failures + (relay?.failures ?? []) }
    var clean: Bool {
        failures.isEmpty && !clients.timedOut && !sinks.timedOut
            && clients.completed == pairs && sinks.completed == pairs && bytesDelivered == 2 * pairs * bytesEachWay
    }
}

struct RelayRound: Sendable {
    var phases: [RelayPhaseResult]
    var direct: RelayPhaseResult? { phases.first { $0.mode == .direct } }
    /// Throughput of `phase` ÷ direct throughput in the same round.
    func throughputRatio(_ phase: RelayPhaseResult) -> Double? {
        guard let d = direct, phase.mode != .direct else { return nil }
        return phase.gigabytesPerSecond / d.gigabytesPerSecond
    }
}

enum RelayBench {
    static func run(_ o: RelayOptions) throws -> [RelayRound] {
        let pattern = Pattern()
        var rounds: [RelayRound] = []
        for _ in 0..<o.rounds {
            var phases: [RelayPhaseResult] = []
            for mode in o.modes { phases.append(try runPhase(mode, o, pattern)) }
            rounds.append(RelayRound(phases: phases))
        }
        return rounds
    }

    static func runPhase(_ mode: RelayMode, _ o: RelayOptions, _ pattern: Pattern) throws -> RelayPhaseResult {
        var result = RelayPhaseResult(mode: mode, pairs: o.pairs, bytesEachWay: o.bytes)
        var clientEnds: [StreamEndpoint] = []
        var sinkEnds: [StreamEndpoint] = []
        func endpoints(_ p: UInt32, a: Int32, b: Int32) {
            StreamSetup.setNonBlocking(a)
            StreamSetup.setNonBlocking(b)
            let startA = pattern.start(pairID: p, role: 0), startB = pattern.start(pairID: p, role: 1)
            clientEnds.append(StreamEndpoint(fd: a, pairID: p, sendStart: startA, receiveStart: startB, total: o.bytes))
            sinkEnds.append(StreamEndpoint(fd: b, pairID: p, sendStart: startB, receiveStart: startA, total: o.bytes))
        }

        var group: WorkerGroup<BenchRelayHandler>?
        let board = RelayBoard()
        if mode == .direct {
            let listener = try directListener()
            defer { close(listener) }
            let port = try Socket.localEndpoint(listener).port
            for p in 0..<UInt32(o.pairs) {
                let a = try StreamSetup.connect(port: port)
                try StreamSetup.sendAll(a, PairHeader.make(pairID: p, role: 0))
                let b = accept(listener, nil, nil)
                guard b >= 0 else { throw Errno.current }
                let header = try StreamSetup.receiveExactly(b, PairHeader.size)
                guard let (id, _) = header.withUnsafeBytes({ PairHeader.parse($0) }), id == p else { throw Errno.invalidArgument }
                endpoints(p, a: a, b: b)
            }
        } else {
            var configuration = WorkerConfiguration()
            configuration.count = o.workers
            configuration.pinned = o.pin
            configuration.tickNanos = 0
            let g = try WorkerGroup(configuration: configuration) { i in BenchRelayHandler(index: i, mode: mode, options: o, board: board) }
            try g.start()
            group = g
            for p in 0..<UInt32(o.pairs) {
                let port = board.port(Int(p) % o.workers)
                let a = try StreamSetup.connect(port: port)
                try StreamSetup.sendAll(a, PairHeader.make(pairID: p, role: 0))
                let b = try StreamSetup.connect(port: port)
                try StreamSetup.sendAll(b, PairHeader.make(pairID: p, role: 1))
                endpoints(p, a: a, b: b)
            }
        }

        let watch = CPUWatch(serverThreads: board.threadIDs)
        let deadline = monotonicSeconds() + o.timeoutSeconds
        let clientResult = Shared(StreamLoopResult())
        let sinkResult = Shared(StreamLoopResult())
        watch.start()
        let started = monotonicSeconds()
        let clients = BenchThread { [clientEnds] in clientResult.set(StreamLoop.run(clientEnds, pattern: pattern, deadline: deadline)) }
        let sinks = BenchThread { [sinkEnds] in sinkResult.set(StreamLoop.run(sinkEnds, pattern: pattern, deadline: deadline)) }
        clients.join()
        sinks.join()
        result.wallSeconds = monotonicSeconds() - started
        result.cpu = watch.stop()
        result.clients = clientResult.get()
        result.sinks = sinkResult.get()

        if let group {
            // Both sides saw EOF; let the pumps book their last completions (bounded).
            let until = monotonicSeconds() + 5
            while board.pairsEnded < o.pairs && monotonicSeconds() < until { usleep(1000) }
            group.stop()
            result.relay = board.totals
        }
        return result
    }

    /// A blocking loopback listener for the direct mode (accepts happen during setup).
    static func directListener() throws(Errno) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let bound = try SocketEndpoint.loopbackV4(port: 0).withSockaddr { sa, len in bind(fd, sa, len) }
        guard bound == 0, listen(fd, 4096) == 0 else {
            let e = Errno.current
            close(fd)
            throw e
        }
        return fd
    }
}
