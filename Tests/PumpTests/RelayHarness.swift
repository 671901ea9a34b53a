import Glibc
import Synchronization
import URing
@testable import Workers

// A miniature hbbr for the pump tests: each worker listens on its own loopback port, reads a
// 16-byte header from every connection (as the relay reads the first frame), pairs the two
// connections that name the same pair ID and pumps between them. Bytes that arrive behind the
// header in the same recv become the pump's pending bytes, after a prefix the test configured.
//
// Header: "RDPT" | pairID u32 LE | role u8 (0 = a, 1 = b) | mode u8 (0 splice, 1 buffered, 2 inline splice, 3 buffered through the ring only) | 6 × 0

enum PumpMode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// SplicePump with both splices on the ring (io-wq).
    case splice = 0
    /// BufferedPump as hbbr uses it: send(2) and the recv bursts on the worker thread.
    case buffered = 1
    /// SplicePump calling splice(2) on the worker thread after each POLLIN.
    case spliceInline = 2
    /// BufferedPump(inline: false): every recv and send through the ring.
    case bufferedRing = 3
    var description: String {
        switch self {
        case .splice: return "splice"
        case .buffered: return "buffered"
        case .spliceInline: return "splice-inline"
        case .bufferedRing: return "buffered-ring"
        }
    }
    /// Moves bytes through pipes.
    var splices: Bool { self == .splice || self == .spliceInline }
}

let headerSize = 16

func makeHeader(pairID: UInt32, role: UInt8, mode: PumpMode) -> [UInt8] {
    var h: [UInt8] = Array("RDPT".utf8)
    withUnsafeBytes(of: pairID.littleEndian) { h.append(contentsOf: $0) }
    h.append(role)
    h.append(mode.rawValue)
    h.append(contentsOf: [UInt8](repeating: 0, count: 6))
    return h
}

/// What the handler publishes for the test thread.
struct PairReport: Sendable {
    var mode: PumpMode
    var worker: Int
    var counters: [PumpCounters] = [PumpCounters(), PumpCounters()]
    var halfClosed: [Bool] = [false, false]
    var paused: [Bool] = [false, false]
    var end: PumpEnd?
    var drained = false
    var pipesHeld = 0
    var buffersHeld = 0
    var operationsInFlight = 0
    /// The relay's two sockets, and the pipes the pump holds now.
    var relaySockets: [DescriptorIdentity] = []
    var heldPipes: [DescriptorIdentity] = []
}

struct WorkerReport: Sendable {
    var port: UInt16 = 0
    var poolInUse = 0
    var poolOpen = 0
    var poolAvailable = 0
    var poolRefusals = 0
    var poolDiscarded = 0
    var buffersInUse = 0
    var buffersCached = 0
    var bufferAllocations = 0
    var livePumps = 0
    var liveConnections = 0
    var pumpsDrained = 0
    var finished = false
}

final class RelayBoard: Sendable {
    struct State {
        var workers: [Int: WorkerReport] = [:]
        var pairs: [UInt32: PairReport] = [:]
        var prefixes: [UInt32: ([UInt8], [UInt8])] = [:]
    }
    let state = Mutex(State())

    func worker(_ i: Int) -> WorkerReport { state.withLock { $0.workers[i] ?? WorkerReport() } }
    func pair(_ id: UInt32) -> PairReport? { state.withLock { $0.pairs[id] } }
    func setPrefixes(_ id: UInt32, a: [UInt8], b: [UInt8]) { state.withLock { $0.prefixes[id] = (a, b) } }
}

enum RelayCommand: Sendable {
    case pause(UInt32, PumpDirection)
    case resume(UInt32, PumpDirection)
    case close(UInt32)
    case setMaxChunk(UInt32, PumpDirection, Int)
}

struct RelayConfiguration: Sendable {
    var pool = PipePool.Configuration()
    /// `bufferSize` is also BufferedPump's buffer size.
    var copyBuffers = CopyBufferPool.Configuration()
    var bufferSize: Int {
        get { copyBuffers.bufferSize }
        set { copyBuffers.bufferSize = newValue }
    }
}

