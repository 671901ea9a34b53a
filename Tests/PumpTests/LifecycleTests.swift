import Crypto
import Glibc
import Testing
import URing
@testable import Workers

/// Closes `fd` with SO_LINGER {on, 0}: the peer gets an RST instead of a FIN.
func resetAndClose(_ fd: Int32) {
    var l = linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    close(fd)
}

/// Sends `stream` bytes from `fd` until a send fails (the relay closed) or `limit` is reached.
func streamUntilFailure(_ fd: Int32, limit: Int, seed: UInt64) -> TestThread {
    TestThread {
        let stream = PatternStream(seed: seed)
        try? stream.forEachPiece(from: 0, count: limit, maxPiece: 64 << 10) { try sendAll(fd, $0) }
    }
}

/// A one-worker relay with one started pair `id`; the clients are closed and the relay stopped
/// after `body`.
func withRelayedPair(_ mode: PumpMode, id: UInt32, _ body: (Relay, ClientPair, UInt32) throws -> Void) throws {
    let relay = try Relay()
    defer { relay.stop() }
    let pair = try ClientPair.open(relay, pairID: id, mode: mode)
    defer { pair.closeBoth() }
    try body(relay, pair, id)
}

extension PumpTests {
    @Suite(.timeLimit(.minutes(2)))
    struct Lifecycle {
        @Test(arguments: PumpMode.allCases)
        func halfCloseArrivesAfterEveryByteAndTheOtherDirectionKeepsWorking(mode: PumpMode) throws {
            try withRelayedPair(mode, id: 1) { relay, pair, id in
                let count = 3_000_000
                let stream = PatternStream(seed: 5)
                let sender = TestThread {
                    try? stream.forEachPiece(from: 0, count: count) { try sendAll(pair.a, $0) }
                    shutdown(pair.a, Int32(SHUT_WR))
                }
                let got = try receiveToEOF(pair.b, prefixLength: 0)
                sender.join()
                #expect(got.restCount == count)
                #expect(got.restDigest == stream.digest(count: count))
                #expect(waitUntil { relay.board.pair(id)?.halfClosed[0] == true })
                #expect(relay.board.pair(id)?.end == nil, "one half-close must not end the pair")

                let reply = randomBytes(200_000, seed: 9)
                let replier = TestThread { try? sendAll(pair.b, reply) }
                #expect(try receiveExactly(pair.a, reply.count) == reply)
                replier.join()
                shutdown(pair.b, Int32(SHUT_WR))
                #expect(try receiveExactly(pair.a, 1).isEmpty, "a sees EOF once b half-closes")
                #expect(waitUntil { relay.board.pair(id)?.drained == true })
                #expect(relay.board.pair(id)?.end == .completed)
                #expect(relay.board.worker(0).poolInUse == 0)
            }
        }

        @Test(arguments: PumpMode.allCases)
        func aResetEndsThePairAndFreesEverything(mode: PumpMode) throws {
            let relay = try Relay()
            defer { relay.stop() }
            let id: UInt32 = 2
            let pair = try ClientPair.open(relay, pairID: id, mode: mode)
            try sendAll(pair.a, [1, 2, 3])
            #expect(try receiveExactly(pair.b, 3) == [1, 2, 3])
            resetAndClose(pair.a)
            #expect(waitUntil { relay.board.pair(id)?.drained == true })
            let end = try #require(relay.board.pair(id)?.end)
            guard case .failed(let e, _) = end else {
                Issue.record("expected a failure, got \(end)")
                return
            }
            #expect(e == .connectionReset || e == .brokenPipe, "\(e)")
            // b sees the relay close its side.
            var byte: UInt8 = 0
            let n = recv(pair.b, &byte, 1, 0)
            #expect(n == 0 || (n == -1 && errno == ECONNRESET))
            close(pair.b)
            #expect(relay.board.worker(0).poolInUse == 0)
            #expect(relay.board.worker(0).poolAvailable == PipePool.Configuration().maximumPipes)
        }

