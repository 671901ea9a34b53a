import Glibc
import Synchronization
import URing
@testable import Workers

enum EchoCount: Int, CaseIterable {
    case accepted, closed, bytesEchoed
    /// Multishot recv ended with -ENOBUFS (every provided buffer was out).
    case noBuffers
    /// Multishot recv or accept re-armed after the kernel ended it.
    case rearmed
    case shortSends
    /// Completions whose slot had been freed (and possibly reused) since the op was submitted.
    case stale
    /// Of those, ones whose slot was occupied by a newer connection when they arrived.
    case staleForReusedSlot
    case timersFiredLive
    case finished
}

/// Counters one echo worker publishes for the test thread.
final class EchoCounters: Sendable {
    private let values = Mutex([Int](repeating: 0, count: EchoCount.allCases.count))
    /// Slot index << 16 | generation of the latest accepted connection.
    let lastSlot = Atomic<Int>(-1)

    func add(_ counter: EchoCount, _ amount: Int = 1) { values.withLock { $0[counter.rawValue] += amount } }
    subscript(counter: EchoCount) -> Int { values.withLock { $0[counter.rawValue] } }
}

final class EchoStats: Sendable {
    let workers: [EchoCounters]
    init(workers: Int) { self.workers = (0..<workers).map { _ in EchoCounters() } }
    func sum(_ counter: EchoCount) -> Int { workers.reduce(0) { $0 + $1[counter] } }
}

struct EchoConfiguration: Sendable {
    var bufferCount = 64
    var bufferSize = 16 * 1024
    var maxConnections = 256
    /// SO_SNDBUF for accepted connections (0: the kernel's default); small values force short sends.
    var sendBufferSize: Int32 = 0
    /// > 0: each connection gets a one-shot timer of this length whose completion outlives the
    /// connection's slot (see the stale-completion test).
    var timerNanos: Int64 = 0
    /// The handler of this worker throws from `start` after arming its listener.
    var failStartOnWorker: Int? = nil
}

/// A real TCP echo worker: a SO_REUSEPORT listener with multishot accept; per connection a
/// multishot recv on the worker's provided-buffer ring; each received buffer is queued, sent
/// (short sends resumed from where they stopped), and recycled once its send has completed.
/// At most one send per connection is in flight, so echoed bytes keep their order.
///
/// The queue of buffers waiting to be sent is a linked list through per-buffer arrays (a buffer
/// is in at most one connection's queue), so the completion path allocates nothing.
final class TCPEchoHandler: WorkerHandler {
    typealias Message = Never

    enum Op {
        static let accept: UInt8 = 1
        static let recv: UInt8 = 2
        static let send: UInt8 = 3
        static let timer: UInt8 = 4
    }

    struct Connection {
        var fd: Int32
        var recvArmed = false
        var recvCancelRequested = false
        var sendInFlight = false
        var sendCancelRequested = false
        /// EOF or a receive error: no more input will come.
        var inputEnded = false
        var closing = false
        var queueHead: Int32 = -1
        var queueTail: Int32 = -1
    }
    typealias Handle = SlotTable<Connection>.Handle

    let index: Int
    let configuration: EchoConfiguration
    let counters: EchoCounters
    var listener: Int32
    var acceptArmed = false
    var acceptCancelRequested = false
    var buffers: ProvidedBufferRing?
    var connections: SlotTable<Connection>
    var chunkNext: [Int32]
    var chunkLength: [Int32]
    var chunkOffset: [Int32]
    /// Connections whose receive ended for lack of buffers, re-armed at the next recycle.
    var starved: [Handle] = []
    var timersInFlight = 0
    let timerSpec: UnsafeMutablePointer<KernelTimespec> = .allocate(capacity: 1)
    var stopping = false

    init(index: Int, listener: Int32, configuration: EchoConfiguration, counters: EchoCounters) {
        self.index = index
        self.listener = listener
        self.configuration = configuration
        self.counters = counters
        connections = SlotTable(capacity: configuration.maxConnections)
        chunkNext = Array(repeating: -1, count: configuration.bufferCount)
        chunkLength = Array(repeating: 0, count: configuration.bufferCount)
        chunkOffset = Array(repeating: 0, count: configuration.bufferCount)
        starved.reserveCapacity(configuration.maxConnections)
        timerSpec.pointee = KernelTimespec(tv_sec: configuration.timerNanos / 1_000_000_000, tv_nsec: configuration.timerNanos % 1_000_000_000)
    }

    deinit { timerSpec.deallocate() }

    func start(_ context: inout WorkerContext<Message>) throws(Errno) {
        buffers = try ProvidedBufferRing(ring: &context.ring, group: 1, count: configuration.bufferCount, bufferSize: configuration.bufferSize)
        try armAccept(&context)
        if configuration.failStartOnWorker == index { throw Errno(rawValue: ENOTRECOVERABLE) }
    }

