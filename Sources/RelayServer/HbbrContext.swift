import Relay
import RustDeskProtocol
import ServerConfig
import Synchronization
import Workers

/// Limits of one hbbr worker (named so docs and tests refer to one place).
public enum HbbrLimits {
    /// Connections per worker before pairing (reading the first message, waiting for a partner,
    /// console); past it new connections are closed and counted.
    public static let maxConnectionsPerWorker = 16_384
    /// Paired sessions per worker (two descriptors each); past it the pair is closed and counted.
    public static let maxSessionsPerWorker = 16_384
    /// Halves waiting for their partner, all workers together (the shared `PairingTable`).
    public static let maxWaitingHalves = 65_536
    /// The first message (RequestRelay) must fit in this; a larger frame header, or more bytes
    /// buffered without a complete first message, closes the connection.
    public static let maxFirstMessage = FrameLimits.rendezvousMaxFrameLength
    /// Largest message relayed between a WebSocket side and the other side (§2.1 SHOULD ≥ 16 MiB).
    public static let maxRelayedMessage = FrameLimits.relayMaxFrameLength
    /// Receive buffers before pairing, shared by a worker's connections (provided-buffer ring).
    public static let receiveBufferCount = 1024
    public static let receiveBufferSize = 4096
    /// Admin console: one read of at most this many bytes (§9).
    public static let consoleMaxRead = 1024
    /// Pending outbound bytes of a connection before pairing (101 response, pongs, console reply).
    public static let maxOutboxBytes = 256 * 1024
    /// Message relay: per-side receive buffer, and the queue size past which the other side is
    /// not read until the queue drains.
    public static let framedReceiveBufferSize = 64 << 10
    public static let framedHighWater = 1 << 20
    /// Copy-mode pump buffer per direction (and the splice pumps' pooled fallback buffers).
    public static let copyBufferSize = 64 << 10
    /// A limited session reads at least this much per read, or waits for the next slice.
    public static let minimumChunk = 4096
    /// Allowance of the shared TOTAL_BANDWIDTH limiter a worker takes at a time.
    public static let totalCreditChunk = 1 << 20
}

/// hbbr's timeouts (PROTOCOL.md §6). The 30-s waits and the idle timeout can be shortened for
/// tests only (`RINGDESK_TEST_TIME_SCALE`, see `init(scale:)`).
public struct RelayTimings: Sendable, Equatable {
    /// First message (RequestRelay) after accept, or after the WebSocket upgrade.
    public var firstMessageNanos: UInt64 = 30_000_000_000
    /// A half waits this long for its partner.
    public var pairingWaitNanos: UInt64 = 30_000_000_000
    /// A session with no byte either way for this long is closed: "more than 30 whole seconds"
    /// is 31 s or more.
    public var idleLimitNanos: UInt64 = 31_000_000_000
    /// How often idleness is checked.
    public var idleCheckNanos: UInt64 = 3_000_000_000
    /// The WebSocket upgrade must complete within this (§2.3 SHOULD; upstream has none).
    public var upgradeNanos: UInt64 = 10_000_000_000
    /// The admin console's single read (§9).
    public var consoleNanos: UInt64 = 1_000_000_000
    /// Worker tick: bandwidth slices, accounting (evaluated at most once per second), timeouts.
    public static let tickNanos: UInt64 = 100_000_000

    public init() {}

    /// Test only: multiplies the first-message, pairing and idle timeouts and the idle check
    /// period by `scale` (0 < scale ≤ 1; other values keep the defaults). The upgrade and console
    /// timeouts and the once-per-second accounting are not scaled.
    public init(scale: Double) {
        self.init()
        guard scale > 0, scale < 1, scale.isFinite else { return }
        func scaled(_ v: UInt64) -> UInt64 { max(RelayTimings.tickNanos, UInt64(Double(v) * scale)) }
        firstMessageNanos = scaled(firstMessageNanos)
        pairingWaitNanos = scaled(pairingWaitNanos)
        idleLimitNanos = scaled(idleLimitNanos)
        idleCheckNanos = scaled(idleCheckNanos)
    }

    /// The test-only environment variable that shortens the waits.
    public static let testScaleVariable = "RINGDESK_TEST_TIME_SCALE"
}

/// A half waiting in the shared pairing table: which worker holds its connection, and where.
public struct WaitingHalf: Sendable, Equatable {
    public var worker: Int
    public var slot: UInt32
    public var generation: UInt16
}

/// A connection leaving the pre-pairing table for a session: its descriptor (owned by whoever
/// holds this value), transport, address, and what was read past its first message.
public struct PairedHalf: Sendable {
    public var fd: Int32
    public var webSocket: Bool
    /// After `X-Real-IP` on WebSocket; the second half's is the session's address (§8.3).
    public var address: SocketAddress
    /// The stream that read the first message (a WebSocket side keeps decoding with it).
    public var stream: MessageStream
    /// Plain TCP: the raw bytes behind the RequestRelay frame, in order.
    public var rawBytes: [UInt8]
    /// WebSocket: the messages decoded behind the RequestRelay message.
    public var heldMessages: [[UInt8]]
}

