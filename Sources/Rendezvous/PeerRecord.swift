import RustDeskProtocol

/// Milliseconds on a monotonic clock. Rules take "now" as an argument so tests control time.
public typealias Millis = UInt64

/// Rendezvous timing constants (PROTOCOL.md §5.2.1, §6).
public enum RendezvousTiming {
    /// A peer is online iff it registered less than this long ago (`REG_TIMEOUT`).
    public static let registrationTimeout: Millis = 30_000
}

/// One peer in memory (PROTOCOL.md §10.4).
public struct PeerRecord: Sendable, Equatable {
    /// Raw UDP source of the last accepted registration, in the socket's family (IPv4 peers on a
    /// dual-stack socket are `::ffff:a.b.c.d`): where B-bound datagrams go. `0.0.0.0:0` until the
    /// peer registers after a DB load.
    public var socketAddr: SocketAddress
    /// Monotonic time of the last accepted registration; nil = "long ago" (offline).
    public var lastRegTime: Millis?
    /// DB primary key, empty until the row is inserted.
    public var guid: [UInt8]
    public var uuid: [UInt8]
    public var pk: [UInt8]
    /// `info.ip`: the textual source IP of the last accepted RegisterPk, raw form (upstream keeps
    /// `::ffff:` text under dual stack; §3.3, decision 7 of §15).
    public var ip: String
    /// Per-peer RegisterPk rate limit (§5.2.2 step 6).
    public var regPkCount: UInt32
    public var regPkTime: Millis?
    /// Set while the peer is registered over a TCP/WebSocket connection (§5.9): B-bound messages go
    /// there instead of UDP.
    public var tcpRoute: TCPRoute?

    public init(socketAddr: SocketAddress = .unspecifiedV4, lastRegTime: Millis? = nil, guid: [UInt8] = [],
                uuid: [UInt8] = [], pk: [UInt8] = [], ip: String = "", regPkCount: UInt32 = 0, regPkTime: Millis? = nil) {
        self.socketAddr = socketAddr; self.lastRegTime = lastRegTime; self.guid = guid; self.uuid = uuid
        self.pk = pk; self.ip = ip; self.regPkCount = regPkCount; self.regPkTime = regPkTime
    }

    /// Online: registered less than `RendezvousTiming.registrationTimeout` ago (64-bit arithmetic).
    @inlinable
    public func isOnline(now: Millis) -> Bool {
        guard let t = lastRegTime else { return false }
        return now &- t < RendezvousTiming.registrationTimeout && now >= t
    }
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
