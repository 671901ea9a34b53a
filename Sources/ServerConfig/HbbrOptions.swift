/// Everything hbbr needs from its command line, `.env` and environment (PROTOCOL.md §11.2,
/// §8.5, §11.3), resolved and typed. hbbr has no `--config`.
public struct HbbrOptions: ServerOptions, Equatable {
    public static let defaultPort: UInt16 = 21117
    /// `Q + 2` (WebSocket) must fit; port 0 would mean "any", which clients cannot find.
    public static let allowedPorts = 1...65533
    /// "Mb/s" in §8.5 is 2^20 bit/s.
    public static let bitsPerMegabit = 1 << 20

    /// TCP `Q` (and `Q+2` for WebSocket): `-p`, else `PORT + 1` when `PORT > 0`, else 21117.
    public var port: UInt16
    /// `-b`/`BIND`; nil = all interfaces, dual stack.
    public var bindAddress: IPLiteral?
    /// `-k`/`KEY` (§4.2); default empty (no licence check).
    public var key: String
    /// `TOTAL_BANDWIDTH` in bit/s (default 1024 Mb/s).
    public var totalBandwidth: Int
    /// `SINGLE_BANDWIDTH` in bit/s (default 128 Mb/s).
    public var singleBandwidth: Int
    /// `LIMIT_SPEED` in bit/s (default 32 Mb/s).
    public var limitSpeed: Int
    /// `DOWNGRADE_THRESHOLD` as `floor(value × 100)` hundredths (default 66).
    public var downgradeThresholdHundredths: Int
    /// `DOWNGRADE_START_CHECK` in whole seconds (default 1800).
    public var downgradeStartCheckSeconds: Int
    /// `--admin-console`/`ADMIN_CONSOLE`.
    public var adminConsole: AdminConsoleMode
    /// `--relay-mode`/`RELAY_MODE`.
    public var relayMode: RelayMode
    /// `--trusted-proxies`/`TRUSTED_PROXIES`: hbbr's WebSocket port honours `X-Real-IP` too (§8.2).
    public var trustedProxies: TrustedProxyList
    /// `--workers`: nil = one per CPU of the affinity mask.
    public var workers: Int?
    /// `--pin-workers`/`PIN_WORKERS`: each worker thread pinned to one CPU (default), or left to
    /// the scheduler (`WorkerConfiguration.pinned`).
    public var pinWorkers: Bool
    /// `--metrics`/`METRICS`: where `/metrics` and `/health` are served; nil = off.
    public var metricsAddress: SocketAddressLiteral?
    /// `--drain-time`/`DRAIN_TIME`: seconds a stop signal lets running sessions finish before
    /// they are closed (0 = close at once, as upstream).
    public var drainSeconds: Int
    /// `--io-workers`/`IO_WORKERS`: cap on the kernel's io-wq threads per worker (they run the
    /// splices); 0 = the kernel's default (no practical cap).
    public var ioWorkers: Int
    /// `--batch-wait`/`BATCH_WAIT`: microseconds a busy worker waits to gather completions before
    /// handling them (`WorkerConfiguration.waitBatchMicros`); 0 = off (wake per completion).
    public var batchWaitMicros: Int
    /// `RUST_LOG` from the inherited environment only; default `info`.
    public var logFilter: String
    /// Values ignored in favour of a default, as upstream does silently; log them at startup.
    public var notices: [String]

