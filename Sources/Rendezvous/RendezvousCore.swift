import RustDeskProtocol
import Synchronization

/// Settings of the rendezvous logic that do not change at run time.
public struct RendezvousSettings: Sendable {
    /// The licence key enforced on PunchHoleRequest; empty = any key accepted (§4.2, §4.3).
    public var licenceKey: String
    /// Signs IdPk for `pk` fields; nil = hbbs cannot sign (every `pk` empty).
    public var signingKey: Ed25519KeyPair?
    public var mask: LANMask?
    /// `LOCAL-IP`: relay address for LAN peers when a mask is set.
    public var localIP: String
    public var ipLimits: IPBlocker.Limits

    public init(licenceKey: String = "", signingKey: Ed25519KeyPair? = nil, mask: LANMask? = nil,
                localIP: String = "", ipLimits: IPBlocker.Limits = .init()) {
        self.licenceKey = licenceKey; self.signingKey = signingKey; self.mask = mask; self.localIP = localIP
        self.ipLimits = ipLimits
    }
}

/// A database write RegisterPk asks for (§10.3); the server hands it to `PeerStore`'s queue.
public enum PeerPersistence: Sendable, Equatable {
    case insert(guid: [UInt8], id: String, uuid: [UInt8], pk: [UInt8], ip: String)
    case update(guid: [UInt8], id: String, pk: [UInt8], ip: String)
}

/// The hbbs rendezvous rules (PROTOCOL.md §5), free of sockets: each handler takes a decoded
/// message, the sender's address and the time, updates the shared tables, and returns what the
/// server must send. Shared by every worker; all state is behind per-shard or per-table locks.
public final class RendezvousCore: Sendable {
    public let settings: RendezvousSettings
    public let registry = PeerRegistry()
    public let ipBlocker: IPBlocker
    public let ipChanges = IPChangeTable()
    public let punchLog = PunchRequestLog()
    /// Signed IdPk blobs already made (§4.4), so repeated punches to a peer are not signed again.
    public let signedKeys = SignedPeerKeyCache()
    public let relays: RelaySelector
    let serialAndServers: Mutex<(serial: Int32, servers: [String])>
    /// The serial again, lock-free: every RegisterPeer compares against it, and a lock there would
    /// be shared by all workers on the hot path.
    let currentSerial: Atomic<Int32>
    let alwaysUseRelayFlag: Atomic<Bool>

    public init(settings: RendezvousSettings, relays: RelaySelector = .init(), serial: Int32 = 0,
                rendezvousServers: [String] = [], alwaysUseRelay: Bool = false) {
        self.settings = settings
        self.relays = relays
        ipBlocker = IPBlocker(limits: settings.ipLimits)
        serialAndServers = Mutex((serial, rendezvousServers))
        currentSerial = Atomic(serial)
        alwaysUseRelayFlag = Atomic(alwaysUseRelay)
    }

    public var alwaysUseRelay: Bool {
        get { alwaysUseRelayFlag.load(ordering: .relaxed) }
        set { alwaysUseRelayFlag.store(newValue, ordering: .relaxed) }
    }

    public var serial: Int32 { currentSerial.load(ordering: .relaxed) }

    /// The ConfigUpdate a client with `clientSerial` should get, if the server's serial is newer.
    /// Lock-free in the common case (clients send ≥ 3, the default serial is 0).
    public func configUpdate(forClientSerial clientSerial: Int32) -> ConfigUpdate? {
        guard currentSerial.load(ordering: .relaxed) > clientSerial else { return nil }
        return serialAndServers.withLock { s in s.serial > clientSerial ? ConfigUpdate(serial: s.serial, rendezvousServers: s.servers) : nil }
    }

    // MARK: UDP registration (§5.2)

    public enum RegisterPeerOutcome: Equatable, Sendable {
        case drop
        /// Reply `RegisterPeerResponse{request_pk}`, then the ConfigUpdate if any.
        case reply(requestPk: Bool, configUpdate: ConfigUpdate?, ipChanged: Bool)
    }

