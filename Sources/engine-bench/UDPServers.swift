import CMmsg
import Glibc
import Synchronization
import URing
import Workers

// The two UDP request/response servers compared by `engine-bench udp`. Both answer every valid
// request (17 bytes starting with the RegisterPeer tag) with the same 4-byte reply, so the
// difference is the I/O loop alone: io_uring on a worker against blocking recvmmsg/sendmmsg.

enum UDPWire {
    /// A RegisterPeer as RendezvousMessage field 6 with a 13-character ID: 17 bytes.
    static let request: [UInt8] = [0x32, 0x0F, 0x0A, 0x0D] + Array("1234567890123".utf8)
    /// RegisterPeerResponse { request_pk: true } as RendezvousMessage field 7 (hbbs's reply).
    static let reply: [UInt8] = [0x3A, 0x02, 0x10, 0x01]

    @inline(__always)
    static func isRequest(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count == request.count && bytes[0] == 0x32
    }
}

/// What a server's threads report to the bench.
final class ServerBoard: Sendable {
    struct Counters: Sendable {
        var served = 0
        var invalid = 0
        var sendFailures = 0
        var sendPoolExhausted = 0
        var receiveRearms = 0
    }
    private let state = Mutex<(tids: [Int: Int32], counters: [Int: Counters])>(([:], [:]))

    func registerThread(_ index: Int) {
        let tid = currentThreadID()
        state.withLock { $0.tids[index] = tid }
    }
    func report(_ index: Int, _ counters: Counters) { state.withLock { $0.counters[index] = counters } }
    var threadIDs: [Int32] { state.withLock { $0.tids.sorted { $0.key < $1.key }.map(\.value) } }
    var totals: Counters {
        state.withLock { s in
            s.counters.values.reduce(into: Counters()) { t, c in
                t.served += c.served
                t.invalid += c.invalid
                t.sendFailures += c.sendFailures
                t.sendPoolExhausted += c.sendPoolExhausted
                t.receiveRearms += c.receiveRearms
            }
        }
    }
}

/// Binds `count` UDP sockets to one loopback port with SO_REUSEPORT (the kernel spreads clients
/// over them by 4-tuple hash, as hbbs's workers share port 21116). Non-blocking, 4 MiB receive
/// buffers. Returns the descriptors and the port.
func bindReusePortUDP(count: Int) throws(Errno) -> ([Int32], UInt16) {
    var options = SocketOptions()
    options.receiveBufferSize = 4 << 20
    var fds: [Int32] = []
    var port: UInt16 = 0
    for _ in 0..<count {
        let fd = try Socket.udp(.loopbackV4(port: port), options: options)
        if port == 0 { port = try Socket.localEndpoint(fd).port }
        fds.append(fd)
    }
    return (fds, port)
}

enum NoMessage: Sendable {}

/// (a) The io_uring server: the UDP path of `RendezvousWorker` without the protocol. A multishot
/// recvmsg on a provided-buffer ring; each valid datagram is answered by a sendmsg from a
/// preallocated slot (msghdr, iovec, address, buffer), and the provided buffer is recycled at once.
/// Same limits as hbbs (`HbbsLimits`: 1024 × 2048-byte buffers, 2048 send slots of 1024 bytes).
final class UringUDPServer: WorkerHandler {
    typealias Message = NoMessage

    enum Op {
        static let receive: UInt8 = 1
        static let send: UInt8 = 2
    }
    static let bufferCount = 1024
    static let bufferSize = 2048
    static let sendSlotCount = 2048
    static let sendSlotSize = 1024

    struct SendSlot {
        var header = msghdr()
        var iov = iovec()
        var name = sockaddr_storage()
        var buffer: UnsafeMutableRawPointer
    }

    let fd: Int32
    let index: Int
    let board: ServerBoard
    var buffers: ProvidedBufferRing?
    let recvHeader: UnsafeMutablePointer<msghdr>
    let sendSlots: UnsafeMutablePointer<SendSlot>
    var freeSendSlots: [Int32]
    var receiveArmed = false
    var stopping = false
    var counters = ServerBoard.Counters()

    init(fd: Int32, index: Int, board: ServerBoard) {
        self.fd = fd
        self.index = index
        self.board = board
        recvHeader = .allocate(capacity: 1)
        recvHeader.initialize(to: msghdr())
        recvHeader.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        sendSlots = .allocate(capacity: Self.sendSlotCount)
        for i in 0..<Self.sendSlotCount {
            (sendSlots + i).initialize(to: SendSlot(buffer: .allocate(byteCount: Self.sendSlotSize, alignment: 8)))
        }
        freeSendSlots = (0..<Int32(Self.sendSlotCount)).reversed()
    }

    deinit {
        for i in 0..<Self.sendSlotCount { sendSlots[i].buffer.deallocate() }
        sendSlots.deinitialize(count: Self.sendSlotCount)
        sendSlots.deallocate()
        recvHeader.deallocate()
    }

