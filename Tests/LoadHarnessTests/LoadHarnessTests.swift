import Foundation
import Testing
@testable import LoadHarness

@Suite(.timeLimit(.minutes(1)))
struct LoadHarnessTests {
    @Test func jsonIsValidAndEscaped() throws {
        let value = JSON.object([
            ("s", .string("a\"b\\c\nd\u{01}é")), ("i", .int(-3)), ("d", .double(1.5)), ("whole", .double(2)),
            ("nan", .double(.nan)), ("b", .bool(true)), ("n", .null), ("a", .array([.int(1), .string("x")])),
        ])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(value.text.utf8)) as? [String: Any])
        #expect(parsed["s"] as? String == "a\"b\\c\nd\u{01}é")
        #expect((parsed["i"] as? NSNumber)?.intValue == -3)
        #expect((parsed["d"] as? NSNumber)?.doubleValue == 1.5)
        #expect((parsed["whole"] as? NSNumber)?.intValue == 2)
        #expect(parsed["nan"] is NSNull && parsed["n"] is NSNull)
        #expect((parsed["a"] as? [Any])?.count == 2)
    }

    @Test func sizesDurationsAndAddresses() throws {
        #expect(parseByteCount("4M") == 4 << 20)
        #expect(parseByteCount("64K") == 64 << 10)
        #expect(parseByteCount("1G") == 1 << 30)
        #expect(parseByteCount("123") == 123)
        #expect(parseByteCount("x") == nil)
        #expect(parseSeconds("15s") == 15)
        #expect(parseSeconds("500ms") == 0.5)
        #expect(parseSeconds("2m") == 120)
        #expect(parseSeconds("3") == 3)
        let e = try Endpoint(parsing: "127.0.0.1:21116")
        #expect(e.port == 21116 && e.isLoopback)
        #expect(throws: HarnessError.self) { try Endpoint(parsing: "127.0.0.1") }
        #expect(throws: HarnessError.self) { try Endpoint(parsing: "example.org:1") }
    }

    @Test func fifoMatchesOldestFirst() {
        var f = FIFO<Int>()
        for i in 0..<5000 { f.push(i) }
        for i in 0..<4000 { #expect(f.pop() == i) }
        f.push(5000)
        #expect(f.count == 1001)
        #expect(f.first == 4000)
        while f.pop() != nil {}
        #expect(f.isEmpty)
    }

    @Test func latencyPercentiles() {
        var l = LatencyRecorder()
        for us in 1...1000 { l.record(nanos: UInt64(us) * 1000) }
        #expect(l.count == 1000)
        #expect((499...501).contains(l.percentile(50)))
        #expect((989...991).contains(l.percentile(99)))
    }

    @Test func usageErrors() {
        #expect(Rdbench.main([]) == 64)
        #expect(Rdbench.main(["register", "--peers", "1"]) == 64)
        #expect(Rdbench.main(["relay", "--pairs", "1", "--bytes", "1K", "--bogus", "1", "--direct"]) == 64)
        #expect(Rdbench.main(["register", "--server", "127.0.0.1:1", "--peers", "1", "--duration", "1", "--rate", "5", "--interval", "1s"]) == 64)
    }
}

@Suite(.timeLimit(.minutes(1)))
struct LoadHarnessReportTests {
    @Test func mixedConfigReadsKeysCommentsAndRejectsUnknownKeys() throws {
        let c = try MixedConfig(text: "# population\nduration = 30s   # all parts\n\n  relay.rate=180K\nkey = a=b\n", name: "f")
        #expect(c.values["duration"] == "30s")
        #expect(c.values["relay.rate"] == "180K")
        #expect(c.values["key"] == "a=b", "only the first = splits")
        #expect(throws: HarnessError.self) { try MixedConfig(text: "register.peer = 5", name: "f") }
        #expect(throws: HarnessError.self) { try MixedConfig(text: "duration 5", name: "f") }
    }

    @Test func compareTakesTheMedianOfTheRatios() {
        func run(_ v: Double) -> ScenarioRun {
            ScenarioRun(figures: [Figure(name: "x", value: v)], ok: true, json: .null, table: "", html: HTMLReport(title: "", subtitle: ""))
        }
        var r = CompareReport(scenario: "register", a: "A", b: "B")
        r.rounds = [(run(10), run(5)), (run(10), run(20)), (run(10), run(7))]
        #expect(r.ratio(0, "x") == 0.5)
        #expect(r.medianRatio("x") == 0.7)
        r.rounds.append((run(10), run(9)))
        #expect(abs(r.medianRatio("x")! - 0.8) < 1e-12, "even count: mean of the middle two")
        #expect(r.table.contains("median B/A"))
    }

    @Test func sourcePoolKeepsTheSecondGroupOffTheFirst() {
        let addresses = (1...10).map { in_addr_t($0) }
        let pool = SourcePool.addresses(addresses)
        let first = Set((0..<4).compactMap { pool.address($0) })
        let second = Set((0..<20).compactMap { pool.otherAddress($0, firstGroupUses: 4) })
        #expect(first.isDisjoint(with: second))
        #expect(SourcePool.kernel.address(3) == nil)
        if case .loopback = SourcePool.defaultFor(try! Endpoint(parsing: "127.0.0.1:1")) {} else { Issue.record("loopback default") }
    }

    @Test func htmlChartsAreInlineSVGWithEscapedText() {
        var page = HTMLReport(title: "a <b> & c", subtitle: "s")
        var latency = LatencyRecorder()
        for n in 1...1000 { latency.record(nanos: UInt64(n) * 10_000) }
        page.addRun(timeline: Timeline(unit: "x", samples: [TimelineSample(second: 1, rate: 5, errors: 0), TimelineSample(second: 2, rate: 7, errors: 1)]),
                    rateLabel: "done", latency: [("latency", latency)], usage: nil, per: [])
        let html = page.html
        #expect(html.contains("a &lt;b&gt; &amp; c"))
        #expect(html.contains("<polyline class=\"series\""))
        #expect(html.contains("<rect class=\"bar\""))
        #expect(html.contains("seconds with errors"))
        #expect(!html.contains("<script"))
        #expect(HTMLReport.niceStep(7) == 2 && HTMLReport.niceStep(1000) == 200)
        #expect(HTMLReport.label(0.5) == "0.5" && HTMLReport.label(25_000) == "25k")
    }
}
