import Glibc
import Synchronization
import Testing
import URing
@testable import Workers

extension EngineTests {
    @Suite(.timeLimit(.minutes(2)))
    struct Lifecycle {
        @Test func tenThousandConnectCloseCyclesLeaveNoDescriptorBehind() throws {
            let baseline = FDCensus.take()
            // Declared apart so that no second reference keeps the group alive after `group = nil`.
            var group: WorkerGroup<TCPEchoHandler>?
            let stats: EchoStats, port: UInt16
            (group, stats, port) = try startTCPEchoGroup(workers: 3)
            let running = FDCensus.take()
            // Two clients, 5 000 cycles each: connect, one byte there and back, close; every
            // other close is an abortive RST, so the server sees both EOF and ECONNRESET.
            let failures = onThreads(2) { t in
                for cycle in 0..<5_000 {
                    let client = try Client(tcpTo: .loopbackV4(port: port))
                    try client.writeAll([UInt8(truncatingIfNeeded: cycle)])
                    guard try client.readExactly(1) == [UInt8(truncatingIfNeeded: cycle)] else {
                        throw TestFailure("thread \(t) cycle \(cycle): wrong echo")
                    }
                    if cycle % 2 == 1 { client.abortOnClose() }
                }
            }
            #expect(failures.isEmpty, "\(failures)")
            #expect(waitUntil(seconds: 30) { stats.sum(.closed) == 10_000 }, "closed \(stats.sum(.closed)) of 10000")
            #expect(stats.sum(.accepted) == 10_000)
            // While running: only the three listeners on the port, and nothing else grew.
            expectDescriptorsSettle(to: running, port: port, sockets: 3, "after 10 000 cycles")

            group!.stop()
            #expect(group!.liveThreads.load(ordering: .acquiring) == 0)
            expectDescriptorsSettle(to: baseline, port: port, extra: [.eventfd: 3], "after stop (mailboxes still held)")
            group = nil
            expectDescriptorsSettle(to: baseline, port: port, "after the group is released")
        }

        @Test func stoppingWithConnectionsOpenAndSendsBlockedClosesEveryDescriptor() throws {
            let baseline = FDCensus.take()
            // Declared apart so that no second reference keeps the group alive after `group = nil`.
            var group: WorkerGroup<TCPEchoHandler>?
            let stats: EchoStats, port: UInt16
            (group, stats, port) = try startTCPEchoGroup(workers: 3)
            var clients: [Client] = []
            // Sixteen idle connections that have echoed once…
            for i in 0..<16 {
                let client = try Client(tcpTo: .loopbackV4(port: port))
                try client.writeAll([UInt8(i)])
                let echo = try client.readExactly(1)
                #expect(echo == [UInt8(i)])
                clients.append(client)
            }
            // …and eight whose clients send without reading: their echoes back up, the server's
            // sends park in the kernel holding buffers, and stop() must cancel them.
            for _ in 0..<8 {
                let client = try Client(tcpTo: .loopbackV4(port: port), receiveBuffer: 4096)
                let chunk = [UInt8](repeating: 0x5A, count: 65_536)
                var pushed = 0
                while pushed < 8 << 20 {
                    let n = chunk.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                    if n <= 0 { break }
                    pushed += n
                }
                #expect(pushed > 0)
                clients.append(client)
            }
            #expect(waitUntil { stats.sum(.accepted) == 24 })

            let stopBegan = monotonicMillis()
            group!.stop()
            let took = monotonicMillis() - stopBegan
            #expect(took < 5_000, "stop took \(took) ms")
            #expect(group!.liveThreads.load(ordering: .acquiring) == 0)
            #expect(stats.sum(.closed) == 24)
            #expect(stats.workers.allSatisfy { $0[.finished] == 1 })
            // Every client sees its connection end (after whatever echo was already queued).
            for (i, client) in clients.enumerated() {
                #expect(client.readUntilClosed() != nil, "client \(i) was not closed by the server")
            }
            clients.removeAll()
            expectDescriptorsSettle(to: baseline, port: port, extra: [.eventfd: 3], "after stop")
            group = nil
            expectDescriptorsSettle(to: baseline, port: port, "after the group is released")
        }

        @Test func startThrowsCleanlyWhenAHandlersStartFails() throws {
            let baseline = FDCensus.take()
            let configuration = { var c = EchoConfiguration(); c.failStartOnWorker = 1; return c }()
            let (listeners, port) = try reusePortGroup(3, tcp: true)
            let stats = EchoStats(workers: 3)
            var settings = WorkerConfiguration()
            settings.count = 3
            settings.tickNanos = 1_000_000
            var group: WorkerGroup<TCPEchoHandler>? = try WorkerGroup(configuration: settings) { index in
                TCPEchoHandler(index: index, listener: listeners[index], configuration: configuration, counters: stats.workers[index])
            }
            let started = monotonicMillis()
            #expect(throws: Errno(rawValue: ENOTRECOVERABLE)) { try group!.start() }
            #expect(monotonicMillis() - started < 5_000)
            #expect(group!.liveThreads.load(ordering: .acquiring) == 0, "a worker thread outlived start()")
            // All three handlers, the failed one included, were stopped and finished: listeners
            // closed, buffer rings unregistered (a registered one would trap when released).
            #expect(stats.workers.allSatisfy { $0[.finished] == 1 })
            expectDescriptorsSettle(to: baseline, port: port, extra: [.eventfd: 3], "after the failed start")
            group!.stop() // idempotent after the failed start
            group = nil
            expectDescriptorsSettle(to: baseline, port: port, "after the group is released")
        }
    }
}
