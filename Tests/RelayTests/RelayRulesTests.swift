import Testing
@testable import Relay
import RustDeskProtocol

/// PROTOCOL.md §8.3, §8.5, §8.6 and §9.2 at the rules level; checklist item 59.
@Suite(.timeLimit(.minutes(1)))
struct RelayConsoleTests {
    func console() -> RelayConsole { RelayConsole(runtime: RelayRuntime(settings: .init(), now: 0)) }

    @Test func helpHasTwelveLines() {
        let out = console().execute("h")
        #expect(out.split(separator: "\n").count == 12)
        #expect(out.hasPrefix("blacklist-add(ba) <ip>\n") && out.hasSuffix("usage(u)\n"))
    }

    @Test func listsAddRemoveShow() {
        let c = console()
        #expect(c.execute("ba 1.2.3.4|5.6.7.8") == "")
        #expect(c.execute("b 1.2.3.4") == "true\n")
        #expect(c.execute("b 9.9.9.9") == "false\n")
        #expect(c.execute("b") == "1.2.3.4\n5.6.7.8\n")
        // Normalised comparison: an IPv4 entry matches the dual-stack form.
        #expect(c.execute("b ::ffff:1.2.3.4") == "true\n")
        #expect(c.execute("br 1.2.3.4") == "")
        #expect(c.execute("b 1.2.3.4") == "false\n")
        #expect(c.execute("br all") == "")
        #expect(c.execute("b") == "")
        #expect(c.execute("Ba 7.7.7.7") == "")
        #expect(c.execute("B 7.7.7.7") == "true\n")
        #expect(c.execute("b 7.7.7.7") == "false\n", "blocklist and blacklist are separate")
        #expect(c.execute("Br 7.7.7.7") == "" && c.execute("B 7.7.7.7") == "false\n")
    }

    @Test func settingsShowAndSet() {
        let c = console()
        #expect(c.execute("sb") == "128Mb/s\n")
        #expect(c.execute("sb 256") == "")
        #expect(c.execute("sb") == "256Mb/s\n")
        #expect(c.execute("dt") == "0.66\n")
        #expect(c.execute("dt 0.5") == "" && c.execute("dt") == "0.5\n")
        #expect(c.execute("dt -1") == "" && c.execute("dt") == "0.5\n")
        #expect(c.execute("t") == "1800s\n")
        #expect(c.execute("t 60") == "" && c.execute("t") == "60s\n")
        #expect(c.execute("t 1.5") == "" && c.execute("t") == "60s\n")
        #expect(c.execute("ls") == "32Mb/s\n")
        #expect(c.execute("ls 8.5") == "" && c.execute("ls") == "8.5Mb/s\n")
        #expect(c.execute("tb") == "1024Mb/s\n")
        #expect(c.execute("tb 100") == "" && c.execute("tb") == "100Mb/s\n")
        #expect(c.execute("nope") == "")
    }

    @Test func usageIsSortedByTotalDescending() {
        let c = console()
        c.runtime.usage.set("1.1.1.1:5", .init(elapsedMs: 2_000, totalBits: 8 * 1_048_576, highestKbps: 9, currentKbps: 3))
        c.runtime.usage.set("2.2.2.2:6", .init(elapsedMs: 1_000, totalBits: 16 * 1_048_576 * 8, highestKbps: 1, currentKbps: 1))
        c.runtime.usage.set("3.3.3.3:7", .init())
        #expect(c.execute("u") == "2.2.2.2:6: 1s 16.00MB 1kb/s 134217kb/s 1kb/s\n1.1.1.1:5: 2s 1.00MB 9kb/s 4194kb/s 3kb/s\n")
    }
}

@Suite(.timeLimit(.minutes(1)))
struct BandwidthTests {
    @Test func environmentValuesFollowTheSpec() {
        var s = BandwidthSettings()
        var applied = s.apply("TOTAL_BANDWIDTH", "2048")
        #expect(applied && s.totalMbps == 2048)
        applied = s.apply("SINGLE_BANDWIDTH", "0")
        #expect(!applied && s.singleMbps == 128)
        applied = s.apply("LIMIT_SPEED", "abc")
        #expect(!applied && s.limitMbps == 32)
        applied = s.apply("DOWNGRADE_THRESHOLD", "0.679")
        #expect(applied && s.downgradeThresholdHundredths == 67)
        applied = s.apply("DOWNGRADE_START_CHECK", "60")
        #expect(applied && s.downgradeStartCheckSeconds == 60)
        applied = s.apply("DOWNGRADE_START_CHECK", "-5")
        #expect(!applied)
    }

