import Glibc
import PeerStore
import Rendezvous
import RustDeskProtocol
import ServerConfig
import ServerKit
import URing
import Workers

/// Messages between hbbs workers (and from the database thread to a worker).
public enum HbbsMail: Sendable {
    /// Send `payload` (a serialised RendezvousMessage) on connection slot/generation, framed and
    /// (for a secure connection) encrypted by the owning worker.
    case deliver(slot: UInt32, generation: UInt16, payload: [UInt8])
    /// A RegisterPk that needed the database: the row, or nil (unknown ID); `failed` = DB error.
    case registerPkLoaded(RegisterPk, SocketAddress, PeerRecord?, failed: Bool)
    /// A PunchHoleRequest that needed the database, for the connection that sent it.
    case punchLoaded(slot: UInt32, generation: UInt16, PunchHoleRequest, PeerRecord?)
    /// A RegisterPk over TCP/WebSocket (§5.9) that needed the database.
    case tcpRegisterLoaded(slot: UInt32, generation: UInt16, RegisterPk, PeerRecord?, failed: Bool)
    /// B's answer whose `get_pk` needed the database; `source` is B's connection address.
    case answerLoaded(PeerAnswer, source: SocketAddress, PeerRecord?)
}

/// B's answers that carry a signed key (§5.3.3–5.3.5).
public enum PeerAnswer: Sendable {
    case punchHoleSent(PunchHoleSent)
    case localAddr(LocalAddr)
    case relayResponse(RelayResponse)

    var peerID: String {
        switch self {
        case .punchHoleSent(let m): return m.id
        case .localAddr(let m): return m.id
        case .relayResponse(let m): if case .id(let id)? = m.union { return id } else { return "" }
        }
    }
}

/// Limits of one hbbs worker (named so docs and tests refer to one place).
public enum HbbsLimits {
    /// TCP/WebSocket connections per worker; past it new connections are closed and counted.
    public static let maxConnectionsPerWorker = 16_384
    /// Each message on P, P-1, P+2 must complete within this (§6).
    public static let messageTimeoutNanos: UInt64 = 30_000_000_000
    /// The WebSocket upgrade must complete within this (§2.3 SHOULD, upstream has none).
    public static let upgradeTimeoutNanos: UInt64 = 10_000_000_000
    /// The admin console's single read (§9).
    public static let consoleTimeoutNanos: UInt64 = 1_000_000_000
    public static let consoleMaxRead = 1024
    /// Largest message on hbbs ports (TCP frame or WebSocket message).
    public static let maxMessage = FrameLimits.rendezvousMaxFrameLength
    /// UDP: provided buffers per worker and their size; datagrams longer than a buffer are dropped
    /// (every rendezvous message is far smaller).
    public static let udpBufferCount = 1024
    public static let udpBufferSize = 2048
    /// TCP receive buffers per worker (shared by all connections through a provided-buffer ring).
    public static let tcpBufferCount = 1024
    public static let tcpBufferSize = 4096
    /// UDP sends in flight per worker; past it replies are dropped and counted.
    public static let udpSendSlots = 2048
    public static let udpSendSlotSize = 1024
    /// §5.9: the keep-alive announced to TCP-registered peers (seconds) and how often we send an
    /// empty frame (well inside it, so the client never waits 1.5 × keep-alive).
    public static let tcpRegistrationKeepAliveSeconds: Int32 = 30
    public static let tcpRegistrationPingNanos: UInt64 = 10_000_000_000
    /// Pending outbound bytes per connection before it is closed as a slow reader.
    public static let maxOutboxBytes = 256 * 1024
    /// §4.5: how long a new plain-TCP connection on P may speak first before it is greeted. A
    /// client that performs the handshake sends nothing until the greeting; every other client
    /// sends its request right after connecting and skips (or never reads) a greeting, so one
    /// that spoke first is not greeted and no key pair is made or signed for it.
    public static let greetingDelayNanos: UInt64 = 5_000_000
}

enum PortKind: UInt8 {
    case rendezvous = 0, nat = 1, webSocket = 2
    /// `--admin-console unix:PATH`: the console on a Unix socket (worker 0 only).
    case consoleSocket = 3
}

/// One accepted connection on P, P-1 or P+2.
struct Connection {
    enum Role { case rendezvous, nat, console }
    var fd: Int32
    var role: Role
    var port: PortKind
    /// TCP peer (raw).
    var peer: SocketAddress
    /// The connection's address for everything else: the peer, or `X-Real-IP:0` on WebSocket.
    var address: SocketAddress
    var stream: MessageStream
    var deadline: UInt64
    var sinkPlaced = false
    var recvArmed = false
    var outbox = Outbox()
    var ending = false
    var closed = false
    /// §4.5: when to greet (0: not pending). Set at accept; cleared when the client speaks first
    /// or the greeting goes out.
    var greetingDue: UInt64 = 0
    /// §4.5: set from the greeting until the first message (which may be the client's KeyExchange).
    var handshake: SecureHandshake?
    /// §4.5: the encrypted channel once the client answered the greeting.
    var channel: SecureChannel?
    /// §5.9: the peer registered over this connection, and when to send the next empty frame.
    var registeredID: String?
    var nextPing: UInt64 = 0
}

extension Connection {
    /// The kind this connection counts under in `connections_open`.
    var openKind: HbbsCounters.Open {
        if role == .console { return .console }
        switch port {
        case .nat: return .nat
        case .webSocket: return .webSocket
        case .rendezvous, .consoleSocket: return .rendezvous
        }
    }
}

