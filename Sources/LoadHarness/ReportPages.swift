/// The `--report` page of each scenario: its headline figures and charts (HTMLReport).
extension RegisterReport {
    public var html: HTMLReport {
        var page = HTMLReport(title: "rdbench register → \(options.server)",
                              subtitle: "\(options.peers) peers, \(sockets) sockets, target \(fmt(options.aggregateRate, 1)) RegisterPeer/s for \(fmt(options.duration, 1)) s")
        page.ok = ok
        page.tiles = [("RegisterPeer/s achieved", fmt(achievedRate, 1)), ("replies", "\(replies)"), ("lost", "\(lost)"),
                      ("wrong answers", "\(unexpected)"), ("p50", fmtMicros(latency.percentile(50))), ("p99", fmtMicros(latency.percentile(99))),
                      ("RegisterPk OK", "\(pkOK)/\(pkSent)")]
        page.addRun(timeline: timeline, rateLabel: "replies", latency: [("RegisterPeer latency (from due time)", latency), ("RegisterPk latency", pkLatency)],
                    usage: server, per: [("million RegisterPeer", Double(sent) / 1e6)])
        if let pk = serverPk {
            page.sections.append(HTMLReport.barChart(title: "Server CPU during the RegisterPk phase",
                                                     bars: [("CPU-s per million RegisterPk", pkSent > 0 ? pk.cpuSeconds / (Double(pkSent) / 1e6) : 0)]))
        }
        return page
    }
}

extension RelayReport {
    public var html: HTMLReport {
        let amount = options.bytes.map { "\($0) B" } ?? "\(fmt(options.duration ?? 0, 1)) s"
        var page = HTMLReport(title: "rdbench relay → \(options.direct ? "direct" : options.server?.description ?? "-")",
                              subtitle: "\(options.pairs) pairs × \(amount)\(options.rate.map { " at \(fmt($0 / 1024, 1)) KiB/s" } ?? ""), direction \(options.direction.rawValue), \(options.threads) thread(s)")
        page.ok = ok
        page.tiles = [("MiB/s verified", fmt(throughputBytesPerSecond / 1_048_576, 1)), ("pairs completed", "\(pairsCompleted)/\(options.pairs)"),
                      ("KiB/s per direction", fmt(ratePerHalf / 1024, 1)), ("pairs/s", fmt(pairsPerSecond, 1)),
                      ("pairing p99", fmtMicros(pairing.percentile(99))), ("failures", "\(failures.count)")]
        page.addRun(timeline: timeline, rateLabel: "verified", latency: [("Pairing latency", pairing)],
                    usage: server, per: [("GB", Double(bytesVerified) / 1e9), ("pair", Double(options.pairs))])
        if !failures.isEmpty { page.sections.append(HTMLReport.table(title: "Failures", header: ["failure"], rows: failures.prefix(20).map { [$0] })) }
        return page
    }
}

extension PunchReport {
    public var html: HTMLReport {
        var page = HTMLReport(title: "rdbench punch → \(options.server)",
                              subtitle: "\(options.peers) B peers, target \(fmt(options.rate, 1)) flows/s for \(fmt(options.duration, 1)) s\(options.sameIntranet ? ", same intranet" : "")")
        page.ok = ok
        page.tiles = [("flows/s achieved", fmt(flowsPerSecond, 1)), ("flows ok", "\(flowsOK)/\(flowsStarted)"), ("failed", "\(failed)"),
                      ("p50", fmtMicros(latency.percentile(50))), ("p99", fmtMicros(latency.percentile(99)))]
        page.addRun(timeline: timeline, rateLabel: "flows", latency: [("Flow latency (due time → PunchHoleResponse at A)", latency),
                                                                     ("Due time → PunchHole at B", punchLatency)],
                    usage: server, per: [("million flows", Double(flowsStarted) / 1e6)])
        page.sections.append(HTMLReport.barChart(title: "Failures by reason",
                                                 bars: PunchFailure.allCases.map { ($0.rawValue, Double(failures[$0] ?? 0)) }, colors: ["#b00020"]))
        return page
    }
}
