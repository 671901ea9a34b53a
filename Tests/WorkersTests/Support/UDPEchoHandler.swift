import Glibc
import Synchronization
import URing
@testable import Workers

final class UDPEchoCounters: Sendable {
    let echoed = Atomic<Int>(0)
    let truncatedDropped = Atomic<Int>(0)
    let rearmed = Atomic<Int>(0)
    let noBuffers = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
}

/// A real UDP echo worker, the allocation-free shape of liburing's `io_uring-udp.c`: multishot
/// recvmsg into provided buffers; each datagram is answered with sendmsg straight from the
/// buffer it arrived in, to its source address, through one of a fixed set of preallocated
/// msghdr / iovec / sockaddr_storage triples; the buffer is recycled when the sendmsg completes.
final class UDPEchoHandler: WorkerHandler {
    typealias Message = Never

    enum Op {
        static let recv: UInt8 = 1
        static let send: UInt8 = 2
    }

    let counters: UDPEchoCounters
    var socket: Int32
    let bufferCount: Int
    let bufferSize: Int
    var buffers: ProvidedBufferRing?
    let receiveHeader: UnsafeMutablePointer<msghdr>
    let replyHeaders: UnsafeMutablePointer<msghdr>
    let replyVectors: UnsafeMutablePointer<iovec>
    let replyAddresses: UnsafeMutablePointer<sockaddr_storage>
    /// In-flight replies; the element is the buffer the reply is sent from. The slot index picks
    /// the preallocated msghdr triple.
    var replies: SlotTable<UInt16>
    var recvArmed = false
    var recvCancelRequested = false
    var stopping = false

    init(socket: Int32, bufferCount: Int = 16, bufferSize: Int = 2048, counters: UDPEchoCounters) {
        self.socket = socket
        self.bufferCount = bufferCount
        self.bufferSize = bufferSize
        self.counters = counters
        receiveHeader = .allocate(capacity: 1)
        receiveHeader.initialize(to: msghdr())
        receiveHeader.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        replyHeaders = .allocate(capacity: bufferCount)
        replyHeaders.initialize(repeating: msghdr(), count: bufferCount)
        replyVectors = .allocate(capacity: bufferCount)
        replyVectors.initialize(repeating: iovec(), count: bufferCount)
        replyAddresses = .allocate(capacity: bufferCount)
        replyAddresses.initialize(repeating: sockaddr_storage(), count: bufferCount)
        for i in 0..<bufferCount {
            replyHeaders[i].msg_name = UnsafeMutableRawPointer(replyAddresses + i)
            replyHeaders[i].msg_iov = replyVectors + i
            replyHeaders[i].msg_iovlen = 1
        }
        // One reply per buffer at most: a reply holds the buffer it echoes.
        replies = SlotTable(capacity: bufferCount)
    }

    deinit {
        receiveHeader.deallocate()
        replyHeaders.deallocate()
        replyVectors.deallocate()
        replyAddresses.deallocate()
    }

    func start(_ context: inout WorkerContext<Message>) throws(Errno) {
        buffers = try ProvidedBufferRing(ring: &context.ring, group: 1, count: bufferCount, bufferSize: bufferSize)
        try armRecv(&context)
    }

    var isDrained: Bool { socket < 0 && replies.count == 0 }

    func beginStop(_ context: inout WorkerContext<Message>) {
        stopping = true
        if recvArmed {
            recvCancelRequested = (try? context.ring.cancel(UserData(op: Op.recv))) != nil
        }
        closeIfIdle()
    }

    func finish(_ context: inout WorkerContext<Message>) {
        buffers?.unregister(from: &context.ring)
        buffers = nil
        counters.finished.add(1, ordering: .relaxed)
    }

    func receive(_ message: Never, _ context: inout WorkerContext<Message>) {}

    func handle(_ c: Completion, _ context: inout WorkerContext<Message>) {
        switch c.userData.op {
        case Op.recv: handleRecv(c, &context)
        case Op.send: handleSend(c, &context)
        default: preconditionFailure("unknown op \(c.userData.op)")
        }
    }

    func armRecv(_ context: inout WorkerContext<Message>) throws(Errno) {
        try context.ring.multishotRecvMsg(fd: socket, msghdr: receiveHeader, group: buffers!.group, userData: UserData(op: Op.recv))
        recvArmed = true
    }

    func handleRecv(_ c: Completion, _ context: inout WorkerContext<Message>) {
        if !c.hasMore { recvArmed = false }
        if let id = c.bufferID, let buffers {
            buffers.taken(id)
            if !reply(from: id, received: c.result, &context) { buffers.recycle(id) }
        }
        if c.result == -ENOBUFS { counters.noBuffers.add(1, ordering: .relaxed) }
        guard !c.hasMore else { return }
        if stopping {
            closeIfIdle()
        } else if c.result != -ENOBUFS || buffers!.outstanding < bufferCount {
            // Ended for lack of buffers with none back yet: the next reply's completion re-arms.
            rearm(&context)
        }
    }

    func rearm(_ context: inout WorkerContext<Message>) {
        if (try? armRecv(&context)) != nil { counters.rearmed.add(1, ordering: .relaxed) }
    }

    /// Sends the datagram in buffer `id` back to its source. False when it is dropped (truncated,
    /// malformed, or no reply slot), leaving the buffer to the caller.
    func reply(from id: UInt16, received: Int32, _ context: inout WorkerContext<Message>) -> Bool {
        guard !stopping, let buffers,
              let datagram = RecvMsgOut(buffer: buffers.buffer(id), received: received, msghdr: receiveHeader) else { return false }
        guard !datagram.isTruncated else {
            counters.truncatedDropped.add(1, ordering: .relaxed)
            return false
        }
        let name = datagram.name
        guard let handle = replies.insert(id) else { return false }
        let i = Int(handle.index)
        UnsafeMutableRawPointer(replyAddresses + i).copyMemory(from: name.baseAddress!, byteCount: name.count)
        replyHeaders[i].msg_namelen = socklen_t(name.count)
        let payload = datagram.payload
        replyVectors[i] = iovec(iov_base: payload.baseAddress, iov_len: payload.count)
        do {
            try context.ring.sendMsg(fd: socket, msghdr: replyHeaders + i, userData: handle.userData(op: Op.send))
        } catch {
            replies.remove(handle)
            return false
        }
        return true
    }

    func handleSend(_ c: Completion, _ context: inout WorkerContext<Message>) {
        guard let id = replies.remove(SlotTable<UInt16>.Handle(c.userData)) else { return }
        if c.result >= 0 { counters.echoed.add(1, ordering: .relaxed) }
        buffers!.recycle(id)
        if stopping {
            closeIfIdle()
        } else if !recvArmed {
            rearm(&context)
        }
    }

    func closeIfIdle() {
        guard stopping, !recvArmed, replies.count == 0, socket >= 0 else { return }
        Socket.close(socket)
        socket = -1
    }
}