/// One hbbs worker: a UDP socket and three listeners (all SO_REUSEPORT), its connections, and the
/// completion handling that carries out `RendezvousCore`'s decisions.
public final class RendezvousWorker: WorkerHandler {
    public typealias Message = HbbsMail

    enum Op {
        static let udpRecv: UInt8 = 1
        static let udpSend: UInt8 = 2
        static let accept: UInt8 = 3
        static let recv: UInt8 = 4
        static let send: UInt8 = 5
        static let greetingTimer: UInt8 = 6
    }

    let shared: HbbsShared
    let index: Int
    /// This worker's counters (single writer: this thread).
    let counters: HbbsCounters.Worker
    var udpFD: Int32 = -1
    var udpIsIPv6 = true
    var listeners: [(fd: Int32, port: PortKind)] = []
    var acceptArmed: [Bool] = []
    var udpRecvArmed = false
    var udpBuffers: ProvidedBufferRing?
    var tcpBuffers: ProvidedBufferRing?
    let recvHeader: UnsafeMutablePointer<msghdr>
    let sendSlots: UnsafeMutablePointer<UDPSendSlot>
    var freeSendSlots: [Int32]
    var connections = SlotTable<Connection>(capacity: HbbsLimits.maxConnectionsPerWorker)
    /// §4.5: connections waiting for their greeting, oldest first (stale handles are skipped).
    var pendingGreetings: [SlotTable<Connection>.Handle] = []
    var greetingTimerArmed = false
    let greetingDelay: UnsafeMutablePointer<KernelTimespec>
    var stopping = false
    /// The console's Unix socket path, removed when the worker finishes.
    var consoleSocketPath: String?
    /// When the connection-limit warning may be logged again (at most every 10 s).
    var nextLimitLog: UInt64 = 0
    /// Messages decoded from one read, processed after the stream is put back.
    var inbound: [RendezvousMessage?] = []

    struct UDPSendSlot {
        var header = msghdr()
        var iov = iovec()
        var name = sockaddr_storage()
        var buffer: UnsafeMutableRawPointer
    }

    public init(shared: HbbsShared, index: Int) {
        self.shared = shared
        self.index = index
        counters = shared.counters.worker(index)
        recvHeader = .allocate(capacity: 1)
        recvHeader.initialize(to: msghdr())
        recvHeader.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        sendSlots = .allocate(capacity: HbbsLimits.udpSendSlots)
        for i in 0..<HbbsLimits.udpSendSlots {
            (sendSlots + i).initialize(to: UDPSendSlot(buffer: .allocate(byteCount: HbbsLimits.udpSendSlotSize, alignment: 8)))
        }
        freeSendSlots = (0..<Int32(HbbsLimits.udpSendSlots)).reversed()
        greetingDelay = .allocate(capacity: 1)
        greetingDelay.initialize(to: KernelTimespec(tv_sec: 0, tv_nsec: Int64(HbbsLimits.greetingDelayNanos)))
        pendingGreetings.reserveCapacity(1024)
        inbound.reserveCapacity(16)
    }

    deinit {
        for i in 0..<HbbsLimits.udpSendSlots { sendSlots[i].buffer.deallocate() }
        sendSlots.deinitialize(count: HbbsLimits.udpSendSlots)
        sendSlots.deallocate()
        recvHeader.deallocate()
        greetingDelay.deallocate()
    }

    // MARK: Lifecycle

    public func start(_ context: inout WorkerContext<HbbsMail>) throws(Errno) {
        let o = shared.options
        var socketOptions = SocketOptions()
        socketOptions.receiveBufferSize = o.receiveBufferSize
        let (udp, udpEndpoint) = try bindSocket(port: o.port, bind: o.bindAddress, tcp: false, options: socketOptions)
        udpFD = udp
        udpIsIPv6 = udpEndpoint.isIPv6
        for (port, kind) in [(o.port, PortKind.rendezvous), (o.port - 1, .nat), (o.port + 2, .webSocket)] {
            let (fd, _) = try bindSocket(port: port, bind: o.bindAddress, tcp: true, options: SocketOptions())
            listeners.append((fd, kind))
            acceptArmed.append(false)
        }
        if index == 0, case .unixSocket(let path) = o.adminConsole {
            listeners.append((try Socket.unixListener(path: path), .consoleSocket))
            acceptArmed.append(false)
            consoleSocketPath = path
        }
        udpBuffers = try ProvidedBufferRing(ring: &context.ring, group: 1, count: HbbsLimits.udpBufferCount, bufferSize: HbbsLimits.udpBufferSize)
        tcpBuffers = try ProvidedBufferRing(ring: &context.ring, group: 2, count: HbbsLimits.tcpBufferCount, bufferSize: HbbsLimits.tcpBufferSize)
        try armUDP(&context)
        for i in listeners.indices { try armAccept(i, &context) }
    }

    public func beginStop(_ context: inout WorkerContext<HbbsMail>) {
        stopping = true
        for (i, l) in listeners.enumerated() where acceptArmed[i] {
            try? context.ring.cancel(UserData(op: Op.accept, slot: UInt32(i)))
            _ = l
        }
        if udpRecvArmed { try? context.ring.cancel(UserData(op: Op.udpRecv)) }
        if greetingTimerArmed { try? context.ring.cancel(UserData(op: Op.greetingTimer)) }
        pendingGreetings.removeAll()
        for h in connections.handles { close(h, &context) }
    }

