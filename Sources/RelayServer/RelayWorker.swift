import Glibc
import Relay
import RustDeskProtocol
import ServerConfig
import ServerKit
import URing
import Workers

enum ListenerKind: UInt8 { case relay = 0, webSocket = 1, consoleSocket = 2 }

/// One accepted connection before it is paired: reading its first message (after the WebSocket
/// upgrade on Q+2), then waiting for its partner without being read; or an admin console
/// connection.
struct Connection {
    enum Role { case relay, console }
    enum Phase: Equatable {
        /// Reading the upgrade and the first message.
        case reading
        /// A valid RequestRelay arrived: the receive is being cancelled and sends finished, so
        /// that nothing is in flight on the descriptor when it is paired or handed over.
        case quiescing
        /// In the pairing table under `uuid`, not read.
        case waiting
        /// Taken from the pairing table by a partner on another worker, whose hand-over message
        /// is on its way.
        case claimed
    }
    var fd: Int32
    var role: Role
    var webSocket: Bool
    /// TCP peer (raw); unspecified for the console's Unix socket.
    var peer: SocketAddress
    /// The peer, or `X-Real-IP:0` on WebSocket from a trusted proxy.
    var address: SocketAddress
    var stream: MessageStream
    var deadline: UInt64
    var phase = Phase.reading
    var uuid = ""
    var recvArmed = false
    var outbox = Outbox()
    var ending = false
    var closed = false

    /// Nothing of this connection is in flight in the kernel, nothing left to send.
    var isQuiet: Bool { !recvArmed && outbox.isEmpty }
}

/// One hbbr worker: listeners on Q and Q+2 (SO_REUSEPORT, so every worker accepts), the
/// connections it accepted until they pair, the sessions it owns, and their limits and timeouts.
///
/// Pairing across workers: the shared `PairingTable` maps a uuid to the waiting half's worker and
/// slot. The second half, once quiet (no receive or send in flight), takes the entry; if the
/// waiting half lives elsewhere, its descriptor, stream and bytes read past the first message
/// travel to that worker in a `partnerArrived` message, and that worker owns the session.
public final class RelayWorker: WorkerHandler {
    public typealias Message = HbbrMail

    enum Op {
        static let accept: UInt8 = 1
        static let recv: UInt8 = 2
        static let send: UInt8 = 3
        /// Every operation of a session's transport (the transport puts its own tag in `aux`).
        static let session: UInt8 = 4
    }
    static let receiveGroup: UInt16 = 1

    let shared: HbbrShared
    let index: Int
    /// This worker's counters (single writer: this thread).
    let counters: HbbrCounters.Worker
    var listeners: [(fd: Int32, kind: ListenerKind)] = []
    var acceptArmed: [Bool] = []
    /// Listeners whose accept failed for lack of descriptors or memory, re-armed at the next tick.
    var acceptBackoff: [Bool] = []
    var lastAcceptFailureLog: UInt64 = 0
    var consoleSocketPath: String?
    var buffers: ProvidedBufferRing?
    var pool: PipePool?
    /// The splice pumps' buffers for chunks copied while every pipe is lent.
    var copyBuffers: CopyBufferPool?
    var connections = SlotTable<Connection>(capacity: HbbrLimits.maxConnectionsPerWorker)
    var sessions = SlotTable<RelaySession>(capacity: HbbrLimits.maxSessionsPerWorker)
    var stopping = false
    /// Draining (a stop signal with a drain time): no accepting, sessions run on.
    var draining = false
    /// This worker's share of the TOTAL_BANDWIDTH allowance, in bytes (may be overdrawn).
    var totalCredit = 0
    var lastIdleCheck: UInt64 = 0
    /// Last time each kind of refusal was logged (at most one line per second per kind).
    var lastRefusalLog: [UInt64] = Array(repeating: 0, count: HbbrCounters.Drop.allCases.count)

    public init(shared: HbbrShared, index: Int) {
        self.shared = shared
        self.index = index
        counters = shared.counters.worker(index)
    }