    public static let optionSpecs: [OptionSpec] = [
        OptionSpec(long: "port", short: "p", valueName: "NUMBER", defaultText: "21117, or PORT+1 when PORT is set",
                   summary: "Relay port Q: TCP Q and TCP Q+2 (WebSocket); 1-65533"),
        OptionSpec(long: "bind", short: "b", valueName: "IP", defaultText: "all interfaces (dual stack)",
                   summary: "Address both listeners bind (IPv4 or IPv6 literal)"),
        OptionSpec(long: "key", short: "k", valueName: "KEY", defaultText: "empty (no check)",
                   summary: "Licence key clients must present; '-'/'_': public key from the key files"),
        OptionSpec(long: "admin-console", valueName: "MODE", defaultText: "port",
                   summary: "'port' (loopback on Q), 'off', or 'unix:PATH'"),
        OptionSpec(long: "relay-mode", valueName: "MODE", defaultText: "auto",
                   summary: "TCP-to-TCP forwarding: 'auto' (= splice), 'splice', 'splice-ring' or 'copy'"),
        OptionSpec(long: "trusted-proxies", valueName: "LIST", defaultText: "127.0.0.0/8,::1",
                   summary: "Peers whose X-Real-IP/X-Forwarded-For is believed; '*' = everyone (upstream)"),
        OptionSpec(long: "workers", valueName: "N", defaultText: "auto (one per CPU)",
                   summary: "Worker threads"),
        OptionSpec(long: "pin-workers", valueName: "yes|no", defaultText: "yes",
                   summary: "Pin each worker thread to one CPU; 'no' lets the scheduler move them (CPUs shared with other load)"),
        OptionSpec(long: "metrics", valueName: "IP:PORT", defaultText: "off",
                   summary: "Serve Prometheus /metrics and /health over HTTP at this address"),
        OptionSpec(long: "drain-time", valueName: "SECONDS", defaultText: "\(defaultDrainSeconds)",
                   summary: "On SIGTERM/SIGINT: stop accepting, let sessions run this long; 0 = stop at once"),
        OptionSpec(long: "io-workers", valueName: "N", defaultText: "\(defaultIOWorkers)",
                   summary: "Kernel io-wq threads per worker that run splices; 0 = kernel default (unbounded)"),
        OptionSpec(long: "batch-wait", valueName: "MICROS", defaultText: "\(defaultBatchWaitMicros)",
                   summary: "Under load, gather completions for up to this long per wake-up (0-\(HbbsOptions.maxBatchWaitMicros); 0 = off)"),
    ]

    /// Default of `--batch-wait`: bulk pairs about a quarter less CPU per GB than waking per
    /// completion at the same throughput, paced sessions unchanged (docs/PERFORMANCE.md).
    public static let defaultBatchWaitMicros = 200
    /// Default of `--io-workers` (docs/PERFORMANCE.md has the measurement behind it).
    public static let defaultIOWorkers = 8
    /// Upper bound of `--io-workers`.
    public static let maxIOWorkers = 4096

    /// Default of `--drain-time`: under Docker's default 10-s stop timeout, so a container stop
    /// drains instead of being killed.
    public static let defaultDrainSeconds = 8
    /// Upper bound of `--drain-time` (one hour).
    public static let maxDrainSeconds = 3600

    public static let environmentOnly: [EnvironmentSpec] = [
        EnvironmentSpec(name: "TOTAL_BANDWIDTH", defaultText: "1024", summary: "Mb/s (2^20 bit/s) for all sessions together"),
        EnvironmentSpec(name: "SINGLE_BANDWIDTH", defaultText: "128", summary: "Mb/s per session"),
        EnvironmentSpec(name: "LIMIT_SPEED", defaultText: "32", summary: "Mb/s per downgraded or blacklisted session"),
        EnvironmentSpec(name: "DOWNGRADE_THRESHOLD", defaultText: "0.66",
                        summary: "Share of SINGLE_BANDWIDTH that downgrades a long session"),
        EnvironmentSpec(name: "DOWNGRADE_START_CHECK", defaultText: "1800", summary: "Seconds before a session can be downgraded"),
        EnvironmentSpec(name: "RUST_LOG", defaultText: "info", summary: "Log filter (real environment only)"),
    ]

    public static let program = "hbbr"
    public static let about = "RustDesk relay server (RingDesk)"
    public static let environmentHeading = "Environment only (also accepted in .env); values <= 0 or unparseable keep the default:"
    public static let helpNotes = [
        "Precedence: command line > .env (working directory) > environment.",
        "Names are matched in any case, with '_' or '-': SINGLE_BANDWIDTH, single-bandwidth.",
    ]