    public var isDrained: Bool {
        !udpRecvArmed && !acceptArmed.contains(true) && !greetingTimerArmed && connections.count == 0
            && freeSendSlots.count == HbbsLimits.udpSendSlots
    }

    public func finish(_ context: inout WorkerContext<HbbsMail>) {
        udpBuffers?.unregister(from: &context.ring)
        tcpBuffers?.unregister(from: &context.ring)
        udpBuffers = nil
        tcpBuffers = nil
        if udpFD >= 0 { Socket.close(udpFD) }
        for l in listeners { Socket.close(l.fd) }
        listeners = []
        if let path = consoleSocketPath { Socket.unlink(path) }
    }

    public func tick(_ context: inout WorkerContext<HbbsMail>) {
        let now = context.now
        for h in connections.handles {
            guard let c = connections[h], !c.closed else { continue }
            if now >= c.deadline {
                counters.count(.readTimeout)
                close(h, &context)
            } else if c.registeredID != nil && now >= c.nextPing {
                connections.withElement(h) { $0.nextPing = now + HbbsLimits.tcpRegistrationPingNanos }
                // Empty frames travel in clear even on a secure connection (§4.5 step 3).
                enqueue(c.stream.kind == .framed ? [0x00] : [0x82, 0x00], on: h, &context)
            }
        }
    }

    // MARK: Arming

    func armUDP(_ context: inout WorkerContext<HbbsMail>) throws(Errno) {
        try context.ring.multishotRecvMsg(fd: udpFD, msghdr: recvHeader, group: 1, userData: UserData(op: Op.udpRecv))
        udpRecvArmed = true
    }

    func armAccept(_ i: Int, _ context: inout WorkerContext<HbbsMail>) throws(Errno) {
        try context.ring.multishotAccept(fd: listeners[i].fd, userData: UserData(op: Op.accept, slot: UInt32(i)))
        acceptArmed[i] = true
    }

    // MARK: Dispatch

    public func handle(_ c: Completion, _ context: inout WorkerContext<HbbsMail>) {
        switch c.userData.op {
        case Op.udpRecv: handleDatagram(c, &context)
        case Op.udpSend:
            freeSendSlots.append(Int32(c.userData.slot))
        case Op.accept: handleAccept(c, &context)
        case Op.recv: handleRecv(c, &context)
        case Op.send: handleSendCompleted(c, &context)
        case Op.greetingTimer:
            greetingTimerArmed = false
            if !stopping { sendDueGreetings(&context) }
        default: break
        }
    }

    public func receive(_ message: HbbsMail, _ context: inout WorkerContext<HbbsMail>) {
        switch message {
        case .deliver(let slot, let generation, let payload):
            let h = SlotTable<Connection>.Handle(index: slot, generation: generation)
            send(payload: payload, on: h, &context)
        case .registerPkLoaded(let m, let source, let record, let failed):
            if failed { return }
            let (result, persistence) = shared.core.completeRegisterPk(m, from: source, loaded: record, now: millis(context.now))
            persist(persistence)
            sendDatagram(.registerPkResponse(RegisterPkResponse(result: result)), to: source, &context)
        case .punchLoaded(let slot, let generation, let m, let record):
            let h = SlotTable<Connection>.Handle(index: slot, generation: generation)
            guard let conn = connections[h], !conn.closed else { return }
            carryOutPunch(m, h, conn, loaded: .some(record), &context)
        case .tcpRegisterLoaded(let slot, let generation, let m, let record, let failed):
            let h = SlotTable<Connection>.Handle(index: slot, generation: generation)
            guard !failed, let conn = connections[h], !conn.closed else { return }
            let (result, persistence) = shared.core.completeRegisterPk(m, from: conn.address, loaded: record, now: millis(context.now))
            persist(persistence)
            confirmTCPRegistration(m.id, result, h, conn, &context)
        case .answerLoaded(let answer, let source, let record):
            answerForA(answer, from: source, record: record, &context)
        }
    }

    // MARK: UDP (§5.2)

    static let requestPkTrue: [UInt8] = [0x3A, 0x02, 0x10, 0x01]
    static let requestPkFalse: [UInt8] = [0x3A, 0x00]

    func handleDatagram(_ c: Completion, _ context: inout WorkerContext<HbbsMail>) {
        if !c.hasMore {
            udpRecvArmed = false
            if c.result == -ENOBUFS { context.engineCounters.add(.bufferRingEmpty) }
            if !stopping { try? armUDP(&context) }
        }
        guard c.result > 0, let id = c.bufferID, let buffers = udpBuffers else { return }
        buffers.taken(id)
        defer { buffers.recycle(id) }
        guard let out = RecvMsgOut(buffer: buffers.buffer(id), received: c.result, msghdr: recvHeader),
              let endpoint = out.source, let source = SocketAddress(endpoint) else { return }
        if out.isTruncated { counters.count(.truncatedDatagram); return }
        guard let message = try? RendezvousMessage(serializedBytes: UnsafeRawBufferPointer(out.payload)) else {
            counters.count(.undecodableDatagram)
            return
        }
        let now = millis(context.now)
        switch message {
        case .registerPeer(let m):
            counters.count(.registerPeer)
            guard case .reply(let requestPk, let update, let ipChanged) = shared.core.handleRegisterPeer(m, from: source, now: now) else { return }
            let reply = requestPk ? Self.requestPkTrue : Self.requestPkFalse
            reply.withUnsafeBytes { sendRaw($0, to: endpoint, &context) }
            if let update { sendDatagram(.configureUpdate(update), to: source, &context) }
            if ipChanged { Log.debug("IP change of \(m.id) to \(source)") }
        case .registerPk(let m):
            counters.count(.registerPk)
            switch shared.core.handleRegisterPk(m, from: source, now: now) {
            case .drop: return
            case .reply(let result):
                sendDatagram(.registerPkResponse(RegisterPkResponse(result: result)), to: source, &context)
            case .decided(let result, let persistence):
                persist(persistence)
                sendDatagram(.registerPkResponse(RegisterPkResponse(result: result)), to: source, &context)
            case .needsDatabaseLookup:
                lookUp(m.id) { record, failed in .registerPkLoaded(m, source, record, failed: failed) }
            }
        case .configureUpdate(let m):
            shared.core.handleConfigUpdate(m, from: source, resolves: Self.resolves)
        default:
            // §5.2: PunchHoleRequest, PunchHoleSent, LocalAddr and everything else are ignored
            // over UDP (no datagram is ever sent to an address taken from a payload).
            counters.count(.ignoredDatagram)
        }
    }