    var isDrained: Bool { listener < 0 && !acceptArmed && connections.count == 0 && timersInFlight == 0 }

    func finish(_ context: inout WorkerContext<Message>) {
        buffers?.unregister(from: &context.ring)
        buffers = nil
        counters.add(.finished)
    }

    func receive(_ message: Never, _ context: inout WorkerContext<Message>) {}

    func beginStop(_ context: inout WorkerContext<Message>) {
        stopping = true
        if acceptArmed {
            acceptCancelRequested = (try? context.ring.cancel(UserData(op: Op.accept))) != nil
        } else {
            closeListener()
        }
        for handle in connections.handles { retire(handle, &context) }
    }

    func handle(_ c: Completion, _ context: inout WorkerContext<Message>) {
        switch c.userData.op {
        case Op.accept: handleAccept(c, &context)
        case Op.recv: handleRecv(c, &context)
        case Op.send: handleSend(c, &context)
        case Op.timer: handleTimer(c, &context)
        default: preconditionFailure("unknown op \(c.userData.op)")
        }
    }

    // MARK: Accept

    func armAccept(_ context: inout WorkerContext<Message>) throws(Errno) {
        try context.ring.multishotAccept(fd: listener, userData: UserData(op: Op.accept))
        acceptArmed = true
    }

    func closeListener() {
        guard listener >= 0 else { return }
        Socket.close(listener)
        listener = -1
    }

    func handleAccept(_ c: Completion, _ context: inout WorkerContext<Message>) {
        if !c.hasMore { acceptArmed = false }
        if c.result >= 0 {
            accepted(c.result, &context)
        }
        // Expected errors: ECANCELED (stop), EMFILE/ENFILE/ENOMEM (resource limits, retried).
        guard !c.hasMore else { return }
        if stopping {
            closeListener()
        } else if (try? armAccept(&context)) != nil {
            counters.add(.rearmed)
        }
    }

