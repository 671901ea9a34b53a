import Crypto
import Glibc
import Testing
import URing
@testable import Workers

/// Every pump suite runs serially under this one: they share two CPUs, count descriptors of the
/// whole process and move hundreds of MiB, which would only slow each other down in parallel.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PumpTests {}

// MARK: - PipePool

extension PumpTests {
    @Suite(.timeLimit(.minutes(1)))
    struct PipePoolTests {
        @Test func acquireReturnsNilWhenEveryPipeIsLentAndWorksAgainAfterARelease() throws {
            var c = PipePool.Configuration()
            c.maximumPipes = 2
            let pool = try PipePool(configuration: c)
            let p1 = try #require(pool.acquire())
            let p2 = try #require(pool.acquire())
            #expect(pool.acquire() == nil)
            #expect(pool.refusals == 1)
            #expect(pool.inUse == 2 && pool.available == 0)
            pool.release(p1)
            #expect(pool.available == 1 && pool.idleCount == 1)
            // LIFO reuse: the pipe just returned comes back first.
            let p3 = try #require(pool.acquire())
            #expect(p3.readFD == p1.readFD && p3.writeFD == p1.writeFD)
            #expect(p3.fill == 0)
            pool.release(p2)
            pool.release(p3)
            #expect(pool.inUse == 0 && pool.open == 2 && pool.available == 2)
        }

        @Test func pipesGetTheConfiguredCapacityAndAreNonBlocking() throws {
            let pool = try PipePool()
            let p = try #require(pool.acquire())
            defer { pool.release(p) }
            // As root (or under fs.pipe-user-pages-soft) the kernel grants 1 MiB.
            #expect(p.capacity == 1 << 20 || pool.undersizedPipes == 1)
            #expect(fcntl(p.readFD, F_GETFL) & O_NONBLOCK != 0)
            #expect(fcntl(p.writeFD, F_GETFL) & O_NONBLOCK != 0)
            #expect(fcntl(p.readFD, F_GETFD) & FD_CLOEXEC != 0)
            var byte: UInt8 = 0
            #expect(read(p.readFD, &byte, 1) == -1 && errno == EAGAIN)
        }

        @Test func aPipeReleasedWithBytesInItIsClosedNotReused() throws {
            var c = PipePool.Configuration()
            c.maximumPipes = 1
            let pool = try PipePool(configuration: c)
            var p = try #require(pool.acquire())
            let payload = [UInt8](repeating: 7, count: 10)
            #expect(write(p.writeFD, payload, 10) == 10)
            p.filled(10)
            #expect(p.fill == 10)
            pool.release(p)
            #expect(pool.discarded == 1 && pool.open == 0 && pool.available == 1)
            // The slot is free again: a fresh, empty pipe is lent (perhaps under the same numbers).
            let q = try #require(pool.acquire())
            #expect(q.fill == 0)
            #expect(try Pipes.bytesQueued(q.readFD) == 0)
            pool.release(q)
        }

        @Test func preallocatedPipesAreOpenBeforeTheFirstAcquireAndClosedByCloseIdle() throws {
            var c = PipePool.Configuration()
            c.maximumPipes = 4
            c.preallocated = 3
            let pool = try PipePool(configuration: c)
            #expect(pool.open == 3 && pool.idleCount == 3)
            let lent = (0..<3).compactMap { _ in pool.acquire() }
            #expect(lent.count == 3 && pool.open == 3, "the preallocated pipes, not new ones")
            let identities = lent.flatMap { [$0.readFD, $0.writeFD] }.compactMap(DescriptorIdentity.init)
            #expect(identities.count == 6)
            for p in lent { pool.release(p) }
            pool.closeIdle()
            #expect(pool.open == 0)
            #expect(identities.allSatisfy { !$0.isOpen })
        }
    }
}

// MARK: - Bulk transfers

extension PumpTests {
    @Suite(.timeLimit(.minutes(2)))
    struct Transfers {
        static let cases: [(PumpMode, Int)] = [(.splice, 1), (.splice, 2), (.spliceInline, 1), (.spliceInline, 2), (.buffered, 1), (.buffered, 2), (.bufferedRing, 1)]

        /// 256 MiB each way through either pump, split over
        /// one pair per worker, both directions at once; SHA-256 equality on both sides, with the
        /// relay's pending bytes (a configured prefix, then stream bytes it read with the header)
        /// arriving first and in order.
        @Test(arguments: cases)
        func bothDirectionsArriveIntactWithPendingBytesFirst(mode: PumpMode, workers: Int) throws {
            let relay = try Relay(workers: workers)
            defer { relay.stop() }
            let perDirection = 256 << 20
            let pairs = (0..<workers).map { w in
                TransferPlan(pairID: UInt32(100 + w), mode: mode,
                             bytesAToB: perDirection / workers, bytesBToA: perDirection / workers - 12_345,
                             prefixA: randomBytes((3 << 20) + 17, seed: UInt64(w) + 11),
                             prefixB: randomBytes(5000, seed: UInt64(w) + 23),
                             worker: w)
            }
            let outcomes = try runTransfersConcurrently(relay, pairs)
            for plan in pairs {
                expectIntact(outcomes[plan.pairID], plan)
                guard let outcome = outcomes[plan.pairID] else { continue }
                print("\(mode) workers=\(workers) pair \(plan.pairID): \(plan.bytesAToB >> 20) MiB + \(plan.bytesBToA >> 20) MiB in \(outcome.seconds) s")
            }
            for plan in pairs {
                #expect(waitUntil { relay.board.pair(plan.pairID)?.drained == true })
                let report = try #require(relay.board.pair(plan.pairID))
                #expect(report.end == .completed)
                #expect(report.counters[0].bytesWritten == UInt64(plan.bytesAToB + plan.prefixA.count))
                #expect(report.counters[1].bytesWritten == UInt64(plan.bytesBToA + plan.prefixB.count))
                // Stream bytes that came in with the header (the early ones, perhaps more, up to the
                // relay's 4 KiB header buffer) were forwarded as pending bytes; the pump read the rest.
                let readAhead = plan.bytesAToB - Int(report.counters[0].bytesRead)
                #expect(readAhead > 0 && readAhead <= 4096 - headerSize, "\(readAhead) bytes read with the header")
            }
            for w in 0..<workers {
                #expect(waitUntil { relay.board.worker(w).poolInUse == 0 })
                #expect(relay.board.worker(w).poolAvailable == PipePool.Configuration().maximumPipes)
            }
        }
    }
}
