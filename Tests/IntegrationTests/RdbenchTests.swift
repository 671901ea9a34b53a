import Foundation
import Glibc
import RustDeskProtocol
import Testing

/// rdbench against the real hbbs and hbbr on loopback: runs the built `rdbench` binary as a child
/// process with `--json` and checks what it measured. Serialized: the runs measure time and the
/// machine is shared.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct RdbenchTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:]
        }
    }

    /// Runs rdbench with `arguments`, bounded by `seconds` (killed after that).
    func rdbench(_ arguments: [String], within seconds: Double = 60) throws -> Run {
        let dir = makeTempDirectory()
        let out = dir + "/out", err = dir + "/err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([productsDirectory + "/rdbench"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let r = posix_spawn(&pid, productsDirectory + "/rdbench", &actions, nil, argv, environ)
        guard r == 0 else { throw TestError.failed("spawn rdbench: \(r)") }
        let deadline = now() + seconds
        var status: Int32 = 0
        var exited = false
        while now() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { exited = true; break }
            usleep(20_000)
        }
        if !exited { kill(pid, SIGKILL); waitpid(pid, &status, 0); throw TestError.failed("rdbench \(arguments) did not finish in \(seconds) s") }
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return Run(status: (status >> 8) & 0xFF, stdout: read(out), stderr: read(err))
    }

    func startHbbs() throws -> ServerProcess {
        let server = try ServerProcess("hbbs", arguments: ["--admin-console", "off"])
        let probe = try UDPClient()
        let deadline = now() + 10
        while now() < deadline {
            if probe.request(.registerPeer(.init(id: "probe")), to: server.port, attempts: 1) != nil { return server }
            if server.exitStatus(within: 0.01) != nil { break }
        }
        let log = server.log
        server.stop()
        throw TestError.failed("hbbs did not answer; log:\n\(log)")
    }

    func startHbbr(key: String) throws -> ServerProcess {
        let server = try ServerProcess("hbbr", arguments: ["--admin-console", "off", "-k", key])
        let deadline = now() + 10
        while now() < deadline {
            if (try? TCPClient(port: server.port)) != nil { return server }
            if server.exitStatus(within: 0.05) != nil { break }
        }
        let log = server.log
        server.stop()
        throw TestError.failed("hbbr did not listen; log:\n\(log)")
    }

    func int(_ o: Any?) -> Int? { (o as? NSNumber)?.intValue }
    func double(_ o: Any?) -> Double? { (o as? NSNumber)?.doubleValue }

    @Test func registerAgainstHbbs() throws {
        let server = try startHbbs()
        defer { server.stop() }
        // The brief's run: 200 peers, default 15 s interval (≈ 13 RegisterPeer/s), 3 s.
        for extra in [[], ["--rate", "2000"], ["--rate", "2000", "--threads", "2"]] {
            let run = try rdbench(["register", "--server", "127.0.0.1:\(server.port)", "--peers", "200", "--duration", "3",
                                   "--json", "--server-pid", String(server.pid)] + extra)
            #expect(run.status == 0, "\(run.stderr)")
            let j = run.json
            #expect(j["mode"] as? String == "register", "not JSON: \(run.stdout)")
            let pk = j["register_pk"] as? [String: Any] ?? [:]
            let peer = j["register_peer"] as? [String: Any] ?? [:]
            #expect(int(pk["sent"]) == 200)
            #expect(int(pk["ok"]) == 200, "RegisterPk answered other than OK: \(pk)")
            #expect(int(j["loss"]) == 0)
            #expect(int(peer["lost"]) == 0)
            let sent = int(peer["sent"]) ?? 0
            #expect(sent > 0 && int(peer["replies"]) == sent)
            #expect(int(peer["request_pk"]) == 0, "registered peers must not be asked for their key")
            if !extra.isEmpty {
                #expect(sent >= 5_900 && sent <= 6_001, "open loop at 2000/s for 3 s: \(sent)")
            }
            let latency = peer["latency"] as? [String: Any] ?? [:]
            #expect(int(latency["count"]) == sent)
            #expect((int(latency["p50_us"]) ?? 0) > 0)
            let usage = j["server_usage"] as? [String: Any] ?? [:]
            #expect(int(usage["pid"]) == Int(server.pid))
            #expect(double(usage["cpu_seconds"]) != nil)
            #expect(double(usage["cpu_seconds_per_million_requests"]) != nil)
            #expect((int(usage["peak_rss_kib"]) ?? 0) > 0)
            print("rdbench register \(extra): \(run.stdout)")
        }
    }

    @Test func registerWithoutServerFailsClearly() throws {
        // A port with nothing behind it: no reply within 3 s → exit 2 and a clear message.
        let port = ServerProcess.freePortBase()
        let run = try rdbench(["register", "--server", "127.0.0.1:\(port)", "--peers", "10", "--duration", "1", "--json"], within: 20)
        #expect(run.status == 2)
        #expect(run.stderr.contains("no reply from 127.0.0.1:\(port)"), "\(run.stderr)")
        #expect(run.stdout.isEmpty)
    }

    @Test func relayThroughHbbrAndDirect() throws {
        let server = try startHbbr(key: "rdbench-key")
        defer { server.stop() }
        let run = try rdbench(["relay", "--server", "127.0.0.1:\(server.port)", "--pairs", "4", "--bytes", "4M",
                               "--key", "rdbench-key", "--json", "--server-pid", String(server.pid)])
        #expect(run.status == 0, "\(run.stderr) \(run.stdout)")
        let j = run.json
        #expect(j["mode"] as? String == "relay", "not JSON: \(run.stdout)")
        #expect(j["ok"] as? Bool == true)
        #expect(int(j["pairs_completed"]) == 4)
        #expect(int(j["bytes_verified"]) == 4 * 2 * (4 << 20))
        #expect((double(j["throughput_bytes_per_s"]) ?? 0) > 0)
        #expect(int((j["pairing_latency"] as? [String: Any])?["count"]) == 4)
        let usage = j["server_usage"] as? [String: Any] ?? [:]
        #expect(double(usage["cpu_seconds"]) != nil)
        #expect(double(usage["cpu_seconds_per_gb"]) != nil)
        #expect((int(usage["peak_rss_kib"]) ?? 0) > 0)
        print("rdbench relay: \(run.stdout)")

        // A wrong licence key: hbbr closes both halves; rdbench reports failure (exit 1), not a hang.
        let bad = try rdbench(["relay", "--server", "127.0.0.1:\(server.port)", "--pairs", "1", "--bytes", "64K",
                               "--key", "wrong", "--timeout", "10", "--json"], within: 30)
        #expect(bad.status == 1)
        #expect(bad.json["ok"] as? Bool == false)

        let direct = try rdbench(["relay", "--direct", "--pairs", "4", "--bytes", "4M", "--json"])
        #expect(direct.status == 0, "\(direct.stderr)")
        #expect(direct.json["mode"] as? String == "relay-direct")
        #expect(int(direct.json["bytes_verified"]) == 4 * 2 * (4 << 20))
    }

    @Test func relayPacedReachesItsRate() throws {
        let server = try startHbbr(key: "rdbench-key")
        defer { server.stop() }
        // 8 pairs paced at 256 KiB/s per direction for 3 s: every byte verified, and the achieved
        // rate per direction (while sending) within 10 % of the target.
        let rate = 256 * 1024
        for direction in ["both", "a-to-b"] {
            let run = try rdbench(["relay", "--server", "127.0.0.1:\(server.port)", "--pairs", "8", "--duration", "3", "--rate", "256K",
                                   "--direction", direction, "--key", "rdbench-key", "--json", "--server-pid", String(server.pid)])
            #expect(run.status == 0, "\(run.stderr) \(run.stdout)")
            let j = run.json
            #expect(j["ok"] as? Bool == true, "\(run.stdout)")
            #expect(int(j["pairs_completed"]) == 8)
            let sent = int(j["bytes_sent"]) ?? 0
            #expect(sent > 0 && int(j["bytes_verified"]) == sent, "every byte sent is verified")
            let achieved = double(j["achieved_rate_per_direction"]) ?? 0
            #expect(abs(achieved - Double(rate)) / Double(rate) < 0.10, "achieved \(achieved) B/s per direction, target \(rate)")
            // 3 s at the rate per sending half: 2 halves per pair both ways, 1 A to B.
            let halves = direction == "both" ? 16 : 8
            let expected = Double(halves * rate) * 3
            #expect(Double(sent) > expected * 0.85 && Double(sent) < expected * 1.1, "\(sent) B sent, about \(expected) expected")
            #expect((double((j["server_usage"] as? [String: Any])?["cpu_seconds_per_pair"]) ?? -1) >= 0)
            let samples = ((j["timeline"] as? [String: Any])?["samples"] as? [Any]) ?? []
            #expect(samples.count >= 2, "a sample per second")
        }
    }

    @Test func relayWithoutServerFailsClearly() throws {
        let port = ServerProcess.freePortBase()
        let run = try rdbench(["relay", "--server", "127.0.0.1:\(port)", "--pairs", "1", "--bytes", "1K"], within: 20)
        #expect(run.status == 2)
        #expect(run.stderr.contains("cannot connect to 127.0.0.1:\(port)"), "\(run.stderr)")
    }

    /// hbbs's public key (its licence key for PunchHoleRequest, §4.3), from its working directory.
    func hbbsKey(_ server: ServerProcess) throws -> String {
        let deadline = now() + 5
        while now() < deadline {
            if let k = try? String(contentsOfFile: server.directory + "/id_ed25519.pub", encoding: .utf8), !k.isEmpty {
                return k.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            usleep(20_000)
        }
        throw TestError.failed("no id_ed25519.pub in \(server.directory)")
    }

    @Test func punchFlowsAgainstHbbs() throws {
        let server = try startHbbs()
        defer { server.stop() }
        let key = try hbbsKey(server)
        let report = makeTempDirectory() + "/punch.html"
        // PunchHole path (A and B on different loopback addresses), then the same-intranet path.
        for lan in [false, true] {
            let run = try rdbench(["punch", "--server", "127.0.0.1:\(server.port)", "--peers", "20", "--rate", "50", "--duration", "2",
                                   "--key", key, "--json", "--server-pid", String(server.pid)] + (lan ? ["--lan"] : ["--report", report]))
            #expect(run.status == 0, "\(run.stderr) \(run.stdout)")
            let j = run.json
            #expect(j["mode"] as? String == "punch", "not JSON: \(run.stdout)")
            #expect(int(j["peers_registered"]) == 20)
            let started = int(j["flows_started"]) ?? 0
            #expect(started >= 95 && started <= 101, "50/s for 2 s: \(started)")
            #expect(int(j["flows_ok"]) == started, "\(j["failure_examples"] ?? "")")
            #expect(int(j["flows_failed"]) == 0)
            #expect(int(j[lan ? "via_local_addr" : "via_punch_hole"]) == started)
            let latency = j["latency"] as? [String: Any] ?? [:]
            #expect(int(latency["count"]) == started)
            #expect((int(latency["p99_us"]) ?? 0) > 0)
            #expect(double((j["server_usage"] as? [String: Any])?["cpu_seconds_per_million_flows"]) != nil)
            print("rdbench punch lan=\(lan): \(run.stdout.prefix(600))")
        }
        // The HTML page: self-contained, with its charts as inline SVG.
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<polyline class=\"series\""), "throughput over time")
        #expect(html.contains("<rect class=\"bar\""), "latency histogram")
        #expect(html.contains("CPU-s per million flows"))
        #expect(!html.contains("<script src") && !html.contains("href=\"http"), "no external resources")

        // An unknown target ID is a failure by reason, not a success.
        let wrongKey = try rdbench(["punch", "--server", "127.0.0.1:\(server.port)", "--peers", "2", "--rate", "20", "--duration", "1",
                                    "--key", "not-the-key", "--json"])
        #expect(wrongKey.status == 1)
        #expect(int((wrongKey.json["failures"] as? [String: Any])?["licence_mismatch"]) == int(wrongKey.json["flows_started"]))
    }

    /// A socket bound to 127.0.0.1 on a free port, with a 50 ms receive timeout (so a server
    /// thread notices its stop flag).
    func loopbackSocket(type: __socket_type) -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        var addr = sockaddrIn("127.0.0.1", 0)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var tv = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in(); var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: a.sin_port))
    }

    /// A UDP server that answers every datagram with `reply`; stops when the returned closure runs.
    func fakeUDPServer(reply: [UInt8]) throws -> (port: UInt16, stop: () -> Void) {
        let (fd, port) = loopbackSocket(type: SOCK_DGRAM)
        let stop = Flag()
        let thread = Thread {
            var buf = [UInt8](repeating: 0, count: 2048)
            var from = sockaddr_in(); var fromLen = socklen_t(MemoryLayout<sockaddr_in>.size)
            while !stop.isSet {
                let n = withUnsafeMutablePointer(to: &from) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, 0, $0, &fromLen) }
                }
                guard n > 0 else { continue }
                _ = reply.withUnsafeBytes { r in
                    withUnsafePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, r.baseAddress, r.count, 0, $0, fromLen) } }
                }
            }
            close(fd)
        }
        thread.start()
        return (port, { stop.set() })
    }

    /// A TCP server that sends `bytes` to every connection and keeps it open.
    func fakeTCPServer(sending bytes: [UInt8]) throws -> (port: UInt16, stop: () -> Void) {
        let (fd, port) = loopbackSocket(type: SOCK_STREAM)
        listen(fd, 16)
        let stop = Flag()
        let thread = Thread {
            var clients: [Int32] = []
            while !stop.isSet {
                let c = accept(fd, nil, nil)
                guard c >= 0 else { continue }
                clients.append(c)
                _ = bytes.withUnsafeBytes { Glibc.send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            clients.forEach { close($0) }
            close(fd)
        }
        thread.start()
        return (port, { stop.set() })
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
        func set() { lock.lock(); value = true; lock.unlock() }
    }

    @Test func wrongAnswersAreErrors() throws {
        // register: a "server" answering RegisterPeer with a TestNatResponse.
        let udp = try fakeUDPServer(reply: RendezvousMessage.testNatResponse(.init(port: 1)).serializedBytes())
        defer { udp.stop() }
        let register = try rdbench(["register", "--server", "127.0.0.1:\(udp.port)", "--peers", "5", "--duration", "1", "--json"], within: 20)
        #expect(register.status == 1)
        #expect(register.stderr.contains("answered RegisterPeer with testNatResponse"), "\(register.stderr)")

        // punch: RegisterPk answered with a RegisterPeerResponse.
        let udp2 = try fakeUDPServer(reply: RendezvousMessage.registerPeerResponse(.init(requestPk: true)).serializedBytes())
        defer { udp2.stop() }
        let punch = try rdbench(["punch", "--server", "127.0.0.1:\(udp2.port)", "--peers", "2", "--rate", "5", "--duration", "1"], within: 20)
        #expect(punch.status == 1)
        #expect(punch.stderr.contains("instead of RegisterPkResponse"), "\(punch.stderr)")

        // relay: a "relay" that sends bytes of its own instead of the other half's stream.
        let tcp = try fakeTCPServer(sending: Array(repeating: 0x55, count: 256))
        defer { tcp.stop() }
        let relay = try rdbench(["relay", "--server", "127.0.0.1:\(tcp.port)", "--pairs", "1", "--bytes", "64K", "--timeout", "5", "--json"], within: 20)
        #expect(relay.status == 1)
        #expect(relay.json["ok"] as? Bool == false)
        #expect((relay.json["failures"] as? [String])?.first?.contains("but the other half sent") == true
                || (relay.json["failures"] as? [String])?.first?.contains("do not match") == true, "\(relay.stdout)")
    }

    /// Starts `engine-bench serve-udp` (the bare recvmmsg baseline) on a free port; waits until it answers.
    func startBareLoop() throws -> (pid: pid_t, port: UInt16) {
        let port = ServerProcess.freePortBase()
        let arguments: [String] = [productsDirectory + "/engine-bench", "serve-udp", "--port", String(port)]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        guard posix_spawn(&pid, productsDirectory + "/engine-bench", &actions, nil, argv, environ) == 0 else { throw TestError.failed("spawn engine-bench") }
        let probe = try UDPClient()
        let deadline = now() + 10
        while now() < deadline {
            if case .registerPeerResponse? = probe.request(.registerPeer(.init(id: "probe")), to: port, attempts: 1) { return (pid, port) }
        }
        kill(pid, SIGKILL); waitpid(pid, nil, 0)
        throw TestError.failed("engine-bench serve-udp did not answer")
    }

    @Test func compareHbbsWithTheBareLoop() throws {
        let server = try startHbbs()
        defer { server.stop() }
        let bare = try startBareLoop()
        defer { kill(bare.pid, SIGTERM); waitpid(bare.pid, nil, 0) }
        let report = makeTempDirectory() + "/compare.html"
        let run = try rdbench(["compare", "register", "--server", "127.0.0.1:\(server.port)", "--server-pid", String(server.pid),
                               "--vs", "127.0.0.1:\(bare.port)", "--vs-pid", String(bare.pid), "--peers", "100", "--rate", "2000",
                               "--duration", "1", "--rounds", "2", "--json", "--report", report])
        #expect(run.status == 0, "\(run.stderr) \(run.stdout.prefix(2000))")
        let j = run.json
        #expect(j["mode"] as? String == "compare", "not JSON: \(run.stdout.prefix(500))")
        let rounds = j["rounds"] as? [[String: Any]] ?? []
        #expect(rounds.count == 2)
        for r in rounds {
            let a = r["a"] as? [String: Any] ?? [:], b = r["b"] as? [String: Any] ?? [:]
            #expect(double(a["RegisterPeer/s"]) == 2000 && double(b["RegisterPeer/s"]) == 2000)
            #expect(double(a["server CPU-s per M RegisterPeer"]) != nil && double(b["server CPU-s per M RegisterPeer"]) != nil)
            #expect(double((r["ratio_b_over_a"] as? [String: Any])?["replies/s"]) == 1)
        }
        #expect(double((j["median_ratio_b_over_a"] as? [String: Any])?["replies/s"]) == 1)
        #expect((j["runs"] as? [Any])?.count == 4, "A, B, A, B")
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.contains("Median ratio B/A") && html.contains("<rect class=\"bar\""))
        print("rdbench compare: \(run.stdout.prefix(1200))")
    }

    @Test func mixedPopulationFromAConfigFile() throws {
        let hbbs = try startHbbs()
        defer { hbbs.stop() }
        let hbbr = try startHbbr(key: "rdbench-key")
        defer { hbbr.stop() }
        let config = makeTempDirectory() + "/mixed.conf"
        try """
        # a small population for the test
        duration = 2s
        hbbs = 127.0.0.1:\(hbbs.port)
        hbbr = 127.0.0.1:\(hbbr.port)
        register.peers = 100
        register.interval = 1s     # 100 RegisterPeer/s
        punch.peers = 10
        punch.rate = 20
        punch.key = \(try hbbsKey(hbbs))
        relay.pairs = 4
        relay.rate = 64K
        relay.key = rdbench-key
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let run = try rdbench(["mixed", config, "--hbbs-pid", String(hbbs.pid), "--hbbr-pid", String(hbbr.pid), "--json"])
        #expect(run.status == 0, "\(run.stderr) \(run.stdout.prefix(2000))")
        let j = run.json
        #expect(j["mode"] as? String == "mixed", "not JSON: \(run.stdout.prefix(500))")
        let register = j["register"] as? [String: Any] ?? [:], punch = j["punch"] as? [String: Any] ?? [:], relay = j["relay"] as? [String: Any] ?? [:]
        #expect(int((register["register_peer"] as? [String: Any])?["replies"]) == 200)
        #expect(int(punch["flows_ok"]) == 40 && int(punch["flows_failed"]) == 0)
        #expect(relay["ok"] as? Bool == true && int(relay["pairs_completed"]) == 4)
        #expect(double((j["hbbs_usage"] as? [String: Any])?["cpu_seconds"]) != nil)
        #expect(double((j["hbbr_usage"] as? [String: Any])?["cpu_seconds"]) != nil)

        // A mistake in the file is a usage error naming the line.
        try "duration = 1s\nregister.peer = 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try rdbench(["mixed", config])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("mixed.conf:2: unknown key register.peer"), "\(bad.stderr)")
    }

    @Test func registerAndPunchFromANetworkNamespace() throws {
        guard getuid() == 0, access("/usr/sbin/ip", X_OK) == 0 || access("/sbin/ip", X_OK) == 0 || access("/usr/bin/ip", X_OK) == 0 else {
            print("skipped: --netns needs root and iproute2")
            return
        }
        // hbbs on every address, so that the veth's host end reaches it.
        let server = try ServerProcess("hbbs", arguments: ["--admin-console", "off"], bind: "0.0.0.0")
        defer { server.stop() }
        let probe = try UDPClient()
        let deadline = now() + 10
        while now() < deadline, probe.request(.registerPeer(.init(id: "probe")), to: server.port, attempts: 1) == nil {}
        let register = try rdbench(["register", "--netns", "--netns-sources", "20", "--server", "127.0.0.1:\(server.port)",
                                    "--peers", "100", "--rate", "500", "--duration", "1", "--json"])
        #expect(register.status == 0, "\(register.stderr)")
        #expect((register.json["server"] as? String)?.hasPrefix("10.213.") == true, "a loopback --server means the veth's host end")
        #expect(int(register.json["source_addresses"]) == 20)
        #expect(int((register.json["register_pk"] as? [String: Any])?["ok"]) == 100)
        let punch = try rdbench(["punch", "--netns", "--netns-sources", "40", "--server", "127.0.0.1:\(server.port)", "--peers", "10",
                                 "--rate", "20", "--duration", "1", "--key", try hbbsKey(server), "--json"])
        #expect(punch.status == 0, "\(punch.stderr)")
        #expect(int(punch.json["via_punch_hole"]) == 20, "\(punch.stdout.prefix(800))")
        // The namespace is gone afterwards.
        let list = try rdbench(["register", "--netns", "--server", "127.0.0.1:1", "--peers", "1", "--duration", "1"], within: 20)
        #expect(list.status == 2)
        #expect(list.stderr.contains("with --netns the server must listen on"), "\(list.stderr)")
    }
}