    /// Sends a reply datagram to a raw address (from this worker's UDP socket).
    func sendDatagram(_ message: RendezvousMessage, to address: SocketAddress, _ context: inout WorkerContext<HbbsMail>) {
        guard let endpoint = address.endpoint(forIPv6Socket: udpIsIPv6) else { return }
        guard let slot = freeSendSlots.popLast() else { counters.count(.udpSendPoolExhausted); return }
        let s = sendSlots + Int(slot)
        guard let n = try? message.serialize(into: UnsafeMutableRawBufferPointer(start: s.pointee.buffer, count: HbbsLimits.udpSendSlotSize)) else {
            freeSendSlots.append(slot)
            return
        }
        submitSend(slot: slot, length: n, to: endpoint, &context)
    }

    func sendRaw(_ bytes: UnsafeRawBufferPointer, to endpoint: SocketEndpoint, _ context: inout WorkerContext<HbbsMail>) {
        guard let slot = freeSendSlots.popLast() else { counters.count(.udpSendPoolExhausted); return }
        let s = sendSlots + Int(slot)
        s.pointee.buffer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        submitSend(slot: slot, length: bytes.count, to: endpoint, &context)
    }

    func submitSend(slot: Int32, length: Int, to endpoint: SocketEndpoint, _ context: inout WorkerContext<HbbsMail>) {
        let s = sendSlots + Int(slot)
        s.pointee.name = endpoint.storage
        s.pointee.iov = iovec(iov_base: s.pointee.buffer, iov_len: length)
        s.pointee.header = msghdr()
        withUnsafeMutablePointer(to: &s.pointee.name) { s.pointee.header.msg_name = UnsafeMutableRawPointer($0) }
        s.pointee.header.msg_namelen = endpoint.length
        withUnsafeMutablePointer(to: &s.pointee.iov) { s.pointee.header.msg_iov = $0 }
        s.pointee.header.msg_iovlen = 1
        do {
            try withUnsafePointer(to: &s.pointee.header) { (h) throws(Errno) in
                try context.ring.sendMsg(fd: udpFD, msghdr: h, userData: UserData(op: Op.udpSend, slot: UInt32(slot)))
            }
        } catch {
            freeSendSlots.append(slot)
        }
    }

    static let resolves: @Sendable (String) -> Bool = { entry in
        var host = Substring(entry)
        if let colon = entry.lastIndex(of: ":"), !entry.hasPrefix("["), entry.filter({ $0 == ":" }).count == 1 {
            host = entry[..<colon]
        }
        return (try? Resolver.addresses(forHost: String(host)))?.isEmpty == false
    }

    func persist(_ p: PeerPersistence?) {
        guard let p, let store = shared.store else { return }
        do {
            switch p {
            case .insert(let guid, let id, let uuid, let pk, let ip):
                _ = try store.insert(id: id, uuid: uuid, pk: pk, ip: ip, guid: PeerGUID(bytes: guid)) { result in
                    if case .failure(let e) = result { Log.error("database insert of \(id) failed: \(e)") }
                }
            case .update(let guid, let id, let pk, let ip):
                try store.update(guid: PeerGUID(bytes: guid), id: id, pk: pk, ip: ip) { result in
                    if case .failure(let e) = result { Log.error("database update of \(id) failed: \(e)") }
                }
            }
        } catch {
            counters.count(.databaseQueueFull)
            Log.error("database queue refused a write: \(error)")
        }
    }

    /// Loads `id` from the database on its thread; `mail` builds the message posted back here.
    func lookUp(_ id: String, _ mail: @escaping @Sendable (PeerRecord?, Bool) -> HbbsMail) {
        guard let store = shared.store else { return }
        let group = WorkerMailboxes.shared
        let me = index
        do {
            try store.load(id: id) { result in
                switch result {
                case .success(let row): group.post(mail(row.map(PeerRecord.init(row:)), false), to: me)
                case .failure(let e):
                    Log.error("database load of \(id) failed: \(e)")
                    group.post(mail(nil, true), to: me)
                }
            }
        } catch {
            counters.count(.databaseQueueFull)
            WorkerMailboxes.shared.post(mail(nil, true), to: me)
        }
    }

    // MARK: TCP