final class PairSlot {
    let pairID: UInt32
    var pump: Pump!
    init(pairID: UInt32) { self.pairID = pairID }
}

struct PendingConnection {
    var fd: Int32
    var buffer: UnsafeMutableRawBufferPointer
    var filled = 0
    var receiving = false
    var pairID: UInt32 = 0
    var role: UInt8 = 0
    var mode: PumpMode = .splice
}

final class RelayHandler: WorkerHandler {
    typealias Message = RelayCommand
    static let opAccept: UInt8 = 1
    static let opHeader: UInt8 = 2
    static let opPump: UInt8 = 3

    let board: RelayBoard
    let index: Int
    let configuration: RelayConfiguration
    var pool: PipePool!
    var copyBuffers: CopyBufferPool!
    var listener: Int32 = -1
    var acceptArmed = false
    var stopping = false
    var connections = SlotTable<PendingConnection>(capacity: 8192)
    var pairs = SlotTable<PairSlot>(capacity: 8192)
    var pairByID: [UInt32: SlotTable<PairSlot>.Handle] = [:]
    var waiting: [UInt32: SlotTable<PendingConnection>.Handle] = [:]
    var drainedCount = 0

    init(board: RelayBoard, index: Int, configuration: RelayConfiguration) {
        self.board = board
        self.index = index
        self.configuration = configuration
    }

    func start(_ context: inout WorkerContext<RelayCommand>) throws(Errno) {
        pool = try PipePool(configuration: configuration.pool)
        copyBuffers = CopyBufferPool(configuration: configuration.copyBuffers)
        var options = SocketOptions()
        options.reusePort = false
        options.backlog = 1024
        listener = try Socket.tcpListener(.loopbackV4(port: 0), options: options)
        let port = try Socket.localEndpoint(listener).port
        try context.ring.multishotAccept(fd: listener, userData: UserData(op: Self.opAccept))
        acceptArmed = true
        board.state.withLock { $0.workers[index] = WorkerReport(port: port) }
        publishWorker()
    }

    func handle(_ c: Completion, _ context: inout WorkerContext<RelayCommand>) {
        switch c.userData.op {
        case Self.opAccept: handleAccept(c, &context)
        case Self.opHeader: handleHeader(c, &context)
        case Self.opPump: handlePump(c, &context)
        default: preconditionFailure("unexpected op \(c.userData)")
        }
    }

    func handleAccept(_ c: Completion, _ context: inout WorkerContext<RelayCommand>) {
        if c.result >= 0 {
            let fd = c.result
            if stopping {
                Socket.close(fd)
            } else {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
                guard let h = connections.insert(PendingConnection(fd: fd, buffer: buffer)) else {
                    buffer.deallocate()
                    Socket.close(fd)
                    return
                }
                receiveHeader(h, &context)
            }
        }
        if !c.hasMore {
            acceptArmed = false
            if !stopping {
                try? context.ring.multishotAccept(fd: listener, userData: UserData(op: Self.opAccept))
                acceptArmed = true
            }
        }
        publishWorker()
    }

    func receiveHeader(_ h: SlotTable<PendingConnection>.Handle, _ context: inout WorkerContext<RelayCommand>) {
        let conn = connections[h]!
        let rest = UnsafeMutableRawBufferPointer(rebasing: conn.buffer[conn.filled...])
        do {
            try context.ring.recv(fd: conn.fd, into: rest, userData: h.userData(op: Self.opHeader))
            connections.withElement(h) { $0.receiving = true }
        } catch {
            dropConnection(h)
        }
    }

    func dropConnection(_ h: SlotTable<PendingConnection>.Handle) {
        guard let conn = connections.remove(h) else { return }
        conn.buffer.deallocate()
        Socket.close(conn.fd)
        if waiting[conn.pairID] == h { waiting[conn.pairID] = nil }
    }

