import Glibc

/// The `rdbench` command line: parses arguments, runs a mode, prints a table or one JSON object.
public enum Rdbench {
    public static let usage = """
    usage: rdbench register --server HOST:PORT --peers N [--interval 15s | --rate R] --duration S
                            [--sockets K] [--pk-rate R] [--json] [--server-pid PID]
           rdbench relay --server HOST:PORT --pairs P --bytes B [--direct] [--key LICENCE_KEY]
                         [--timeout S] [--json] [--server-pid PID]
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
        var flags: [String: String] = [:]
        var switches: Set<String> = []
        var i = 1
        let switchNames: Set<String> = ["--json", "--direct"]
        while i < arguments.count {
            let a = arguments[i]
            if switchNames.contains(a) { switches.insert(a); i += 1; continue }
            guard a.hasPrefix("--"), i + 1 < arguments.count else { throw HarnessError("unexpected argument \(a)", exitCode: 64) }
            flags[a] = arguments[i + 1]
            i += 2
        }
        func take(_ name: String) -> String? { flags.removeValue(forKey: name) }
        func number<T: LosslessStringConvertible>(_ name: String, _ type: T.Type) throws(HarnessError) -> T? {
            guard let v = take(name) else { return nil }
            guard let n = T(v) else { throw HarnessError("bad value for \(name): \(v)", exitCode: 64) }
            return n
        }
        func seconds(_ name: String) throws(HarnessError) -> Double? {
            guard let v = take(name) else { return nil }
            guard let s = parseSeconds(v), s > 0 else { throw HarnessError("bad duration for \(name): \(v)", exitCode: 64) }
            return s
        }
        let json = switches.contains("--json")
        let pid = try number("--server-pid", Int32.self)
        if let pid { _ = try ServerSample.read(pid: pid) }

        switch mode {
        case "register":
            guard let server = take("--server") else { throw HarnessError("--server HOST:PORT is required", exitCode: 64) }
            guard let peers = try number("--peers", Int.self) else { throw HarnessError("--peers N is required", exitCode: 64) }
            guard let duration = try seconds("--duration") else { throw HarnessError("--duration S is required", exitCode: 64) }
            var o = RegisterOptions(server: try Endpoint(parsing: server), peers: peers, duration: duration)
            let interval = try seconds("--interval")
            let rate = try number("--rate", Double.self)
            if interval != nil && rate != nil { throw HarnessError("--interval and --rate exclude each other", exitCode: 64) }
            if let interval { o.interval = interval }
            o.rate = rate
            o.sockets = try number("--sockets", Int.self)
            if let r = try number("--pk-rate", Double.self) { o.pkRate = r }
            o.serverPID = pid
            try rejectLeftovers(flags)
            let report = try RegisterLoad.run(o)
            print(json ? report.json.text : report.table)
            return 0
        case "relay":
            guard let pairs = try number("--pairs", Int.self) else { throw HarnessError("--pairs P is required", exitCode: 64) }
            guard let b = take("--bytes"), let bytes = parseByteCount(b) else { throw HarnessError("--bytes B is required (e.g. 4M)", exitCode: 64) }
            let direct = switches.contains("--direct")
            let server = try take("--server").map { s throws(HarnessError) in try Endpoint(parsing: s) }
            if server == nil && !direct { throw HarnessError("--server HOST:PORT is required (or --direct)", exitCode: 64) }
            var o = RelayOptions(server: server, pairs: pairs, bytes: bytes)
            o.direct = direct
            o.licenceKey = take("--key") ?? ""
            if let t = try seconds("--timeout") { o.timeout = t }
            o.serverPID = pid
            try rejectLeftovers(flags)
            let report = try RelayLoad.run(o)
            print(json ? report.json.text : report.table)
            return report.ok ? 0 : 1
        default:
            throw HarnessError("unknown mode \(mode)", exitCode: 64)
        }
    }

    static func rejectLeftovers(_ flags: [String: String]) throws(HarnessError) {
        if let k = flags.keys.sorted().first { throw HarnessError("unknown option \(k)", exitCode: 64) }
    }
}
