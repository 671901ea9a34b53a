import Glibc
import Synchronization

/// `rdbench mixed CONFIG`: a realistic population — registered peers keeping alive, punch-hole
/// flows, paced relay sessions — from a `key = value` file, every part running at the same time
/// on its own thread(s), each reported on its own, plus hbbs's and hbbr's CPU over the whole run.
///
/// The file (docs/PERFORMANCE.md has an example): one `key = value` per line, `#` starts a comment,
/// blank lines are ignored, unknown keys are an error. A part runs when its count is above zero.
///
///     duration = 30s                # every part
///     hbbs = 127.0.0.1:21116        # register and punch target
///     hbbr = 127.0.0.1:21117        # relay target
///     key = LICENCE_KEY             # hbbs/hbbr -k (punch and relay; punch.key, relay.key override)
///     register.peers = 1000         # peers keeping themselves registered
///     register.interval = 15s       # their RegisterPeer interval (or register.rate = aggregate/s)
///     punch.peers = 100             # B peers punch flows go to
///     punch.rate = 20               # flows per second
///     relay.pairs = 50              # concurrent relay sessions
///     relay.rate = 180K             # bytes per second per direction (omit: unpaced)
///     relay.direction = both        # or a-to-b
public struct MixedConfig: Sendable {
    public var values: [String: String] = [:]
    static let keys: Set<String> = ["duration", "hbbs", "hbbr", "key", "register.peers", "register.interval", "register.rate",
                                    "punch.peers", "punch.rate", "punch.lan", "relay.pairs", "relay.rate", "relay.direction", "relay.threads",
                                    "punch.threads", "punch.key", "relay.key"]

    public init(text: String, name: String) throws(HarnessError) {
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) else { continue }
            guard let eq = line.firstIndex(of: "=") else { throw HarnessError("\(name):\(n + 1): expected key = value", exitCode: 64) }
            let key = line[..<eq].trimmingSpaces, value = line[line.index(after: eq)...].trimmingSpaces
            guard Self.keys.contains(key) else { throw HarnessError("\(name):\(n + 1): unknown key \(key)", exitCode: 64) }
            values[key] = value
        }
    }

    func int(_ key: String) throws(HarnessError) -> Int {
        guard let v = values[key] else { return 0 }
        guard let n = Int(v), n >= 0 else { throw HarnessError("mixed: \(key) must be a count, not \(v)", exitCode: 64) }
        return n
    }

    /// The scenario arguments of one part, built from the file.
    func arguments(_ pairs: [(String, String?)], switches: [String] = [], netns: NetnsTarget?) -> Arguments {
        var a = Arguments()
        a.netns = netns
        for (k, v) in pairs { if let v { a.flags[k] = v } }
        a.switches = Set(switches)
        return a
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return String(s)
    }
}

public struct MixedReport: Sendable {
    public var config: String
    public var duration: Double
    public var register: RegisterReport?
    public var punch: PunchReport?
    public var relay: RelayReport?
    public var hbbs: ServerUsage?
    public var hbbr: ServerUsage?
    public var seconds = 0.0

    public var ok: Bool { (register?.ok ?? true) && (punch?.ok ?? true) && (relay?.ok ?? true) }

    func usage(_ u: ServerUsage?) -> JSON {
        guard let u else { return .null }
        return u.json(per: [("cpu_seconds_per_second", seconds)])
    }

    public var json: JSON {
        .object([
            ("mode", .string("mixed")),
            ("config", .string(config)),
            ("duration_s", .double(duration)),
            ("seconds", .double(seconds)),
            ("ok", .bool(ok)),
            ("errors", .int((register.map { $0.unexpected } ?? 0) + (punch?.failed ?? 0) + (relay?.failures.count ?? 0))),
            ("register", register?.json ?? .null),
            ("punch", punch?.json ?? .null),
            ("relay", relay?.json ?? .null),
            ("hbbs_usage", usage(hbbs)),
            ("hbbr_usage", usage(hbbr)),
        ])
    }

    public var table: String {
        var lines = ["rdbench mixed \(config): \(fmt(duration, 1)) s, parts run together"]
        for t in [register?.table, punch?.table, relay?.table].compactMap({ $0 }) { lines.append(t) }
        if let u = hbbs { lines.append(u.line("hbbs ", per: [("second of run (= cores)", seconds)])) }
        if let u = hbbr { lines.append(u.line("hbbr ", per: [("second of run (= cores)", seconds)])) }
        return lines.joined(separator: "\n")
    }