    func handleHeader(_ c: Completion, _ context: inout WorkerContext<RelayCommand>) {
        let h = SlotTable<PendingConnection>.Handle(c.userData)
        guard var conn = connections[h] else { return }
        conn.receiving = false
        if c.result <= 0 || stopping {
            connections[h] = conn
            dropConnection(h)
            publishWorker()
            return
        }
        conn.filled += Int(c.result)
        connections[h] = conn
        if conn.filled < headerSize {
            receiveHeader(h, &context)
            return
        }
        let bytes = UnsafeRawBufferPointer(conn.buffer)
        precondition(Array(bytes[0..<4]) == Array("RDPT".utf8), "bad header")
        let pairID = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        conn.pairID = pairID
        conn.role = bytes[8]
        conn.mode = PumpMode(rawValue: bytes[9])!
        connections[h] = conn
        if let other = waiting[pairID], let partner = connections[other], partner.role != conn.role {
            waiting[pairID] = nil
            startPump(conn.role == 0 ? h : other, conn.role == 0 ? other : h, &context)
        } else {
            waiting[pairID] = h
        }
        publishWorker()
    }

    func startPump(_ ha: SlotTable<PendingConnection>.Handle, _ hb: SlotTable<PendingConnection>.Handle, _ context: inout WorkerContext<RelayCommand>) {
        let ca = connections.remove(ha)!
        let cb = connections.remove(hb)!
        let pairID = ca.pairID
        let (prefixA, prefixB) = board.state.withLock { $0.prefixes[pairID] } ?? ([], [])
        let pendingA = prefixA + Array(UnsafeRawBufferPointer(rebasing: ca.buffer[headerSize..<ca.filled]))
        let pendingB = prefixB + Array(UnsafeRawBufferPointer(rebasing: cb.buffer[headerSize..<cb.filled]))
        ca.buffer.deallocate()
        cb.buffer.deallocate()
        let slot = PairSlot(pairID: pairID)
        let h = pairs.insert(slot)!
        let tag = h.userData(op: Self.opPump)
        switch ca.mode {
        case .splice, .spliceInline:
            slot.pump = SplicePump(a: ca.fd, b: cb.fd, tag: tag, pool: pool, copyBuffers: copyBuffers, pendingAToB: pendingA,
                                   pendingBToA: pendingB, inline: ca.mode == .spliceInline)
        case .buffered, .bufferedRing:
            slot.pump = BufferedPump(a: ca.fd, b: cb.fd, tag: tag, bufferSize: configuration.bufferSize,
                                     pendingAToB: pendingA, pendingBToA: pendingB, inline: ca.mode == .buffered)
        }
        pairByID[pairID] = h
        var report = PairReport(mode: ca.mode, worker: index)
        report.relaySockets = [ca.fd, cb.fd].compactMap(DescriptorIdentity.init)
        board.state.withLock { $0.pairs[pairID] = report }
        let event = slot.pump.start(ring: &context.ring)
        react(event, h, &context)
    }

    func handlePump(_ c: Completion, _ context: inout WorkerContext<RelayCommand>) {
        let h = SlotTable<PairSlot>.Handle(c.userData)
        guard let slot = pairs[h] else { preconditionFailure("completion for a pump that is gone: \(c.userData)") }
        let event = slot.pump.handle(c, ring: &context.ring)
        react(event, h, &context)
    }

    func react(_ event: PumpEvent, _ h: SlotTable<PairSlot>.Handle, _ context: inout WorkerContext<RelayCommand>) {
        guard let slot = pairs[h] else { return }
        var event = event
        if case .finished = event {
            publishPair(slot)
            event = slot.pump.close(ring: &context.ring)
        }
        publishPair(slot)
        if event == .drained {
            pairs.remove(h)
            if pairByID[slot.pairID] == h { pairByID[slot.pairID] = nil }
            drainedCount += 1
            board.state.withLock { $0.pairs[slot.pairID]?.drained = true }
            publishWorker()
        }
    }