    /// §5.2.1. `source` is the raw datagram source (not normalised).
    public func handleRegisterPeer(_ m: RegisterPeer, from source: SocketAddress, now: Millis) -> RegisterPeerOutcome {
        guard !m.id.isEmpty else { return .drop }
        let sourceIP = source.ip.normalized
        let (requestPk, ipChanged) = registry.withPeer(m.id) { record -> (Bool, Bool) in
            guard record != nil else { return (true, false) }
            // In place (`record!.…`): a keep-alive copies nothing and writes two inline fields.
            let changed: Bool
            if record!.socketAddr.port != 0 {
                changed = record!.socketAddr.ip.normalized != sourceIP
            } else {
                changed = IPAddress(record!.ip)?.normalized != sourceIP
            }
            let ipChange = changed && !sourceIP.isLoopback
            let request = !record!.hasPk || ipChange
            if !request {
                record!.socketAddr = source
                record!.lastRegTime = now
            }
            return (request, ipChange)
        }
        return .reply(requestPk: requestPk, configUpdate: configUpdate(forClientSerial: m.serial), ipChanged: ipChanged)
    }

    public enum RegisterPkPrecheck: Equatable, Sendable {
        case drop
        case reply(RegisterPkResponse.Result)
        /// The ID is not in memory: load it from the database, then call `completeRegisterPk`.
        case needsDatabaseLookup
        /// Decided with the record in memory.
        case decided(RegisterPkResponse.Result, PeerPersistence?)
    }

    /// §5.2.2 steps 1–4 (and 5–9 when the peer is in memory). `ip` is the textual source IP in
    /// raw form, as stored in `info.ip` and keyed in the IP blocker.
    public func handleRegisterPk(_ m: RegisterPk, from source: SocketAddress, now: Millis) -> RegisterPkPrecheck {
        guard !m.uuid.isEmpty, !m.pk.isEmpty else { return .drop }
        guard m.id.utf8.count >= 6 else { return .reply(.uuidMismatch) }
        let ip = source.ip.description
        guard ipBlocker.allow(ip: ip, id: m.id, now: now) else { return .reply(.tooFrequent) }
        let decided: (RegisterPkResponse.Result, PeerPersistence?)? = registry.withPeer(m.id) { record in
            guard record != nil else { return nil }
            return applyRegisterPk(m, to: &record!, source: source, ip: ip, now: now)
        }
        guard let decided else { return .needsDatabaseLookup }
        return .decided(decided.0, decided.1)
    }

    /// §5.2.2 steps 4–9 after a database lookup: `loaded` is the DB row (nil: unknown ID, a new
    /// empty record is created). The per-IP check has already passed.
    public func completeRegisterPk(_ m: RegisterPk, from source: SocketAddress, loaded: PeerRecord?, now: Millis) -> (RegisterPkResponse.Result, PeerPersistence?) {
        let ip = source.ip.description
        return registry.withPeer(m.id) { record in
            // A concurrent registration may have created it meanwhile: memory wins.
            if record == nil { record = loaded ?? PeerRecord() }
            return applyRegisterPk(m, to: &record!, source: source, ip: ip, now: now)
        }
    }

    func applyRegisterPk(_ m: RegisterPk, to r: inout PeerRecord, source: SocketAddress, ip: String, now: Millis) -> (RegisterPkResponse.Result, PeerPersistence?) {
        var changed: Bool
        var ipChanged = false
        if !r.hasUUID {
            changed = true
        } else if !r.uuidEquals(m.uuid) {
            return (.uuidMismatch, nil)
        } else {
            let sameIP = Self.sameIP(r.ip, ip)
            let samePk = r.pkEquals(m.pk)
            if !sameIP && !samePk { return (.uuidMismatch, nil) }
            ipChanged = !sameIP
            changed = !samePk || ipChanged
        }
        if moreThanWholeSeconds(6, since: r.regPkTime, now: now) {
            r.regPkCount = 0
        } else if r.regPkCount > 2 {
            return (.tooFrequent, nil)
        }
        r.regPkCount += 1
        r.regPkTime = now
        if ipChanged { ipChanges.record(id: m.id, ip: ip, now: now) }
        // Decision 8 of §15: an accepted RegisterPk refreshes the address and online time even when
        // nothing changed, so a peer is online right after an hbbs restart.
        r.socketAddr = source
        r.lastRegTime = now
        guard changed else { return (.ok, nil) }
        let isNew = !r.hasGUID
        let guid = isNew ? Self.newGUID() : r.guid
        r.setKeys(guid: guid, uuid: m.uuid, pk: m.pk, ip: ip)
        if isNew {
            return (.ok, .insert(guid: guid, id: m.id, uuid: m.uuid, pk: m.pk, ip: ip))
        }
        return (.ok, .update(guid: guid, id: m.id, pk: m.pk, ip: ip))
    }