    func accepted(_ fd: Int32, _ context: inout WorkerContext<Message>) {
        guard !stopping, let handle = connections.insert(Connection(fd: fd)) else {
            Socket.close(fd)
            return
        }
        counters.add(.accepted)
        counters.lastSlot.store(Int(handle.index) << 16 | Int(handle.generation), ordering: .relaxed)
        if configuration.sendBufferSize > 0 { try? Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, configuration.sendBufferSize) }
        if configuration.timerNanos > 0, (try? context.ring.timeout(timerSpec, userData: handle.userData(op: Op.timer))) != nil {
            timersInFlight += 1
        }
        armRecv(handle, &context)
    }

    // MARK: Receive

    func armRecv(_ handle: Handle, _ context: inout WorkerContext<Message>) {
        guard let buffers, let fd = connections[handle]?.fd else { return }
        do {
            try context.ring.multishotRecv(fd: fd, group: buffers.group, userData: handle.userData(op: Op.recv))
            connections.withElement(handle) { $0.recvArmed = true }
        } catch {
            retire(handle, &context)
        }
    }

    func handleRecv(_ c: Completion, _ context: inout WorkerContext<Message>) {
        let handle = Handle(c.userData)
        let buffer = c.bufferID
        if let buffer { buffers!.taken(buffer) }
        guard var connection = connections[handle] else {
            // Never for receives here (a slot lives until its last op ended), but a buffer that
            // came with a stale completion must still go back.
            counters.add(.stale)
            if let buffer { recycle(buffer, &context) }
            return
        }
        if !c.hasMore { connection.recvArmed = false }
        if c.result > 0, let buffer {
            if connection.closing {
                connections[handle] = connection
                recycle(buffer, &context)
            } else {
                enqueue(buffer, length: c.result, on: &connection)
                connections[handle] = connection
                if !connection.sendInFlight { sendNext(handle, &context) }
            }
        } else {
            // 0: EOF. -ENOBUFS: every buffer is out (re-armed after a recycle). -ECANCELED:
            // retiring. Anything else (ECONNRESET, …) ends the connection.
            if c.result == 0 || (c.result < 0 && c.result != -ENOBUFS && c.result != -ECANCELED) {
                connection.inputEnded = true
            }
            connections[handle] = connection
        }
        guard !c.hasMore, let current = connections[handle] else { return }
        if current.closing || current.inputEnded {
            if current.inputEnded && !current.sendInFlight && current.queueHead < 0 { retire(handle, &context) }
            if current.closing { finishIfIdle(handle, &context) }
            return
        }
        if c.result == -ENOBUFS {
            counters.add(.noBuffers)
            if buffers!.outstanding < buffers!.count {
                counters.add(.rearmed)
                armRecv(handle, &context)
            } else {
                starved.append(handle)
            }
        } else {
            // The kernel ended the multishot for its own reasons (a full CQ): keep receiving.
            counters.add(.rearmed)
            armRecv(handle, &context)
        }
    }

    func enqueue(_ buffer: UInt16, length: Int32, on connection: inout Connection) {
        let b = Int(buffer)
        chunkNext[b] = -1
        chunkLength[b] = length
        chunkOffset[b] = 0
        if connection.queueTail >= 0 { chunkNext[Int(connection.queueTail)] = Int32(b) } else { connection.queueHead = Int32(b) }
        connection.queueTail = Int32(b)
    }

    func recycle(_ buffer: UInt16, _ context: inout WorkerContext<Message>) {
        buffers!.recycle(buffer)
        while let handle = starved.popLast() {
            guard let connection = connections[handle], !connection.closing, !connection.inputEnded, !connection.recvArmed else { continue }
            counters.add(.rearmed)
            armRecv(handle, &context)
        }
    }

    // MARK: Send

    func sendNext(_ handle: Handle, _ context: inout WorkerContext<Message>) {
        guard let connection = connections[handle], connection.queueHead >= 0, let buffers else { return }
        let b = Int(connection.queueHead)
        let start = buffers.buffer(UInt16(b)).baseAddress! + Int(chunkOffset[b])
        let length = Int(chunkLength[b] - chunkOffset[b])
        do {
            try context.ring.send(fd: connection.fd, from: UnsafeRawBufferPointer(start: start, count: length), userData: handle.userData(op: Op.send))
            connections.withElement(handle) { $0.sendInFlight = true }
        } catch {
            retire(handle, &context)
        }
    }

    func handleSend(_ c: Completion, _ context: inout WorkerContext<Message>) {
        let handle = Handle(c.userData)
        guard var connection = connections[handle] else {
            counters.add(.stale)
            return
        }
        connection.sendInFlight = false
        if c.result > 0 {
            counters.add(.bytesEchoed, Int(c.result))
            let b = Int(connection.queueHead)
            chunkOffset[b] += c.result
            var sent: UInt16?
            if chunkOffset[b] < chunkLength[b] {
                counters.add(.shortSends)
            } else {
                connection.queueHead = chunkNext[b]
                if connection.queueHead < 0 { connection.queueTail = -1 }
                sent = UInt16(b)
            }
            connections[handle] = connection
            // Only now, with its bytes in the socket, does the buffer go back to the kernel.
            if let sent { recycle(sent, &context) }
        } else {
            // EPIPE/ECONNRESET (peer gone) or ECANCELED (retiring): the rest is not sent.
            connections[handle] = connection
            retire(handle, &context)
        }
        guard let current = connections[handle] else { return }
        if current.closing {
            finishIfIdle(handle, &context)
        } else if current.queueHead >= 0 {
            sendNext(handle, &context)
        } else if current.inputEnded && !current.recvArmed {
            retire(handle, &context)
        }
    }

    // MARK: Timer

    func handleTimer(_ c: Completion, _ context: inout WorkerContext<Message>) {
        timersInFlight -= 1
        let handle = Handle(c.userData)
        if connections[handle] != nil {
            counters.add(.timersFiredLive)
            return
        }
        // The specific counter first: the test polls `stale` and then reads this one.
        if connections.handles.contains(where: { $0.index == handle.index }) {
            counters.add(.staleForReusedSlot)
        }
        counters.add(.stale)
    }

    // MARK: Closing

    /// Ends a connection: cancels what is in flight; the slot is freed (and the descriptor
    /// closed, queued buffers recycled) only once its last op has delivered its final completion.
    func retire(_ handle: Handle, _ context: inout WorkerContext<Message>) {
        guard var connection = connections[handle] else { return }
        connection.closing = true
        if connection.recvArmed && !connection.recvCancelRequested {
            connection.recvCancelRequested = (try? context.ring.cancel(handle.userData(op: Op.recv))) != nil
        }
        if connection.sendInFlight && !connection.sendCancelRequested {
            connection.sendCancelRequested = (try? context.ring.cancel(handle.userData(op: Op.send))) != nil
        }
        connections[handle] = connection
        finishIfIdle(handle, &context)
    }

    func finishIfIdle(_ handle: Handle, _ context: inout WorkerContext<Message>) {
        guard let connection = connections[handle], connection.closing,
              !connection.recvArmed, !connection.sendInFlight else { return }
        var b = connection.queueHead
        connections.remove(handle)
        while b >= 0 {
            let next = chunkNext[Int(b)]
            recycle(UInt16(b), &context)
            b = next
        }
        Socket.close(connection.fd)
        counters.add(.closed)
    }
}
