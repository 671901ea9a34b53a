import Glibc
import URing

/// The `rdbench` command line: parses arguments, runs a mode, prints a table or one JSON object.
public enum Rdbench {
    public static let usage = """
    usage: rdbench register --server HOST:PORT --peers N [--interval 15s | --rate R] --duration S
                            [--sockets K] [--pk-rate R] [--peers-per-source N] [--threads N] [--json] [--server-pid PID]
           rdbench relay --server HOST:PORT --pairs P (--bytes B | --duration S) [--rate B] [--direction both|a-to-b]
                         [--direct] [--key LICENCE_KEY] [--threads N] [--timeout S] [--json] [--server-pid PID]
           rdbench punch --server HOST:PORT --peers N --rate FLOWS_PER_S --duration S [--lan] [--key LICENCE_KEY]
                         [--flow-timeout S] [--threads N] [--json] [--server-pid PID]
           rdbench compare register|relay|punch [that scenario's options] --vs HOST:PORT|direct [--vs-pid PID] [--rounds N]
           rdbench mixed CONFIG_FILE [--hbbs-pid PID] [--hbbr-pid PID]   (file format: docs/PERFORMANCE.md)
    --netns [--netns-sources N]: clients in a new network namespace (needs root) sending from N
    (default 1000) non-loopback addresses to the veth's host end; a loopback --server means that end.
    Every mode also takes --json (one JSON object on stdout) and --report FILE.html (charts); a
    progress line is drawn on stderr when it is a terminal.
    B takes K/M/G suffixes (binary); durations take s/ms/m suffixes.
    Exit status: 0 done (loss is reported, not an error), 1 verification failed or relay incomplete,
    2 server unreachable, 64 usage.
    """

    /// Runs `arguments` (without the program name); returns the exit status.
    public static func main(_ arguments: [String]) -> Int32 {
        do {
            return try run(arguments)
        } catch {
            writeError("rdbench: \(error.message)\n")
            if error.exitCode == 64 { writeError(usage + "\n") }
            return error.exitCode
        }
    }

    static func run(_ arguments: [String]) throws(HarnessError) -> Int32 {
        guard let mode = arguments.first else { throw HarnessError("no mode given", exitCode: 64) }
        if mode == "-h" || mode == "--help" || mode == "help" { print(usage); return 0 }
        // compare names its scenario next: `rdbench compare register --server …`.
        var scenario: Scenario?
        if mode == "compare" {
            guard arguments.count > 1, let sc = Scenario(rawValue: arguments[1]) else {
                throw HarnessError("compare needs a scenario: register, relay or punch", exitCode: 64)
            }
            scenario = sc
        }
        // mixed names its configuration file next: `rdbench mixed FILE …`.
        let configPath = mode == "mixed" && arguments.count > 1 && !arguments[1].hasPrefix("--") ? arguments[1] : nil
        var args = try Arguments(Array(arguments.dropFirst(scenario == nil && configPath == nil ? 1 : 2)))
        func take(_ name: String) -> String? { args.take(name) }
        func number<T: LosslessStringConvertible>(_ name: String, _ type: T.Type) throws(HarnessError) -> T? { try args.number(name, type) }
        let switches = args.switches
        let json = switches.contains("--json")
        let reportPath = take("--report")
        let pid = try number("--server-pid", Int32.self)
        if let pid { _ = try ServerSample.read(pid: pid) }
        var network: VethNetwork?
        defer { network?.leave(); network = nil }
        if switches.contains("--netns") {
            let count = try number("--netns-sources", Int.self) ?? 1000
            network = try enterNamespace(sources: count)
            args.netns = NetnsTarget(serverAddress: network!.serverAddress,
                                     sources: try network!.clientAddresses.map { a throws(HarnessError) in try Endpoint(parsing: a + ":1").address })
        }
        do {
            return try runMode(mode, scenario: scenario, configPath: configPath, args: &args, pid: pid, json: json, reportPath: reportPath)
        } catch where error.exitCode == 2 && network != nil {
            throw HarnessError(error.message + " (with --netns the server must listen on \(network!.serverAddress), the veth's host end: bind it to 0.0.0.0 or that address)", exitCode: 2)
        }
    }

    /// Creates the `--netns` namespace with `sources` client addresses and moves this thread into
    /// it (the generator threads started later are born there).
    static func enterNamespace(sources: Int) throws(HarnessError) -> VethNetwork {
        let network: VethNetwork
        do throws(NetworkSetupError) {
            network = try VethNetwork(clients: sources, separateServerNamespace: false)
        } catch {
            throw HarnessError("--netns: \(error.description)")
        }
        do throws(Errno) {
            try network.enter()
        } catch {
            throw HarnessError("--netns: cannot enter the namespace: \(error)")
        }
        return network
    }

