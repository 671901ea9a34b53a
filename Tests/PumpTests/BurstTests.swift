import Glibc
import Testing
import URing
@testable import Workers

// MARK: - Inline bursts: a busy direction splices (or copies) on after its POLLIN (or recv), within a bound

extension PumpTests {
    @Suite(.timeLimit(.minutes(2)))
    struct InlineBursts {
        /// One worker, a bulk pair streaming flat out in both directions and a second pair doing
        /// small request/response round trips: every round trip completes, each within a bound
        /// far below what starving it for the whole bulk transfer would take, while the bulk
        /// pair keeps moving bytes.
        @Test(arguments: [PumpMode.spliceInline, .buffered])
        func aSlowPairKeepsMovingWhileABulkPairRuns(mode: PumpMode) throws {
            let relay = try Relay()
            defer { relay.stop() }
            let bulk = try ClientPair.open(relay, pairID: 20, mode: mode)
            defer { bulk.closeBoth() }
            let slow = try ClientPair.open(relay, pairID: 21, mode: mode)
            defer { slow.closeBoth() }
            for fd in [slow.a, slow.b] {
                var tv = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            }

            let stop = Shared(false)
            func pour(_ fd: Int32, seed: UInt64) -> TestThread {
                TestThread {
                    let chunk = randomBytes(256 << 10, seed: seed)
                    while !stop.get() {
                        guard (try? sendAll(fd, chunk)) != nil else { return }
                    }
                }
            }
            func drain(_ fd: Int32) -> TestThread {
                TestThread {
                    var sink = [UInt8](repeating: 0, count: 1 << 20)
                    while !stop.get() {
                        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                        guard poll(&pfd, 1, 100) >= 0 else { return }
                        if pfd.revents & Int16(POLLIN) != 0 {
                            if sink.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) == 0 { return }
                        }
                    }
                }
            }
            let threads = [pour(bulk.a, seed: 1), pour(bulk.b, seed: 2), drain(bulk.a), drain(bulk.b)]
            func bulkBytes() -> UInt64 { relay.board.pair(20).map { $0.counters[0].bytesRead + $0.counters[1].bytesRead } ?? 0 }
            #expect(waitUntil { bulkBytes() > 64 << 20 }, "the bulk pair must be running flat out first")

            let before = bulkBytes()
            var worst = 0.0
            var failures: [String] = []
            for i in 0..<40 {
                let ping = randomBytes(100, seed: UInt64(i) + 1000)
                let started = monotonicSeconds()
                let (from, to) = i % 2 == 0 ? (slow.a, slow.b) : (slow.b, slow.a)
                do {
                    try sendAll(from, ping)
                    let got = try receiveExactly(to, ping.count)
                    if got != ping { failures.append("round trip \(i): wrong bytes") }
                } catch {
                    failures.append("round trip \(i): \(error)")
                    break
                }
                worst = max(worst, monotonicSeconds() - started)
            }
            let moved = bulkBytes() - before
            stop.set(true)
            for fd in [bulk.a, bulk.b] { shutdown(fd, Int32(SHUT_RDWR)) }
            for t in threads { t.join() }

            #expect(failures.isEmpty, "\(failures)")
            // A starved pair would wait for the bulk transfer (unbounded here); a shared loaded
            // machine adds scheduling delays of tens of milliseconds at worst.
            #expect(worst < 2, "slowest round trip \(worst) s")
            #expect(moved > 0, "the bulk pair kept moving during the round trips")
            print("inline burst (\(mode)): slowest of 40 round trips \(Int(worst * 1000)) ms beside a bulk pair moving \(moved >> 20) MiB")
        }

        /// With a chunk cap (a bandwidth limit), a burst reads no more per POLLIN (or recv
        /// completion) than one read would: a limited direction still moves every byte, in order.
        @Test(arguments: [PumpMode.spliceInline, .buffered])
        func aCappedDirectionStillDeliversEverythingInOrder(mode: PumpMode) throws {
            try withRelayedPair(mode, id: 22) { relay, pair, id in
                relay.post(.setMaxChunk(id, .aToB, 4096))
                let payload = randomBytes(8 << 20, seed: 22)
                let sender = TestThread { try? sendAll(pair.a, payload) }
                let got = try receiveExactly(pair.b, payload.count)
                sender.join()
                #expect(got == payload)
                #expect(waitUntil { relay.board.pair(id)?.counters[0].bytesWritten == UInt64(payload.count) })
            }
        }
    }
}