    func handleAccept(_ c: Completion, _ context: inout WorkerContext<HbbsMail>) {
        let i = Int(c.userData.slot)
        if !c.hasMore {
            acceptArmed[i] = false
            if !stopping { try? armAccept(i, &context) }
        }
        guard c.result >= 0 else { return }
        let fd = c.result
        if stopping { Socket.close(fd); return }
        let port = listeners[i].port
        let peer: SocketAddress
        if port == .consoleSocket {
            peer = .unspecifiedV4 // a local user of the socket: no IP address
        } else {
            guard let peerEndpoint = try? Socket.peerEndpoint(fd), let p = SocketAddress(peerEndpoint) else { Socket.close(fd); return }
            peer = p
            // Replies are small writes, some right after the greeting: Nagle would hold them for
            // the client's delayed ACK.
            try? Socket.setNoDelay(fd)
        }
        let now = context.now
        var role = Connection.Role.rendezvous
        var deadline = now + HbbsLimits.messageTimeoutNanos
        if port == .consoleSocket {
            role = .console
            deadline = now + HbbsLimits.consoleTimeoutNanos
        } else if port == .nat {
            if peer.ip.isLoopback, case .port = shared.options.adminConsole {
                role = .console
                deadline = now + HbbsLimits.consoleTimeoutNanos
            } else {
                role = .nat
            }
        } else if port == .webSocket {
            deadline = now + HbbsLimits.upgradeTimeoutNanos
        }
        let conn = Connection(fd: fd, role: role, port: port, peer: peer, address: peer,
                              stream: MessageStream(kind: port == .webSocket ? .webSocket : .framed, maxMessageSize: HbbsLimits.maxMessage),
                              deadline: deadline)
        guard let h = connections.insert(conn) else {
            counters.count(.connectionLimit)
            if now >= nextLimitLog {
                nextLimitLog = now + 10_000_000_000
                Log.warn("worker \(index): \(HbbsLimits.maxConnectionsPerWorker) connections open; refusing new ones (\(shared.counters.value(.connectionLimit)) refused so far)")
            }
            Socket.close(fd)
            return
        }
        counters.open(conn.openKind, 1)
        // §4.5: greet plain-TCP rendezvous connections with a signed ephemeral key, as Pro servers
        // do, unless the client speaks within `greetingDelayNanos` (then it is not doing the
        // handshake; see there).
        if port == .rendezvous, shared.core.settings.signingKey != nil {
            connections.withElement(h) { $0.greetingDue = context.now + HbbsLimits.greetingDelayNanos }
            pendingGreetings.append(h)
            armGreetingTimer(&context)
        }
        armRecv(h, &context)
    }

    func armGreetingTimer(_ context: inout WorkerContext<HbbsMail>) {
        guard !greetingTimerArmed, !stopping else { return }
        do {
            try context.ring.timeout(greetingDelay, userData: UserData(op: Op.greetingTimer))
            greetingTimerArmed = true
        } catch {
            // No SQE to be had: greet the waiting connections now rather than never.
            sendDueGreetings(&context, all: true)
        }
    }

    /// Greets every waiting connection whose time has come and that has not spoken (all of them
    /// with `all`); re-arms the timer for the rest.
    func sendDueGreetings(_ context: inout WorkerContext<HbbsMail>, all: Bool = false) {
        guard let serverKey = shared.core.settings.signingKey else { pendingGreetings.removeAll(); return }
        var kept = 0
        for h in pendingGreetings {
            guard let c = connections[h], !c.closed, !c.ending, c.greetingDue != 0 else { continue }
            if !all && c.greetingDue > context.now {
                pendingGreetings[kept] = h
                kept += 1
                continue
            }
            let handshake = SecureHandshake()
            connections.withElement(h) {
                $0.greetingDue = 0
                $0.handshake = handshake
            }
            counters.count(.secureGreeting)
            enqueue(MessageStream.encode(RendezvousMessage.keyExchange(handshake.greeting(signedBy: serverKey)), kind: .framed), on: h, &context)
        }
        pendingGreetings.removeSubrange(kept...)
        if !pendingGreetings.isEmpty { armGreetingTimer(&context) }
    }

    func armRecv(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbsMail>) {
        guard let c = connections[h], !c.closed else { return }
        do {
            try context.ring.multishotRecv(fd: c.fd, group: 2, userData: h.userData(op: Op.recv))
            connections.withElement(h) { $0.recvArmed = true }
        } catch {
            close(h, &context)
        }
    }

