import PeerStore
import Rendezvous
import RustDeskProtocol
import ServerConfig
import Synchronization
import URing
import Workers

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
    public let counters: HbbsCounters

    init(core: RendezvousCore, console: RendezvousConsole, store: PeerStore?, options: HbbsOptions, workers: Int) {
        counters = HbbsCounters(workers: workers)
        self.core = core
        self.console = console
        self.store = store
        self.options = options
        trusted = options.trustedProxies.trustedProxies
        port = options.port
    }
}

/// hbbs counters, per worker (`CounterTable`: each worker writes only its own block, so the UDP
/// path never shares a cache line with another worker); summed when read by metrics and logs.
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

    /// Events counted per worker. Raw values index the table after the drops.
    public enum Event: Int, CaseIterable, Sendable {
        case registerPeer, registerPk, onlineRequest
        // PunchHoleRequest outcomes (§5.3.1).
        case punchForwardedUDP, punchForwardedTCP, punchOffline, punchIDNotExist, punchLicenceMismatch
        // RequestRelay outcomes (§5.3.2).
        case relayForwardedUDP, relayForwardedTCP, relayUnknownID
        // B's answers for A (§5.3.3–5.3.5): delivered to A's waiting connection, or no sink.
        case answerDelivered, answerNoSink
        // §4.5 on plain TCP P: greeted (key pair made and signed), or the client spoke first.
        case secureGreeting, greetingSkipped
    }

    /// Connections open per listener kind (gauges; a worker adds and subtracts its own).
    public enum Open: Int, CaseIterable, Sendable {
        case rendezvous, nat, webSocket, console
        public var label: String {
            switch self {
            case .rendezvous: return "rendezvous"
            case .nat: return "nat"
            case .webSocket: return "websocket"
            case .console: return "console"
            }
        }
    }

    public let table: CounterTable

    public init(workers: Int) {
        table = CounterTable(workers: workers, counters: Drop.allCases.count + Event.allCases.count + Open.allCases.count)
    }

    /// Worker `worker`'s counters; only that worker may use the result.
    public func worker(_ worker: Int) -> Worker { Worker(slot: table.slot(worker)) }

    public func value(_ d: Drop) -> Int { Int(truncatingIfNeeded: table.sum(Self.index(d))) }
    public func value(_ e: Event) -> Int { Int(truncatingIfNeeded: table.sum(Self.index(e))) }
    public func value(_ o: Open) -> Int { Int(truncatingIfNeeded: Int64(bitPattern: table.sum(Self.index(o)))) }

    static func index(_ d: Drop) -> Int { d.rawValue }
    static func index(_ e: Event) -> Int { Drop.allCases.count + e.rawValue }
    static func index(_ o: Open) -> Int { Drop.allCases.count + Event.allCases.count + o.rawValue }

    /// One worker's view: plain single-writer increments.
    public struct Worker: Sendable {
        let slot: CounterSlot
        @inline(__always) public func count(_ d: Drop) { slot.add(HbbsCounters.index(d)) }
        @inline(__always) public func count(_ e: Event) { slot.add(HbbsCounters.index(e)) }
        /// A connection of kind `o` opened (+1) or closed (-1).
        @inline(__always) public func open(_ o: Open, _ delta: Int) { slot.add(HbbsCounters.index(o), UInt64(bitPattern: Int64(delta))) }
    }
}
