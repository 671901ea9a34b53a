import RustDeskProtocol

/// Milliseconds on a monotonic clock. Rules take "now" as an argument so tests control time.
public typealias Millis = UInt64

/// Rendezvous timing constants (PROTOCOL.md §5.2.1, §6).
public enum RendezvousTiming {
    /// A peer is online iff it registered less than this long ago (`REG_TIMEOUT`).
    public static let registrationTimeout: Millis = 30_000
}

/// One peer in memory (PROTOCOL.md §10.4).
///
/// Laid out for the 1,000,000-peer design point (docs/PERFORMANCE.md, "hbbs registry"): 56
/// bytes inline (the address as two words and a port, optionals as sentinels, the TCP route in
/// 8 bytes) plus at most one heap object holding every variable-length field (GUID, UUID, key,
/// IP text), made when a RegisterPk changes them and shared by copies until then. A keep-alive
/// (`socketAddr`, `lastRegTime`) writes only inline fields, so it never allocates.
public struct PeerRecord: Sendable, Equatable {
    /// The address's 16 octets as IPv6 (an IPv4 address in `addressLow`'s low 32 bits).
    @usableFromInline var addressHigh: UInt64
    @usableFromInline var addressLow: UInt64
    /// `Self.never` = nil.
    @usableFromInline var lastRegistration: Millis
    @usableFromInline var lastRegPk: Millis
    /// guid ‖ uuid ‖ pk ‖ ip; nil when all four are empty.
    @usableFromInline var shared: SharedPeerBytes?
    @usableFromInline var routeSlot: UInt32
    /// Per-peer RegisterPk rate limit (§5.2.2 step 6).
    public var regPkCount: UInt32
    @usableFromInline var routeGeneration: UInt16
    /// `Self.noRoute` = no TCP route.
    @usableFromInline var routeWorker: UInt16
    @usableFromInline var port: UInt16
    @usableFromInline var addressIsV4: Bool

    @usableFromInline static let never = Millis.max
    @usableFromInline static let noRoute = UInt16.max

    public init(socketAddr: SocketAddress = .unspecifiedV4, lastRegTime: Millis? = nil, guid: [UInt8] = [],
                uuid: [UInt8] = [], pk: [UInt8] = [], ip: String = "", regPkCount: UInt32 = 0, regPkTime: Millis? = nil) {
        addressHigh = 0; addressLow = 0; port = 0; addressIsV4 = true
        lastRegistration = Self.never; lastRegPk = Self.never
        shared = PeerBytes.make(guid: guid, uuid: uuid, pk: pk, ip: ip).map(SharedPeerBytes.init)
        routeSlot = 0; routeGeneration = 0; routeWorker = Self.noRoute
        self.regPkCount = regPkCount
        self.socketAddr = socketAddr
        self.lastRegTime = lastRegTime
        self.regPkTime = regPkTime
    }

    /// Raw UDP source of the last accepted registration, in the socket's family (IPv4 peers on a
    /// dual-stack socket are `::ffff:a.b.c.d`): where B-bound datagrams go. `0.0.0.0:0` until the
    /// peer registers after a DB load.
    public var socketAddr: SocketAddress {
        @inlinable get {
            addressIsV4
                ? SocketAddress(IPv4Address(UInt32(truncatingIfNeeded: addressLow)), port: port)
                : SocketAddress(IPv6Address(high: addressHigh, low: addressLow), port: port)
        }
        @inlinable set {
            switch newValue.ip {
            case .v4(let a): addressHigh = 0; addressLow = UInt64(a.value); addressIsV4 = true
            case .v6(let a): addressHigh = a.high; addressLow = a.low; addressIsV4 = false
            }
            port = newValue.port
        }
    }

    /// Monotonic time of the last accepted registration; nil = "long ago" (offline).
    public var lastRegTime: Millis? {
        @inlinable get { lastRegistration == Self.never ? nil : lastRegistration }
        @inlinable set { lastRegistration = newValue ?? Self.never }
    }

    /// Time of the last accepted RegisterPk, for its rate limit.
    public var regPkTime: Millis? {
        @inlinable get { lastRegPk == Self.never ? nil : lastRegPk }
        @inlinable set { lastRegPk = newValue ?? Self.never }
    }

    /// Set while the peer is registered over a TCP/WebSocket connection (§5.9): B-bound messages go
    /// there instead of UDP.
    public var tcpRoute: TCPRoute? {
        get { routeWorker == Self.noRoute ? nil : TCPRoute(worker: Int(routeWorker), slot: routeSlot, generation: routeGeneration) }
        set {
            guard let newValue else { routeWorker = Self.noRoute; return }
            precondition(newValue.worker >= 0 && newValue.worker < Int(Self.noRoute), "worker index out of range")
            routeWorker = UInt16(newValue.worker); routeSlot = newValue.slot; routeGeneration = newValue.generation
        }
    }

    /// DB primary key, empty until the row is inserted. A new array (cold paths).
    public var guid: [UInt8] { bytes?.field(.guid) ?? [] }
    public var uuid: [UInt8] { bytes?.field(.uuid) ?? [] }
    public var pk: [UInt8] { bytes?.field(.pk) ?? [] }
    /// `info.ip`: the textual source IP of the last accepted RegisterPk, raw form (upstream keeps
    /// `::ffff:` text under dual stack; §3.3, decision 7 of §15).
    public var ip: String { bytes.map { String(decoding: $0.field(.ip), as: UTF8.self) } ?? "" }

    /// Whether the field is non-empty, without copying it.
    public var hasGUID: Bool { (bytes?.count(.guid) ?? 0) > 0 }
    public var hasUUID: Bool { (bytes?.count(.uuid) ?? 0) > 0 }
    public var hasPk: Bool { (bytes?.count(.pk) ?? 0) > 0 }