    func receive(_ message: RelayCommand, _ context: inout WorkerContext<RelayCommand>) {
        let id: UInt32
        switch message {
        case .pause(let i, _), .resume(let i, _), .close(let i), .setMaxChunk(let i, _, _): id = i
        }
        guard let h = pairByID[id], let slot = pairs[h] else { return }
        let event: PumpEvent
        switch message {
        case .pause(_, let d): event = slot.pump.pause(d, ring: &context.ring)
        case .resume(_, let d): event = slot.pump.resume(d, ring: &context.ring)
        case .close: event = slot.pump.close(ring: &context.ring)
        case .setMaxChunk(_, let d, let n):
            slot.pump.setMaxChunk(n, for: d)
            event = .none
        }
        react(event, h, &context)
    }

    func beginStop(_ context: inout WorkerContext<RelayCommand>) {
        stopping = true
        if acceptArmed { try? context.ring.cancel(UserData(op: Self.opAccept)) }
        for h in pairs.handles {
            let event = pairs[h]!.pump.close(ring: &context.ring)
            react(event, h, &context)
        }
        for h in connections.handles {
            if connections[h]!.receiving {
                try? context.ring.cancel(h.userData(op: Self.opHeader))
            } else {
                dropConnection(h)
            }
        }
    }

    var isDrained: Bool { !acceptArmed && pairs.count == 0 && connections.count == 0 }

    func finish(_ context: inout WorkerContext<RelayCommand>) {
        Socket.close(listener)
        pool.closeIdle()
        publishWorker()
        board.state.withLock { $0.workers[index]?.finished = true }
    }

    func publishPair(_ slot: PairSlot) {
        let p = slot.pump!
        let held = p.lanes.compactMap { $0.pipe }.flatMap { [$0.readFD, $0.writeFD] }.compactMap(DescriptorIdentity.init)
        board.state.withLock { s in
            guard var r = s.pairs[slot.pairID] else { return }
            r.counters = [p.counters(.aToB), p.counters(.bToA)]
            r.halfClosed = [p.isHalfClosed(.aToB), p.isHalfClosed(.bToA)]
            r.paused = [p.isPaused(.aToB), p.isPaused(.bToA)]
            r.end = p.endReason
            r.pipesHeld = p.pipesHeld
            r.buffersHeld = p.buffersHeld
            r.operationsInFlight = p.operationsInFlight
            if !p.isDrained { r.heldPipes = held }
            s.pairs[slot.pairID] = r
        }
        publishWorker()
    }

    func publishWorker() {
        guard let pool else { return }
        let (inUse, open, available, refusals, discarded) = (pool.inUse, pool.open, pool.available, pool.refusals, pool.discarded)
        let (livePumps, liveConnections, drained) = (pairs.count, connections.count, drainedCount)
        let (buffersInUse, buffersCached, bufferAllocations) = (copyBuffers.inUse, copyBuffers.cached, copyBuffers.allocations)
        board.state.withLock { s in
            var w = s.workers[index] ?? WorkerReport()
            w.poolInUse = inUse
            w.poolOpen = open
            w.poolAvailable = available
            w.poolRefusals = refusals
            w.poolDiscarded = discarded
            w.buffersInUse = buffersInUse
            w.buffersCached = buffersCached
            w.bufferAllocations = bufferAllocations
            w.livePumps = livePumps
            w.liveConnections = liveConnections
            w.pumpsDrained = drained
            s.workers[index] = w
        }
    }
}

/// A started worker group running `RelayHandler`s, stopped by `stop()`.
final class Relay: Sendable {
    let board = RelayBoard()
    let group: WorkerGroup<RelayHandler>

    init(workers: Int = 1, configuration: RelayConfiguration = .init()) throws {
        var c = WorkerConfiguration()
        c.count = workers
        c.pinned = false
        c.tickNanos = 0
        let board = self.board
        group = try WorkerGroup(configuration: c) { i in RelayHandler(board: board, index: i, configuration: configuration) }
        try group.start()
    }

    func port(_ worker: Int = 0) -> UInt16 { board.worker(worker).port }
    func post(_ command: RelayCommand, worker: Int = 0) { group.post(command, to: worker) }
    func stop() { group.stop() }
}