    // MARK: Lifecycle

    public func start(_ context: inout WorkerContext<HbbrMail>) throws(Errno) {
        let o = shared.options
        for (port, kind) in [(o.port, ListenerKind.relay), (o.port + 2, .webSocket)] {
            let (fd, _) = try bindSocket(port: port, bind: o.bindAddress, tcp: true, options: SocketOptions())
            listeners.append((fd, kind))
            acceptArmed.append(false)
            acceptBackoff.append(false)
        }
        if index == 0, case .unixSocket(let path) = o.adminConsole {
            listeners.append((try Socket.unixListener(path: path), .consoleSocket))
            acceptArmed.append(false)
            acceptBackoff.append(false)
            consoleSocketPath = path
        }
        if o.relayMode != .copy {
            pool = try PipePool()
            var c = CopyBufferPool.Configuration()
            c.bufferSize = HbbrLimits.copyBufferSize
            copyBuffers = CopyBufferPool(configuration: c)
        }
        buffers = try ProvidedBufferRing(ring: &context.ring, group: Self.receiveGroup,
                                         count: HbbrLimits.receiveBufferCount, bufferSize: HbbrLimits.receiveBufferSize)
        lastIdleCheck = context.now
        for i in listeners.indices { try armAccept(i, &context) }
    }

    public func beginStop(_ context: inout WorkerContext<HbbrMail>) {
        stopping = true
        for i in listeners.indices where acceptArmed[i] {
            try? context.ring.cancel(UserData(op: Op.accept, slot: UInt32(i)))
        }
        for h in connections.handles { close(h, &context) }
        for h in sessions.handles { endSession(h, &context) }
    }

    /// Stops accepting and closes every connection that is not in a session (a waiting half can
    /// no longer meet its partner); sessions run on until they end or `beginStop`.
    func beginDrain(_ context: inout WorkerContext<HbbrMail>) {
        guard !draining, !stopping else { return }
        draining = true
        for i in listeners.indices {
            if acceptArmed[i] {
                try? context.ring.cancel(UserData(op: Op.accept, slot: UInt32(i)))
            } else {
                closeListener(i)
            }
        }
        for h in connections.handles { close(h, &context) }
        if let path = consoleSocketPath { Socket.unlink(path); consoleSocketPath = nil }
    }

    /// Closes listener `i` (once); `finish` skips it.
    func closeListener(_ i: Int) {
        guard listeners[i].fd >= 0 else { return }
        Socket.close(listeners[i].fd)
        listeners[i].fd = -1
    }

    public var isDrained: Bool { !acceptArmed.contains(true) && connections.count == 0 && sessions.count == 0 }

    public func finish(_ context: inout WorkerContext<HbbrMail>) {
        buffers?.unregister(from: &context.ring)
        buffers = nil
        for i in listeners.indices { closeListener(i) }
        listeners = []
        if let path = consoleSocketPath { Socket.unlink(path) }
        pool?.closeIdle()
    }

    public func tick(_ context: inout WorkerContext<HbbrMail>) {
        publishLevels()
        let now = context.now
        for i in listeners.indices where acceptBackoff[i] && !acceptArmed[i] && !draining {
            acceptBackoff[i] = false
            try? armAccept(i, &context)
        }
        topUpTotalCredit(now)
        let checkIdle = now >= lastIdleCheck + shared.timings.idleCheckNanos
        if checkIdle {
            lastIdleCheck = now
            // A worker without sessions gives its idle pipes back; busy workers keep theirs.
            if sessions.count == 0 { pool?.closeIdle() }
        }
        if sessions.count > 0 {
            for h in sessions.handles { evaluate(h, now: now, checkIdle: checkIdle, &context) }
        }
        if connections.count > 0 {
            for h in connections.handles { expire(h, now: now, &context) }
        }
    }

    // MARK: Dispatch

