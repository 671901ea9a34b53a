import PeerStore
import Rendezvous
import RustDeskProtocol
import ServerConfig
import Synchronization
import URing

/// Everything the hbbs workers share: the rules, the sink table, the database queue, settings
/// and counters. Created once by `HbbsServer`; every member is thread-safe.
public final class HbbsShared: Sendable {
    public let core: RendezvousCore
    public let console: RendezvousConsole
    public let sinks = SinkTable()
    public let store: PeerStore?
    public let options: HbbsOptions
    public let trusted: TrustedProxies
    public let port: UInt16
    public let counters = HbbsCounters()

    init(core: RendezvousCore, console: RendezvousConsole, store: PeerStore?, options: HbbsOptions) {
        self.core = core
        self.console = console
        self.store = store
        self.options = options
        trusted = options.trustedProxies.trustedProxies
        port = options.port
    }
}

/// Drop and event counters; plain atomics, read by metrics and logs.
public final class HbbsCounters: Sendable {
    public enum Drop: Int, CaseIterable, Sendable {
        case undecodableDatagram, truncatedDatagram, ignoredDatagram, udpSendPoolExhausted
        case connectionLimit, badFrame, readTimeout, databaseQueueFull, webSocketUpgradeFailed
        public var label: String {
            switch self {
            case .undecodableDatagram: return "undecodable_datagram"
            case .truncatedDatagram: return "truncated_datagram"
            case .ignoredDatagram: return "ignored_datagram"
            case .udpSendPoolExhausted: return "udp_send_pool_exhausted"
            case .connectionLimit: return "connection_limit"
            case .badFrame: return "bad_frame"
            case .readTimeout: return "read_timeout"
            case .databaseQueueFull: return "database_queue_full"
            case .webSocketUpgradeFailed: return "websocket_upgrade_failed"
            }
        }
    }
    let drops = Drop.allCases.map { _ in AtomicBox() }
    public let registerPeer = AtomicBox()
    public let registerPk = AtomicBox()
    public let punchRequests = AtomicBox()

    public func count(_ d: Drop) { drops[d.rawValue].add() }
    public func value(_ d: Drop) -> Int { drops[d.rawValue].load }
}

/// An atomic in a class, so it can live in arrays and be shared.
public final class AtomicBox: Sendable {
    public let value = Atomic<Int>(0)
    init() {}
    public func add() { value.add(1, ordering: .relaxed) }
    public var load: Int { value.load(ordering: .relaxed) }
}
