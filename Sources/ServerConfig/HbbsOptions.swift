/// Everything hbbs needs from its command line, `--config` file, `.env` and environment
/// (PROTOCOL.md §11.1, §11.3), resolved and typed. Values that only the server can complete
/// (DNS for relay entries, the host's primary address, key files) are left in their textual form.
public struct HbbsOptions: ServerOptions, Equatable {
    public static let defaultPort: UInt16 = 21116
    /// `P ≥ 3` (upstream: "Invalid port"); `P + 2` must fit too.
    public static let allowedPorts = 3...65533
    public static let defaultDatabasePath = "./db_v2.sqlite3"
    public static let defaultRegisterPkPerIPLimit = 30
    public static let defaultRegisterPkNewIDsPerIPPerDay = 300

    /// Base port `P` (`-p`/`PORT`): UDP P, TCP P, P-1, P+2.
    public var port: UInt16
    /// `-b`/`BIND`: the one address every listener binds; nil = all interfaces, dual stack.
    public var bindAddress: IPLiteral?
    /// `-s`/`SERIAL`; unparseable → 0.
    public var serial: Int32
    /// `-R`/`RENDEZVOUS_SERVERS`, split on `,`, empty entries dropped (deprecated; sent in ConfigUpdate).
    public var rendezvousServers: [String]
    /// `-u`/`SOFTWARE_URL` (deprecated).
    public var softwareURL: String
    /// `-r`/`RELAY_SERVERS`, split on `,` without trimming, empty entries dropped (§7.1). The server
    /// resolves each entry and drops (and logs) those that do not resolve.
    public var relayServers: [String]
    /// `-M`/`RMEM`: UDP receive buffer in bytes; 0 = system default; unparseable → 0.
    public var receiveBufferSize: Int
    /// `--mask`/`MASK`: the LAN prefix of §7.4 (IPv4 only); nil when unset or unparseable.
    public var lanMask: IPPrefix?
    /// `LOCAL_IP` (§7.4), read only when `lanMask` is set. nil: the server uses the host's primary
    /// local IPv4 address (also when set to empty).
    public var localIP: String?
    /// `-k`/`KEY` (§4.2). Default `-`; an explicitly empty value is meaningful (no licence check).
    public var key: String
    /// `ALWAYS_USE_RELAY` equals `Y` in any case.
    public var alwaysUseRelay: Bool
    /// `TEST_HBBS` (§1.4).
    public var selfTest: SelfTestTarget
    /// `DB_URL` with a `sqlite://` or `sqlite:` prefix removed; default `./db_v2.sqlite3`
    /// (relative to the working directory), also when set to empty.
    public var databasePath: String
    /// `MAX_DATABASE_CONNECTIONS` (default 1; unparseable or 0 → 1). Kept for compatibility and
    /// logging: the peer store uses one connection on its own thread whatever the value.
    public var maxDatabaseConnections: Int
    /// `--admin-console`/`ADMIN_CONSOLE`.
    public var adminConsole: AdminConsoleMode
    /// `--trusted-proxies`/`TRUSTED_PROXIES` (§2.3).
    public var trustedProxies: TrustedProxyList
    /// `--register-pk-ip-rate`: the per-IP RegisterPk count per 60 s window of §5.2.5 (the `30`
    /// of `count > 30`); 0 turns this check off.
    public var registerPkPerIPLimit: Int
    /// `--register-pk-ip-new-ids`: new IDs per IP per day of §5.2.5 (the `300` of `|ids| > 300`);
    /// 0 turns this check off.
    public var registerPkNewIDsPerIPPerDay: Int
    /// `--workers`: nil = one per CPU of the affinity mask.
    public var workers: Int?
    /// `--pin-workers`/`PIN_WORKERS`: each worker thread pinned to one CPU (default), or left to
    /// the scheduler (`WorkerConfiguration.pinned`).
    public var pinWorkers: Bool
    /// `--batch-wait`/`BATCH_WAIT`: microseconds a busy worker waits to gather completions before
    /// handling them (`WorkerConfiguration.waitBatchMicros`); 0 = off (wake per completion).
    public var batchWaitMicros: Int
    /// `--metrics`/`METRICS`: where `/metrics` and `/health` are served; nil = off.
    public var metricsAddress: SocketAddressLiteral?
    /// `RUST_LOG` from the inherited environment only (upstream reads it before any file); default `info`.
    public var logFilter: String
    /// Values ignored in favour of a default, as upstream does silently; log them at startup.
    public var notices: [String]