    public func handle(_ c: Completion, _ context: inout WorkerContext<HbbrMail>) {
        switch c.userData.op {
        case Op.accept: handleAccept(c, &context)
        case Op.recv: handleRecv(c, &context)
        case Op.send: handleSendCompleted(c, &context)
        case Op.session: handleSession(c, &context)
        default: break
        }
    }

    public func receive(_ message: HbbrMail, _ context: inout WorkerContext<HbbrMail>) {
        switch message {
        case .drain:
            beginDrain(&context)
        case .partnerArrived(let slot, let generation, let half):
            let h = SlotTable<Connection>.Handle(index: slot, generation: generation)
            guard !stopping, !draining, let c = connections[h], !c.closed, c.phase == .waiting || c.phase == .claimed else {
                // Our half is gone (the worker is stopping): the partner's descriptor is ours to close.
                Socket.close(half.fd)
                return
            }
            counters.count(.crossWorkerPairs)
            startSession(a: takeHalf(h), b: half, &context)
        }
    }

    // MARK: Accepting (§8.2)

    func armAccept(_ i: Int, _ context: inout WorkerContext<HbbrMail>) throws(Errno) {
        try context.ring.multishotAccept(fd: listeners[i].fd, userData: UserData(op: Op.accept, slot: UInt32(i)))
        acceptArmed[i] = true
    }

    func handleAccept(_ c: Completion, _ context: inout WorkerContext<HbbrMail>) {
        let i = Int(c.userData.slot)
        if !c.hasMore {
            acceptArmed[i] = false
            if c.result == -EMFILE || c.result == -ENFILE || c.result == -ENOMEM || c.result == -ENOBUFS {
                // Out of descriptors or memory: re-arming now would fail again at once. Retry at
                // the next tick, after sessions had a chance to end.
                if Log.enabled(.warn), context.now >= lastAcceptFailureLog + 1_000_000_000 {
                    lastAcceptFailureLog = context.now
                    Log.warn("accept on \(listeners[i].kind) listener failed: \(Errno(rawValue: -c.result)); retrying")
                }
                acceptBackoff[i] = true
            } else if draining && !stopping {
                // The accept was cancelled for the drain: close the listener, so new connections
                // are refused instead of queueing in its backlog.
                closeListener(i)
            } else if !stopping {
                try? armAccept(i, &context)
            }
        }
        guard c.result >= 0 else { return }
        let fd = c.result
        if stopping || draining { Socket.close(fd); return }
        let kind = listeners[i].kind
        let now = context.now
        var role = Connection.Role.relay
        var peer = SocketAddress.unspecifiedV4
        var deadline = now + shared.timings.firstMessageNanos
        if kind == .consoleSocket {
            role = .console
            deadline = now + shared.timings.consoleNanos
        } else {
            guard let endpoint = try? Socket.peerEndpoint(fd), let address = SocketAddress(endpoint) else { Socket.close(fd); return }
            peer = address
            if kind == .relay, peer.ip.isLoopback, shared.options.adminConsole == .port {
                role = .console
                deadline = now + shared.timings.consoleNanos
            } else if shared.runtime.blocklist.contains(peer.ip) {
                refuse(.blocked, "blocked \(peer)", now)
                Socket.close(fd)
                return
            } else if kind == .webSocket {
                deadline = now + shared.timings.upgradeNanos
            }
        }
        let stream = kind == .webSocket
            ? MessageStream(kind: .webSocket, maxMessageSize: HbbrLimits.maxRelayedMessage)
            : MessageStream(kind: .framed, maxMessageSize: HbbrLimits.maxFirstMessage)
        let conn = Connection(fd: fd, role: role, webSocket: kind == .webSocket, peer: peer, address: peer,
                              stream: stream, deadline: deadline)
        guard let h = connections.insert(conn) else {
            refuse(.connectionLimit, "connection limit (\(HbbrLimits.maxConnectionsPerWorker) per worker) reached", now)
            Socket.close(fd)
            return
        }
        if role == .relay { try? Socket.setNoDelay(fd) }
        armRecv(h, &context)
    }

