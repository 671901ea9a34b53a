import Glibc
import RustDeskProtocol
import Testing

/// hbbr end to end: the real binary on loopback, written from PROTOCOL.md §8, §9.2 and the §14
/// relay checklist. Relay clients on plain TCP come from loopback, so the servers run with
/// `--admin-console off` unless a test needs the console. Serialized: the rate tests measure
/// time, and the machine is shared.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HbbrTests {
    /// Starts hbbr and waits until TCP Q accepts.
    func start(_ extra: [String] = [], environment: [String: String] = [:], directory: String? = nil,
               console: Bool = false) throws -> ServerProcess {
        let server = try ServerProcess("hbbr", arguments: (console ? [] : ["--admin-console", "off"]) + extra,
                                       environment: environment, directory: directory)
        try waitUntilListening(server, port: server.port)
        return server
    }

    func waitUntilListening(_ server: ServerProcess, port: UInt16) throws {
        let deadline = now() + 10
        while now() < deadline {
            if (try? TCPClient(port: port)) != nil { return }
            if server.exitStatus(within: 0.05) != nil { break }
        }
        let log = server.log
        server.stop()
        throw TestError.failed("hbbr did not listen on \(port); log:\n\(log)")
    }

    // MARK: 60, 61: pairing and raw relaying

    /// `auto` splices through pipes; `copy` moves bytes through user-space buffers.
    @Test(arguments: ["auto", "splice-ring", "copy"])
    func twoTCPHalvesPairAndBytesFlowUnchangedBothWays(relayMode: String) throws {
        let server = try start(["-k", "relay-key", "--relay-mode", relayMode])
        // Bytes right behind the RequestRelay frame, before pairing, shaped like frames on purpose.
        let earlyA: [UInt8] = [0x00, 0x14, 1, 2, 3, 4, 5, 0xFF, 0x03]
        let earlyB = Array("early from b".utf8)
        let (a, b) = try tcpPair(server, uuid: "U-60", key: "relay-key", earlyA: earlyA, earlyB: earlyB)
        #expect(b.readExactly(earlyA.count) == earlyA)
        #expect(a.readExactly(earlyB.count) == earlyB)
        let pattern = Pattern.shared
        let toB = Array(pattern.bytes[1000..<201_000]), toA = Array(pattern.bytes[7..<150_007])
        a.write(toB)
        b.write(toA)
        #expect(b.readExactly(toB.count, within: 5) == toB)
        #expect(a.readExactly(toA.count, within: 5) == toA)
        // Nothing injected by the relay.
        #expect(a.read(within: 0.3).bytes.isEmpty && b.read(within: 0.3).bytes.isEmpty)
        // One side leaving ends the session: the other is closed.
        a.shutdownBoth()
        #expect(b.closedByServer(within: 3))
        // SIGTERM with sessions open stops cleanly.
        let live = try tcpPair(server, uuid: "U-60b", key: "relay-key")
        live.0.write([1])
        #expect(live.1.readExactly(1) == [1])
        #expect(server.stop() == 0)
    }

    @Test func wrongLicenceKeyIsClosedSilentlyAndNoKeyAcceptsAny() throws {
        let keyed = try start(["-k", "relay-key"])
        defer { keyed.stop() }
        let c = try TCPClient(port: keyed.port)
        c.write(relayFrame("U-61", key: "wrong"))
        let (bytes, eof) = c.read(within: 3)
        #expect(bytes.isEmpty && eof)
        let open = try start()
        defer { open.stop() }
        let (a, b) = try tcpPair(open, uuid: "U-61b", key: "anything")
        a.write([1, 2, 3])
        #expect(b.readExactly(3) == [1, 2, 3])
    }

    // MARK: 62: the first message

    @Test func firstMessageMustBeRequestRelayWithAUUID() throws {
        let server = try start()
        defer { server.stop() }
        let notRelay = try TCPClient(port: server.port)
        notRelay.send(.testNatRequest(.init(serial: 1)))
        let emptyUUID = try TCPClient(port: server.port)
        emptyUUID.write(relayFrame(""))
        let unparseable = try TCPClient(port: server.port)
        unparseable.write(try FrameCodec.frame([0xFF, 0xFF, 0xFF]))
        let oversized = try TCPClient(port: server.port)
        oversized.write([0xFF, 0xFF, 0xFF, 0xFF])
        for c in [notRelay, emptyUUID, unparseable, oversized] {
            let (bytes, eof) = c.read(within: 3)
            #expect(bytes.isEmpty && eof)
        }
        // Still serving.
        let (a, b) = try tcpPair(server, uuid: "U-62")
        b.write([9])
        #expect(a.readExactly(1) == [9])
    }

    // MARK: 63, 64, 65: timeouts (shortened ten times by the test-only scale)

    static let tenTimesFaster = ["RINGDESK_TEST_TIME_SCALE": "0.1"]

    @Test func silentAndUnpairedConnectionsAreClosedAfterTheWait() throws {
        let server = try start(environment: Self.tenTimesFaster)
        defer { server.stop() }
        let t0 = now()
        let silent = try TCPClient(port: server.port)
        let lonely = try TCPClient(port: server.port)
        lonely.write(relayFrame("U-64-lonely"))
        // 63, 64: 30 s scaled to 3 s.
        #expect(!silent.closedByServer(within: 2.2))
        #expect(silent.closedByServer(within: 3))
        #expect(lonely.closedByServer(within: 1))
        #expect(now() - t0 > 2.5)
        // 64: a partner arriving just before the end of the wait still pairs.
        let a = try TCPClient(port: server.port)
        a.write(relayFrame("U-64"))
        usleep(2_400_000)
        let b = try TCPClient(port: server.port, ip: "127.0.0.2")
        b.write(relayFrame("U-64"))
        b.write([42])
        #expect(a.readExactly(1) == [42])
    }

    @Test func idleSessionsAreClosedAndActiveOnesKept() throws {
        let server = try start(environment: Self.tenTimesFaster)
        defer { server.stop() }
        let (a, b) = try tcpPair(server, uuid: "U-65")
        // Traffic every 0.5 s for 5 s (more than the scaled 3.1-s idle limit) keeps it open.
        for i in 0..<10 {
            a.write([UInt8(i)])
            #expect(b.readExactly(1) == [UInt8(i)])
            usleep(500_000)
        }
        a.write([7])
        #expect(b.readExactly(1) == [7])
        let last = now()
        // 65: closed 31–34 s after the last byte, scaled: 3.1–3.4 s (plus a tick).
        #expect(b.closedByServer(within: 6))
        let elapsed = now() - last
        #expect(elapsed > 2.9 && elapsed < 4.5, "idle close after \(elapsed) s")
        #expect(a.closedByServer(within: 1))
    }

    // MARK: 66: WebSocket and TCP halves

    @Test(arguments: [true, false])
    func webSocketAndTCPHalvesRelayMessages(webSocketFirst: Bool) throws {
        let server = try start()
        defer { server.stop() }
        let relay = RendezvousMessage.requestRelay(.init(id: "", uuid: "U-66-\(webSocketFirst)")).serializedBytes()
        var ws: WebSocketTestClient!
        var tcp: TCPClient!
        func arriveWS() throws {
            ws = try WebSocketTestClient(port: server.port + 2)
            ws.sendBinary(relay)
            ws.sendBinary(Array("ws-early".utf8))
        }
        func arriveTCP() throws {
            tcp = try TCPClient(port: server.port)
            tcp.write(relayFrame("U-66-\(webSocketFirst)") + (try FrameCodec.frame(Array("tcp-early".utf8))) + [0x00])
        }
        if webSocketFirst { try arriveWS() } else { try arriveTCP() }
        usleep(200_000)
        if webSocketFirst { try arriveTCP() } else { try arriveWS() }
        // What each sent behind its first message arrives first, one message each.
        #expect(ws.next() == Array("tcp-early".utf8))
        #expect(tcp.readExactly(9) == (try FrameCodec.frame(Array("ws-early".utf8))))
        // A TCP frame arrives as one binary message; a zero-length frame is not forwarded.
        let big = Array(Pattern.shared.bytes[0..<100_000])
        tcp.write([0x00] + (try FrameCodec.frame(big)))
        #expect(ws.next(within: 5) == big)
        // A binary message arrives as one frame; a text message is not forwarded.
        ws.sendText("not forwarded")
        let medium = Array(Pattern.shared.bytes[5..<70_005])
        ws.sendBinary(medium)
        let framed = try FrameCodec.frame(medium)
        #expect(tcp.readExactly(framed.count, within: 5) == framed)
        #expect(tcp.read(within: 0.3).bytes.isEmpty)
        // The WebSocket side leaving closes the TCP side.
        ws.tcp.shutdownBoth()
        #expect(tcp.closedByServer(within: 3))
    }

    @Test func webSocketRelayKeepsMessageBoundariesForLargeAndManyMessages() throws {
        let server = try start()
        defer { server.stop() }
        let ws = try WebSocketTestClient(port: server.port + 2)
        ws.sendBinary(RendezvousMessage.requestRelay(.init(id: "", uuid: "U-66-bulk")).serializedBytes())
        usleep(100_000)
        let tcp = try TCPClient(port: server.port)
        tcp.write(relayFrame("U-66-bulk"))
        let bytes = Pattern.shared.bytes
        var sizes = (0..<60).map { 1 + ($0 * 7919) % 70_000 }
        sizes.append(4 << 20)
        for (i, size) in sizes.enumerated() {
            let payload = size <= Pattern.maxSlice ? Array(bytes[i..<(i + size)]) : (0..<size).map { bytes[$0 % Pattern.shared.period] }
            tcp.write(try FrameCodec.frame(payload))
            guard ws.next(within: 10) == payload else { Issue.record("TCP→WS message \(i) (\(size) bytes) differs"); return }
            ws.sendBinary(payload)
            let framed = try FrameCodec.frame(payload)
            guard tcp.readExactly(framed.count, within: 10) == framed else { Issue.record("WS→TCP message \(i) (\(size) bytes) differs"); return }
        }
    }

    // MARK: 67: blocklist

    @Test func blocklistedAddressesAreRefusedAtAccept() throws {
        let dir = makeTempDirectory()
        writeFile(dir + "/blocklist.txt", "127.0.0.2 # refused\n")
        let server = try start(directory: dir)
        defer { server.stop() }
        let blocked = try TCPClient(port: server.port, ip: "127.0.0.2")
        blocked.write(relayFrame("U-67"))
        let (bytes, eof) = blocked.read(within: 2)
        #expect(bytes.isEmpty && eof)
        let allowed = try TCPClient(port: server.port, ip: "127.0.0.3")
        allowed.write(relayFrame("U-67"))
        #expect(!allowed.closedByServer(within: 0.5))
    }

    @Test func consoleBlocklistAddEndsARunningSession() throws {
        // Console on loopback TCP Q; the halves use the WebSocket port, behind a "proxy" (loopback
        // is trusted by default) that names their addresses.
        let server = try start(console: true)
        defer { server.stop() }
        let relay = RendezvousMessage.requestRelay(.init(id: "", uuid: "U-67b")).serializedBytes()
        let a = try WebSocketTestClient(port: server.port + 2, headers: ["X-Real-IP: 198.51.100.7"])
        a.sendBinary(relay)
        usleep(100_000)
        let b = try WebSocketTestClient(port: server.port + 2, headers: ["X-Real-IP: 198.51.100.8"])
        b.sendBinary(relay)
        a.sendBinary([1, 2, 3])
        #expect(b.next() == [1, 2, 3])
        usleep(1_200_000)
        // The usage table lists the session under the second arrival's address.
        #expect(console(server, "u").hasPrefix("198.51.100.8:0: "))
        #expect(console(server, "Ba 198.51.100.8") == "")
        let t0 = now()
        #expect(a.closedByServer(within: 3) && b.closedByServer(within: 1))
        #expect(now() - t0 < 2.5)
        #expect(console(server, "B 198.51.100.8") == "true\n")
        #expect(console(server, "u") == "")
    }

    // MARK: 59, 69: console

    @Test func adminConsoleOverLoopbackTCP() throws {
        let server = try start(console: true)
        defer { server.stop() }
        #expect(console(server, "h").split(separator: "\n").count == 12)
        #expect(console(server, "ba 1.2.3.4|5.6.7.8") == "")
        #expect(console(server, "b 1.2.3.4") == "true\n")
        #expect(console(server, "b 9.9.9.9") == "false\n")
        #expect(console(server, "sb") == "128Mb/s\n")
        #expect(console(server, "sb 256") == "")
        #expect(console(server, "sb") == "256Mb/s\n")
        #expect(console(server, "dt") == "0.66\n")
        #expect(console(server, "t") == "1800s\n")
        #expect(console(server, "u") == "")
        // 69: a RequestRelay frame from loopback on Q is a console command, not a relay half.
        let c = try TCPClient(port: server.port)
        c.write(relayFrame("U-69"))
        let (bytes, eof) = c.read(within: 3)
        #expect(bytes.isEmpty && eof)
    }

    @Test func adminConsoleOnAUnixSocketLeavesLoopbackToTheRelay() throws {
        let dir = makeTempDirectory()
        let path = dir + "/console.sock"
        let server = try start(["--admin-console", "unix:" + path], console: true)
        #expect(unixConsole(path, "sb") == "128Mb/s\n")
        #expect(unixConsole(path, "ls 8") == "")
        #expect(unixConsole(path, "ls") == "8Mb/s\n")
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        // Loopback TCP on Q is a relay client now.
        let (a, b) = try tcpPair(server, uuid: "U-unix")
        a.write([5, 6])
        #expect(b.readExactly(2) == [5, 6])
        #expect(server.stop() == 0)
        #expect(access(path, F_OK) != 0)
    }

    // MARK: 68: bandwidth limits

    @Test func blacklistedSessionIsLimitedToLimitSpeed() throws {
        let dir = makeTempDirectory()
        writeFile(dir + "/blacklist.txt", "127.0.0.2\n")
        let server = try start(environment: ["LIMIT_SPEED": "2"], directory: dir)
        defer { server.stop() }
        // b (127.0.0.2) arrives second, so the session's address is blacklisted.
        let (a, b) = try tcpPair(server, uuid: "U-68")
        let rate = measureRate([(a, b)], seconds: 4, warmUp: 1)
        let expected = 2.0 * 1_048_576 / 8 // LIMIT_SPEED=2 Mb/s in bytes per second
        print("hbbr: blacklisted session \(Int(rate)) B/s, LIMIT_SPEED \(Int(expected)) B/s")
        #expect(rate > expected * 0.75 && rate < expected * 1.25, "blacklisted session moved \(Int(rate)) B/s, expected \(Int(expected))")
    }

    @Test func totalBandwidthCapsTheSumOfSessions() throws {
        let server = try start(environment: ["TOTAL_BANDWIDTH": "2"])
        defer { server.stop() }
        let first = try tcpPair(server, uuid: "U-68-1")
        let second = try tcpPair(server, uuid: "U-68-2")
        let rate = measureRate([first, second], seconds: 4, warmUp: 1)
        let expected = 2.0 * 1_048_576 / 8
        print("hbbr: two sessions \(Int(rate)) B/s together, TOTAL_BANDWIDTH \(Int(expected)) B/s")
        #expect(rate > expected * 0.75 && rate < expected * 1.25, "two sessions moved \(Int(rate)) B/s together, expected \(Int(expected))")
    }

    // MARK: Throughput and descriptors

    @Test func manyConcurrentPairsRelay16MiBEachWayByteExact() throws {
        let pairCount = 64
        let server = try start(["--workers", "2"], environment: ["SINGLE_BANDWIDTH": "1000000", "TOTAL_BANDWIDTH": "1000000"])
        defer { server.stop() }
        var pairs: [(TCPClient, TCPClient)] = []
        for i in 0..<pairCount {
            let a = try TCPClient(port: server.port, ip: "127.0.0.1")
            a.write(relayFrame("U-bulk-\(i)"))
            pairs.append((a, a))
        }
        usleep(100_000)
        for i in 0..<pairCount {
            let b = try TCPClient(port: server.port, ip: "127.0.0.2")
            b.write(relayFrame("U-bulk-\(i)"))
            pairs[i].1 = b
        }
        let t0 = now()
        let result = transfer(pairs, bytesEachWay: 16 << 20, within: 120)
        let seconds = now() - t0
        #expect(result == nil, "\(result ?? "")")
        print("hbbr: \(pairCount) pairs × 16 MiB each way in \(String(format: "%.1f", seconds)) s")
    }

    /// 10,000 pairs come and go (100 batches of 100, each byte-checked), with a never-paired
    /// half and a garbage first message per batch: afterwards the process has exactly the
    /// descriptors it had before, so no socket and no pipe of the pools is left behind.
    @Test func noDescriptorOrPipeLeftAfterTenThousandPairs() throws {
        // Scaled waits: a half whose client left while waiting is only noticed when its wait ends.
        let server = try start(["--workers", "2"], environment: Self.tenTimesFaster)
        // The readiness probe's connection may still be open: count once it is gone.
        var before = descriptorCount(server.pid)
        for _ in 0..<20 {
            usleep(100_000)
            let again = descriptorCount(server.pid)
            if again == before { break }
            before = again
        }
        // Four client addresses: 5,000 connections each, well within the ephemeral port range
        // even with the TIME_WAITs of earlier tests.
        for batch in 0..<100 {
            var pairs: [(TCPClient, TCPClient)] = []
            for i in 0..<100 {
                let a = try TCPClient(port: server.port, ip: batch % 2 == 0 ? "127.0.0.1" : "127.0.0.3")
                a.write(relayFrame("U-fd-\(batch)-\(i)") + [UInt8(i)])
                pairs.append((a, a))
            }
            for i in 0..<100 {
                let b = try TCPClient(port: server.port, ip: batch % 2 == 0 ? "127.0.0.2" : "127.0.0.4")
                b.write(relayFrame("U-fd-\(batch)-\(i)") + [UInt8(i)])
                pairs[i].1 = b
            }
            for (i, (a, b)) in pairs.enumerated() {
                #expect(a.readExactly(1) == [UInt8(i)] && b.readExactly(1) == [UInt8(i)])
            }
            // Some halves never pair, some send garbage: closed by the client or the server.
            let lonely = try TCPClient(port: server.port)
            lonely.write(relayFrame("U-fd-lonely-\(batch)"))
            let garbage = try TCPClient(port: server.port)
            garbage.write([0xFF, 0xFF, 0xFF, 0xFF])
            _ = (lonely, garbage)
        }
        // Unpaired halves go after the (scaled) 3-s wait, idle pipes at the next idle check once
        // a worker has no session.
        let deadline = now() + 10
        var after = descriptorCount(server.pid)
        while after != before && now() < deadline {
            usleep(100_000)
            after = descriptorCount(server.pid)
        }
        #expect(after == before, "descriptors before \(before), after \(after)")
        #expect(server.stop() == 0)
        let log = server.log
        // Halves accepted by different workers were handed over (SO_REUSEPORT spreads them).
        let summary = log.split(separator: "\n").first { $0.contains("sessions relayed") }.map(String.init) ?? ""
        #expect(summary.contains("(10000 sessions relayed") && !summary.contains(" 0 across workers"), "\(summary)")
    }

    // MARK: 75: PORT

    @Test func portFromTheEnvironmentMeansPortPlusOne() throws {
        let base = ServerProcess.freePortBase()
        let server = try ServerProcess("hbbr", arguments: ["--admin-console", "off"], environment: ["PORT": String(base - 1)],
                                       port: base, portFlag: false)
        defer { server.stop() }
        try waitUntilListening(server, port: base)
        #expect((try? TCPClient(port: base + 2)) != nil)
    }

    // MARK: Helpers

    func relayFrame(_ uuid: String, key: String = "") -> [UInt8] {
        try! FrameCodec.frame(RendezvousMessage.requestRelay(.init(id: "", uuid: uuid, licenceKey: key)).serializedBytes())
    }

    /// A from 127.0.0.1 waits first; B from 127.0.0.2 arrives second.
    func tcpPair(_ server: ServerProcess, uuid: String, key: String = "", earlyA: [UInt8] = [], earlyB: [UInt8] = []) throws -> (TCPClient, TCPClient) {
        let a = try TCPClient(port: server.port, ip: "127.0.0.1")
        a.write(relayFrame(uuid, key: key) + earlyA)
        usleep(100_000)
        let b = try TCPClient(port: server.port, ip: "127.0.0.2")
        b.write(relayFrame(uuid, key: key) + earlyB)
        return (a, b)
    }

    func console(_ server: ServerProcess, _ command: String) -> String {
        guard let c = try? TCPClient(port: server.port) else { return "<no connection>" }
        c.write(Array(command.utf8))
        let (bytes, eof) = c.read(within: 2)
        return eof ? String(decoding: bytes, as: UTF8.self) : "<not closed>"
    }



    /// Sends from each pair's `a` to its `b` as fast as allowed; returns the bytes per second `b`
    /// received after `warmUp`.
    func measureRate(_ pairs: [(TCPClient, TCPClient)], seconds: Double, warmUp: Double) -> Double {
        for (a, _) in pairs { a.setNonBlocking() }
        let chunk = [UInt8](repeating: 0x5A, count: 16 << 10)
        let t0 = now()
        var counted = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while now() - t0 < warmUp + seconds {
            for (a, b) in pairs {
                _ = chunk.withUnsafeBytes { Glibc.send(a.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                let n = buffer.withUnsafeMutableBytes { recv(b.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 && now() - t0 >= warmUp { counted += n }
            }
            usleep(5_000)
        }
        return Double(counted) / seconds
    }

    func descriptorCount(_ pid: pid_t) -> Int { directoryEntries("/proc/\(pid)/fd")?.count ?? -1 }

    func writeFile(_ path: String, _ text: String) {
        let f = fopen(path, "w")!
        fputs(text, f)
        fclose(f)
    }
}

/// Pseudo-random bytes, with the first 256 KiB repeated at the end so that any slice of up to
/// 256 KiB starting below `period` is contiguous.
struct Pattern {
    static let shared = Pattern()
    static let maxSlice = 256 << 10
    let period = 1 << 20
    let bytes: [UInt8]
    init() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var b = [UInt8](repeating: 0, count: period + Self.maxSlice)
        for i in 0..<period {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            b[i] = UInt8(truncatingIfNeeded: state)
        }
        for i in 0..<Self.maxSlice { b[period + i] = b[i] }
        bytes = b
    }
}

/// Moves `bytesEachWay` in both directions of every pair at once (one poll loop over all
/// sockets) and compares every received byte with what its partner sent. Each direction uses its
/// own offset into the pattern, so bytes crossing between pairs or directions would not match.
/// Returns nil on success, else what went wrong.
func transfer(_ pairs: [(TCPClient, TCPClient)], bytesEachWay: Int, within seconds: Double) -> String? {
    struct End { var fd: Int32; var sendOffset: Int; var expectOffset: Int; var sent = 0; var received = 0 }
    let pattern = Pattern.shared
    var ends: [End] = []
    for (i, (a, b)) in pairs.enumerated() {
        a.setNonBlocking(); b.setNonBlocking()
        let offA = (i * 2 * 7919 + 13) % pattern.period, offB = ((i * 2 + 1) * 7919 + 13) % pattern.period
        ends.append(End(fd: a.fd, sendOffset: offA, expectOffset: offB))
        ends.append(End(fd: b.fd, sendOffset: offB, expectOffset: offA))
    }
    var buffer = [UInt8](repeating: 0, count: Pattern.maxSlice)
    var polls = [pollfd](repeating: pollfd(), count: ends.count)
    let deadline = now() + seconds
    while ends.contains(where: { $0.sent < bytesEachWay || $0.received < bytesEachWay }) {
        if now() > deadline {
            let short = ends.filter { $0.received < bytesEachWay }.count
            return "timed out: \(short) directions incomplete"
        }
        for (i, e) in ends.enumerated() {
            polls[i] = pollfd(fd: e.fd, events: Int16(POLLIN) | (e.sent < bytesEachWay ? Int16(POLLOUT) : 0), revents: 0)
        }
        _ = poll(&polls, nfds_t(polls.count), 100)
        for i in ends.indices {
            let r = polls[i].revents
            if r & Int16(POLLOUT) != 0 && ends[i].sent < bytesEachWay {
                let start = (ends[i].sendOffset + ends[i].sent) % pattern.period
                let count = min(Pattern.maxSlice, bytesEachWay - ends[i].sent)
                let n = pattern.bytes.withUnsafeBytes { Glibc.send(ends[i].fd, $0.baseAddress! + start, count, Int32(MSG_NOSIGNAL)) }
                if n > 0 { ends[i].sent += n }
            }
            if r & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let want = min(Pattern.maxSlice, max(1, bytesEachWay - ends[i].received))
                let n = buffer.withUnsafeMutableBytes { recv(ends[i].fd, $0.baseAddress, want, 0) }
                if n == 0 { return "end \(i) closed after \(ends[i].received) bytes" }
                if n > 0 {
                    let start = (ends[i].expectOffset + ends[i].received) % pattern.period
                    let same = buffer.withUnsafeBytes { got in pattern.bytes.withUnsafeBytes { memcmp(got.baseAddress!, $0.baseAddress! + start, n) } }
                    if same != 0 { return "end \(i): bytes differ at \(ends[i].received)" }
                    ends[i].received += n
                    if ends[i].received > bytesEachWay { return "end \(i): more bytes than sent" }
                }
            }
        }
    }
    return nil
}

extension TCPClient {
    /// Exactly `count` bytes within `seconds`, or what arrived.
    func readExactly(_ count: Int, within seconds: Double = 2) -> [UInt8] {
        read(upTo: count, within: seconds).bytes
    }
    func setNonBlocking() { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    func shutdownBoth() { _ = shutdown(fd, Int32(SHUT_RDWR)) }
}
