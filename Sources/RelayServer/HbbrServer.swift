import Glibc
import Prometheus
import Relay
import RustDeskProtocol
import ServerConfig
import ServerKit
import URing
import Workers

/// hbbr: startup (io_uring probe, key, IP lists, bandwidth settings), the worker group, and
/// shutdown (PROTOCOL.md §8.1).
public final class HbbrServer {
    public let options: HbbrOptions
    public let shared: HbbrShared
    let workingDirectory: String
    let group: WorkerGroup<RelayWorker>
    /// `--metrics`: bound in `start()`, before the workers.
    var metrics: MetricsEndpoint?

    /// Everything that can fail before serving, with the message an operator needs.
    public enum StartupError: Error, CustomStringConvertible {
        case ioURing(String)
        case key(String)
        case lists(String)
        case listen(String)
        case metrics(String)
        public var description: String {
            switch self {
            case .ioURing(let m), .key(let m), .lists(let m), .listen(let m), .metrics(let m): return m
            }
        }
    }

    /// Names of the IP list files in the working directory (§8.6).
    public static let blacklistFile = "blacklist.txt"
    public static let blocklistFile = "blocklist.txt"

    /// - Parameter timings: the timeouts; only tests shorten them (`RelayTimings(scale:)`).
    public init(options: HbbrOptions, workingDirectory: String, timings: RelayTimings = .init()) throws(StartupError) {
        self.options = options
        self.workingDirectory = workingDirectory
        let support = IOURingSupport.probe()
        guard support.isAvailable else { throw .ioURing(support.message) }

        Log.info("descriptor limit: \(ResourceLimits.raiseOpenFileLimit())")

        let key: ServerKey
        do {
            key = try ServerKey.resolveAndLog(option: options.key, role: .relayServer, directory: workingDirectory)
        } catch {
            throw .key("\(error)")
        }

        let blacklist = IPList(try Self.readList(Self.blacklistFile, in: workingDirectory))
        let blocklist = IPList(try Self.readList(Self.blocklistFile, in: workingDirectory))
        Log.info("blacklist: \(blacklist.all.filter { !$0.isEmpty }.count) entries, blocklist: \(blocklist.all.filter { !$0.isEmpty }.count) entries")

        var settings = BandwidthSettings()
        settings.totalMbps = Double(options.totalBandwidth) / BandwidthSettings.bitsPerMb
        settings.singleMbps = Double(options.singleBandwidth) / BandwidthSettings.bitsPerMb
        settings.limitMbps = Double(options.limitSpeed) / BandwidthSettings.bitsPerMb
        settings.downgradeThresholdHundredths = options.downgradeThresholdHundredths
        settings.downgradeStartCheckSeconds = options.downgradeStartCheckSeconds
        Log.info("TOTAL_BANDWIDTH \(BandwidthSettings.format(settings.totalMbps))Mb/s, SINGLE_BANDWIDTH \(BandwidthSettings.format(settings.singleMbps))Mb/s, LIMIT_SPEED \(BandwidthSettings.format(settings.limitMbps))Mb/s, DOWNGRADE_THRESHOLD \(BandwidthSettings.format(settings.downgradeThreshold)), DOWNGRADE_START_CHECK \(settings.downgradeStartCheckSeconds)s")
        if timings != RelayTimings() { Log.warn("test timings in effect (\(RelayTimings.testScaleVariable)): \(timings)") }

        var configuration = WorkerConfiguration()
        configuration.count = options.workers
        configuration.tickNanos = RelayTimings.tickNanos
        configuration.pinned = options.pinWorkers
        BatchedWaits.apply(micros: options.batchWaitMicros, to: &configuration)
        let workerCount: Int
        do {
            workerCount = try WorkerGroup<RelayWorker>.workerCount(configuration)
        } catch {
            throw .ioURing("cannot determine the CPUs to run on: \(error)")
        }
        let runtime = RelayRuntime(settings: settings, blacklist: blacklist, blocklist: blocklist, now: monotonicNanos())
        let shared = HbbrShared(options: options, runtime: runtime, licenceKey: key.enforcedLicenceKey, timings: timings,
                                workers: workerCount)
        self.shared = shared

        configuration.ioWorkerLimit = options.ioWorkers > 0 ? UInt32(options.ioWorkers) : nil
        do {
            group = try WorkerGroup(configuration: configuration) { index in RelayWorker(shared: shared, index: index) }
        } catch {
            throw .ioURing("cannot create workers: \(error)")
        }
    }