    /// Compares stored and current textual IPs semantically (§3.3: `::ffff:1.2.3.4` = `1.2.3.4`).
    static func sameIP(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        guard let x = IPAddress(a), let y = IPAddress(b) else { return false }
        return x.normalized == y.normalized
    }

    /// A random UUID v4 as 16 raw bytes.
    static func newGUID() -> [UInt8] {
        // Two 64-bit draws (two getrandom calls), not sixteen.
        var g = SystemRandomNumberGenerator()
        var words = (g.next(), g.next())
        var bytes = withUnsafeBytes(of: &words) { Array($0) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        return bytes
    }

    /// §5.2.3: accepted only from loopback with a newer serial. `resolves` filters the list.
    public func handleConfigUpdate(_ m: ConfigUpdate, from source: SocketAddress, resolves: (String) -> Bool) {
        guard source.ip.isLoopback else { return }
        serialAndServers.withLock { s in
            guard m.serial > s.serial else { return }
            s.serial = m.serial
            s.servers = m.rendezvousServers.filter { !$0.isEmpty && resolves($0) }
            currentSerial.store(m.serial, ordering: .relaxed)
        }
    }

    // MARK: TCP registration (§5.9, beyond upstream OSS)

    /// Marks `id` as reachable over `route` (after an accepted RegisterPk on that connection) and
    /// refreshes its online time.
    public func attachRoute(_ id: String, _ route: TCPRoute, now: Millis) {
        registry.withPeer(id) { r in
            guard r != nil else { return }
            r!.tcpRoute = route
            r!.lastRegTime = now
        }
    }

    /// Any frame on a registration connection keeps the peer online.
    public func refreshRoute(_ id: String, _ route: TCPRoute, now: Millis) {
        registry.withPeer(id) { r in
            guard r?.tcpRoute == route else { return }
            r!.lastRegTime = now
        }
    }

    /// The connection ended: the peer is reached over UDP again (and goes offline unless it
    /// registers there).
    public func detachRoute(_ id: String, _ route: TCPRoute) {
        registry.withPeer(id) { r in
            guard r?.tcpRoute == route else { return }
            r!.tcpRoute = nil
        }
    }

    // MARK: Online status (§5.4.2)

    public func onlineStates(_ peers: [String], now: Millis) -> OnlineResponse {
        OnlineResponse(online: peers.map { registry.isOnline($0, now: now) })
    }

    // MARK: Signed peer key (§4.4)

    /// `get_pk`: empty when `version` is empty, the server cannot sign, or the peer is unknown.
    public func signedPeerKey(version: String, id: String, record: PeerRecord?) -> [UInt8] {
        guard !version.isEmpty, let key = settings.signingKey, let record else { return [] }
        let pk = record.pk
        return signedKeys.signed(id: id, pk: pk) { key.sign(message: IdPk(id: id, pk: pk).serializedBytes()) }
    }

    // MARK: Punch hole (§5.3.1)

    public enum PunchHoleDecision: Equatable, Sendable {
        /// Answer A (through its sink) with this failure.
        case fail(PunchHoleResponse.Failure)
        /// The ID is not in memory: load it, then call `decidePunchHole` again with the record.
        case needsDatabaseLookup
        /// Send by UDP to B's raw address.
        case sendToPeer(SocketAddress, RendezvousMessage)
    }

    /// §5.3.1 for A's request. `source` is A's connection address (after the WebSocket header
    /// rule), `ws` whether it came over WebSocket, `loaded` the DB record when a lookup was needed
    /// (`.some(nil)` = not in the DB either).
    public func handlePunchHoleRequest(_ m: PunchHoleRequest, from source: SocketAddress, ws: Bool, now: Millis,
                                       unixSeconds: Int64, loaded: PeerRecord?? = nil, timeMicros: UInt64) -> PunchHoleDecision {
        if !settings.licenceKey.isEmpty && m.licenceKey != settings.licenceKey { return .fail(.licenseMismatch) }
        var peer = registry.peer(m.id)
        if peer == nil {
            guard let loaded else { return .needsDatabaseLookup }
            guard let row = loaded else { return .fail(.idNotExist) }
            peer = registry.insertIfAbsent(m.id, row)
        }
        guard let b = peer else { return .fail(.idNotExist) }
        guard b.isOnline(now: now) else { return .fail(.offline) }
        let src = source.normalized
        punchLog.append(.init(unixSeconds: unixSeconds, at: now, from: src.ip.description, id: m.id,
                              to: b.socketAddr.normalized.ip.description))
        let peerLAN = settings.mask?.contains(b.socketAddr.ip) ?? false
        let aLAN = settings.mask?.contains(src.ip) ?? false
        var relay = relays.next()
        var nat = m.natType
        if alwaysUseRelay || peerLAN != aLAN {
            if peerLAN { relay = settings.localIP }
            nat = .symmetric
        }
        let sameIntranet = !ws && ((peerLAN && aLAN) || src.ip == b.socketAddr.ip.normalized)
        let mangled = AddrMangle.encode(source, timeMicros: timeMicros)
        let message: RendezvousMessage = sameIntranet
            ? .fetchLocalAddr(FetchLocalAddr(socketAddr: mangled, relayServer: relay))
            : .punchHole(PunchHole(socketAddr: mangled, relayServer: relay, natType: nat))
        return .sendToPeer(b.socketAddr, message)
    }

    /// §5.3.2: forward A's RequestRelay to B if B is in memory and has an address.
    public func handleRequestRelay(_ m: RequestRelay, from source: SocketAddress, timeMicros: UInt64) -> (SocketAddress, RendezvousMessage)? {
        guard let b = registry.peer(m.id), b.socketAddr.port != 0 else { return nil }
        var forwarded = m
        forwarded.socketAddr = AddrMangle.encode(source, timeMicros: timeMicros)
        return (b.socketAddr, .requestRelay(forwarded))
    }

    /// §5.3.3: the answer for A and the sink key (normalised target address) to deliver it to.
    /// `record` is B's record for `get_pk` (memory or DB).
    public func handleRelayResponse(_ m: RelayResponse, record: PeerRecord?) -> (target: SocketAddress, message: RendezvousMessage) {
        let target = AddrMangle.decode(m.socketAddr).normalized
        var out = m
        out.socketAddr = []
        if case .id(let id)? = m.union, !id.isEmpty {
            out.union = .pk(signedPeerKey(version: m.version, id: id, record: record))
        }
        if !out.relayServer.isEmpty {
            if settings.mask?.contains(target.ip) ?? false {
                out.relayServer = settings.localIP
            } else if out.relayServer == "LOCAL-IP" {
                out.relayServer = relays.next()
            }
        }
        return (target, .relayResponse(out))
    }

    /// §5.3.4: B's PunchHoleSent → the response for A. `source` is B's TCP source address.
    public func handlePunchHoleSent(_ m: PunchHoleSent, from source: SocketAddress, record: PeerRecord?, timeMicros: UInt64) -> (target: SocketAddress, message: RendezvousMessage) {
        let target = AddrMangle.decode(m.socketAddr).normalized
        let known = NatType.names[m.natType.rawValue] != nil
        let response = PunchHoleResponse(socketAddr: AddrMangle.encode(source, timeMicros: timeMicros),
                                         pk: signedPeerKey(version: m.version, id: m.id, record: record),
                                         relayServer: m.relayServer, union: known ? .natType(m.natType) : nil)
        return (target, .punchHoleResponse(response))
    }

    /// §5.3.5: B's LocalAddr → the response for A.
    public func handleLocalAddr(_ m: LocalAddr, record: PeerRecord?) -> (target: SocketAddress, message: RendezvousMessage) {
        let target = AddrMangle.decode(m.socketAddr).normalized
        let response = PunchHoleResponse(socketAddr: m.localAddr, pk: signedPeerKey(version: m.version, id: m.id, record: record),
                                         relayServer: m.relayServer, union: .isLocal(true))
        return (target, .punchHoleResponse(response))
    }
}
