import Prometheus
import ServerKit
import Workers

/// hbbr's metrics (docs/OPERATIONS.md, "Metrics"): read at scrape time from the workers' counter
/// blocks, the pairing table and the engine, and published into the Prometheus registry. Runs
/// only on the metrics endpoint's thread.
final class HbbrMetrics: @unchecked Sendable {
    let shared: HbbrShared
    let engine: EngineMetrics
    let pairsWaiting: Prometheus.Gauge
    let levels: [[Prometheus.Gauge]] // [worker][Level]
    let events: [DeltaCounter]
    let drops: [DeltaCounter]

    init(_ publisher: MetricsPublisher, shared: HbbrShared, engineTable: CounterTable) {
        self.shared = shared
        engine = EngineMetrics(publisher, table: engineTable)
        pairsWaiting = publisher.gauge("pairs_waiting", help: "Halves waiting in the pairing table for their partner")
        levels = (0..<shared.counters.table.workers).map { w in
            HbbrCounters.Level.allCases.map { level in
                let (name, help) = Self.describe(level)
                return publisher.gauge(name, help: help, labels: [("worker", String(w))])
            }
        }
        events = HbbrCounters.Event.allCases.map { event in
            let (name, help, labels) = Self.describe(event)
            return publisher.counter(name, help: help, labels: labels)
        }
        drops = HbbrCounters.Drop.allCases.map {
            publisher.counter("drops_total", help: "Connections and sessions refused or closed early, by reason",
                              labels: [("reason", $0.label)])
        }
    }

    static func describe(_ level: HbbrCounters.Level) -> (name: String, help: String) {
        switch level {
        case .connections: return ("connections_open", "Connections not yet paired (reading the first message, waiting, console), per worker; updated every 100 ms")
        case .sessions: return ("pairs_active", "Paired sessions relaying, per worker; updated every 100 ms")
        case .pipesInUse: return ("pipes_in_use", "Pipes of the worker's splice pipe pool holding bytes; updated every 100 ms")
        case .pipesOpen: return ("pipes_open", "Pipes of the worker's splice pipe pool open (in use or idle); updated every 100 ms")
        case .copyBuffersInUse: return ("copy_buffers_in_use", "Buffers of the worker's copy-buffer pool holding bytes (splice pumps copying while every pipe is lent); updated every 100 ms")
        }
    }

    static func describe(_ e: HbbrCounters.Event) -> (name: String, help: String, labels: [(String, String)]) {
        let bytes = "Bytes read from one half and relayed to the other, by how they moved"
        let pauses = "Sessions paused until the next 100 ms slice because a bandwidth limit had no allowance left, by limit (session: SINGLE_BANDWIDTH or LIMIT_SPEED; total: TOTAL_BANDWIDTH)"
        switch e {
        case .sessionsStarted: return ("pairs_started_total", "Sessions started (two halves paired)", [])
        case .sessionsEnded: return ("pairs_completed_total", "Sessions ended and released", [])
        case .crossWorkerPairs: return ("pairs_cross_worker_total", "Sessions whose halves were accepted by different workers", [])
        case .bytesSpliced: return ("relayed_bytes_total", bytes, [("mode", "splice")])
        case .bytesCopied: return ("relayed_bytes_total", bytes, [("mode", "copy")])
        case .bytesFramed: return ("relayed_bytes_total", bytes, [("mode", "framed")])
        case .pausedBySession: return ("limiter_pauses_total", pauses, [("limit", "session")])
        case .pausedByTotal: return ("limiter_pauses_total", pauses, [("limit", "total")])
        }
    }

    func collect() {
        let c = shared.counters
        pairsWaiting.set(Int64(shared.pairing.count))
        for w in levels.indices {
            for l in HbbrCounters.Level.allCases { levels[w][l.rawValue].set(Int64(c.value(l, worker: w))) }
        }
        for e in HbbrCounters.Event.allCases { events[e.rawValue].publish(c.value(e)) }
        for d in HbbrCounters.Drop.allCases { drops[d.rawValue].publish(UInt64(c.value(d))) }
        engine.publish()
    }
}