    /// Starts the workers (binds every port). Throws with the failing errno explained.
    public func start() throws(StartupError) {
        if let address = options.metricsAddress {
            do {
                metrics = try MetricsEndpoint(address: address, server: "hbbr", registry: PrometheusCollectorRegistry())
            } catch {
                throw .metrics(error.description)
            }
        }
        do {
            try group.start()
        } catch {
            var what = "ports \(options.port) and \(options.port + 2)"
            if case .unixSocket(let path) = options.adminConsole { what += " or the console socket \(path)" }
            throw .listen("cannot listen on \(what): \(error)")
        }
        var console = "admin console on loopback TCP \(options.port)"
        switch options.adminConsole {
        case .port: break
        case .off: console = "no admin console"
        case .unixSocket(let path): console = "admin console on \(path)"
        }
        if let metrics {
            let collector = HbbrMetrics(MetricsPublisher(server: "hbbr", registry: metrics.registry), shared: shared,
                                        engineTable: group.engineCounters)
            metrics.start { collector.collect() }
            Log.info("metrics on http://\(metrics.endpoint)/metrics and /health")
        }
        Log.info("hbbr listening on TCP \(options.port) and \(options.port + 2) (WebSocket) with \(group.count) \(options.pinWorkers ? "pinned" : "unpinned") workers, \(options.relayMode.rawValue) relay mode, \(console), io-wq threads per worker: \(options.ioWorkers > 0 ? String(options.ioWorkers) : "kernel default")")
    }

    /// Re-reads blacklist.txt and blocklist.txt (SIGHUP), replacing the lists (console changes
    /// since startup are dropped). A file that cannot be read leaves its list unchanged.
    public func reloadLists() {
        for (name, list) in [(Self.blacklistFile, shared.runtime.blacklist), (Self.blocklistFile, shared.runtime.blocklist)] {
            do {
                list.replace(with: try Self.readList(name, in: workingDirectory))
                Log.info("reloaded \(name): \(list.all.filter { !$0.isEmpty }.count) entries")
            } catch {
                Log.error("\(error)")
            }
        }
    }

    /// Sessions running now, on all workers.
    public var activeSessions: Int { shared.counters.activeSessions }

    /// The first half of a graceful stop: every worker closes its listeners and every connection
    /// not yet in a session; sessions run on until they end or `stop()`.
    public func beginDrain() {
        for i in 0..<group.count where !group.post(.drain, to: i) {
            Log.warn("worker \(i) did not take the drain request")
        }
    }

    /// A graceful stop (SIGTERM, SIGINT): stops accepting, waits up to `options.drainSeconds` for
    /// the running sessions to end (a further stop signal cuts the wait short), then `stop()`.
    public func drainAndStop(signal: Int32) {
        metrics?.markStopping()
        let limit = options.drainSeconds
        let running = activeSessions
        if limit > 0 && running > 0 {
            Log.info("signal \(signal): no longer accepting; draining \(running) session(s) for up to \(limit) s (send the signal again to stop now)")
            beginDrain()
            let deadline = monotonicNanos() + UInt64(limit) * 1_000_000_000
            var lastReport = monotonicNanos()
            while activeSessions > 0 {
                let now = monotonicNanos()
                if now >= deadline {
                    Log.info("drain time over: closing \(activeSessions) session(s)")
                    break
                }
                if let again = Signals.wait(milliseconds: 100) {
                    if again == SIGHUP { reloadLists(); continue }
                    Log.info("signal \(again): stopping now, closing \(activeSessions) session(s)")
                    break
                }
                if now >= lastReport + 5_000_000_000 {
                    lastReport = now
                    Log.info("draining: \(activeSessions) session(s) left, \((deadline - now) / 1_000_000_000) s to go")
                }
            }
            if activeSessions == 0 { Log.info("drained: every session ended") }
        } else {
            Log.info("signal \(signal): stopping")
        }
        stop()
    }

    /// Stops the workers: every connection and session is closed.
    public func stop() {
        metrics?.markStopping()
        group.stop()
        metrics?.stop()
        let c = shared.counters
        Log.info("hbbr stopped (\(c.value(.sessionsStarted)) sessions relayed, \(c.value(.crossWorkerPairs)) across workers)")
    }

    /// The entries of an IP list file (§8.6); a missing file is an empty list.
    static func readList(_ name: String, in directory: String) throws(StartupError) -> [String] {
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return [] }
            throw .lists("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .lists("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
            if bytes.count > 64 << 20 { throw .lists("\(path) is larger than 64 MiB") }
        }
        return IPList.parse(String(decoding: bytes, as: UTF8.self))
    }
}