    func handleRecv(_ c: Completion, _ context: inout WorkerContext<HbbsMail>) {
        let h = SlotTable<Connection>.Handle(c.userData)
        let buffers = tcpBuffers!
        if let id = c.bufferID { buffers.taken(id) }
        defer { if let id = c.bufferID { buffers.recycle(id) } }
        guard connections[h] != nil else { return }
        if !c.hasMore { connections.withElement(h) { $0.recvArmed = false } }
        guard let conn = connections[h], !conn.closed else { finishIfDone(h, &context); return }
        if c.result <= 0 {
            if c.result == -ENOBUFS && !c.hasMore {
                context.engineCounters.add(.bufferRingEmpty)
                armRecv(h, &context)
                return
            }
            end(h, &context) // EOF or error
            return
        }
        guard let id = c.bufferID else { return }
        // The kernel may end a multishot receive after delivering data (a full completion queue):
        // re-arm once this data is handled, unless the connection is on its way out.
        defer {
            if !c.hasMore, let current = connections[h], !current.closed, !current.ending, !current.recvArmed {
                armRecv(h, &context)
            }
        }
        let data = UnsafeMutableRawBufferPointer(rebasing: buffers.buffer(id)[..<Int(c.result)])
        if conn.role == .console {
            handleConsole(h, data, &context)
            return
        }
        if conn.greetingDue != 0 {
            // Spoke before the greeting: not a handshake client (§4.5), so it stays plaintext.
            connections.withElement(h) { $0.greetingDue = 0 }
            counters.count(.greetingSkipped)
        }
        var replies: [UInt8] = []
        var upgraded: WebSocketUpgradeRequest?
        var peerClosed = false
        var cryptoFailed = false
        inbound.removeAll(keepingCapacity: true)
        let failure: ProtocolError? = connections.withElement(h) { conn -> ProtocolError? in
            let result = Result { () throws(ProtocolError) in
                try conn.stream.feed(data) { event in
                    switch event {
                    case .message(let payload):
                        var message: RendezvousMessage?
                        if conn.channel != nil {
                            guard let plain = try? conn.channel!.open(payload) else { cryptoFailed = true; return .stop }
                            message = try? RendezvousMessage(serializedBytes: plain)
                        } else {
                            message = try? RendezvousMessage(serializedBytes: payload)
                        }
                        if let handshake = conn.handshake {
                            conn.handshake = nil
                            if let message {
                                do {
                                    if let channel = try handshake.accept(message) { conn.channel = channel; return .continue }
                                } catch { cryptoFailed = true; return .stop }
                            }
                        }
                        inbound.append(message)
                    case .reply(let bytes): replies.append(contentsOf: bytes)
                    case .upgraded(let request): upgraded = request
                    case .nonBinary: break
                    case .closed: peerClosed = true
                    }
                    return .continue
                }
            }
            if case .failure(let e) = result { return e }
            return nil
        } ?? nil
        if !replies.isEmpty { enqueue(replies, on: h, &context) }
        if let upgraded {
            connections.withElement(h) { conn in
                conn.address = upgraded.clientAddress(peer: conn.peer, trusting: shared.trusted)
                conn.deadline = context.now + HbbsLimits.messageTimeoutNanos
            }
        }
        if cryptoFailed { counters.count(.badFrame); close(h, &context); return }
        if failure != nil {
            if connections[h]?.stream.awaitingUpgrade == true {
                counters.count(.webSocketUpgradeFailed)
                enqueue(WebSocketHandshake.badRequestResponse, on: h, &context)
            } else {
                counters.count(.badFrame)
            }
            end(h, &context)
            return
        }
        for message in inbound {
            guard let current = connections[h], !current.closed, !current.ending else { break }
            connections.withElement(h) { $0.deadline = context.now + HbbsLimits.messageTimeoutNanos }
            guard let message else { counters.count(.badFrame); end(h, &context); return }
            if let id = current.registeredID, case .none = message {
                // §5.9: the client echoes our empty frames; any frame keeps the peer online.
                shared.core.refreshRoute(id, route(h), now: millis(context.now))
                continue
            }
            if current.role == .nat {
                handleNatPort(message, h, current, &context)
            } else {
                handleRendezvous(message, h, current, &context)
            }
        }
        if peerClosed { end(h, &context) }
    }

    /// §5.4: one message on P-1, answered, then the connection ends.
    func handleNatPort(_ message: RendezvousMessage, _ h: SlotTable<Connection>.Handle, _ conn: Connection, _ context: inout WorkerContext<HbbsMail>) {
        switch message {
        case .testNatRequest:
            reply(.testNatResponse(TestNatResponse(port: Int32(conn.peer.port))), on: h, conn, &context)
        case .onlineRequest(let m):
            counters.count(.onlineRequest)
            reply(.onlineResponse(shared.core.onlineStates(m.peers, now: millis(context.now))), on: h, conn, &context)
        default: break
        }
        end(h, &context)
    }

    /// §5.3: the rendezvous ports P and P+2.
    func handleRendezvous(_ message: RendezvousMessage, _ h: SlotTable<Connection>.Handle, _ conn: Connection, _ context: inout WorkerContext<HbbsMail>) {
        switch message {
        case .punchHoleRequest(let m):
            placeSink(h, conn)
            carryOutPunch(m, h, conn, loaded: nil, &context)
        case .requestRelay(let m):
            placeSink(h, conn)
            if let (to, forwarded) = shared.core.handleRequestRelay(m, from: conn.address, timeMicros: AddrMangle.currentTimeMicros()) {
                counters.count(sendToPeer(m.id, at: to, forwarded, &context) ? .relayForwardedTCP : .relayForwardedUDP)
            } else {
                counters.count(.relayUnknownID)
            }
        case .relayResponse(let m):
            answer(.relayResponse(m), h, conn, &context)
            end(h, &context)
        case .punchHoleSent(let m):
            answer(.punchHoleSent(m), h, conn, &context)
            end(h, &context)
        case .localAddr(let m):
            answer(.localAddr(m), h, conn, &context)
            end(h, &context)
        case .testNatRequest(let m):
            if !conn.sinkPlaced {
                let cu = shared.core.configUpdate(forClientSerial: m.serial)
                reply(.testNatResponse(TestNatResponse(port: Int32(conn.address.port), cu: cu)), on: h, conn, &context)
            }
            end(h, &context)
        case .registerPk(let m) where !m.pk.isEmpty && !conn.sinkPlaced:
            registerOverTCP(m, h, conn, &context)
        case .registerPk:
            // A change-ID request (no pk): not supported, as upstream.
            if !conn.sinkPlaced { reply(.registerPkResponse(RegisterPkResponse(result: .notSupport)), on: h, conn, &context) }
            end(h, &context)
        case .onlineRequest(let m):
            // Beyond upstream OSS (§5.4.2 SHOULD): web clients send it to P+2.
            counters.count(.onlineRequest)
            if !conn.sinkPlaced { reply(.onlineResponse(shared.core.onlineStates(m.peers, now: millis(context.now))), on: h, conn, &context) }
            end(h, &context)
        default:
            end(h, &context)
        }
    }