        /// b stops reading, so a→b's pipe fills and waits on POLLOUT; then b resets. The splice
        /// into the dead socket fails (EPIPE, which must not raise a fatal SIGPIPE), the pair
        /// ends and the pipe, still holding bytes, is closed instead of going back to the pool.
        @Test func aResetWhileBytesWaitInThePipeDiscardsThePipe() throws {
            let relay = try Relay()
            defer { relay.stop() }
            let id: UInt32 = 3
            let pair = try ClientPair.open(relay, pairID: id, mode: .splice)
            let sender = streamUntilFailure(pair.a, limit: 256 << 20, seed: 3)
            #expect(waitUntil {
                guard let p = relay.board.pair(id) else { return false }
                return p.pipesHeld == 1 && p.counters[0].bytesRead > p.counters[0].bytesWritten
            })
            resetAndClose(pair.b)
            #expect(waitUntil { relay.board.pair(id)?.drained == true })
            guard case .failed = relay.board.pair(id)?.end else {
                Issue.record("expected a failure, got \(String(describing: relay.board.pair(id)?.end))")
                return
            }
            sender.join()
            close(pair.a)
            let w = relay.board.worker(0)
            #expect(w.poolDiscarded == 1)
            #expect(w.poolInUse == 0 && w.poolAvailable == PipePool.Configuration().maximumPipes)
        }

        @Test(arguments: PumpMode.allCases)
        func aPausedDirectionMovesNothingUntilResumed(mode: PumpMode) throws {
            try withRelayedPair(mode, id: 4) { relay, pair, id in
                relay.post(.pause(id, .aToB))
                #expect(waitUntil { relay.board.pair(id)?.paused[0] == true })
                let payload = randomBytes(300_000, seed: 4)
                let sender = TestThread { try? sendAll(pair.a, payload) }

                // The other direction is not affected.
                let back = randomBytes(20_000, seed: 5)
                try sendAll(pair.b, back)
                #expect(try receiveExactly(pair.a, back.count) == back)
                usleep(300_000)
                #expect(bytesReadable(pair.b) == 0)
                let paused = try #require(relay.board.pair(id))
                #expect(paused.counters[0].bytesRead == 0 && paused.counters[0].bytesWritten == 0)
                #expect(paused.pipesHeld == 0)

                relay.post(.setMaxChunk(id, .aToB, 4096))
                relay.post(.resume(id, .aToB))
                #expect(try receiveExactly(pair.b, payload.count) == payload)
                sender.join()
                #expect(waitUntil { relay.board.pair(id)?.counters[0].bytesWritten == UInt64(payload.count) })
            }
        }

        @Test(arguments: PumpMode.allCases)
        func aDirectionPausedMidStreamStopsReadingAndGivesItsPipeBack(mode: PumpMode) throws {
            try withRelayedPair(mode, id: 9) { relay, pair, id in
                let total = 64 << 20
                let stream = PatternStream(seed: 19)
                let sender = TestThread {
                    try? stream.forEachPiece(from: 0, count: total) { try sendAll(pair.a, $0) }
                    shutdown(pair.a, Int32(SHUT_WR))
                }
                let received = Shared<(count: Int, digest: [UInt8])?>(nil)
                let receiver = TestThread {
                    if let r = try? receiveToEOF(pair.b, prefixLength: 0) { received.set((r.restCount, r.restDigest)) }
                }
                func bytesRead() -> UInt64 { relay.board.pair(id)?.counters[0].bytesRead ?? 0 }
                #expect(waitUntil { bytesRead() > 4 << 20 })
                relay.post(.pause(id, .aToB))
                #expect(waitUntil { relay.board.pair(id)?.paused[0] == true })
                // What was read before the pause is delivered; then the pipe goes back.
                #expect(waitUntil {
                    guard let p = relay.board.pair(id) else { return false }
                    return p.pipesHeld == 0 && p.counters[0].bytesWritten == p.counters[0].bytesRead && p.operationsInFlight == 1 // b→a's read
                })
                let frozen = bytesRead()
                usleep(200_000)
                #expect(bytesRead() == frozen, "a paused direction reads nothing")
                #expect(frozen < UInt64(total))
                relay.post(.resume(id, .aToB))
                sender.join()
                receiver.join()
                let r = try #require(received.get())
                #expect(r.count == total)
                #expect(r.digest == stream.digest(count: total))
            }
        }

        @Test func anIdlePairHoldsNoPipe() throws {
            let relay = try Relay()
            defer { relay.stop() }
            let id: UInt32 = 5
            let pair = try ClientPair.open(relay, pairID: id, mode: .splice)
            defer { pair.closeBoth() }
            // Both directions wait in a bare POLL_ADD: two operations, no pipe.
            #expect(waitUntil { relay.board.pair(id)?.operationsInFlight == 2 })
            #expect(relay.board.worker(0).poolInUse == 0)
            for round in 0..<3 {
                let small = randomBytes(1000 + round, seed: UInt64(round))
                try sendAll(pair.a, small)
                #expect(try receiveExactly(pair.b, small.count) == small)
                let big = randomBytes(4 << 20, seed: UInt64(round) + 100)
                let sender = TestThread { try? sendAll(pair.b, big) }
                #expect(try receiveExactly(pair.a, big.count) == big)
                sender.join()
                #expect(waitUntil {
                    relay.board.worker(0).poolInUse == 0 && relay.board.pair(id)?.operationsInFlight == 2
                }, "round \(round): an idle pair must give its pipes back")
                #expect(relay.board.pair(id)?.pipesHeld == 0)
            }
            #expect(relay.board.pair(id)?.drained == false)
        }

        @Test func pipeExhaustionFallsBackToCopyingAndEveryPipeComesBack() throws {
            var configuration = RelayConfiguration()
            configuration.pool.maximumPipes = 1
            let relay = try Relay(configuration: configuration)
            defer { relay.stop() }
            let plans = (0..<2).map { i in
                TransferPlan(pairID: UInt32(60 + i), mode: .splice, bytesAToB: 24 << 20, bytesBToA: (24 << 20) + 1,
                             prefixA: randomBytes(100, seed: UInt64(i)), prefixB: randomBytes(200, seed: UInt64(i) + 1))
            }
            let outcomes = try runTransfersConcurrently(relay, plans)
            for plan in plans {
                expectIntact(outcomes[plan.pairID], plan)
                #expect(waitUntil { relay.board.pair(plan.pairID)?.drained == true })
            }
            let w = relay.board.worker(0)
            #expect(w.poolRefusals > 0, "four busy directions over one pipe must have been refused one")
            #expect(w.poolInUse == 0 && w.poolAvailable == 1 && w.poolOpen <= 1)
        }

        @Test(arguments: PumpMode.allCases)
        func closingWithBytesInFlightDrainsAndFreesEverything(mode: PumpMode) throws {
            let relay = try Relay()
            defer { relay.stop() }
            let id: UInt32 = 7
            let pair = try ClientPair.open(relay, pairID: id, mode: mode)
            let sender = streamUntilFailure(pair.a, limit: 256 << 20, seed: 7)
            // b never reads: the relay ends up with bytes it cannot deliver (in a pipe, or in a
            // buffer behind a send that waits for room), and nothing moves any more.
            func stuck() -> PumpCounters? {
                guard let p = relay.board.pair(id), p.counters[0].bytesRead > p.counters[0].bytesWritten,
                      !mode.splices || p.pipesHeld == 1 else { return nil }
                return p.counters[0]
            }
            #expect(waitUntil {
                guard let first = stuck() else { return false }
                usleep(100_000)
                return stuck() == first
            })
            let stuckPipes = relay.board.pair(id)?.heldPipes ?? []
            #expect(stuckPipes.count == (mode.splices ? 2 : 0))
            relay.post(.close(id))
            #expect(waitUntil { relay.board.pair(id)?.drained == true })
            let report = try #require(relay.board.pair(id))
            #expect(report.relaySockets.count == 2 && report.relaySockets.allSatisfy { !$0.isOpen }, "the pump closes both sockets")
            #expect(stuckPipes.allSatisfy { !$0.isOpen }, "a pipe with bytes in it is closed")
            let w = relay.board.worker(0)
            #expect(w.poolInUse == 0 && w.livePumps == 0)
            if mode.splices { #expect(w.poolDiscarded == 1) }
            sender.join()
            var byte: UInt8 = 0
            #expect(waitUntil { recv(pair.b, &byte, 1, Int32(MSG_DONTWAIT)) == 0 || errno == ECONNRESET || bytesReadable(pair.b) > 0 })
            pair.closeBoth()
        }

        /// Urgent data stops TCP splicing at the mark while poll keeps saying "readable"; the
        /// pump must not spin on POLLIN → EAGAIN but read past the mark (recv drops the urgent
        /// byte, as any recv-based relay and upstream hbbr do).
        @Test(arguments: PumpMode.allCases)
        func urgentDataDoesNotStallTheDirection(mode: PumpMode) throws {
            try withRelayedPair(mode, id: 8) { relay, pair, id in
                var tv = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(pair.b, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                try sendAll(pair.a, Array("hello".utf8))
                var bang = UInt8(ascii: "!")
                #expect(send(pair.a, &bang, 1, Int32(MSG_OOB | MSG_NOSIGNAL)) == 1)
                try sendAll(pair.a, Array("world".utf8))
                let got = try receiveExactly(pair.b, 10)
                #expect(String(decoding: got, as: UTF8.self) == "helloworld")
                // And the direction still splices afterwards.
                let more = randomBytes(2 << 20, seed: 8)
                let sender = TestThread { try? sendAll(pair.a, more) }
                #expect(try receiveExactly(pair.b, more.count) == more)
                sender.join()
            }
        }

        /// Runs in a child process (an exit test): suites running in parallel in this process
        /// open and close descriptors too, which would blur an exact count.
        @Test func aThousandPairsLeaveNoDescriptorBehind() async {
            // The child reports failures on its standard error and exits 0; a crash fails the
            // exit condition.
            let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
                let failures = thousandPairsLeakCheck()
                writeToStandardError(failures.map { $0 + "\n" }.joined())
            }
            let report = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(report.isEmpty, "\(report)")
        }
    }
}