    /// Compares the stored field with `other` without copying it.
    public func uuidEquals(_ other: [UInt8]) -> Bool { PeerBytes.equal(bytes, .uuid, other) }
    public func pkEquals(_ other: [UInt8]) -> Bool { PeerBytes.equal(bytes, .pk, other) }

    /// Replaces the four variable-length fields at once (one allocation).
    public mutating func setKeys(guid: [UInt8], uuid: [UInt8], pk: [UInt8], ip: String) {
        shared = PeerBytes.make(guid: guid, uuid: uuid, pk: pk, ip: ip).map(SharedPeerBytes.init)
    }

    var bytes: PeerBytes? { shared?.bytes }

    /// Online: registered less than `RendezvousTiming.registrationTimeout` ago (64-bit arithmetic).
    @inlinable
    public func isOnline(now: Millis) -> Bool {
        guard let t = lastRegTime else { return false }
        return now &- t < RendezvousTiming.registrationTimeout && now >= t
    }

    public static func == (a: PeerRecord, b: PeerRecord) -> Bool {
        a.socketAddr == b.socketAddr && a.lastRegistration == b.lastRegistration && a.lastRegPk == b.lastRegPk
            && a.regPkCount == b.regPkCount && a.tcpRoute == b.tcpRoute && PeerBytes.equal(a.bytes, b.bytes)
    }
}

/// A peer's GUID, UUID, key and IP text in one immutable heap object (one malloc instead of
/// four, no per-array header): lengths in the header, the bytes back to back.
@usableFromInline
final class PeerBytes: ManagedBuffer<PeerBytes.Lengths, UInt8> {
    @usableFromInline
    struct Lengths {
        var guid: UInt32, uuid: UInt32, pk: UInt32, ip: UInt32
    }

    enum Field { case guid, uuid, pk, ip }

    /// nil when every field is empty.
    static func make(guid: [UInt8], uuid: [UInt8], pk: [UInt8], ip: String) -> PeerBytes? {
        let ipCount = ip.utf8.count
        let total = guid.count + uuid.count + pk.count + ipCount
        guard total > 0 else { return nil }
        let lengths = Lengths(guid: UInt32(guid.count), uuid: UInt32(uuid.count), pk: UInt32(pk.count), ip: UInt32(ipCount))
        let made = unsafeDowncast(create(minimumCapacity: total) { _ in lengths }, to: PeerBytes.self)
        made.withUnsafeMutablePointerToElements { base in
            var at = base
            func append(_ part: [UInt8]) {
                part.withUnsafeBufferPointer { p in
                    if let src = p.baseAddress { at.initialize(from: src, count: p.count) }
                }
                at += part.count
            }
            append(guid); append(uuid); append(pk)
            for b in ip.utf8 { at.initialize(to: b); at += 1 }
        }
        return made
    }

    func range(_ field: Field) -> Range<Int> {
        let l = header
        let g = Int(l.guid), u = Int(l.uuid), p = Int(l.pk), i = Int(l.ip)
        switch field {
        case .guid: return 0..<g
        case .uuid: return g..<(g + u)
        case .pk: return (g + u)..<(g + u + p)
        case .ip: return (g + u + p)..<(g + u + p + i)
        }
    }

    func count(_ field: Field) -> Int { range(field).count }

    func withField<R>(_ field: Field, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let r = range(field)
        return withUnsafeMutablePointerToElements { body(UnsafeBufferPointer(start: $0 + r.lowerBound, count: r.count)) }
    }

    func field(_ field: Field) -> [UInt8] { withField(field) { Array($0) } }

    static func equal(_ bytes: PeerBytes?, _ field: Field, _ other: [UInt8]) -> Bool {
        guard let bytes else { return other.isEmpty }
        return bytes.withField(field) { stored in other.withUnsafeBufferPointer { stored.elementsEqual($0) } }
    }

    static func equal(_ a: PeerBytes?, _ b: PeerBytes?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let a?, let b?):
            let (x, y) = (a.header, b.header)
            guard (x.guid, x.uuid, x.pk, x.ip) == (y.guid, y.uuid, y.pk, y.ip) else { return false }
            let total = Int(x.guid) + Int(x.uuid) + Int(x.pk) + Int(x.ip)
            return a.withUnsafeMutablePointerToElements { p in
                b.withUnsafeMutablePointerToElements { q in
                    UnsafeBufferPointer(start: p, count: total).elementsEqual(UnsafeBufferPointer(start: q, count: total))
                }
            }
        default: return false
        }
    }
}

/// A `PeerBytes` that may cross threads with its record (records are copied out under shard
/// locks by any worker).
@usableFromInline
struct SharedPeerBytes: @unchecked Sendable {
    // @unchecked: ManagedBuffer is not Sendable, but a PeerBytes is never mutated after `make`.
    @usableFromInline let bytes: PeerBytes
}

/// A connection on some worker: where a TCP-registered peer is reached (§5.9).
public struct TCPRoute: Sendable, Equatable {
    public var worker: Int
    public var slot: UInt32
    public var generation: UInt16
    public init(worker: Int, slot: UInt32, generation: UInt16) { self.worker = worker; self.slot = slot; self.generation = generation }
}

/// "More than N whole seconds have passed" as upstream compares (`elapsed().as_secs() > N`).
@inlinable
func moreThanWholeSeconds(_ seconds: UInt64, since t: Millis?, now: Millis) -> Bool {
    guard let t else { return true }
    return now >= t && (now - t) / 1000 > seconds
}

/// Whole seconds elapsed, for console output.
@inlinable
func wholeSeconds(since t: Millis?, now: Millis) -> UInt64 {
    guard let t, now >= t else { return 0 }
    return (now - t) / 1000
}
