import Glibc
import Testing
import URing
@testable import Workers

extension EngineTests {
    @Suite(.timeLimit(.minutes(1)))
    struct WorkerGroupBehaviour {
        func messengers(_ count: Int, pinned: Bool = true, tickNanos: UInt64 = 0) throws -> (WorkerGroup<MessengerHandler>, MessengerLog) {
            let log = MessengerLog()
            var settings = WorkerConfiguration()
            settings.count = count
            settings.pinned = pinned
            settings.ringEntries = 64
            settings.completionEntries = 256
            settings.tickNanos = tickNanos
            let group = try WorkerGroup(configuration: settings) { MessengerHandler(index: $0, log: log) }
            try group.start()
            return (group, log)
        }

        @Test func eachWorkerIsPinnedToExactlyTheCPUItWasGiven() throws {
            let allowed = try CPUSet.allowed()
            try #require(!allowed.isEmpty)
            let (group, log) = try messengers(3)
            group.stop()
            let seen = log.affinity.withLock { $0 }
            for i in 0..<3 {
                let entry = try #require(seen[i])
                // Round-robin over the process mask (which already reflects a cgroup cpuset).
                #expect(entry.configured == allowed[i % allowed.count])
                #expect(entry.seen == [allowed[i % allowed.count]], "worker \(i) may run on \(entry.seen)")
            }
        }

        @Test func unpinnedWorkersKeepTheProcessMask() throws {
            let allowed = try CPUSet.allowed()
            let (group, log) = try messengers(2, pinned: false)
            group.stop()
            for (_, entry) in log.affinity.withLock({ $0 }) {
                #expect(entry.configured == nil)
                #expect(entry.seen == allowed)
            }
        }

        @Test func messagesReachTheirWorkerFromTheControlThreadAndFromOtherWorkers() throws {
            let (group, log) = try messengers(3, tickNanos: 5_000_000)
            let perPair = 2_000
            // From the control thread to each worker, and from each worker to the next one (the
            // control thread asks worker i to post to worker (i+1) % 3): bursts larger than one
            // wake-up, so coalesced wake-ups must still deliver everything.
            for token in 0..<perPair {
                for i in 0..<3 {
                    #expect(group.post(.relay(token: token, to: (i + 1) % 3), to: i))
                    #expect(group.post(.delivered(token: token, from: -1), to: i))
                }
            }
            #expect(waitUntil { log.deliveries.withLock { $0.count } == 6 * perPair })
            #expect(waitUntil { log.ticks.load(ordering: .relaxed) >= 3 }, "ticks keep coming")
            group.stop()
            let deliveries = log.deliveries.withLock { $0 }
            #expect(deliveries.count == 6 * perPair)
            #expect(deliveries.allSatisfy { $0.onOwnThread })
            for receiver in 0..<3 {
                for from in [-1, (receiver + 2) % 3] {
                    let tokens = deliveries.filter { $0.receiver == receiver && $0.from == from }.map(\.token)
                    #expect(tokens == Array(0..<perPair), "worker \(receiver) from \(from): in order, each once")
                }
            }
            // A stopped worker's mailbox is closed: a post is refused, not silently dropped.
            #expect(!group.post(.delivered(token: 0, from: -1), to: 0))
            #expect(log.finished.load(ordering: .relaxed) == 3)
        }
    }
}