    /// Counts a refusal and logs it, at most once a second per kind.
    func refuse(_ reason: HbbrCounters.Drop, _ message: @autoclosure () -> String, _ now: UInt64) {
        counters.count(reason)
        let level: Log.Level = reason == .connectionLimit || reason == .sessionLimit || reason == .pairingTableFull ? .warn : .debug
        guard Log.enabled(level), now >= lastRefusalLog[reason.rawValue] + 1_000_000_000 else { return }
        lastRefusalLog[reason.rawValue] = now
        Log.log(level, "\(message()) [\(reason.label), \(shared.counters.value(reason)) so far]")
    }

    // MARK: Reading the first message (§8.3 steps 1–3)

    func armRecv(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], !c.closed else { return }
        do {
            try context.ring.multishotRecv(fd: c.fd, group: Self.receiveGroup, userData: h.userData(op: Op.recv))
            connections.withElement(h) { $0.recvArmed = true }
        } catch {
            close(h, &context)
        }
    }

    func handleRecv(_ c: Completion, _ context: inout WorkerContext<HbbrMail>) {
        let h = SlotTable<Connection>.Handle(c.userData)
        let buffers = self.buffers!
        if let id = c.bufferID { buffers.taken(id) }
        defer { if let id = c.bufferID { buffers.recycle(id) } }
        guard connections[h] != nil else { return }
        if !c.hasMore { connections.withElement(h) { $0.recvArmed = false } }
        guard let conn = connections[h], !conn.closed else { finishIfDone(h, &context); return }
        let data = c.bufferID.map { UnsafeMutableRawBufferPointer(rebasing: buffers.buffer($0)[..<max(0, Int(c.result))]) }

        if conn.phase != .reading {
            // Bytes that arrived behind the first message before the cancel took effect: the
            // stopped stream keeps them in order for the session. An end of stream or an error
            // here is found again by the session (§8.3: noticed only after pairing).
            if let data, c.result > 0 { feedStopped(h, data, &context) }
            if !conn.ending { tryPair(h, &context) }
            return
        }
        guard c.result > 0, let data else {
            if c.result == -ENOBUFS && !c.hasMore {
                context.engineCounters.add(.bufferRingEmpty)
                armRecv(h, &context)
                return
            }
            end(h, &context) // EOF or error before the first message
            return
        }
        // The kernel may end a multishot receive after delivering data (a full completion queue):
        // keep reading if the first message is still incomplete.
        defer {
            if !c.hasMore, let current = connections[h], !current.closed, !current.ending,
               !current.recvArmed, current.phase == .reading {
                armRecv(h, &context)
            }
        }
        if conn.role == .console {
            handleConsole(h, data, &context)
            return
        }
        readFirstMessage(h, data, &context)
    }

    func readFirstMessage(_ h: SlotTable<Connection>.Handle, _ data: UnsafeMutableRawBufferPointer, _ context: inout WorkerContext<HbbrMail>) {
        var replies: [UInt8] = []
        var upgraded: WebSocketUpgradeRequest?
        var peerClosed = false
        var first: RendezvousMessage??
        var failed = false
        connections.withElement(h) { conn in
            let result = Result { () throws(ProtocolError) in
                try conn.stream.feed(data) { event in
                    switch event {
                    case .message(let payload):
                        // Stop at the first message: what follows is the session's.
                        first = .some(try? RendezvousMessage(serializedBytes: payload))
                        return .stop
                    case .reply(let bytes): replies.append(contentsOf: bytes)
                    case .upgraded(let request): upgraded = request
                    case .nonBinary: break // §8.3 MAY: skipped while waiting for the first message
                    case .closed: peerClosed = true
                    }
                    return .continue
                }
            }
            if case .failure = result { failed = true }
        }
        if !replies.isEmpty { enqueue(replies, on: h, &context) }
        if let upgraded {
            connections.withElement(h) { conn in
                conn.address = upgraded.clientAddress(peer: conn.peer, trusting: shared.trusted)
                conn.deadline = context.now + shared.timings.firstMessageNanos
            }
        }
        guard let conn = connections[h], !conn.closed else { return }
        if failed {
            if conn.stream.awaitingUpgrade {
                refuse(.upgradeFailed, "WebSocket upgrade from \(conn.peer) failed", context.now)
                enqueue(WebSocketHandshake.badRequestResponse, on: h, &context)
            } else {
                refuse(.badFrame, "bad first frame from \(conn.address)", context.now)
            }
            end(h, &context)
            return
        }
        guard let first else {
            if peerClosed || conn.stream.bufferedByteCount > HbbrLimits.maxFirstMessage {
                if !peerClosed { refuse(.badFrame, "oversized first message from \(conn.address)", context.now) }
                end(h, &context)
            }
            return
        }
        guard case .requestRelay(let request)? = first else {
            refuse(.notRequestRelay, "first message from \(conn.address) is not RequestRelay", context.now)
            end(h, &context)
            return
        }
        if !shared.licenceKey.isEmpty && request.licenceKey != shared.licenceKey {
            refuse(.licenceMismatch, "Relay authentication failed from \(conn.address)", context.now)
            end(h, &context)
            return
        }
        if request.uuid.isEmpty {
            refuse(.emptyUUID, "RequestRelay with an empty uuid from \(conn.address)", context.now)
            end(h, &context)
            return
        }
        connections.withElement(h) { c in
            c.phase = .quiescing
            c.uuid = request.uuid
            c.deadline = context.now + shared.timings.firstMessageNanos
        }
        if conn.recvArmed { try? context.ring.cancel(h.userData(op: Op.recv)) }
        tryPair(h, &context)
    }

    /// Feeds bytes read after the first message to the (stopped) stream.
    func feedStopped(_ h: SlotTable<Connection>.Handle, _ data: UnsafeMutableRawBufferPointer, _ context: inout WorkerContext<HbbrMail>) {
        var replies: [UInt8] = []
        let failed: Bool = connections.withElement(h) { conn in
            let result = Result { () throws(ProtocolError) in
                try conn.stream.feed(data) { event in
                    if case .reply(let bytes) = event { replies.append(contentsOf: bytes) }
                    return .stop
                }
            }
            if case .failure = result { return true }
            return conn.stream.bufferedByteCount > HbbrLimits.maxRelayedMessage
        } ?? true
        if failed {
            // A WebSocket half that broke its framing before pairing: it cannot be relayed.
            end(h, &context)
            return
        }
        if !replies.isEmpty { enqueue(replies, on: h, &context) }
    }

    // MARK: Pairing (§8.3 steps 4–5)

    /// Once the half is quiet, meets its partner or starts waiting.
    func tryPair(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], c.phase == .quiescing, c.isQuiet, !c.ending, !c.closed else { return }
        let now = context.now
        let me = WaitingHalf(worker: index, slot: h.index, generation: h.generation)
        switch shared.pairing.arrive(uuid: c.uuid, half: me, nowMs: now / 1_000_000) {
        case .waiting:
            connections.withElement(h) { conn in
                conn.phase = .waiting
                conn.deadline = now + shared.timings.pairingWaitNanos
            }
        case .refused:
            refuse(.pairingTableFull, "pairing table full (\(HbbrLimits.maxWaitingHalves) waiting halves)", now)
            close(h, &context)
        case .paired(let first):
            let second = takeHalf(h)
            if first.worker == index {
                let fh = SlotTable<Connection>.Handle(index: first.slot, generation: first.generation)
                guard let f = connections[fh], !f.closed else { Socket.close(second.fd); return }
                startSession(a: takeHalf(fh), b: second, &context)
            } else if !context.post(.partnerArrived(slot: first.slot, generation: first.generation, half: second), to: first.worker) {
                Socket.close(second.fd) // that worker has exited
            }
        }
    }

    /// Removes a quiet connection from the table; its descriptor now belongs to the caller.
    func takeHalf(_ h: SlotTable<Connection>.Handle) -> PairedHalf {
        var c = connections.remove(h)!
        let raw = c.webSocket ? [] : c.stream.takeRawBytes()
        let held = c.webSocket ? c.stream.takeHeldMessages() : []
        return PairedHalf(fd: c.fd, webSocket: c.webSocket, address: c.address, stream: c.stream, rawBytes: raw, heldMessages: held)
    }

    /// Deadlines of connections before pairing: first message, upgrade, console read, unpaired wait.
    func expire(_ h: SlotTable<Connection>.Handle, now: UInt64, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], !c.closed, c.phase != .claimed, now >= c.deadline else { return }
        switch c.phase {
        case .waiting:
            let me = WaitingHalf(worker: index, slot: h.index, generation: h.generation)
            if shared.pairing.remove(uuid: c.uuid, where: { $0 == me }) != nil {
                refuse(.unpaired, "no partner for \(c.address) within the wait", now)
                close(h, &context)
            } else {
                // A partner on another worker took the entry: its hand-over is on the way.
                connections.withElement(h) { $0.phase = .claimed }
            }
        default:
            if c.role == .relay { refuse(c.stream.awaitingUpgrade ? .upgradeFailed : .firstMessageTimeout, "timeout before pairing: \(c.address)", now) }
            close(h, &context)
        }
    }

    // MARK: Sessions (§8.4, §8.5)

    func startSession(a: PairedHalf, b: PairedHalf, _ context: inout WorkerContext<HbbrMail>) {
        let now = context.now
        let runtime = shared.runtime
        let ip = b.address.ip
        let session = RelaySession(usageKey: b.address.normalized.description, ip: ip, settings: runtime.settings,
                                   lowSpeed: runtime.blacklist.contains(ip), now: now)
        guard let h = sessions.insert(session) else {
            refuse(.sessionLimit, "session limit (\(HbbrLimits.maxSessionsPerWorker) per worker) reached", now)
            Socket.close(a.fd)
            Socket.close(b.fd)
            return
        }
        let tag = h.userData(op: Op.session)
        if !a.webSocket && !b.webSocket {
            if let pool, let copyBuffers {
                session.transport = .raw(SplicePump(a: a.fd, b: b.fd, tag: tag, pool: pool, copyBuffers: copyBuffers,
                                                    pendingAToB: a.rawBytes, pendingBToA: b.rawBytes,
                                                    inline: shared.options.relayMode != .spliceRing))
            } else {
                session.transport = .raw(BufferedPump(a: a.fd, b: b.fd, tag: tag, bufferSize: HbbrLimits.copyBufferSize,
                                                      pendingAToB: a.rawBytes, pendingBToA: b.rawBytes))
            }
        } else {
            session.transport = .framed(FramedRelay(a: a, b: b, tag: tag, bufferSize: HbbrLimits.framedReceiveBufferSize,
                                                    highWater: HbbrLimits.framedHighWater))
        }
        runtime.usage.set(session.usageKey, .init())
        counters.count(.sessionsStarted)
        countHandedOver(a, b, framed: a.webSocket || b.webSocket)
        Log.debug("relay session \(a.address) <-> \(b.address) (\(a.webSocket || b.webSocket ? "framed" : pool == nil ? "copy" : "splice"))")
        topUpTotalCredit(now)
        session.setMaxChunk(max(HbbrLimits.minimumChunk, min(session.bucket.available(now: now), max(0, totalCredit))))
        react(session.start(ring: &context.ring), h, &context)
    }

    func handleSession(_ c: Completion, _ context: inout WorkerContext<HbbrMail>) {
        let h = SlotTable<RelaySession>.Handle(c.userData)
        guard let session = sessions[h] else { return }
        let event = session.handle(c, ring: &context.ring)
        if !session.closing { book(session, h, now: context.now, &context) }
        react(event, h, &context)
    }

    /// A transport event: the first end of either half ends the session (§8.4); `drained`
    /// releases it.
    func react(_ event: PumpEvent, _ h: SlotTable<RelaySession>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        switch event {
        case .none: return
        case .halfClosed, .finished: endSession(h, &context)
        case .drained: releaseSession(h)
        }
    }

    func endSession(_ h: SlotTable<RelaySession>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let session = sessions[h], !session.closing else { return }
        if session.close(ring: &context.ring) == .drained { releaseSession(h) }
    }

    func releaseSession(_ h: SlotTable<RelaySession>.Handle) {
        guard let session = sessions.remove(h) else { return }
        shared.runtime.usage.remove(session.usageKey)
        counters.count(.sessionsEnded)
    }

    /// Books the bytes read since the last completion against the limiters, then caps or pauses.
    func book(_ session: RelaySession, _ h: SlotTable<RelaySession>.Handle, now: UInt64, _ context: inout WorkerContext<HbbrMail>) {
        let read = session.bytesRead
        let delta = Int(truncatingIfNeeded: read &- session.bytesBooked)
        guard delta > 0 else { return }
        session.bytesBooked = read
        countRelayed(session, UInt64(delta))
        session.lastActivity = now
        session.accounting.record(bytes: delta)
        session.bucket.consume(delta, now: now)
        totalCredit -= delta
        applyLimits(session, h, now: now, &context)
    }

    /// Lets the session read at most what both limiters allow now, or pauses it until a tick
    /// finds allowance again. Splice lengths are capped, nothing is copied (§8.4 limiters).
    func applyLimits(_ session: RelaySession, _ h: SlotTable<RelaySession>.Handle, now: UInt64, _ context: inout WorkerContext<HbbrMail>) {
        guard !session.closing else { return }
        // The worker's share of TOTAL_BANDWIDTH is topped up before it can stop a session: a
        // remainder below one chunk (left by a read of nearly the whole credit) used to pause
        // the session until the next tick while the shared limiter had plenty, stalling a bulk
        // pair for up to 100 ms several times a second.
        topUpTotalCredit(now)
        let own = session.bucket.available(now: now)
        let allowed = min(own, max(0, totalCredit))
        var event = PumpEvent.none
        if allowed < HbbrLimits.minimumChunk {
            if !session.throttled {
                counters.count(own < HbbrLimits.minimumChunk ? .pausedBySession : .pausedByTotal)
                event = session.pause(ring: &context.ring)
            }
        } else {
            session.setMaxChunk(allowed)
            if session.throttled { event = session.resume(ring: &context.ring) }
        }
        react(event, h, &context)
    }

    /// Takes TOTAL_BANDWIDTH allowance only when this worker's sessions need it: a worker must not
    /// hoard the shared allowance (an idle worker topping itself up every tick took half of a low
    /// total away from a busy one).
    func topUpTotalCredit(_ now: UInt64) {
        guard sessions.count > 0, totalCredit < HbbrLimits.minimumChunk else { return }
        totalCredit += shared.runtime.total.grant(HbbrLimits.totalCreditChunk - totalCredit, now: now)
    }

    /// Per tick: accounting (at most once a second: blocklist ends, blacklist and downgrade
    /// limits, usage), the next bandwidth slice for paused sessions, and the idle check.
    func evaluate(_ h: SlotTable<RelaySession>.Handle, now: UInt64, checkIdle: Bool, _ context: inout WorkerContext<HbbrMail>) {
        guard let session = sessions[h], !session.closing else { return }
        let nowMs = now / 1_000_000
        if nowMs >= session.accounting.lastEvaluation + SessionAccounting.evaluationIntervalMs {
            let runtime = shared.runtime
            switch session.accounting.evaluate(nowMs: nowMs, blocked: runtime.blocklist.contains(session.ip),
                                               blacklisted: runtime.blacklist.contains(session.ip)) {
            case .end:
                refuse(.blocklistedSession, "session of \(session.usageKey) ended: blocklisted", now)
                endSession(h, &context)
                return
            case .limitChanged, .unchanged:
                // From the accounting's state rather than the verdict: the session may have
                // started low (blacklisted at pairing) before the accounting's first look.
                session.setLowSpeed(session.accounting.downgraded || session.accounting.blacklisted, now: now)
            }
            runtime.usage.set(session.usageKey, session.accounting.usage)
        }
        if checkIdle && now >= session.lastActivity + shared.timings.idleLimitNanos {
            refuse(.idle, "session of \(session.usageKey) idle", now)
            endSession(h, &context)
            return
        }
        if session.throttled { applyLimits(session, h, now: now, &context) }
    }

    // MARK: Console (§9.2)

    func handleConsole(_ h: SlotTable<Connection>.Handle, _ data: UnsafeMutableRawBufferPointer, _ context: inout WorkerContext<HbbrMail>) {
        let bytes = UnsafeRawBufferPointer(rebasing: data[..<min(data.count, HbbrLimits.consoleMaxRead)])
        if let text = String(validating: bytes, as: UTF8.self) {
            let out = shared.console.execute(text)
            if !out.isEmpty { enqueue(Array(out.utf8), on: h, &context) }
        }
        end(h, &context)
    }

    // MARK: Sending and closing (before pairing)

    func enqueue(_ bytes: [UInt8], on h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], !c.closed else { return }
        if c.outbox.pendingCount + bytes.count > HbbrLimits.maxOutboxBytes { close(h, &context); return }
        connections.withElement(h) { $0.outbox.append(bytes) }
        flush(h, &context)
    }

    /// Sends what is queued; once all is sent, an ending connection closes and a quiescing one
    /// goes on to pairing.
    func flush(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], !c.outbox.isSending, !c.closed else { return }
        if c.outbox.isEmpty {
            if c.ending { close(h, &context) } else { tryPair(h, &context) }
            return
        }
        let submitted: Bool = connections.withElement(h) { conn in
            let fd = conn.fd
            return (try? conn.outbox.submit(fd: fd, ring: &context.ring, userData: h.userData(op: Op.send))) != nil
        } ?? false
        if !submitted { close(h, &context) }
    }

    func handleSendCompleted(_ c: Completion, _ context: inout WorkerContext<HbbrMail>) {
        let h = SlotTable<Connection>.Handle(c.userData)
        guard let sent = connections.withElement(h, { $0.outbox.completed(c.result) }) else { return }
        if connections[h]?.closed == true { finishIfDone(h, &context); return }
        if !sent { close(h, &context); return }
        flush(h, &context)
    }

    /// Ends a connection after what is queued for it was sent.
    func end(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], !c.ending, !c.closed else { return }
        connections.withElement(h) { $0.ending = true }
        if c.outbox.isEmpty { close(h, &context) } else { flush(h, &context) }
    }

    /// Closes at once: leaves the pairing table, cancels the receive; the slot is freed when
    /// nothing is in flight.
    func close(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], !c.closed else { return }
        if c.phase == .waiting {
            let me = WaitingHalf(worker: index, slot: h.index, generation: h.generation)
            shared.pairing.remove(uuid: c.uuid, where: { $0 == me })
        }
        connections.withElement(h) { $0.closed = true; $0.ending = true }
        // shutdown makes a pending receive complete (EOF) and ends the multishot.
        _ = Glibc.shutdown(c.fd, Int32(SHUT_RDWR))
        if c.recvArmed { try? context.ring.cancel(h.userData(op: Op.recv)) }
        finishIfDone(h, &context)
    }

    func finishIfDone(_ h: SlotTable<Connection>.Handle, _ context: inout WorkerContext<HbbrMail>) {
        guard let c = connections[h], c.closed, !c.recvArmed, !c.outbox.isSending else { return }
        Socket.close(c.fd)
        connections.remove(h)
    }
}
