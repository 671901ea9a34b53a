import Glibc
import PeerStore
import Prometheus
import Rendezvous
import RustDeskProtocol
import ServerConfig
import ServerKit
import URing
import Workers

/// hbbs: startup (io_uring probe, key, database, relay list), the worker group, and shutdown.
public final class HbbsServer {
    public let options: HbbsOptions
    public let shared: HbbsShared
    let group: WorkerGroup<RendezvousWorker>
    let controlPlane: ControlPlane
    /// `--metrics`: bound in `start()`, before the workers.
    var metrics: MetricsEndpoint?

    /// Everything that can fail before serving, with the message an operator needs.
    public enum StartupError: Error, CustomStringConvertible {
        case ioURing(String)
        case key(String)
        case database(String)
        case listen(String)
        case metrics(String)
        public var description: String {
            switch self {
            case .ioURing(let m), .key(let m), .database(let m), .listen(let m), .metrics(let m): return m
            }
        }
    }

    public init(options: HbbsOptions, workingDirectory: String) throws(StartupError) {
        self.options = options
        let support = IOURingSupport.probe()
        guard support.isAvailable else { throw .ioURing(support.message) }

        let key: ServerKey
        do {
            key = try ServerKey.resolveAndLog(option: options.key, role: .rendezvousServer, directory: workingDirectory)
        } catch {
            throw .key("\(error)")
        }

        let store: PeerStore
        do {
            store = try PeerStore(path: options.databasePath)
        } catch {
            throw .database("cannot open the database \(options.databasePath): \(error)")
        }
        Log.info("Database: \(options.databasePath) (journal \(store.journalMode))")

        let (relays, rejected) = RelaySelector.parse(options.relayServers.joined(separator: ","), resolves: RendezvousWorker.resolves)
        for r in rejected { Log.error("relay server \(r) does not resolve; ignored") }
        if !relays.isEmpty { Log.info("Relay servers: \(relays.joined(separator: ", "))") }

        let mask = options.lanMask.flatMap { LANMask($0.description) }
        var limits = IPBlocker.Limits()
        limits.perWindow = options.registerPkPerIPLimit
        limits.newIDsPerDay = options.registerPkNewIDsPerIPPerDay
        let settings = RendezvousSettings(licenceKey: key.enforcedLicenceKey, signingKey: key.signingKey, mask: mask,
                                          localIP: mask == nil ? "" : (options.localIP ?? ""), ipLimits: limits)
        let core = RendezvousCore(settings: settings, relays: RelaySelector(configured: relays), serial: options.serial,
                                  rendezvousServers: options.rendezvousServers, alwaysUseRelay: options.alwaysUseRelay)
        let console = RendezvousConsole(core: core, resolves: RendezvousWorker.resolves)
        var configuration = WorkerConfiguration()
        configuration.count = options.workers
        configuration.pinned = options.pinWorkers
        BatchedWaits.apply(micros: options.batchWaitMicros, to: &configuration)
        let workerCount: Int
        do {
            workerCount = try WorkerGroup<RendezvousWorker>.workerCount(configuration)
        } catch {
            throw .ioURing("cannot determine the CPUs to run on: \(error)")
        }
        let shared = HbbsShared(core: core, console: console, store: store, options: options, workers: workerCount)
        self.shared = shared
        controlPlane = ControlPlane(options: options, relays: core.relays)

        do {
            group = try WorkerGroup(configuration: configuration) { index in RendezvousWorker(shared: shared, index: index) }
        } catch {
            throw .ioURing("cannot create workers: \(error)")
        }
        let g = group
        WorkerMailboxes.shared.post = { message, worker in g.post(message, to: worker) }
    }

    /// Starts the workers (binds every port). Throws with the failing errno explained.
    public func start() throws(StartupError) {
        if let address = options.metricsAddress {
            do {
                metrics = try MetricsEndpoint(address: address, server: "hbbs", registry: PrometheusCollectorRegistry())
            } catch {
                throw .metrics(error.description)
            }
        }
        do {
            try group.start()
        } catch {
            let ports = "\(options.port) (UDP, TCP), \(options.port - 1), \(options.port + 2)"
            throw .listen("cannot start on ports \(ports): \(error)")
        }
        controlPlane.start()
        if let metrics {
            let collector = HbbsMetrics(MetricsPublisher(server: "hbbs", registry: metrics.registry), shared: shared,
                                        engineTable: group.engineCounters)
            metrics.start { collector.collect(nowMillis: monotonicNanos() / 1_000_000) }
            Log.info("metrics on http://\(metrics.endpoint)/metrics and /health")
        }
        Log.info("hbbs listening on UDP \(options.port), TCP \(options.port - 1), \(options.port), \(options.port + 2) with \(group.count) \(options.pinWorkers ? "pinned" : "unpinned") workers")
    }

    /// SIGHUP: replaces the relay server list with `configured` (the `-r`/`RELAY_SERVERS` value
    /// re-read from the command line, `--config`, `.env` and environment). Entries that do not
    /// resolve are dropped and logged; the health checks start over with the new list. A change
    /// made with the console's `relay-servers` command is replaced.
    public func reloadRelayServers(_ configured: [String]) {
        let (relays, rejected) = RelaySelector.parse(configured.joined(separator: ","), resolves: RendezvousWorker.resolves)
        for r in rejected { Log.error("relay server \(r) does not resolve; ignored") }
        let before = shared.core.relays.configured
        shared.core.relays.setConfigured(relays)
        if before == relays {
            Log.info("SIGHUP: relay servers unchanged (\(relays.isEmpty ? "none" : relays.joined(separator: ", ")))")
        } else {
            Log.info("SIGHUP: relay servers now \(relays.isEmpty ? "none" : relays.joined(separator: ", ")) (were \(before.isEmpty ? "none" : before.joined(separator: ", ")))")
        }
    }

    /// Stops the workers, then drains and closes the database.
    public func stop() {
        metrics?.markStopping()
        controlPlane.stop()
        group.stop()
        shared.store?.close()
        metrics?.stop()
        Log.info("hbbs stopped")
    }
}