    func start(_ context: inout WorkerContext<NoMessage>) throws(Errno) {
        board.registerThread(index)
        buffers = try ProvidedBufferRing(ring: &context.ring, group: 1, count: Self.bufferCount, bufferSize: Self.bufferSize)
        try armReceive(&context)
    }

    func armReceive(_ context: inout WorkerContext<NoMessage>) throws(Errno) {
        try context.ring.multishotRecvMsg(fd: fd, msghdr: recvHeader, group: 1, userData: UserData(op: Op.receive))
        receiveArmed = true
    }

    func handle(_ c: Completion, _ context: inout WorkerContext<NoMessage>) {
        switch c.userData.op {
        case Op.receive: handleDatagram(c, &context)
        case Op.send:
            if c.result < 0 { counters.sendFailures += 1 }
            freeSendSlots.append(Int32(c.userData.slot))
        default: break
        }
    }

    func handleDatagram(_ c: Completion, _ context: inout WorkerContext<NoMessage>) {
        if !c.hasMore {
            // ENOBUFS (every buffer out) or the kernel ending the multishot: re-arm.
            receiveArmed = false
            if !stopping {
                counters.receiveRearms += 1
                try? armReceive(&context)
            }
        }
        guard c.result > 0, let id = c.bufferID, let buffers else { return }
        buffers.taken(id)
        defer { buffers.recycle(id) }
        guard let out = RecvMsgOut(buffer: buffers.buffer(id), received: c.result, msghdr: recvHeader),
              let source = out.source, !out.isTruncated,
              UDPWire.isRequest(UnsafeRawBufferPointer(out.payload)) else {
            counters.invalid += 1
            return
        }
        counters.served += 1
        guard let slot = freeSendSlots.popLast() else { counters.sendPoolExhausted += 1; return }
        let s = sendSlots + Int(slot)
        UDPWire.reply.withUnsafeBytes { s.pointee.buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        s.pointee.name = source.storage
        s.pointee.iov = iovec(iov_base: s.pointee.buffer, iov_len: UDPWire.reply.count)
        s.pointee.header = msghdr()
        withUnsafeMutablePointer(to: &s.pointee.name) { s.pointee.header.msg_name = UnsafeMutableRawPointer($0) }
        s.pointee.header.msg_namelen = source.length
        withUnsafeMutablePointer(to: &s.pointee.iov) { s.pointee.header.msg_iov = $0 }
        s.pointee.header.msg_iovlen = 1
        do {
            try withUnsafePointer(to: &s.pointee.header) { (h) throws(Errno) in
                try context.ring.sendMsg(fd: fd, msghdr: h, userData: UserData(op: Op.send, slot: UInt32(slot)))
            }
        } catch {
            counters.sendFailures += 1
            freeSendSlots.append(slot)
        }
    }

    func receive(_ message: NoMessage, _ context: inout WorkerContext<NoMessage>) {}

    func beginStop(_ context: inout WorkerContext<NoMessage>) {
        stopping = true
        if receiveArmed { try? context.ring.cancel(UserData(op: Op.receive)) }
    }

    var isDrained: Bool { !receiveArmed && freeSendSlots.count == Self.sendSlotCount }

    func finish(_ context: inout WorkerContext<NoMessage>) {
        buffers?.unregister(from: &context.ring)
        buffers = nil
        Socket.close(fd)
        board.report(index, counters)
    }
}

/// What the recvmmsg baseline answers.
enum BaselineAnswers {
    /// `engine-bench udp`'s request (UDPWire.request) → UDPWire.reply.
    case benchRequest
    /// Any RegisterPeer → `RegisterPeerResponse{}` (`3A 00`, hbbs's answer to a registered peer);
    /// any RegisterPk → `RegisterPkResponse{OK}` (`82 01 00`): constant answers with no registry
    /// behind them, the floor an hbbs doing real work is compared with (`serve-udp`).
    case rendezvousConstant

    static let registerPeerResponse: [UInt8] = [0x3A, 0x00]
    static let registerPkResponse: [UInt8] = [0x82, 0x01, 0x00]

    /// The replies this answerer may send, in the order `reply(to:)` indexes them.
    var replies: [[UInt8]] {
        switch self {
        case .benchRequest: return [UDPWire.reply]
        case .rendezvousConstant: return [Self.registerPeerResponse, Self.registerPkResponse]
        }
    }

    /// Index into `replies`, or nil: not a request this answerer serves.
    @inline(__always)
    func reply(to bytes: UnsafeRawBufferPointer) -> Int? {
        switch self {
        case .benchRequest: return UDPWire.isRequest(bytes) ? 0 : nil
        case .rendezvousConstant:
            // RendezvousMessage field 6 (RegisterPeer) is tag 0x32, field 15 (RegisterPk) 0x7A.
            guard bytes.count >= 2 else { return nil }
            return bytes[0] == 0x32 ? 0 : bytes[0] == 0x7A ? 1 : nil
        }
    }
}

/// (b) The baseline: one plain thread per socket in blocking `recvmmsg` (MSG_WAITFORONE, up to
/// `batch` datagrams) answering the batch with one `sendmmsg`. A 50 ms receive timeout lets it
/// notice `stop`.
final class MmsgUDPServer: @unchecked Sendable {
    static let batch = 64
    let board = ServerBoard()
    private let stopFlag = Atomic<Bool>(false)
    private var threads: [BenchThread] = []
    private let answers: BaselineAnswers

