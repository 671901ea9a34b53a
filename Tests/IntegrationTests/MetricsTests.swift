import Glibc
import RustDeskProtocol
import Testing

/// `--metrics`: the real binaries serve /metrics and /health on loopback; counts are checked
/// exactly as deltas between two scrapes (the start-up probes register too).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct MetricsTests {
    /// A scrape: the status line and the body's samples by `name{labels}`.
    struct Scrape {
        var status: Int
        var head: String
        var body: String
        var samples: [String: Double] = [:]

        init(_ response: String) {
            let parts = response.components(separatedBy: "\r\n\r\n")
            head = parts.first ?? ""
            body = parts.dropFirst().joined(separator: "\r\n\r\n")
            status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            for line in body.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
                samples[String(line[..<space])] = v
            }
        }

        subscript(_ key: String) -> Double { samples[key] ?? -1 }
    }

    /// One HTTP exchange on 127.0.0.1:`port`: sends `request`, reads to EOF. nil if the
    /// connection is refused.
    static func http(_ port: UInt16, _ request: String) -> String? {
        guard let c = try? TCPClient(port: port) else { return nil }
        c.write(Array(request.utf8))
        var out: [UInt8] = []
        let deadline = now() + 5
        while now() < deadline {
            let (bytes, eof) = c.read(within: 0.5)
            out += bytes
            if eof { break }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func get(_ port: UInt16, _ path: String) -> String? { http(port, "GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n") }

    static func scrape(_ port: UInt16) -> Scrape { Scrape(get(port, "/metrics") ?? "") }

    /// Starts `binary` with `--metrics 127.0.0.1:<P+1>` (free, unused by either server) and waits
    /// for /health; returns the server and the metrics port.
    static func start(_ binary: String, _ extra: [String], environment: [String: String] = [:]) throws -> (ServerProcess, UInt16) {
        let p = ServerProcess.freePortBase()
        let server = try ServerProcess(binary, arguments: ["--admin-console", "off"] + extra + ["--metrics", "127.0.0.1:\(p + 1)"],
                                       environment: environment, port: p)
        try waitForHealth(server, port: p + 1)
        return (server, p + 1)
    }

    /// Waits until /health answers (the endpoint starts right after the workers).
    static func waitForHealth(_ server: ServerProcess, port: UInt16) throws {
        let deadline = now() + 10
        while now() < deadline {
            if let r = get(port, "/health"), r.hasPrefix("HTTP/1.1 200") { return }
            if server.exitStatus(within: 0.05) != nil { break }
        }
        let log = server.log
        server.stop()
        throw TestError.failed("no /health on \(port); log:\n\(log)")
    }

    /// After SIGTERM, /health says 503 while the server shuts down (or the port is already
    /// closed), and the process exits 0.
    static func expectStopping(_ server: ServerProcess, port: UInt16) {
        kill(server.pid, SIGTERM)
        var answers: [String] = []
        let deadline = now() + 5
        while now() < deadline {
            guard let r = get(port, "/health"), !r.isEmpty else { break }
            answers.append(String(r.prefix(12)))
            if r.hasPrefix("HTTP/1.1 503") {
                #expect(r.hasSuffix("{\"status\":\"stopping\"}\n"))
                break
            }
        }
        #expect(answers.allSatisfy { $0 == "HTTP/1.1 200" || $0 == "HTTP/1.1 503" })
        #expect(server.stop(within: 10) == 0)
    }

    /// Ports the process listens on (TCP, from /proc), to show that nothing else is opened.
    static func listeningPorts(_ pid: pid_t) -> Set<UInt16> {
        var inodes = Set<String>()
        if let names = directoryEntries("/proc/\(pid)/fd") {
            for name in names {
                var buf = [CChar](repeating: 0, count: 256)
                let n = readlink("/proc/\(pid)/fd/\(name)", &buf, 255)
                guard n > 0 else { continue }
                let link = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if link.hasPrefix("socket:[") { inodes.insert(String(link.dropFirst(8).dropLast())) }
            }
        }
        var ports = Set<UInt16>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let f = fopen(table, "r") else { continue }
            defer { fclose(f) }
            var line: UnsafeMutablePointer<CChar>?
            var cap = 0
            while getline(&line, &cap, f) > 0 {
                let fields = String(cString: line!).split(separator: " ")
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])),
                      let port = UInt16(fields[1].split(separator: ":").last ?? "", radix: 16) else { continue }
                ports.insert(port)
            }
            free(line)
        }
        return ports
    }

    // MARK: hbbs

    @Test func hbbsCountsRegistrationsPunchHolesAndRelayRequests() throws {
        let (server, metricsPort) = try Self.start("hbbs", ["--workers", "2"])
        let p = server.port
        let hbbs = HbbsTests()
        let before = Self.scrape(metricsPort)
        #expect(before.status == 200)
        #expect(before.head.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(before.head.contains("Connection: close"))

        // Two peers over UDP: RegisterPk each, then two keep-alives each.
        let b1 = try UDPClient(ip: "127.0.0.2"), b2 = try UDPClient(ip: "127.0.0.3")
        #expect(hbbs.register(b1, id: "111111111", port: p)?.serializedBytes() == hex("82 01 00"))
        #expect(hbbs.register(b2, id: "222222222", port: p)?.serializedBytes() == hex("82 01 00"))
        for (b, id) in [(b1, "111111111"), (b2, "222222222"), (b1, "111111111"), (b2, "222222222")] {
            #expect(b.request(.registerPeer(.init(id: id)), to: p, attempts: 1) != nil)
        }

        // Punch hole over TCP: forwarded to B1 by UDP, B1 answers, A gets the response.
        let k = hbbs.key(server)
        let a = try TCPClient(port: p)
        a.send(.punchHoleRequest(.init(id: "111111111", natType: .asymmetric, licenceKey: k)))
        guard case .punchHole(let ph)? = b1.receiveMessage() else { Issue.record("B1 got no PunchHole"); server.stop(); return }
        let b1TCP = try TCPClient(port: p, ip: "127.0.0.2")
        b1TCP.send(.punchHoleSent(.init(socketAddr: ph.socketAddr, id: "111111111", relayServer: "x", natType: .asymmetric, version: "1.4.0")))
        guard case .punchHoleResponse? = a.receiveMessage() else { Issue.record("A got no response"); server.stop(); return }
        // Failures: unknown ID, wrong licence key.
        let unknown = try TCPClient(port: p)
        unknown.send(.punchHoleRequest(.init(id: "999999999", licenceKey: k)))
        #expect(unknown.receiveMessage()?.serializedBytes() == hex("5a 00"))
        let wrong = try TCPClient(port: p)
        wrong.send(.punchHoleRequest(.init(id: "111111111", licenceKey: "wrong")))
        #expect(wrong.receiveMessage()?.serializedBytes() == hex("5a 02 18 03"))
        // Relay requests: B2 known (forwarded by UDP), another ID unknown.
        let r = try TCPClient(port: p)
        r.send(.requestRelay(.init(id: "222222222", uuid: "U")))
        guard case .requestRelay? = b2.receiveMessage() else { Issue.record("B2 got no RequestRelay"); server.stop(); return }
        let r2 = try TCPClient(port: p)
        r2.send(.requestRelay(.init(id: "888888888", uuid: "V")))
        // One online query on P-1.
        let online = try TCPClient(port: p - 1)
        online.send(.onlineRequest(.init(id: "x", peers: ["111111111", "222222222"])))
        #expect(online.receiveMessage() != nil)
        usleep(200_000)

        let after = Self.scrape(metricsPort)
        func delta(_ key: String) -> Double { after[key] - max(0, before[key]) }
        #expect(delta("ringdesk_hbbs_register_pk_total") == 2)
        #expect(delta("ringdesk_hbbs_register_peer_total") == 4)
        #expect(after["ringdesk_hbbs_peers_registered"] == 2)
        #expect(after["ringdesk_hbbs_peers_online"] == 2)
        #expect(after["ringdesk_hbbs_punch_hole_requests_total{outcome=\"forwarded_udp\"}"] == 1)
        #expect(after["ringdesk_hbbs_punch_hole_requests_total{outcome=\"forwarded_tcp\"}"] == 0)
        #expect(after["ringdesk_hbbs_punch_hole_requests_total{outcome=\"id_not_exist\"}"] == 1)
        #expect(after["ringdesk_hbbs_punch_hole_requests_total{outcome=\"licence_mismatch\"}"] == 1)
        #expect(after["ringdesk_hbbs_punch_hole_requests_total{outcome=\"offline\"}"] == 0)
        #expect(after["ringdesk_hbbs_peer_answers_total{outcome=\"delivered\"}"] == 1)
        #expect(after["ringdesk_hbbs_relay_requests_total{outcome=\"forwarded_udp\"}"] == 1)
        #expect(after["ringdesk_hbbs_relay_requests_total{outcome=\"unknown_id\"}"] == 1)
        #expect(after["ringdesk_hbbs_online_requests_total"] == 1)
        #expect(after["ringdesk_hbbs_drops_total{reason=\"bad_frame\"}"] == 0)
        // A (answered, still connected) and the relay requesters are open on P.
        #expect(after["ringdesk_hbbs_connections_open{port=\"rendezvous\"}"] >= 3)
        #expect(after["ringdesk_hbbs_punch_sinks_waiting"] >= 2)
        for w in 0..<2 {
            #expect(after["ringdesk_hbbs_ring_sqes_total{worker=\"\(w)\"}"] > 0)
            #expect(after["ringdesk_hbbs_ring_cqes_total{worker=\"\(w)\"}"] > 0)
            #expect(after["ringdesk_hbbs_ring_enobufs_total{worker=\"\(w)\"}"] == 0)
        }
        #expect(after.body.contains("# TYPE ringdesk_hbbs_register_peer_total counter"))
        #expect(after.body.contains("# TYPE ringdesk_hbbs_peers_online gauge"))
        // The endpoint's own requests, counted through the swift-metrics API.
        #expect(after["ringdesk_hbbs_http_requests_total{path=\"/metrics\",status=\"200\"}"] == 1)
        #expect(after["ringdesk_hbbs_http_requests_total{path=\"/health\",status=\"200\"}"] >= 1)

        // Closed connections leave the gauge.
        for c in [a, r, r2, unknown, wrong, b1TCP, online] { c.shutdownBoth() }
        let deadline = now() + 5
        var open = -1.0
        while now() < deadline {
            open = Self.scrape(metricsPort)["ringdesk_hbbs_connections_open{port=\"rendezvous\"}"]
            if open == 0 { break }
            usleep(100_000)
        }
        #expect(open == 0)
        Self.expectStopping(server, port: metricsPort)
    }

    @Test func badRequestsGetErrorsAndOversizedOnesAreClosed() throws {
        let (server, metricsPort) = try Self.start("hbbs", ["--workers", "1"])
        defer { server.stop() }
        let health = Self.get(metricsPort, "/health") ?? ""
        #expect(health.hasPrefix("HTTP/1.1 200 OK\r\n") && health.contains("Content-Type: application/json"))
        #expect(health.contains(#"{"status":"ok","server":"hbbs""#))
        #expect(Self.get(metricsPort, "/")?.hasPrefix("HTTP/1.1 404 ") == true)
        #expect(Self.get(metricsPort, "/metrics/x")?.hasPrefix("HTTP/1.1 404 ") == true)
        #expect(Self.http(metricsPort, "DELETE /metrics HTTP/1.1\r\n\r\n")?.hasPrefix("HTTP/1.1 405 ") == true)
        #expect(Self.http(metricsPort, "\u{16}\u{03}\u{01}\u{02}\u{00}\r\n\r\n")?.hasPrefix("HTTP/1.1 400 ") == true)
        // 64 KiB of header without an end: answered 431 (or reset) and closed, never read to the end.
        let big = Self.http(metricsPort, "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "z", count: 64 << 10)) ?? ""
        #expect(big.isEmpty || big.hasPrefix("HTTP/1.1 431 "))
        // A client that sends nothing is cut off by the read timeout; the endpoint still serves.
        let silent = try TCPClient(port: metricsPort)
        #expect(silent.closedByServer(within: 5))
        #expect(Self.get(metricsPort, "/health")?.hasPrefix("HTTP/1.1 200") == true)
        let counts = Self.scrape(metricsPort)
        for (path, status) in [("other", 404), ("/metrics", 405), ("other", 400), ("other", 408)] {
            #expect(counts["ringdesk_hbbs_http_requests_total{path=\"\(path)\",status=\"\(status)\"}"] >= 1, "\(path) \(status)")
        }
    }

    @Test func metricsAreOffByDefaultAndABusyPortStopsStartup() throws {
        let p = ServerProcess.freePortBase()
        let server = try ServerProcess("hbbs", arguments: ["--admin-console", "off", "--workers", "1"], port: p)
        defer { server.stop() }
        let deadline = now() + 10
        var ports = Set<UInt16>()
        while now() < deadline {
            ports = Self.listeningPorts(server.pid)
            if ports.count >= 3 { break }
            usleep(50_000)
        }
        #expect(ports == [p - 1, p, p + 2])
        #expect(!server.log.contains("metrics on"))

        // hbbs's own P is taken for TCP by the first server: a second one whose metrics port is
        // that P fails at once with a clear line.
        let q = ServerProcess.freePortBase()
        let clash = try ServerProcess("hbbr", arguments: ["--admin-console", "off", "--metrics", "127.0.0.1:\(p)"], port: q)
        #expect(clash.exitStatus(within: 10) == 1)
        #expect(clash.log.contains("cannot listen for metrics on 127.0.0.1:\(p)"))
    }

    // MARK: hbbr

    @Test(arguments: ["auto", "copy"])
    func hbbrCountsPairsAndRelayedBytesByMode(relayMode: String) throws {
        let (server, metricsPort) = try Self.start("hbbr", ["--workers", "2", "--relay-mode", relayMode])
        let q = server.port
        let hbbr = HbbrTests()
        let (a, b) = try hbbr.tcpPair(server, uuid: "M-1")
        let n = 300_000
        let toB = Array(Pattern.shared.bytes[0..<n]), toA = Array(Pattern.shared.bytes[11..<(n + 11)])
        a.write(toB)
        b.write(toA)
        #expect(b.readExactly(n, within: 10) == toB)
        #expect(a.readExactly(n, within: 10) == toA)
        // A waiting half.
        let lonely = try TCPClient(port: q)
        lonely.write(hbbr.relayFrame("M-lonely"))
        usleep(300_000)

        let during = Self.scrape(metricsPort)
        #expect(during["ringdesk_hbbr_pairs_waiting"] == 1)
        #expect(during["ringdesk_hbbr_pairs_started_total"] == 1)
        #expect((0..<2).map { during["ringdesk_hbbr_pairs_active{worker=\"\($0)\"}"] }.reduce(0, +) == 1)

        a.shutdownBoth()
        #expect(b.closedByServer(within: 3))
        lonely.shutdownBoth()
        var after = Scrape("")
        let deadline = now() + 5
        while now() < deadline {
            after = Self.scrape(metricsPort)
            let pipes = (0..<2).map { after["ringdesk_hbbr_pipes_in_use{worker=\"\($0)\"}"] }
            if after["ringdesk_hbbr_pairs_completed_total"] == 1 && pipes == [0, 0] { break }
            usleep(100_000)
        }
        #expect(after["ringdesk_hbbr_pairs_completed_total"] == 1)
        // A waiting half is not read, so its client leaving is noticed only at the 30-s expiry.
        #expect(after["ringdesk_hbbr_pairs_waiting"] == 1)
        let spliced = after["ringdesk_hbbr_relayed_bytes_total{mode=\"splice\"}"]
        let copied = after["ringdesk_hbbr_relayed_bytes_total{mode=\"copy\"}"]
        #expect(after["ringdesk_hbbr_relayed_bytes_total{mode=\"framed\"}"] == 0)
        #expect(spliced + copied >= Double(2 * n))
        if relayMode == "copy" {
            #expect(spliced == 0 && copied >= Double(2 * n))
        } else {
            #expect(spliced > 0)
        }
        #expect(after["ringdesk_hbbr_drops_total{reason=\"bad_frame\"}"] == 0)
        for w in 0..<2 {
            #expect(after["ringdesk_hbbr_ring_cqes_total{worker=\"\(w)\"}"] > 0)
            #expect(after["ringdesk_hbbr_pipes_in_use{worker=\"\(w)\"}"] == 0)
        }
        Self.expectStopping(server, port: metricsPort)
    }

    /// A session is paused only when a limiter has no allowance left, and the pause is counted
    /// under that limiter. With both limits far above what loopback can move, a bulk pair is never
    /// paused: until 2026-11-25 a worker's share of TOTAL_BANDWIDTH left below one chunk by a
    /// large read paused the session until the next 100 ms tick (several times a second).
    @Test(arguments: [
        (["SINGLE_BANDWIDTH": "1000000", "TOTAL_BANDWIDTH": "1000000"], 0, 0),
        (["SINGLE_BANDWIDTH": "16", "TOTAL_BANDWIDTH": "1000000"], 1, 0),
        (["SINGLE_BANDWIDTH": "1000000", "TOTAL_BANDWIDTH": "16"], 0, 1),
    ])
    func hbbrCountsLimiterPausesByLimit(environment: [String: String], sessionPauses: Int, totalPauses: Int) throws {
        let (server, metricsPort) = try Self.start("hbbr", ["--workers", "1"], environment: environment)
        defer { server.stop() }
        let hbbr = HbbrTests()
        let (a, b) = try hbbr.tcpPair(server, uuid: "M-limits")
        // Unlimited: 64 MiB each way (about 64 reads of the worker's 1 MiB share of the total).
        // Limited to 16 Mb/s (2 MiB/s for both directions): 4 MiB each way, about 4 s of slices.
        let bytes = sessionPauses + totalPauses == 0 ? 64 << 20 : 4 << 20
        let failure = transfer([(a, b)], bytesEachWay: bytes, within: 60)
        #expect(failure == nil, "\(failure ?? "")")
        let s = Self.scrape(metricsPort)
        let session = s["ringdesk_hbbr_limiter_pauses_total{limit=\"session\"}"]
        let total = s["ringdesk_hbbr_limiter_pauses_total{limit=\"total\"}"]
        print("hbbr: \(environment): \(Int(session)) session pauses, \(Int(total)) total pauses for \(bytes >> 20) MiB each way")
        if sessionPauses == 0 { #expect(session == 0) } else { #expect(session >= Double(sessionPauses)) }
        if totalPauses == 0 { #expect(total == 0) } else { #expect(total >= Double(totalPauses)) }
    }

    @Test func hbbrCountsRefusalsByReason() throws {
        let (server, metricsPort) = try Self.start("hbbr", ["-k", "relay-key"])
        let q = server.port
        defer { server.stop() }
        let hbbr = HbbrTests()
        let wrong = try TCPClient(port: q)
        wrong.write(hbbr.relayFrame("M-2", key: "nope"))
        let notRelay = try TCPClient(port: q)
        notRelay.send(.testNatRequest(.init(serial: 1)))
        for c in [wrong, notRelay] { #expect(c.closedByServer(within: 3)) }
        let s = Self.scrape(metricsPort)
        #expect(s["ringdesk_hbbr_drops_total{reason=\"licence_mismatch\"}"] == 1)
        #expect(s["ringdesk_hbbr_drops_total{reason=\"not_request_relay\"}"] == 1)
        #expect(s["ringdesk_hbbr_pairs_started_total"] == 0)
    }
}