    /// Reads the command line and `.env`, and resolves the options; see `HbbsOptions.load`.
    public static func load(arguments: [String], environment: [String: String], workingDirectory: String = ".",
                            version: String) throws(ConfigError) -> Invocation<HbbrOptions> {
        let commandLine = try parseCommandLine(arguments)
        return try invocation(commandLine, version: version) {
            flags throws(ConfigError) in
            let dotEnv = try loadFile(joining(workingDirectory, ".env"))
            let sources = ConfigSources(environment: environment, dotEnv: dotEnv ?? [], configFile: nil, flags: flags)
            return try resolve(Settings(sources), portFlag: commandLine.flag("port"))
        }
    }

    /// Resolves every option; the pure half of `load`.
    ///
    /// - Parameter portFlag: the `-p` value when given on the command line. It is needed apart
    ///   from `settings` because a flag and a `PORT` variable land in the same setting, yet only
    ///   the variable means `PORT + 1` (so one shared `PORT=21116` serves hbbs 21116 and hbbr 21117).
    public static func resolve(_ settings: Settings, portFlag: String?) throws(ConfigError) -> HbbrOptions {
        var notices: [String] = []
        let port: UInt16
        if let portFlag {
            port = try Settings.validPort(portFlag, origin: .commandLine, allowed: allowedPorts)
        } else if let (text, origin) = settings.entry("PORT"), let shared = Int32(text), shared > 0 {
            // Upstream: an unparseable or non-positive PORT is ignored (default port).
            port = try Settings.validPort(String(Int(shared) + 1), origin: origin, allowed: allowedPorts)
        } else {
            port = defaultPort
        }

        func megabits(_ name: String, default value: Int) -> Int {
            settings.lenient(name, default: value * bitsPerMegabit, notices: &notices) { text in
                // Upstream: f64, ignored unless > 0; truncated to whole bit/s.
                guard let v = Double(text), v.isFinite, v > 0, v * Double(bitsPerMegabit) < 0x1p62 else { return nil }
                let bits = Int(v * Double(bitsPerMegabit))
                return bits > 0 ? bits : nil
            }
        }

        return HbbrOptions(
            port: port,
            bindAddress: try settings.bindAddress(),
            key: settings.value("KEY") ?? "",
            totalBandwidth: megabits("TOTAL_BANDWIDTH", default: 1024),
            singleBandwidth: megabits("SINGLE_BANDWIDTH", default: 128),
            limitSpeed: megabits("LIMIT_SPEED", default: 32),
            downgradeThresholdHundredths: settings.lenient("DOWNGRADE_THRESHOLD", default: 66, notices: &notices) { text in
                guard let v = Double(text), v.isFinite, v > 0, v < 0x1p50 else { return nil }
                return Int((v * 100).rounded(.down))
            },
            downgradeStartCheckSeconds: settings.lenient("DOWNGRADE_START_CHECK", default: 1800, notices: &notices) { text in
                guard let v = UInt(text), v > 0, v <= UInt(Int.max / 1000) else { return nil }
                return Int(v)
            },
            adminConsole: try settings.adminConsole(),
            relayMode: try relayMode(settings),
            trustedProxies: try settings.trustedProxies(),
            workers: try settings.workers(),
            pinWorkers: try settings.pinWorkers(),
            metricsAddress: try settings.metricsAddress(),
            drainSeconds: try settings.integer("DRAIN-TIME", default: defaultDrainSeconds, in: 0...maxDrainSeconds,
                                               expected: "whole seconds from 0 to \(maxDrainSeconds)"),
            ioWorkers: try settings.integer("IO-WORKERS", default: defaultIOWorkers, in: 0...maxIOWorkers,
                                            expected: "a number from 0 (kernel default) to \(maxIOWorkers)"),
            batchWaitMicros: try settings.batchWait(default: defaultBatchWaitMicros),
            logFilter: settings.inheritedEnvironment["RUST_LOG"] ?? "info",
            notices: notices)
    }

    private static func relayMode(_ settings: Settings) throws(ConfigError) -> RelayMode {
        guard let (text, origin) = settings.entry("RELAY-MODE") else { return .auto }
        guard let mode = RelayMode(rawValue: text.lowercased()) else {
            throw .invalidValue(setting: "RELAY_MODE", value: text, origin: origin, expected: "'auto', 'splice', 'splice-ring' or 'copy'")
        }
        return mode
    }
}