    /// B-bound messages go over B's registration connection when it has one (§5.9), else by UDP.
    /// Returns true when the message went over TCP.
    @discardableResult
    func sendToPeer(_ id: String, at address: SocketAddress, _ message: RendezvousMessage, _ context: inout WorkerContext<HbbsMail>) -> Bool {
        guard let route = shared.core.registry.peer(id)?.tcpRoute else {
            sendDatagram(message, to: address, &context)
            return false
        }
        let payload = message.serializedBytes()
        if route.worker == index {
            send(payload: payload, on: SlotTable<Connection>.Handle(index: route.slot, generation: route.generation), &context)
        } else {
            context.post(.deliver(slot: route.slot, generation: route.generation, payload: payload), to: route.worker)
        }
        return true
    }

    func route(_ h: SlotTable<Connection>.Handle) -> TCPRoute { TCPRoute(worker: index, slot: h.index, generation: h.generation) }

    /// §5.9 (beyond upstream OSS): RegisterPk with a key over P or P+2 is checked as over UDP; on
    /// OK the peer is online and reachable over this connection while it lives.
    func registerOverTCP(_ m: RegisterPk, _ h: SlotTable<Connection>.Handle, _ conn: Connection, _ context: inout WorkerContext<HbbsMail>) {
        counters.count(.registerPk)
        switch shared.core.handleRegisterPk(m, from: conn.address, now: millis(context.now)) {
        case .drop: end(h, &context)
        case .reply(let result): confirmTCPRegistration(m.id, result, h, conn, &context)
        case .decided(let result, let persistence):
            persist(persistence)
            confirmTCPRegistration(m.id, result, h, conn, &context)
        case .needsDatabaseLookup:
            lookUp(m.id) { record, failed in .tcpRegisterLoaded(slot: h.index, generation: h.generation, m, record, failed: failed) }
        }
    }

    func confirmTCPRegistration(_ id: String, _ result: RegisterPkResponse.Result, _ h: SlotTable<Connection>.Handle, _ conn: Connection, _ context: inout WorkerContext<HbbsMail>) {
        let ok = result == .ok
        reply(.registerPkResponse(RegisterPkResponse(result: result, keepAlive: ok ? HbbsLimits.tcpRegistrationKeepAliveSeconds : 0)), on: h, conn, &context)
        guard ok else { return }
        if let old = conn.registeredID, old != id { shared.core.detachRoute(old, route(h)) }
        shared.core.attachRoute(id, route(h), now: millis(context.now))
        connections.withElement(h) { c in
            c.registeredID = id
            c.nextPing = context.now + HbbsLimits.tcpRegistrationPingNanos
        }
    }

    func placeSink(_ h: SlotTable<Connection>.Handle, _ conn: Connection) {
        guard !conn.sinkPlaced else { return }
        shared.sinks.insert(conn.address.normalized, SinkRef(worker: index, slot: h.index, generation: h.generation, kind: conn.stream.kind))
        connections.withElement(h) { $0.sinkPlaced = true }
    }

    func carryOutPunch(_ m: PunchHoleRequest, _ h: SlotTable<Connection>.Handle, _ conn: Connection, loaded: PeerRecord??, _ context: inout WorkerContext<HbbsMail>) {
        let decision = shared.core.handlePunchHoleRequest(m, from: conn.address, ws: conn.port == .webSocket, now: millis(context.now),
                                                         unixSeconds: Int64(time(nil)), loaded: loaded, timeMicros: AddrMangle.currentTimeMicros())
        switch decision {
        case .fail(let failure):
            switch failure {
            case .offline: counters.count(.punchOffline)
            case .licenseMismatch: counters.count(.punchLicenceMismatch)
            default: counters.count(.punchIDNotExist)
            }
            deliver(.punchHoleResponse(PunchHoleResponse(failure: failure)), to: conn.address.normalized, &context)
        case .sendToPeer(let to, let message):
            counters.count(sendToPeer(m.id, at: to, message, &context) ? .punchForwardedTCP : .punchForwardedUDP)
        case .needsDatabaseLookup:
            lookUp(m.id) { record, _ in .punchLoaded(slot: h.index, generation: h.generation, m, record) }
        }
    }

    /// B's answer: needs B's record for the signed key (memory, else the database).
    func answer(_ a: PeerAnswer, _ h: SlotTable<Connection>.Handle, _ conn: Connection, _ context: inout WorkerContext<HbbsMail>) {
        let id = a.peerID
        if id.isEmpty || shared.store == nil || shared.core.registry.peer(id) != nil {
            answerForA(a, from: conn.address, record: id.isEmpty ? nil : shared.core.registry.peer(id), &context)
            return
        }
        // The connection ends now; its address travels with the lookup.
        let address = conn.address
        lookUp(id) { record, _ in .answerLoaded(a, source: address, record) }
    }

    func answerForA(_ a: PeerAnswer, from src: SocketAddress, record: PeerRecord?, _ context: inout WorkerContext<HbbsMail>) {
        let (target, message): (SocketAddress, RendezvousMessage)
        switch a {
        case .punchHoleSent(let m): (target, message) = shared.core.handlePunchHoleSent(m, from: src, record: record, timeMicros: AddrMangle.currentTimeMicros())
        case .localAddr(let m): (target, message) = shared.core.handleLocalAddr(m, record: record)
        case .relayResponse(let m): (target, message) = shared.core.handleRelayResponse(m, record: record)
        }
        counters.count(deliver(message, to: target, &context) ? .answerDelivered : .answerNoSink)
    }