    public var html: HTMLReport {
        var page = HTMLReport(title: "rdbench mixed", subtitle: "\(config): \(fmt(duration, 1)) s, every part at the same time")
        page.ok = ok
        for (name, part) in [("register", register?.html), ("punch", punch?.html), ("relay", relay?.html)] {
            guard let part else { continue }
            page.tiles += part.tiles.map { ("\(name): \($0.0)", $0.1) }
            page.sections.append("<h2 style=\"font-size:19px;border-top:2px solid #ccc;padding-top:12px\">\(name)</h2>")
            page.sections += part.sections
        }
        var bars: [(String, Double)] = []
        if let u = hbbs { bars.append(("hbbs CPU cores (average)", seconds > 0 ? u.cpuSeconds / seconds : 0)) }
        if let u = hbbr { bars.append(("hbbr CPU cores (average)", seconds > 0 ? u.cpuSeconds / seconds : 0)) }
        if !bars.isEmpty { page.sections.append(HTMLReport.barChart(title: "Servers over the whole run", bars: bars)) }
        return page
    }
}

public enum MixedRun {
    static func run(configPath: String, hbbsPID: Int32?, hbbrPID: Int32?, netns: NetnsTarget?) throws(HarnessError) -> MixedReport {
        guard let text = readSmallFile(configPath) else { throw HarnessError("cannot read \(configPath)", exitCode: 64) }
        let c = try MixedConfig(text: text, name: configPath)
        guard let d = c.values["duration"], let duration = parseSeconds(d), duration > 0 else {
            throw HarnessError("mixed: duration = S is required", exitCode: 64)
        }
        let key = c.values["key"]
        var parts: [(String, @Sendable () -> Result<Any & Sendable, HarnessError>)] = []
        if try c.int("register.peers") > 0 {
            var a = c.arguments([("--server", c.values["hbbs"]), ("--peers", c.values["register.peers"]), ("--duration", d),
                                 ("--interval", c.values["register.interval"]), ("--rate", c.values["register.rate"])], netns: netns)
            let o = try Rdbench.registerOptions(&a, pid: nil)
            parts.append(("register", { Result { () throws(HarnessError) in try RegisterLoad.run(o, live: false) as Any & Sendable } }))
        }
        if try c.int("punch.peers") > 0 {
            var a = c.arguments([("--server", c.values["hbbs"]), ("--peers", c.values["punch.peers"]), ("--duration", d),
                                 ("--rate", c.values["punch.rate"] ?? "10"), ("--key", c.values["punch.key"] ?? key), ("--threads", c.values["punch.threads"])],
                                switches: c.values["punch.lan"] == "true" ? ["--lan"] : [], netns: netns)
            let o = try Rdbench.punchOptions(&a, pid: nil)
            parts.append(("punch", { Result { () throws(HarnessError) in try PunchLoad.run(o, live: false) as Any & Sendable } }))
        }
        if try c.int("relay.pairs") > 0 {
            var a = c.arguments([("--server", c.values["hbbr"]), ("--pairs", c.values["relay.pairs"]), ("--duration", d),
                                 ("--rate", c.values["relay.rate"]), ("--direction", c.values["relay.direction"]), ("--key", c.values["relay.key"] ?? key),
                                 ("--threads", c.values["relay.threads"])], netns: netns)
            let o = try Rdbench.relayOptions(&a, pid: nil)
            parts.append(("relay", { Result { () throws(HarnessError) in try RelayLoad.run(o, live: false) as Any & Sendable } }))
        }
        guard !parts.isEmpty else { throw HarnessError("mixed: nothing to run (register.peers, punch.peers, relay.pairs are all 0)", exitCode: 64) }
        let hbbsBefore = try hbbsPID.map { p throws(HarnessError) in try ServerSample.read(pid: p) }
        let hbbrBefore = try hbbrPID.map { p throws(HarnessError) in try ServerSample.read(pid: p) }
        var monitor = Monitor(label: "mixed (\(parts.map(\.0).joined(separator: "+")))", unit: "parts", expectedSeconds: duration)
        monitor.showsRate = false
        let start = monotonicNanos()
        let (results, _) = monitor.run([LiveCounters()], parts.map(\.1))
        var report = MixedReport(config: configPath, duration: duration)
        report.seconds = Double(monotonicNanos() - start) / 1e9
        for (i, r) in results.enumerated() {
            switch r {
            case .failure(let e): throw HarnessError("mixed \(parts[i].0): \(e.message)", exitCode: e.exitCode)
            case .success(let v):
                if let x = v as? RegisterReport { report.register = x }
                if let x = v as? PunchReport { report.punch = x }
                if let x = v as? RelayReport { report.relay = x }
            }
        }
        if let p = hbbsPID, let b = hbbsBefore { report.hbbs = ServerUsage(pid: p, before: b, after: try ServerSample.read(pid: p)) }
        if let p = hbbrPID, let b = hbbrBefore { report.hbbr = ServerUsage(pid: p, before: b, after: try ServerSample.read(pid: p)) }
        return report
    }
}
