import Glibc

/// One figure of a run, compared between two targets.
public struct Figure: Sendable {
    public var name: String
    public var value: Double
}

/// A scenario run once: the figures `compare` puts side by side, whether it was clean, its JSON.
public struct ScenarioRun {
    public var figures: [Figure]
    public var ok: Bool
    public var json: JSON
    public var table: String
    public var html: HTMLReport
}

extension RegisterReport {
    var figures: [Figure] {
        var f = [Figure(name: "RegisterPeer/s", value: achievedRate), Figure(name: "replies/s", value: replyRate),
                 Figure(name: "p50 µs", value: Double(latency.percentile(50))), Figure(name: "p99 µs", value: Double(latency.percentile(99))),
                 Figure(name: "lost", value: Double(lost))]
        if let s = server, sent > 0 { f.append(Figure(name: "server CPU-s per M RegisterPeer", value: s.cpuSeconds / (Double(sent) / 1e6))) }
        if let s = server { f.append(Figure(name: "server peak RSS MiB", value: Double(s.peakRSSKiB) / 1024)) }
        return f
    }
}

extension RelayReport {
    var figures: [Figure] {
        var f = [Figure(name: "MiB/s", value: throughputBytesPerSecond / 1_048_576),
                 Figure(name: "pairs/s", value: pairsPerSecond),
                 Figure(name: "pairing p99 µs", value: Double(pairing.percentile(99)))]
        if let s = server, bytesVerified > 0 { f.append(Figure(name: "server CPU-s per GB", value: s.cpuSeconds / (Double(bytesVerified) / 1e9))) }
        return f
    }
}

extension PunchReport {
    var figures: [Figure] {
        var f = [Figure(name: "flows/s", value: flowsPerSecond), Figure(name: "p50 µs", value: Double(latency.percentile(50))),
                 Figure(name: "p99 µs", value: Double(latency.percentile(99))), Figure(name: "failed", value: Double(failed))]
        if let s = server, flowsStarted > 0 { f.append(Figure(name: "server CPU-s per M flows", value: s.cpuSeconds / (Double(flowsStarted) / 1e6))) }
        return f
    }
}

/// The scenarios `compare` and `mixed` can run.
enum Scenario: String {
    case register, relay, punch

    /// Parses the scenario's options from `args` and runs it once.
    func run(_ args: Arguments, pid: Int32?, live: Bool) throws(HarnessError) -> ScenarioRun {
        var a = args
        switch self {
        case .register:
            let o = try Rdbench.registerOptions(&a, pid: pid)
            try a.rejectLeftovers()
            let r = try RegisterLoad.run(o, live: live)
            return ScenarioRun(figures: r.figures, ok: r.ok, json: r.json, table: r.table, html: r.html)
        case .relay:
            let o = try Rdbench.relayOptions(&a, pid: pid)
            try a.rejectLeftovers()
            let r = try RelayLoad.run(o, live: live)
            return ScenarioRun(figures: r.figures, ok: r.ok, json: r.json, table: r.table, html: r.html)
        case .punch:
            let o = try Rdbench.punchOptions(&a, pid: pid)
            try a.rejectLeftovers()
            let r = try PunchLoad.run(o, live: live)
            return ScenarioRun(figures: r.figures, ok: r.ok, json: r.json, table: r.table, html: r.html)
        }
    }
}

/// `rdbench compare`: one scenario against two targets in alternation, A B A B …, so that both see
/// the same machine (neighbours, thermal state, caches) in turn. Every figure is reported for both
/// with the ratio B/A per round and the median ratio over the rounds: on a shared machine the
/// absolute figures drift, the ratio within a round much less.
///
/// A is the scenario as given (`--server`, `--server-pid`); B is the same with `--server` replaced
/// by `--vs HOST:PORT` (or, for relay, `--vs direct`: the direct-connection baseline) and
/// `--server-pid` by `--vs-pid`.
public struct CompareReport {
    public var scenario: String
    public var a: String
    public var b: String
    public var rounds: [(a: ScenarioRun, b: ScenarioRun)] = []

    public var ok: Bool { rounds.allSatisfy { $0.a.ok && $0.b.ok } }

    var figureNames: [String] {
        var names: [String] = []
        for r in rounds { for f in r.a.figures + r.b.figures where !names.contains(f.name) { names.append(f.name) } }
        return names
    }

    static func value(_ run: ScenarioRun, _ name: String) -> Double? { run.figures.first { $0.name == name }?.value }

    func ratio(_ round: Int, _ name: String) -> Double? {
        guard let a = Self.value(rounds[round].a, name), let b = Self.value(rounds[round].b, name), a != 0 else { return nil }
        return b / a
    }

    func medianRatio(_ name: String) -> Double? {
        let r = rounds.indices.compactMap { ratio($0, name) }.sorted()
        guard !r.isEmpty else { return nil }
        return r.count % 2 == 1 ? r[r.count / 2] : (r[r.count / 2 - 1] + r[r.count / 2]) / 2
    }