    /// Lookup-and-remove of A's sink, then one message on it (§6). False when no sink waited.
    @discardableResult
    func deliver(_ message: RendezvousMessage, to key: SocketAddress, _ context: inout WorkerContext<HbbsMail>) -> Bool {
        guard let sink = shared.sinks.take(key) else { return false }
        let payload = message.serializedBytes()
        if sink.worker == index {
            send(payload: payload, on: SlotTable<Connection>.Handle(index: sink.slot, generation: sink.generation), &context)
        } else {
            context.post(.deliver(slot: sink.slot, generation: sink.generation, payload: payload), to: sink.worker)
        }
        return true
    }

    func reply(_ message: RendezvousMessage, on h: SlotTable<Connection>.Handle, _ conn: Connection, _ context: inout WorkerContext<HbbsMail>) {
        send(payload: message.serializedBytes(), on: h, &context)
    }

    /// Frames a serialised message for the connection's transport, encrypting it first on a
    /// secure connection (§4.5), and queues it.
    func send(payload: [UInt8], on h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbsMail>) {
        guard let conn = connections[h], !conn.closed else { return }
        var body = payload
        if conn.channel != nil { body = connections.withElement(h) { $0.channel!.seal(payload) } ?? payload }
        guard let framed = try? body.withUnsafeBytes({ (p) throws(ProtocolError) in try MessageStream.encode(payload: p, kind: conn.stream.kind) }) else { return }
        enqueue(framed, on: h, &context)
    }

    // MARK: Console (§9.1)

    func handleConsole(_ h: SlotTable<Connection>.Handle, _ data: UnsafeMutableRawBufferPointer, _ context: inout WorkerContext<HbbsMail>) {
        let bytes = UnsafeRawBufferPointer(rebasing: data[..<min(data.count, HbbsLimits.consoleMaxRead)])
        if let text = String(validating: bytes, as: UTF8.self) {
            let out = shared.console.execute(text, now: millis(context.now))
            if !out.isEmpty { enqueue(Array(out.utf8), on: h, &context) }
        }
        end(h, &context)
    }

    // MARK: Sending and closing

    func enqueue(_ bytes: [UInt8], on h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbsMail>) {
        guard let c = connections[h], !c.closed else { return }
        if c.outbox.pendingCount + bytes.count > HbbsLimits.maxOutboxBytes { close(h, &context); return }
        connections.withElement(h) { $0.outbox.append(bytes) }
        flush(h, &context)
    }

    func flush(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbsMail>) {
        guard let c = connections[h], !c.outbox.isSending, !c.closed else { return }
        if c.outbox.isEmpty {
            if c.ending { close(h, &context) }
            return
        }
        let submitted: Bool = connections.withElement(h) { conn in
            let fd = conn.fd
            return (try? conn.outbox.submit(fd: fd, ring: &context.ring, userData: h.userData(op: Op.send))) != nil
        } ?? false
        if !submitted { close(h, &context) }
    }

    func handleSendCompleted(_ c: Completion, _ context: inout WorkerContext<HbbsMail>) {
        let h = SlotTable<Connection>.Handle(c.userData)
        guard let sent = connections.withElement(h, { $0.outbox.completed(c.result) }) else { return }
        if connections[h]?.closed == true { finishIfDone(h, &context); return }
        if !sent { close(h, &context); return }
        flush(h, &context)
    }

    /// The read loop ends: remove the sink entry it placed, flush, close.
    func end(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbsMail>) {
        guard let c = connections[h], !c.ending, !c.closed else { return }
        if c.sinkPlaced { shared.sinks.remove(c.address.normalized) }
        connections.withElement(h) { $0.ending = true }
        if c.outbox.isEmpty { close(h, &context) } else { flush(h, &context) }
    }

    /// Closes at once: cancels the receive; the slot is freed when no op is in flight.
    func close(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbsMail>) {
        guard let c = connections[h], !c.closed else { return }
        if c.sinkPlaced && !c.ending { shared.sinks.remove(c.address.normalized) }
        if let id = c.registeredID { shared.core.detachRoute(id, route(h)) }
        connections.withElement(h) { $0.closed = true; $0.ending = true }
        // shutdown makes a pending receive complete (EOF) and ends the multishot.
        _ = Glibc.shutdown(c.fd, Int32(SHUT_RDWR))
        if c.recvArmed { try? context.ring.cancel(h.userData(op: Op.recv)) }
        finishIfDone(h, &context)
    }

    func finishIfDone(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbsMail>) {
        guard let c = connections[h], c.closed, !c.recvArmed, !c.outbox.isSending else { return }
        Socket.close(c.fd)
        connections.remove(h)
        counters.open(c.openKind, -1)
    }
}

@inline(__always) func millis(_ nanos: UInt64) -> Millis { nanos / 1_000_000 }

extension PeerRecord {
    init(row: PeerRow) {
        self.init(guid: row.guid.bytes, uuid: row.uuid, pk: row.pk, ip: row.ip)
    }
}

/// The workers' mailboxes for threads that are not workers (the database thread).
final class WorkerMailboxes: @unchecked Sendable {
    nonisolated(unsafe) static var shared = WorkerMailboxes()
    var post: @Sendable (HbbsMail, Int) -> Void = { _, _ in }
    func post(_ m: HbbsMail, to worker: Int) { post(m, worker) }
}
