import Glibc
import Testing
import URing
@testable import Workers

// MARK: - CopyBufferPool

extension PumpTests {
    @Suite(.timeLimit(.minutes(1)))
    struct CopyBufferPoolTests {
        @Test func idleBuffersPastTheCapAreFreedAndTheKeptOnesAreReusedLastInFirstOut() {
            var c = CopyBufferPool.Configuration()
            c.bufferSize = 4096
            c.maximumCached = 2
            let pool = CopyBufferPool(configuration: c)
            let lent = (0..<5).map { _ in pool.acquire() }
            #expect(pool.inUse == 5 && pool.allocations == 5 && pool.cached == 0)
            #expect(lent.allSatisfy { $0.count == 4096 })
            for b in lent { pool.release(b) }
            #expect(pool.inUse == 0 && pool.cached == 2, "at most maximumCached idle buffers are kept")
            let again = pool.acquire()
            #expect(again.baseAddress == lent[1].baseAddress, "the buffer returned last (and kept) comes back first")
            #expect(pool.allocations == 5 && pool.cached == 1)
            pool.release(again)
        }

        @Test func aSteadyAcquireReleaseCycleAllocatesOnce() {
            let pool = CopyBufferPool()
            for _ in 0..<10_000 {
                let b = pool.acquire()
                b[0] = 1
                pool.release(b)
            }
            #expect(pool.allocations == 1 && pool.inUse == 0 && pool.cached == 1)
        }

        @Test func aCapOfZeroKeepsNothing() {
            var c = CopyBufferPool.Configuration()
            c.maximumCached = 0
            let pool = CopyBufferPool(configuration: c)
            pool.release(pool.acquire())
            pool.release(pool.acquire())
            #expect(pool.cached == 0 && pool.allocations == 2 && pool.inUse == 0)
        }
    }
}

// MARK: - SplicePump without pipes: every chunk through a pooled buffer

extension PumpTests {
    @Suite(.timeLimit(.minutes(2)))
    struct CopyFallback {
        static func relayWithoutPipes(cachedBuffers: Int = 4) throws -> Relay {
            var configuration = RelayConfiguration()
            configuration.pool.maximumPipes = 0
            configuration.copyBuffers.maximumCached = cachedBuffers
            return try Relay(configuration: configuration)
        }

        /// 24 pairs at once, both directions, with pending bytes: SHA-256 equality on both sides,
        /// every byte copied, and once they ended no buffer is lent and at most the cap is kept.
        /// With a cap above the 48 directions, buffers are only ever recycled: no more are made
        /// than directions copied at one moment.
        @Test(arguments: [PumpMode.spliceInline, .splice])
        func manyPairsRelayIntactThroughPooledBuffers(mode: PumpMode) throws {
            let relay = try Self.relayWithoutPipes(cachedBuffers: 64)
            defer { relay.stop() }
            let plans = (0..<24).map { i in
                TransferPlan(pairID: UInt32(300 + i), mode: mode, bytesAToB: (3 << 20) + i, bytesBToA: (1 << 20) + 7 * i,
                             prefixA: randomBytes(100 + i, seed: UInt64(i)), prefixB: randomBytes(10, seed: UInt64(i) + 50))
            }
            let outcomes = try runTransfersConcurrently(relay, plans)
            for plan in plans {
                expectIntact(outcomes[plan.pairID], plan)
                #expect(waitUntil { relay.board.pair(plan.pairID)?.drained == true })
                let report = try #require(relay.board.pair(plan.pairID))
                #expect(report.end == .completed)
                for d in 0..<2 { #expect(report.counters[d].bytesCopied == report.counters[d].bytesRead, "no pipe: all copied") }
            }
            let w = relay.board.worker(0)
            #expect(w.poolRefusals > 0 && w.poolOpen == 0)
            #expect(w.buffersInUse == 0, "every buffer came back")
            #expect(w.buffersCached == w.bufferAllocations, "below the cap every buffer made is kept")
            #expect(w.bufferAllocations <= 48, "buffers are recycled, never more than one per busy direction: \(w.bufferAllocations)")
        }

        /// Pairs that moved bytes and then went quiet hold neither a pipe nor a buffer: each
        /// direction waits in a bare POLL_ADD.
        @Test(arguments: [PumpMode.spliceInline, .splice])
        func idlePairsHoldNoBuffer(mode: PumpMode) throws {
            let relay = try Self.relayWithoutPipes()
            defer { relay.stop() }
            let pairs = try (0..<16).map { try ClientPair.open(relay, pairID: UInt32(400 + $0), mode: mode) }
            defer { for p in pairs { p.closeBoth() } }
            for round in 0..<2 {
                let mismatches = Shared<[String]>([])
                let threads = pairs.enumerated().flatMap { i, p -> [TestThread] in
                    let ab = randomBytes(200_000 + i, seed: UInt64(i * 10 + round)), ba = randomBytes(70_000, seed: UInt64(i * 10 + round + 5))
                    func receiver(_ fd: Int32, _ expected: [UInt8], _ what: String) -> TestThread {
                        TestThread {
                            if (try? receiveExactly(fd, expected.count)) != expected {
                                mismatches.value.withLock { $0.append("pair \(p.pairID) \(what) round \(round)") }
                            }
                        }
                    }
                    return [
                        TestThread { try? sendAll(p.a, ab) },
                        TestThread { try? sendAll(p.b, ba) },
                        receiver(p.b, ab, "a→b"),
                        receiver(p.a, ba, "b→a"),
                    ]
                }
                for t in threads { t.join() }
                #expect(mismatches.get().isEmpty, "\(mismatches.get())")
                #expect(waitUntil {
                    relay.board.worker(0).buffersInUse == 0
                        && pairs.allSatisfy { relay.board.pair($0.pairID)?.operationsInFlight == 2 }
                }, "round \(round): idle pairs must give their buffers back")
                for p in pairs { #expect(relay.board.pair(p.pairID)?.buffersHeld == 0) }
                #expect(relay.board.worker(0).buffersCached <= 4)
            }
        }
    }
}

extension PumpTests.CopyFallback {
    /// Inline, a copied chunk the destination will not take stays in the source socket: with b
    /// not reading, the relay ends up stuck without a buffer lent (ring mode keeps its chunk in
    /// a pooled buffer behind a ring send). Once b reads, every byte arrives, in order.
    @Test(arguments: [PumpMode.spliceInline, .splice])
    func aStuckDestinationPinsNoBufferInline(mode: PumpMode) throws {
        let relay = try Self.relayWithoutPipes()
        defer { relay.stop() }
        let pair = try ClientPair.open(relay, pairID: 450, mode: mode)
        defer { pair.closeBoth() }
        let payload = randomBytes(24 << 20, seed: 450)
        let sender = TestThread { try? sendAll(pair.a, payload) }
        func written() -> UInt64 { relay.board.pair(450)?.counters[0].bytesWritten ?? 0 }
        #expect(waitUntil {
            let before = written()
            usleep(200_000)
            return before > 0 && written() == before
        }, "the relay must get stuck behind b")
        let stuck = relay.board.worker(0)
        if mode == .spliceInline {
            #expect(stuck.buffersInUse == 0 && relay.board.pair(450)?.buffersHeld == 0, "inline: bytes wait in the source socket, not in a buffer")
        } else {
            #expect(stuck.buffersInUse == 1, "ring: the chunk waits in a pooled buffer behind its send")
        }
        let got = try receiveExactly(pair.b, payload.count)
        sender.join()
        #expect(got == payload)
        #expect(waitUntil { relay.board.worker(0).buffersInUse == 0 })
    }
}