    /// Starts one thread per descriptor (made blocking here); returns when all have registered.
    init(fds: [Int32], pinTo cpus: [Int]?, answers: BaselineAnswers = .benchRequest) {
        self.answers = answers
        for (i, fd) in fds.enumerated() {
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
            var tv = timeval(tv_sec: 0, tv_usec: 50_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let cpu = cpus.map { $0[i % $0.count] }
            threads.append(BenchThread { [self] in
                if let cpu { try? Affinity.pinCurrentThread(to: cpu) }
                board.registerThread(i)
                serve(fd: fd, index: i)
            })
        }
        while board.threadIDs.count < fds.count { usleep(1000) }
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        for t in threads { t.join() }
        threads.removeAll()
    }

    private func serve(fd: Int32, index: Int) {
        let n = Self.batch
        let nameSize = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let names = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: n)
        let buffers = UnsafeMutableRawPointer.allocate(byteCount: n * 2048, alignment: 64)
        let recvIovs = UnsafeMutablePointer<iovec>.allocate(capacity: n)
        let recvMsgs = UnsafeMutablePointer<CMmsg_mmsghdr>.allocate(capacity: n)
        let sendMsgs = UnsafeMutablePointer<CMmsg_mmsghdr>.allocate(capacity: n)
        let answers = self.answers
        let replyTable = answers.replies
        let replyBytes = UnsafeMutableRawPointer.allocate(byteCount: 16 * replyTable.count, alignment: 8)
        let replyIovs = UnsafeMutablePointer<iovec>.allocate(capacity: replyTable.count)
        defer {
            names.deallocate(); buffers.deallocate(); recvIovs.deallocate()
            recvMsgs.deallocate(); sendMsgs.deallocate(); replyBytes.deallocate(); replyIovs.deallocate()
        }
        for (r, bytes) in replyTable.enumerated() {
            bytes.withUnsafeBytes { (replyBytes + 16 * r).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            (replyIovs + r).initialize(to: iovec(iov_base: replyBytes + 16 * r, iov_len: bytes.count))
        }
        for i in 0..<n {
            names[i] = sockaddr_storage()
            recvIovs[i] = iovec(iov_base: buffers + i * 2048, iov_len: 2048)
            recvMsgs[i] = CMmsg_mmsghdr()
            recvMsgs[i].msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
            recvMsgs[i].msg_hdr.msg_iov = recvIovs + i
            recvMsgs[i].msg_hdr.msg_iovlen = 1
            sendMsgs[i] = CMmsg_mmsghdr()
            sendMsgs[i].msg_hdr.msg_iov = replyIovs
            sendMsgs[i].msg_hdr.msg_iovlen = 1
        }
        var counters = ServerBoard.Counters()
        while true {
            for i in 0..<n { recvMsgs[i].msg_hdr.msg_namelen = nameSize }
            let received = CMmsg_recvmmsg(fd, recvMsgs, UInt32(n), CMmsg_MSG_WAITFORONE)
            if received < 0 {
                let e = -received
                // EAGAIN: the receive timeout, the moment to look at the stop flag.
                if e == EAGAIN || e == EINTR {
                    if stopFlag.load(ordering: .relaxed) { break }
                    continue
                }
                preconditionFailure("recvmmsg: \(Errno(rawValue: e))")
            }
            var replies = 0
            for i in 0..<Int(received) {
                let bytes = UnsafeRawBufferPointer(start: recvIovs[i].iov_base, count: Int(recvMsgs[i].msg_len))
                guard recvMsgs[i].msg_hdr.msg_flags & Int32(MSG_TRUNC) == 0, let r = answers.reply(to: bytes) else {
                    counters.invalid += 1
                    continue
                }
                counters.served += 1
                sendMsgs[replies].msg_hdr.msg_iov = replyIovs + r
                sendMsgs[replies].msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
                sendMsgs[replies].msg_hdr.msg_namelen = recvMsgs[i].msg_hdr.msg_namelen
                replies += 1
            }
            var sent = 0
            while sent < replies {
                let r = CMmsg_sendmmsg(fd, sendMsgs + sent, UInt32(replies - sent), 0)
                if r < 0 {
                    if r == -EINTR { continue }
                    // A failed datagram is skipped, as the io_uring server's failed sendmsg is.
                    counters.sendFailures += 1
                    sent += 1
                    continue
                }
                sent += Int(r)
            }
        }
        Socket.close(fd)
        board.report(index, counters)
    }
}
