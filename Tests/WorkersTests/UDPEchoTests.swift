import Glibc
import Synchronization
import Testing
import URing
@testable import Workers

extension EngineTests {
    @Suite(.timeLimit(.minutes(1)))
    struct UDPEcho {
        @Test(arguments: [false, true])
        func datagramsAreEchoedToTheirSendersByThreeWorkers(ipv6: Bool) throws {
            let sockets: [Int32], port: UInt16
            do {
                (sockets, port) = try reusePortGroup(3, tcp: false, ipv6: ipv6)
            } catch let e as Errno where ipv6 && (e.rawValue == EAFNOSUPPORT || e.rawValue == EADDRNOTAVAIL) {
                print("skipped: no IPv6 loopback here (\(e))")
                return
            }
            let counters = (0..<3).map { _ in UDPEchoCounters() }
            var settings = WorkerConfiguration()
            settings.count = 3
            settings.ringEntries = 256
            settings.tickNanos = 0
            let group = try WorkerGroup(configuration: settings) { i in UDPEchoHandler(socket: sockets[i], counters: counters[i]) }
            try group.start()
            defer { group.stop() }
            let server = ipv6 ? SocketEndpoint(ipv6: Array(repeating: 0, count: 15) + [1], port: port) : .loopbackV4(port: port)

            // Twelve clients, each from its own port (so SO_REUSEPORT spreads them), 150 datagrams
            // of 9 to 1400 bytes, request/response; a lost datagram (loopback drops under load
            // are legal) is retransmitted, a stray older echo is skipped.
            let retransmits = Mutex(0)
            let failures = onThreads(12) { t in
                let client = try Client(udpTo: server)
                var reply = [UInt8](repeating: 0, count: 2048)
                for seq in 0..<150 {
                    let size = 9 + (t * 7_919 + seq * 104_729) % 1392
                    var datagram = patternBytes(size, seed: UInt64(t << 20 | seq))
                    datagram[0] = UInt8(t)
                    withUnsafeBytes(of: UInt32(seq).bigEndian) { datagram.replaceSubrange(1..<5, with: $0) }
                    var answered = false
                    for attempt in 0..<5 where !answered {
                        if attempt > 0 { retransmits.withLock { $0 += 1 } }
                        guard datagram.withUnsafeBytes({ send(client.fd, $0.baseAddress, $0.count, 0) }) == size else {
                            throw TestFailure("send: \(Errno.current)")
                        }
                        while true {
                            let n = reply.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
                            if n < 0 { break } // timed out: retransmit
                            if n == size && reply[0..<n].elementsEqual(datagram) { answered = true; break }
                            if n >= 5 && reply[0] == UInt8(t) && reply[1..<5].elementsEqual(datagram[1..<5]) {
                                throw TestFailure("client \(t) seq \(seq): echo of \(n) bytes differs from the \(size) sent")
                            }
                        }
                    }
                    guard answered else { throw TestFailure("client \(t) seq \(seq): no echo after 5 tries") }
                }
            }
            #expect(failures.isEmpty, "\(failures)")
            let echoed = counters.reduce(0) { $0 + $1.echoed.load(ordering: .relaxed) }
            #expect(echoed >= 1800 && echoed <= 1800 + retransmits.withLock { $0 }, "\(echoed) echoes")
            #expect(counters.filter { $0.echoed.load(ordering: .relaxed) > 0 }.count >= 2, "SO_REUSEPORT used one socket only")

            // A datagram larger than a buffer arrives truncated: it is dropped, not echoed cut.
            let client = try Client(udpTo: server)
            let big = patternBytes(3000, seed: 5)
            #expect(big.withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, 0) } == 3000)
            #expect(waitUntil(seconds: 5) { counters.reduce(0) { $0 + $1.truncatedDropped.load(ordering: .relaxed) } == 1 })
            var byte: UInt8 = 0
            Client.setTimeouts(client.fd, milliseconds: 100)
            #expect(recv(client.fd, &byte, 1, 0) == -1, "nothing comes back for the truncated datagram")
            Client.setTimeouts(client.fd, milliseconds: 2000)
            let probe: [UInt8] = [7, 7, 7]
            #expect(send(client.fd, probe, 3, 0) == 3)
            var echo = [UInt8](repeating: 0, count: 16)
            #expect(echo.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) } == 3)
            #expect(echo.prefix(3) == [7, 7, 7])

            group.stop()
            #expect(counters.allSatisfy { $0.finished.load(ordering: .relaxed) == 1 })
        }
    }
}
