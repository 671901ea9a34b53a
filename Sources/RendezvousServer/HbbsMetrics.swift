import Prometheus
import ServerKit
import Workers

/// hbbs's metrics (docs/OPERATIONS.md, "Metrics"): read at scrape time from the workers' counter
/// blocks, the peer registry and the engine, and published into the Prometheus registry. Runs
/// only on the metrics endpoint's thread.
final class HbbsMetrics: @unchecked Sendable {
    let shared: HbbsShared
    let engine: EngineMetrics
    let peersRegistered: Prometheus.Gauge
    let peersOnline: Prometheus.Gauge
    let sinksWaiting: Prometheus.Gauge
    let open: [Prometheus.Gauge]
    let events: [(HbbsCounters.Event, DeltaCounter)]
    let drops: [DeltaCounter]

    init(_ publisher: MetricsPublisher, shared: HbbsShared, engineTable: CounterTable) {
        self.shared = shared
        engine = EngineMetrics(publisher, table: engineTable)
        peersRegistered = publisher.gauge("peers_registered", help: "Peers held in memory (registered since start or loaded from the database)")
        peersOnline = publisher.gauge("peers_online", help: "Peers whose last registration is under 30 s old")
        sinksWaiting = publisher.gauge("punch_sinks_waiting", help: "Connections of A waiting for B's answer (§6)")
        open = HbbsCounters.Open.allCases.map {
            publisher.gauge("connections_open", help: "TCP and WebSocket connections open, by listener",
                            labels: [("port", $0.label)])
        }
        events = HbbsCounters.Event.allCases.map { event in
            let (name, help, labels) = Self.describe(event)
            return (event, publisher.counter(name, help: help, labels: labels))
        }
        drops = HbbsCounters.Drop.allCases.map {
            publisher.counter("drops_total", help: "Datagrams, messages and connections dropped, by reason",
                              labels: [("reason", $0.label)])
        }
    }

    static func describe(_ e: HbbsCounters.Event) -> (name: String, help: String, labels: [(String, String)]) {
        let punch = "PunchHoleRequests by outcome (§5.3.1)"
        let relay = "RequestRelay messages by outcome (§5.3.2)"
        let answers = "PunchHoleSent, LocalAddr and RelayResponse answers from B, by whether A's connection still waited"
        let greetings = "Secure-TCP greetings (§4.5) on plain TCP P: sent, or skipped because the client spoke first"
        switch e {
        case .registerPeer: return ("register_peer_total", "RegisterPeer datagrams", [])
        case .registerPk: return ("register_pk_total", "RegisterPk requests (UDP and TCP)", [])
        case .onlineRequest: return ("online_requests_total", "OnlineRequest queries", [])
        case .punchForwardedUDP: return ("punch_hole_requests_total", punch, [("outcome", "forwarded_udp")])
        case .punchForwardedTCP: return ("punch_hole_requests_total", punch, [("outcome", "forwarded_tcp")])
        case .punchOffline: return ("punch_hole_requests_total", punch, [("outcome", "offline")])
        case .punchIDNotExist: return ("punch_hole_requests_total", punch, [("outcome", "id_not_exist")])
        case .punchLicenceMismatch: return ("punch_hole_requests_total", punch, [("outcome", "licence_mismatch")])
        case .relayForwardedUDP: return ("relay_requests_total", relay, [("outcome", "forwarded_udp")])
        case .relayForwardedTCP: return ("relay_requests_total", relay, [("outcome", "forwarded_tcp")])
        case .relayUnknownID: return ("relay_requests_total", relay, [("outcome", "unknown_id")])
        case .answerDelivered: return ("peer_answers_total", answers, [("outcome", "delivered")])
        case .answerNoSink: return ("peer_answers_total", answers, [("outcome", "no_waiting_connection")])
        case .secureGreeting: return ("tcp_greetings_total", greetings, [("outcome", "sent")])
        case .greetingSkipped: return ("tcp_greetings_total", greetings, [("outcome", "client_spoke_first")])
        }
    }

    func collect(nowMillis: UInt64) {
        let registry = shared.core.registry
        peersRegistered.set(Int64(registry.count))
        peersOnline.set(Int64(registry.onlineCount(now: nowMillis)))
        sinksWaiting.set(Int64(shared.sinks.count))
        for o in HbbsCounters.Open.allCases { open[o.rawValue].set(Int64(shared.counters.value(o))) }
        for (event, counter) in events { counter.publish(UInt64(shared.counters.value(event))) }
        for d in HbbsCounters.Drop.allCases { drops[d.rawValue].publish(UInt64(shared.counters.value(d))) }
        engine.publish()
    }
}
