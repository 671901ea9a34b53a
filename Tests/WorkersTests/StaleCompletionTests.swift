import Glibc
import Testing
import URing
@testable import Workers

extension EngineTests {
    @Suite(.timeLimit(.minutes(1)))
    struct StaleCompletion {
        @Test func aTimerCompletionForAFreedAndReusedSlotIsIgnored() throws {
            // One slot, so the second connection must reuse the first one's. Each connection
            // arms a 1 s timer tagged with its slot; the first connection is gone (slot freed,
            // then reused) long before its timer fires.
            var configuration = EchoConfiguration()
            configuration.maxConnections = 1
            configuration.timerNanos = 1_000_000_000
            let (group, stats, port) = try startTCPEchoGroup(workers: 1, configuration)
            defer { group.stop() }
            let counters = stats.workers[0]

            do {
                let first = try Client(tcpTo: .loopbackV4(port: port))
                try first.writeAll([1])
                let echo = try first.readExactly(1)
                #expect(echo == [1])
            }
            #expect(waitUntil { counters[.closed] == 1 })
            let firstSlot = counters.lastSlot.load(ordering: .relaxed)

            let second = try Client(tcpTo: .loopbackV4(port: port))
            try second.writeAll([2])
            let echo = try second.readExactly(1)
            #expect(echo == [2])
            let secondSlot = counters.lastSlot.load(ordering: .relaxed)
            #expect(secondSlot >> 16 == firstSlot >> 16, "same slot index")
            #expect(UInt16(secondSlot & 0xFFFF) == UInt16(firstSlot & 0xFFFF) &+ 1, "next generation")
            #expect(counters[.stale] == 0, "the first timer fired before the slot was reused; timing too tight")

            // The first connection's timer fires into the reused slot: recognised as stale.
            #expect(waitUntil(seconds: 5) { counters[.stale] == 1 })
            #expect(counters[.staleForReusedSlot] == 1)
            // The new occupant is untouched: it still echoes, and its own timer counts as live.
            try second.writeAll([3, 4])
            let again = try second.readExactly(2)
            #expect(again == [3, 4])
            #expect(waitUntil(seconds: 5) { counters[.timersFiredLive] == 1 })
            #expect(counters[.closed] == 1)
        }
    }
}