    /// The hbbs flags (§11.1 plus RingDesk extras), in help order.
    public static let optionSpecs: [OptionSpec] = [
        OptionSpec(long: "config", short: "c", valueName: "FILE", hasSetting: false, defaultText: nil,
                   summary: "INI file (key=value) applied over .env and the environment"),
        OptionSpec(long: "port", short: "p", valueName: "NUMBER", defaultText: "21116",
                   summary: "Base port P: UDP/TCP P, TCP P-1 (NAT test), TCP P+2 (WebSocket); 3-65533"),
        OptionSpec(long: "bind", short: "b", valueName: "IP", defaultText: "all interfaces (dual stack)",
                   summary: "Address every listener binds (IPv4 or IPv6 literal)"),
        OptionSpec(long: "serial", short: "s", valueName: "NUMBER", defaultText: "0",
                   summary: "Configuration serial sent in ConfigUpdate (deprecated)"),
        OptionSpec(long: "rendezvous-servers", short: "R", valueName: "HOSTS", defaultText: "empty",
                   summary: "Comma-separated rendezvous servers for ConfigUpdate (deprecated)"),
        OptionSpec(long: "software-url", short: "u", valueName: "URL", defaultText: "empty",
                   summary: "Software download URL (deprecated; not served)"),
        OptionSpec(long: "relay-servers", short: "r", valueName: "HOSTS", defaultText: "empty (clients pick)",
                   summary: "Comma-separated hbbr host[:port] list, rotated round robin"),
        OptionSpec(long: "rmem", short: "M", valueName: "BYTES", defaultText: "0 (system default)",
                   summary: "UDP receive buffer size"),
        OptionSpec(long: "mask", valueName: "CIDR", defaultText: "none",
                   summary: "LAN prefix a.b.c.d/len whose clients get LOCAL_IP as relay (deprecated)"),
        OptionSpec(long: "key", short: "k", valueName: "KEY", defaultText: "-",
                   summary: "'-'/'_': key files; secret: sign with it; public key: enforce only; '': no check"),
        OptionSpec(long: "admin-console", valueName: "MODE", defaultText: "port",
                   summary: "'port' (loopback on P-1), 'off', or 'unix:PATH'"),
        OptionSpec(long: "trusted-proxies", valueName: "LIST", defaultText: "127.0.0.0/8,::1",
                   summary: "Peers whose X-Real-IP/X-Forwarded-For is believed; '*' = everyone (upstream)"),
        OptionSpec(long: "register-pk-ip-rate", valueName: "N", defaultText: "30",
                   summary: "RegisterPk per IP per 60 s window; 0 = off"),
        OptionSpec(long: "register-pk-ip-new-ids", valueName: "N", defaultText: "300",
                   summary: "New IDs one IP may register per day; 0 = off"),
        OptionSpec(long: "workers", valueName: "N", defaultText: "auto (one per CPU)",
                   summary: "Worker threads"),
        OptionSpec(long: "pin-workers", valueName: "yes|no", defaultText: "yes",
                   summary: "Pin each worker thread to one CPU; 'no' lets the scheduler move them (CPUs shared with other load)"),
        OptionSpec(long: "batch-wait", valueName: "MICROS", defaultText: "\(defaultBatchWaitMicros)",
                   summary: "Under load, gather completions for up to this long per wake-up (0-\(maxBatchWaitMicros); 0 = off)"),
        OptionSpec(long: "metrics", valueName: "IP:PORT", defaultText: "off",
                   summary: "Serve Prometheus /metrics and /health over HTTP at this address"),
    ]

    public static let environmentOnly: [EnvironmentSpec] = [
        EnvironmentSpec(name: "DB_URL", defaultText: defaultDatabasePath,
                        summary: "SQLite database file (a sqlite:// or sqlite: prefix is removed)"),
        EnvironmentSpec(name: "MAX_DATABASE_CONNECTIONS", defaultText: "1", summary: "Accepted for compatibility"),
        EnvironmentSpec(name: "ALWAYS_USE_RELAY", defaultText: "N", summary: "Y: tell peers to use the relay"),
        EnvironmentSpec(name: "LOCAL_IP", defaultText: "primary IPv4 address",
                        summary: "Relay address for clients inside --mask"),
        EnvironmentSpec(name: "TEST_HBBS", defaultText: "the TCP listener",
                        summary: "UDP self-test target ip:port, or 'no'"),
        EnvironmentSpec(name: "RUST_LOG", defaultText: "info", summary: "Log filter (real environment only)"),
    ]

    /// Default of `--batch-wait`: brings hbbs's CPU per RegisterPeer at 20,000/s to that of a
    /// bare recvmmsg loop for ≤ 0.25 ms more latency, without the losses 500 µs showed at
    /// 40,000/s on a contended host (docs/PERFORMANCE.md, "hbbs against the bare loop").
    public static let defaultBatchWaitMicros = 250
    /// Upper bound of `--batch-wait` (10 ms).
    public static let maxBatchWaitMicros = 10_000

    public static let program = "hbbs"
    public static let about = "RustDesk ID/rendezvous server (RingDesk)"
    public static let environmentHeading = "Environment only (also accepted in .env and the --config file):"
    public static let helpNotes = [
        "Precedence: command line > --config file > .env (working directory) > environment.",
        "Names are matched in any case, with '_' or '-': RELAY_SERVERS, relay-servers, Relay_Servers.",
    ]