/// 1,000 pairs, alternately spliced and buffered, each with a few KiB both ways and a half-close
/// from each side; returns what went wrong. While the relay runs, the only descriptors opened
/// since it started are the pool's idle pipes; once it has stopped, none opened since the start.
func thousandPairsLeakCheck() -> [String] {
    var failures: [String] = []
    func check(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { failures.append(what()) } }
    let before = openDescriptorObjects()
    do {
        let relay = try Relay()
        defer { relay.stop() }
        let started = openDescriptorObjects()
        let port = relay.port()
        for i in 0..<1000 {
            let mode: PumpMode = i % 2 == 0 ? .splice : .buffered
            let id = UInt32(10_000 + i)
            let payloadA = randomBytes(1 + (i * 37) % 9000, seed: UInt64(i))
            let payloadB = randomBytes(1 + (i * 53) % 7000, seed: UInt64(i) + 5000)
            let a = try connectClient(port: port, timeoutSeconds: 10)
            defer { close(a) }
            try sendAll(a, makeHeader(pairID: id, role: 0, mode: mode) + payloadA)
            shutdown(a, Int32(SHUT_WR))
            let b = try connectClient(port: port, timeoutSeconds: 10)
            defer { close(b) }
            try sendAll(b, makeHeader(pairID: id, role: 1, mode: mode) + payloadB)
            shutdown(b, Int32(SHUT_WR))
            let atB = try receiveToEOF(b, prefixLength: payloadA.count)
            let atA = try receiveToEOF(a, prefixLength: payloadB.count)
            check(atB.prefix == payloadA && atB.restCount == 0, "pair \(i): b got the wrong bytes")
            check(atA.prefix == payloadB && atA.restCount == 0, "pair \(i): a got the wrong bytes")
        }
        check(waitUntil {
            let w = relay.board.worker(0)
            return w.pumpsDrained == 1000 && w.livePumps == 0 && w.liveConnections == 0
        }, "pumps left: \(relay.board.worker(0))")
        let w = relay.board.worker(0)
        check(w.poolInUse == 0, "\(w.poolInUse) pipes still lent")
        let opened = descriptorsOpened(since: started)
        check(opened.count == 2 * w.poolOpen && opened.allSatisfy { $0.hasPrefix("pipe:") },
              "opened while running: \(opened); the pool has \(w.poolOpen) idle pipes")
    } catch {
        failures.append("\(error)")
    }
    check(waitUntil(seconds: 5) { descriptorsOpened(since: before).isEmpty }, "still open after stop: \(descriptorsOpened(since: before))")
    return failures
}