    public var json: JSON {
        let names = figureNames
        func figures(_ run: ScenarioRun) -> JSON { .object(run.figures.map { ($0.name, .double($0.value)) }) }
        return .object([
            ("mode", .string("compare")),
            ("scenario", .string(scenario)),
            ("a", .string(a)),
            ("b", .string(b)),
            ("ok", .bool(ok)),
            ("errors", .int(rounds.reduce(0) { $0 + ($1.a.ok ? 0 : 1) + ($1.b.ok ? 0 : 1) })),
            ("rounds", .array(rounds.indices.map { i in
                .object([("round", .int(i + 1)), ("a", figures(rounds[i].a)), ("b", figures(rounds[i].b)),
                         ("ratio_b_over_a", .object(names.map { n in (n, ratio(i, n).map { .double($0) } ?? .null) }))])
            })),
            ("median_ratio_b_over_a", .object(names.map { n in (n, medianRatio(n).map { .double($0) } ?? .null) })),
            ("runs", .array(rounds.flatMap { [$0.a.json, $0.b.json] })),
        ])
    }

    public var table: String {
        var lines = ["rdbench compare \(scenario): A = \(a), B = \(b), \(rounds.count) rounds (A then B each round)"]
        let names = figureNames
        let width = max(12, (names.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        func padRight(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        var header = padRight("  figure", width + 2)
        for i in rounds.indices { header += pad("A\(i + 1)", 11) + pad("B\(i + 1)", 11) + pad("B/A", 7) }
        lines.append(header + pad("median B/A", 12))
        for n in names {
            var line = padRight("  " + n, width + 2)
            for i in rounds.indices {
                line += pad(Self.value(rounds[i].a, n).map { HTMLReport.label($0) } ?? "-", 11)
                line += pad(Self.value(rounds[i].b, n).map { HTMLReport.label($0) } ?? "-", 11)
                line += pad(ratio(i, n).map { fmt($0, 2) } ?? "-", 7)
            }
            lines.append(line + pad(medianRatio(n).map { fmt($0, 3) } ?? "-", 12))
        }
        for (i, r) in rounds.enumerated() {
            if !r.a.ok { lines.append("  round \(i + 1): A had errors") }
            if !r.b.ok { lines.append("  round \(i + 1): B had errors") }
        }
        return lines.joined(separator: "\n")
    }

    public var html: HTMLReport {
        var page = HTMLReport(title: "rdbench compare \(scenario)", subtitle: "A = \(a)   B = \(b)   \(rounds.count) rounds, A then B each round")
        page.ok = ok
        let names = figureNames
        page.tiles = names.compactMap { n in medianRatio(n).map { ("median B/A: \(n)", fmt($0, 3)) } }
        page.sections.append(HTMLReport.barChart(title: "Median ratio B/A per figure (1 = same)",
                                                 bars: names.compactMap { n in medianRatio(n).map { (n, $0) } }, colors: ["#9467bd"]))
        for n in names {
            var bars: [(String, Double)] = []
            for i in rounds.indices {
                if let v = Self.value(rounds[i].a, n) { bars.append(("round \(i + 1) A", v)) }
                if let v = Self.value(rounds[i].b, n) { bars.append(("round \(i + 1) B", v)) }
            }
            page.sections.append(HTMLReport.barChart(title: n, bars: bars, colors: [HTMLReport.palette[0], HTMLReport.palette[1]]))
        }
        var rows: [[String]] = []
        for n in names {
            var row = [n]
            for i in rounds.indices {
                row += [Self.value(rounds[i].a, n).map { HTMLReport.label($0) } ?? "-", Self.value(rounds[i].b, n).map { HTMLReport.label($0) } ?? "-",
                        ratio(i, n).map { fmt($0, 3) } ?? "-"]
            }
            rows.append(row + [medianRatio(n).map { fmt($0, 3) } ?? "-"])
        }
        let header = ["figure"] + rounds.indices.flatMap { ["A\($0 + 1)", "B\($0 + 1)", "B/A"] } + ["median B/A"]
        page.sections.append(HTMLReport.table(title: "All rounds", header: header, rows: rows))
        return page
    }
}

public enum CompareRun {
    /// Runs `scenario` with `args` (B's from A's as described on CompareReport) for `rounds` rounds.
    static func run(scenario: Scenario, args: Arguments, pid: Int32?, vs: String, vsPID: Int32?, rounds: Int,
                    pause: Double = 0.5) throws(HarnessError) -> CompareReport {
        guard rounds > 0 else { throw HarnessError("--rounds must be positive", exitCode: 64) }
        var b = args
        if vs == "direct" {
            guard scenario == .relay else { throw HarnessError("--vs direct is for relay only", exitCode: 64) }
            b.flags.removeValue(forKey: "--server")
            b.switches.insert("--direct")
        } else {
            _ = try Endpoint(parsing: vs)
            b.flags["--server"] = vs
        }
        if let p = vsPID { _ = try ServerSample.read(pid: p) }
        let aName = (args.switches.contains("--direct") ? "direct" : args.flags["--server"] ?? "-") + (pid.map { " (pid \($0))" } ?? "")
        let bName = vs + (vsPID.map { " (pid \($0))" } ?? "")
        var report = CompareReport(scenario: scenario.rawValue, a: aName, b: bName)
        for _ in 0..<rounds {
            let ra = try scenario.run(args, pid: pid, live: true)
            usleep(UInt32(pause * 1e6))
            let rb = try scenario.run(b, pid: vsPID, live: true)
            usleep(UInt32(pause * 1e6))
            report.rounds.append((ra, rb))
        }
        return report
    }
}