    @Test func tokenBucketPacesToItsRate() {
        // 8 Mbit/s = 1 MB/s; burst 64 KiB minimum.
        var b = TokenBucket(bitsPerSecond: 8_000_000, now: 0)
        var moved = 0
        var now: UInt64 = 0
        while now < 2_000_000_000 {
            let n = b.available(now: now)
            b.consume(n, now: now)
            moved += n
            now += 10_000_000
        }
        // Initial burst (0.1 s of rate) plus 1.99 s of refills.
        #expect(abs(Double(moved) - 2_090_000) < 1_000, "moved \(moved)")
        #expect(b.delay(for: 1_000_000, now: now) > 0)
    }

    @Test func sharedBucketGrantsAtMostItsAllowance() {
        let shared = SharedTokenBucket(bitsPerSecond: 8_000_000, now: 0)
        #expect(shared.grant(10_000_000, now: 0) == 65_536)
        #expect(shared.grant(10, now: 0) == 0)
        #expect(shared.grant(1_000_000, now: 100_000_000) == 65_536) // capped by burst
    }

    @Test func accountingDowngradesHeavySessionsAfterTheStartCheck() {
        var settings = BandwidthSettings()
        settings.downgradeStartCheckSeconds = 10
        var a = SessionAccounting(settings: settings, nowMs: 0)
        // threshold = floor(128 × 2^20 × 0.66 / 1000) bits/ms
        #expect(a.thresholdBitsPerMs == 88_583)
        var now: UInt64 = 0
        var verdicts: [SessionAccounting.Verdict] = []
        for _ in 0..<12 {
            a.record(bytes: 12_000_000) // 96 Mbit/s: above 66 % of 128 Mb/s
            now += 1_000
            verdicts.append(a.evaluate(nowMs: now, blocked: false, blacklisted: false))
        }
        #expect(verdicts.prefix(10).allSatisfy { $0 == .unchanged })
        #expect(verdicts[10] == .limitChanged(lowSpeed: true))
        #expect(a.downgraded)
        #expect(a.usage.currentKbps == 96_000)
    }

    @Test func accountingEndsBlockedSessionsAndTracksBlacklist() {
        var a = SessionAccounting(settings: .init(), nowMs: 0)
        #expect(a.evaluate(nowMs: 500, blocked: true, blacklisted: false) == .unchanged, "at most once per second")
        #expect(a.evaluate(nowMs: 1_000, blocked: false, blacklisted: true) == .limitChanged(lowSpeed: true))
        #expect(a.evaluate(nowMs: 2_000, blocked: false, blacklisted: false) == .limitChanged(lowSpeed: false))
        #expect(a.evaluate(nowMs: 3_000, blocked: true, blacklisted: false) == .end)
    }
}

@Suite(.timeLimit(.minutes(1)))
struct PairingTableTests {
    @Test func secondArrivalPairsWithTheFirst() {
        let t = PairingTable<Int>()
        guard case .waiting = t.arrive(uuid: "U", half: 1, nowMs: 0) else { Issue.record("expected waiting"); return }
        guard case .paired(with: 1) = t.arrive(uuid: "U", half: 2, nowMs: 29_000) else { Issue.record("expected pairing"); return }
        #expect(t.count == 0)
    }

    @Test func waitingHalvesExpireAfterThirtySeconds() {
        let t = PairingTable<Int>()
        _ = t.arrive(uuid: "A", half: 1, nowMs: 0)
        _ = t.arrive(uuid: "B", half: 2, nowMs: 10_000)
        #expect(t.expire(nowMs: 29_999).isEmpty)
        #expect(t.expire(nowMs: 30_000) == [1])
        guard case .waiting = t.arrive(uuid: "A", half: 3, nowMs: 30_001) else { Issue.record("a late partner waits anew"); return }
    }

    @Test func tableIsBounded() {
        let t = PairingTable<Int>(capacity: 3)
        for i in 0..<3 { _ = t.arrive(uuid: "u\(i)", half: i, nowMs: 0) }
        guard case .refused = t.arrive(uuid: "u9", half: 9, nowMs: 0) else { Issue.record("expected refusal"); return }
        #expect(t.remove(uuid: "u0", where: { $0 == 0 }) == 0)
        #expect(t.remove(uuid: "u1", where: { $0 == 99 }) == nil)
    }

    @Test func ipListFileParsing() {
        let lines = IPList.parse("1.2.3.4 office\n  5.6.7.8\n\n::ffff:9.9.9.9 # x\n")
        #expect(lines == ["1.2.3.4", "5.6.7.8", "", "::ffff:9.9.9.9", ""])
        let list = IPList(lines)
        #expect(list.contains("9.9.9.9"))
        #expect(list.contains(IPAddress("::ffff:1.2.3.4")!))
    }
}