/// Messages between hbbr workers.
public enum HbbrMail: Sendable {
    /// The partner of this worker's waiting half (slot/generation) arrived on another worker;
    /// this worker now owns `half.fd` and the session.
    case partnerArrived(slot: UInt32, generation: UInt16, half: PairedHalf)
    /// A stop signal with a drain time: stop accepting (close the listeners), close every
    /// connection not yet in a session, and let the sessions run until they end or the worker stops.
    case drain
}

/// Everything the hbbr workers share; created once by `HbbrServer`; every member is thread-safe.
public final class HbbrShared: Sendable {
    public let options: HbbrOptions
    public let runtime: RelayRuntime
    public let console: RelayConsole
    public let pairing: PairingTable<WaitingHalf>
    /// Empty: any licence key is accepted.
    public let licenceKey: String
    public let trusted: TrustedProxies
    public let timings: RelayTimings
    public let counters: HbbrCounters

    init(options: HbbrOptions, runtime: RelayRuntime, licenceKey: String, timings: RelayTimings, workers: Int) {
        counters = HbbrCounters(workers: workers)
        self.options = options
        self.runtime = runtime
        console = RelayConsole(runtime: runtime)
        pairing = PairingTable(capacity: HbbrLimits.maxWaitingHalves)
        self.licenceKey = licenceKey
        trusted = options.trustedProxies.trustedProxies
        self.timings = timings
    }
}

/// Refusals, drops, sessions and relayed bytes, per worker (`CounterTable`: each worker writes
/// only its own block, so counting a relayed chunk shares no cache line with other workers);
/// summed when read by logs and metrics.
public final class HbbrCounters: Sendable {
    /// Why a connection or session was closed early. Raw values index the counters; `label` is
    /// the metric label.
    public enum Drop: Int, CaseIterable, Sendable {
        case blocked, connectionLimit, sessionLimit, pairingTableFull, notRequestRelay, badFrame
        case licenceMismatch, emptyUUID, firstMessageTimeout, upgradeFailed, unpaired, idle, blocklistedSession
        public var label: String {
            switch self {
            case .blocked: return "blocked"
            case .connectionLimit: return "connection_limit"
            case .sessionLimit: return "session_limit"
            case .pairingTableFull: return "pairing_table_full"
            case .notRequestRelay: return "not_request_relay"
            case .badFrame: return "bad_frame"
            case .licenceMismatch: return "licence_mismatch"
            case .emptyUUID: return "empty_uuid"
            case .firstMessageTimeout: return "first_message_timeout"
            case .upgradeFailed: return "websocket_upgrade_failed"
            case .unpaired: return "unpaired_timeout"
            case .idle: return "idle_timeout"
            case .blocklistedSession: return "blocklisted_session"
            }
        }
    }

    /// Running totals.
    public enum Event: Int, CaseIterable, Sendable {
        case sessionsStarted, sessionsEnded
        /// Sessions whose halves were accepted by different workers (one was handed over).
        case crossWorkerPairs
        /// Bytes read from one half for the other, by how they moved.
        case bytesSpliced, bytesCopied, bytesFramed
        /// A session stopped reading until a later tick, by the limiter that had no allowance
        /// left: its own (SINGLE_BANDWIDTH or LIMIT_SPEED) or the shared TOTAL_BANDWIDTH.
        case pausedBySession, pausedByTotal
    }

    /// Per-worker levels, set by the worker at each tick (100 ms).
    public enum Level: Int, CaseIterable, Sendable {
        case connections, sessions, pipesInUse, pipesOpen, copyBuffersInUse
    }

    public let table: CounterTable

    public init(workers: Int) {
        table = CounterTable(workers: workers, counters: Drop.allCases.count + Event.allCases.count + Level.allCases.count)
    }

    /// Worker `worker`'s counters; only that worker may use the result.
    public func worker(_ worker: Int) -> Worker { Worker(slot: table.slot(worker)) }

    public func value(_ d: Drop) -> Int { Int(truncatingIfNeeded: table.sum(Self.index(d))) }
    public func value(_ e: Event) -> UInt64 { table.sum(Self.index(e)) }
    /// Sessions running now (all workers).
    public var activeSessions: Int { Int(truncatingIfNeeded: value(.sessionsStarted) &- value(.sessionsEnded)) }
    public func value(_ l: Level, worker: Int) -> Int { Int(truncatingIfNeeded: table.value(worker: worker, Self.index(l))) }

    static func index(_ d: Drop) -> Int { d.rawValue }
    static func index(_ e: Event) -> Int { Drop.allCases.count + e.rawValue }
    static func index(_ l: Level) -> Int { Drop.allCases.count + Event.allCases.count + l.rawValue }

    /// One worker's view: plain single-writer increments.
    public struct Worker: Sendable {
        let slot: CounterSlot
        @inline(__always) public func count(_ d: Drop) { slot.add(HbbrCounters.index(d)) }
        @inline(__always) public func count(_ e: Event, _ amount: UInt64 = 1) { slot.add(HbbrCounters.index(e), amount) }
        @inline(__always) public func set(_ l: Level, _ value: Int) { slot.set(HbbrCounters.index(l), UInt64(max(0, value))) }
    }
}