    static func runMode(_ mode: String, scenario: Scenario?, configPath: String?, args: inout Arguments, pid: Int32?,
                        json: Bool, reportPath: String?) throws(HarnessError) -> Int32 {
        func take(_ name: String) -> String? { args.take(name) }
        func number<T: LosslessStringConvertible>(_ name: String, _ type: T.Type) throws(HarnessError) -> T? { try args.number(name, type) }
        func page(_ html: HTMLReport) throws(HarnessError) { if let reportPath { try html.write(to: reportPath) } }

        switch mode {
        case "register", "relay", "punch":
            let run = try Scenario(rawValue: mode)!.run(args, pid: pid, live: true)
            print(json ? run.json.text : run.table)
            try page(run.html)
            return run.ok ? 0 : 1
        case "mixed":
            guard let configPath else { throw HarnessError("mixed needs a configuration file: rdbench mixed FILE", exitCode: 64) }
            let hbbsPID = try number("--hbbs-pid", Int32.self)
            let hbbrPID = try number("--hbbr-pid", Int32.self)
            try args.rejectLeftovers()
            let report = try MixedRun.run(configPath: configPath, hbbsPID: hbbsPID ?? pid, hbbrPID: hbbrPID, netns: args.netns)
            print(json ? report.json.text : report.table)
            try page(report.html)
            return report.ok ? 0 : 1
        case "compare":
            guard let vs = take("--vs") else { throw HarnessError("--vs HOST:PORT (or direct) is required: the B target", exitCode: 64) }
            let vsPID = try number("--vs-pid", Int32.self)
            let rounds = try number("--rounds", Int.self) ?? 4
            let report = try CompareRun.run(scenario: scenario!, args: args, pid: pid, vs: vs, vsPID: vsPID, rounds: rounds)
            print(json ? report.json.text : report.table)
            try page(report.html)
            return report.ok ? 0 : 1
        default:
            throw HarnessError("unknown mode \(mode)", exitCode: 64)
        }
    }

    static func registerOptions(_ args: inout Arguments, pid: Int32?) throws(HarnessError) -> RegisterOptions {
        guard let server = args.take("--server") else { throw HarnessError("--server HOST:PORT is required", exitCode: 64) }
        guard let peers = try args.number("--peers", Int.self) else { throw HarnessError("--peers N is required", exitCode: 64) }
        guard let duration = try args.seconds("--duration") else { throw HarnessError("--duration S is required", exitCode: 64) }
        var o = RegisterOptions(server: try args.endpoint(server), peers: peers, duration: duration)
        if let n = args.netns { o.sources = .addresses(n.sources) }
        let interval = try args.seconds("--interval")
        let rate = try args.number("--rate", Double.self)
        if interval != nil && rate != nil { throw HarnessError("--interval and --rate exclude each other", exitCode: 64) }
        if let interval { o.interval = interval }
        o.rate = rate
        o.sockets = try args.number("--sockets", Int.self)
        if let r = try args.number("--pk-rate", Double.self) { o.pkRate = r }
        if let n = try args.number("--peers-per-source", Int.self) {
            guard n > 0 else { throw HarnessError("--peers-per-source must be positive", exitCode: 64) }
            o.peersPerSource = n
        }
        if let t = try args.number("--threads", Int.self) { o.threads = t }
        o.serverPID = pid
        return o
    }

    static func punchOptions(_ args: inout Arguments, pid: Int32?) throws(HarnessError) -> PunchOptions {
        guard let server = args.take("--server") else { throw HarnessError("--server HOST:PORT is required", exitCode: 64) }
        guard let peers = try args.number("--peers", Int.self) else { throw HarnessError("--peers N is required", exitCode: 64) }
        guard let rate = try args.number("--rate", Double.self) else { throw HarnessError("--rate FLOWS_PER_S is required", exitCode: 64) }
        guard let duration = try args.seconds("--duration") else { throw HarnessError("--duration S is required", exitCode: 64) }
        var o = PunchOptions(server: try args.endpoint(server), peers: peers, rate: rate, duration: duration)
        if let n = args.netns { o.sources = .addresses(n.sources) }
        o.licenceKey = args.take("--key") ?? ""
        o.sameIntranet = args.switches.contains("--lan")
        if let t = try args.seconds("--flow-timeout") { o.flowTimeout = t }
        if let t = try args.number("--threads", Int.self) { o.threads = t }
        o.serverPID = pid
        return o
    }

