import Glibc
import Testing
import URing
@testable import Workers

/// A relay-side socket (non-blocking, as accepted by the engine) connected to a blocking client.
func loopbackConnection() throws -> (relaySide: Int32, client: Int32) {
    var options = SocketOptions()
    options.reusePort = false
    let listener = try Socket.tcpListener(.loopbackV4(port: 0), options: options)
    defer { Socket.close(listener) }
    let client = try connectClient(port: try Socket.localEndpoint(listener).port)
    var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
    guard poll(&entry, 1, 5_000) == 1 else { throw ClientError("accept timed out") }
    let fd = accept(listener, nil, nil)
    guard fd >= 0 else { throw ClientError.errno("accept") }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    return (fd, client)
}

extension PumpTests {
    /// Pumps driven by hand on the test thread's own ring, outside any worker group.
    @Suite(.timeLimit(.minutes(1)))
    struct BareRing {
        /// With a one-entry submission queue every two-SQE chain is cut in two (the first SQE is
        /// submitted alone to make room for the second), so splice-out can run before or next to
        /// splice-in: the pump must still move every byte, in order.
        @Test(arguments: PumpMode.allCases)
        func everyByteArrivesWhenEveryChainIsCutInTwo(mode: PumpMode) throws {
            var ring = try Ring(entries: 1, completionEntries: 256)
            let pool = try PipePool()
            let (a, clientA) = try loopbackConnection()
            let (b, clientB) = try loopbackConnection()
            defer { close(clientA); close(clientB) }
            let pendingA = randomBytes(70_000, seed: 1), pendingB = randomBytes(3, seed: 2)
            let tag = UserData(op: 7, slot: 3, generation: 9)
            let pump: Pump = mode.splices
                ? SplicePump(a: a, b: b, tag: tag, pool: pool, copyBuffers: CopyBufferPool(), pendingAToB: pendingA,
                             pendingBToA: pendingB, inline: mode == .spliceInline)
                : BufferedPump(a: a, b: b, tag: tag, pendingAToB: pendingA, pendingBToA: pendingB, inline: mode == .buffered)

            let count = 8 << 20
            let streamA = PatternStream(seed: 3), streamB = PatternStream(seed: 4)
            let atB = Shared<([UInt8], Int, [UInt8])?>(nil), atA = Shared<([UInt8], Int, [UInt8])?>(nil)
            let threads = [
                TestThread {
                    try? streamA.forEachPiece(from: 0, count: count) { try sendAll(clientA, $0) }
                    shutdown(clientA, Int32(SHUT_WR))
                },
                TestThread {
                    try? streamB.forEachPiece(from: 0, count: count) { try sendAll(clientB, $0) }
                    shutdown(clientB, Int32(SHUT_WR))
                },
                TestThread { if let r = try? receiveToEOF(clientB, prefixLength: pendingA.count) { atB.set((r.prefix, r.restCount, r.restDigest)) } },
                TestThread { if let r = try? receiveToEOF(clientA, prefixLength: pendingB.count) { atA.set((r.prefix, r.restCount, r.restDigest)) } },
            ]

            var events: [PumpEvent] = [pump.start(ring: &ring)]
            let completions = UnsafeMutableBufferPointer<Completion>.allocate(capacity: 64)
            defer { completions.deallocate() }
            let deadline = monotonicSeconds() + 30
            while !pump.isDrained && monotonicSeconds() < deadline {
                try ring.submitAndWait(minimum: 1, timeoutNanos: 50_000_000)
                let n = ring.reapCompletions(into: completions)
                for c in completions[..<n] where c.userData.op == 7 {
                    #expect(c.userData.slot == 3 && c.userData.generation == 9)
                    var event = pump.handle(c, ring: &ring)
                    if case .finished = event {
                        events.append(event)
                        event = pump.close(ring: &ring)
                    }
                    if event != .none { events.append(event) }
                }
            }
            for t in threads { t.join() }
            #expect(pump.isDrained)
            #expect(events.contains(.halfClosed(.aToB)) || events.contains(.halfClosed(.bToA)))
            #expect(events.contains(.finished(.completed)))
            #expect(events.last == .drained)
            let gotB = try #require(atB.get()), gotA = try #require(atA.get())
            #expect(gotB.0 == pendingA && gotB.1 == count && gotB.2 == streamA.digest(count: count))
            #expect(gotA.0 == pendingB && gotA.1 == count && gotA.2 == streamB.digest(count: count))
            #expect(pool.inUse == 0)
            // The pump closed both relay-side sockets.
            #expect(fcntl(a, F_GETFD) == -1 && fcntl(b, F_GETFD) == -1)
        }
    }
}