    /// Reads the command line, `.env` and the `--config` file, and resolves the options.
    ///
    /// - Parameters:
    ///   - arguments: `argv` without the program name.
    ///   - environment: the inherited process environment.
    ///   - workingDirectory: where `.env` is read and a relative `--config` path is found.
    ///   - version: shown by `--version` and `--help`.
    /// - Throws: `ConfigError` for any unusable flag, file or value; print it and exit 1.
    public static func load(arguments: [String], environment: [String: String], workingDirectory: String = ".",
                            version: String) throws(ConfigError) -> Invocation<HbbsOptions> {
        let commandLine = try parseCommandLine(arguments)
        return try invocation(commandLine, version: version) {
            flags throws(ConfigError) in
            let dotEnv = try loadFile(joining(workingDirectory, ".env"))
            var configFile: [(String, String)]?
            if let path = commandLine.flag("config") {
                // A missing --config file is ignored like upstream, but an empty path is a mistake.
                guard !path.isEmpty else {
                    throw .invalidValue(setting: "--config", value: path, origin: .commandLine, expected: "a file path")
                }
                configFile = try loadFile(path.hasPrefix("/") ? path : joining(workingDirectory, path))
            }
            let sources = ConfigSources(environment: environment, dotEnv: dotEnv ?? [],
                                        configFile: configFile, flags: flags)
            return try resolve(Settings(sources))
        }
    }

    /// Resolves every option from combined settings; the pure half of `load`.
    public static func resolve(_ settings: Settings) throws(ConfigError) -> HbbsOptions {
        var notices: [String] = []

        let port: UInt16
        if let (text, origin) = settings.entry("PORT") {
            port = try Settings.validPort(text, origin: origin, allowed: allowedPorts)
        } else {
            port = defaultPort
        }

        let lanMask: IPPrefix? = settings.entry("MASK").flatMap { text, origin in
            if let prefix = IPPrefix(text), prefix.address.isIPv4 { return prefix }
            notices.append("ignoring --mask/MASK '\(text)' from the \(origin): not an IPv4 a.b.c.d[/len]; no LAN mask")
            return nil
        }
        let localIP = lanMask == nil ? nil : settings.value("LOCAL-IP").flatMap { $0.isEmpty ? nil : $0 }

        let selfTest: SelfTestTarget
        switch settings.entry("TEST_HBBS") {
        case nil: selfTest = .mainListener
        case let (text, _)? where text.isEmpty: selfTest = .mainListener
        case let (text, _)? where text.lowercased() == "no": selfTest = .disabled
        case let (text, origin)?:
            guard let address = SocketAddressLiteral(text) else {
                throw .invalidValue(setting: "TEST_HBBS", value: text, origin: origin,
                                    expected: "'no' or ip:port (IPv6 as [ip]:port)")
            }
            selfTest = .address(address)
        }

        var databasePath = settings.value("DB_URL") ?? ""
        for prefix in ["sqlite://", "sqlite:"] where databasePath.hasPrefix(prefix) {
            databasePath.removeFirst(prefix.count)
            break
        }
        if databasePath.isEmpty { databasePath = defaultDatabasePath }

        return HbbsOptions(
            port: port,
            bindAddress: try settings.bindAddress(),
            serial: settings.lenient("SERIAL", default: 0, notices: &notices) { Int32($0) },
            rendezvousServers: splitList(settings.value("RENDEZVOUS-SERVERS")),
            softwareURL: settings.value("SOFTWARE-URL") ?? "",
            relayServers: splitList(settings.value("RELAY-SERVERS")),
            receiveBufferSize: settings.lenient("RMEM", default: 0, notices: &notices) { UInt($0).flatMap { Int(exactly: $0) } },
            lanMask: lanMask,
            localIP: localIP,
            key: settings.value("KEY") ?? "-",
            alwaysUseRelay: settings.value("ALWAYS_USE_RELAY")?.uppercased() == "Y",
            selfTest: selfTest,
            databasePath: databasePath,
            maxDatabaseConnections: settings.lenient("MAX_DATABASE_CONNECTIONS", default: 1, notices: &notices) {
                UInt($0).flatMap { $0 > 0 ? Int(exactly: $0) : nil }
            },
            adminConsole: try settings.adminConsole(),
            trustedProxies: try settings.trustedProxies(),
            registerPkPerIPLimit: try settings.count("REGISTER-PK-IP-RATE", default: defaultRegisterPkPerIPLimit),
            registerPkNewIDsPerIPPerDay: try settings.count("REGISTER-PK-IP-NEW-IDS", default: defaultRegisterPkNewIDsPerIPPerDay),
            workers: try settings.workers(),
            pinWorkers: try settings.pinWorkers(),
            batchWaitMicros: try settings.batchWait(default: defaultBatchWaitMicros),
            metricsAddress: try settings.metricsAddress(),
            logFilter: settings.inheritedEnvironment["RUST_LOG"] ?? "info",
            notices: notices)
    }
}

/// Splits a comma list as upstream does: no trimming, empty entries dropped.
func splitList(_ text: String?) -> [String] {
    (text ?? "").split(separator: ",").map(String.init)
}

func joining(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

func loadFile(_ path: String) throws(ConfigError) -> [(String, String)]? {
    do { return try ConfigFile.load(path: path) } catch { throw .file(error) }
}