    static func relayOptions(_ args: inout Arguments, pid: Int32?) throws(HarnessError) -> RelayOptions {
        func take(_ name: String) -> String? { args.take(name) }
        func number<T: LosslessStringConvertible>(_ name: String, _ type: T.Type) throws(HarnessError) -> T? { try args.number(name, type) }
        let switches = args.switches
        guard let pairs = try number("--pairs", Int.self) else { throw HarnessError("--pairs P is required", exitCode: 64) }
        let direct = switches.contains("--direct")
        let server = try take("--server").map { s throws(HarnessError) in try args.endpoint(s) }
        if server == nil && !direct { throw HarnessError("--server HOST:PORT is required (or --direct)", exitCode: 64) }
        var o: RelayOptions
        let duration = try args.seconds("--duration")
        switch (take("--bytes"), duration) {
        case (let b?, nil):
            guard let bytes = parseByteCount(b) else { throw HarnessError("bad value for --bytes: \(b)", exitCode: 64) }
            o = RelayOptions(server: server, pairs: pairs, bytes: bytes)
        case (nil, let d?): o = RelayOptions(server: server, pairs: pairs, duration: d)
        case (_?, _?): throw HarnessError("--bytes and --duration exclude each other", exitCode: 64)
        case (nil, nil): throw HarnessError("--bytes B or --duration S is required", exitCode: 64)
        }
        o.direct = direct
        if let p = take("--through") {
            guard direct else { throw HarnessError("--through HOST:PORT needs --direct (a TCP proxy in front of the local sink)", exitCode: 64) }
            o.through = try Endpoint(parsing: p)
        }
        if let p = try number("--sink-port", UInt16.self) {
            guard direct else { throw HarnessError("--sink-port needs --direct", exitCode: 64) }
            o.sinkPort = p
        }
        if o.through != nil && o.threads > 1 { throw HarnessError("--through works with one thread", exitCode: 64) }
        if let r = take("--rate") {
            guard let rate = parseByteCount(r), rate > 0 else { throw HarnessError("bad value for --rate: \(r) (bytes per second, e.g. 180K)", exitCode: 64) }
            o.rate = Double(rate)
        }
        if let d = take("--direction") {
            guard let dir = RelayDirection(rawValue: d) else { throw HarnessError("--direction is both or a-to-b, not \(d)", exitCode: 64) }
            o.direction = dir
        }
        o.licenceKey = take("--key") ?? ""
        o.timeout = try args.seconds("--timeout")
        if let t = try number("--threads", Int.self) { o.threads = t }
        o.serverPID = pid
        return o
    }

}

/// Command-line flags: `--name value` pairs and the valueless switches; each is taken once.
struct Arguments {
    static let switchNames: Set<String> = ["--json", "--direct", "--netns", "--lan"]
    var flags: [String: String] = [:]
    var switches: Set<String> = []
    /// Set by `--netns`: loopback servers become the veth's host end; sources are the namespace's.
    var netns: NetnsTarget?

    init() {}

    /// HOST:PORT, rewritten for `--netns`.
    func endpoint(_ text: String) throws(HarnessError) -> Endpoint {
        let e = try Endpoint(parsing: text)
        return try netns?.rewrite(e) ?? e
    }

    init(_ arguments: [String]) throws(HarnessError) {
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if Self.switchNames.contains(a) { switches.insert(a); i += 1; continue }
            guard a.hasPrefix("--"), i + 1 < arguments.count else { throw HarnessError("unexpected argument \(a)", exitCode: 64) }
            flags[a] = arguments[i + 1]
            i += 2
        }
    }

    mutating func take(_ name: String) -> String? { flags.removeValue(forKey: name) }

    mutating func number<T: LosslessStringConvertible>(_ name: String, _ type: T.Type) throws(HarnessError) -> T? {
        guard let v = take(name) else { return nil }
        guard let n = T(v) else { throw HarnessError("bad value for \(name): \(v)", exitCode: 64) }
        return n
    }

    mutating func seconds(_ name: String) throws(HarnessError) -> Double? {
        guard let v = take(name) else { return nil }
        guard let s = parseSeconds(v), s > 0 else { throw HarnessError("bad duration for \(name): \(v)", exitCode: 64) }
        return s
    }

    func rejectLeftovers() throws(HarnessError) {
        if let k = flags.keys.sorted().first { throw HarnessError("unknown option \(k)", exitCode: 64) }
    }
}
