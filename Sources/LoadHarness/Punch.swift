import Glibc
import CLoadHarness
import RustDeskProtocol

/// `rdbench punch`: the whole punch-hole flow (§5.3.1, §5.3.4, §5.3.5, §6) between simulated peers.
///
/// B peers register over UDP (RegisterPk, then RegisterPeer, expecting OK and `request_pk` false)
/// and keep their UDP socket, sending RegisterPeer every 10 s so they stay online (§5.2.1, 30 s
/// window). Flows start on an open-loop schedule (flow k due at `start + k / rate`, target B =
/// k mod peers); latency is measured from the due time, so a generator that falls behind shows in
/// the latency rather than hiding it. One flow:
///
/// 1. A connects over TCP to hbbs port P and sends `PunchHoleRequest{id: B, nat_type: ASYMMETRIC}`.
/// 2. hbbs sends B, on B's UDP socket, `PunchHole{socket_addr: A}` — or `FetchLocalAddr` when A
///    and B share an IP (§5.3.1 step 7; `--lan`). B checks the address is A's.
/// 3. B opens a TCP connection to P from its own IP and sends `PunchHoleSent{socket_addr as
///    received, id, relay_server, nat_type: ASYMMETRIC}` (or `LocalAddr{socket_addr, local_addr}`).
/// 4. A receives `PunchHoleResponse` on its connection (after skipping one greeting `KeyExchange`,
///    §4.5, as clients do): it must carry B's TCP source address (the
///    address of B's PunchHoleSent connection, §5.3.4) with `nat_type` ASYMMETRIC and B's relay, or
///    after LocalAddr the `local_addr` bytes B sent with `is_local`. Anything else is a wrong answer.
///
/// Source addresses: against a loopback server every B has its own address 127.R.x.y (R drawn per
/// run, so the RegisterPk blocker of §5.2.5 never sees two keys from one IP) and A connects from
/// 127.(R+1).x.y, so A and B differ and hbbs takes the PunchHole path; `--lan` makes A connect from
/// its B's address (the FetchLocalAddr path). Against another host everything leaves from one
/// address, which is the same-intranet case by §5.3.1 step 7.
public struct PunchOptions: Sendable {
    public var server: Endpoint
    public var peers: Int
    public var rate: Double
    public var duration: Double
    public var licenceKey = ""
    public var sameIntranet = false
    public var flowTimeout: Double = 5
    public var serverPID: Int32?
    public var threads = 1
    public var keepAliveInterval: Double = 10
    /// Source addresses; nil: SourcePool.defaultFor(server).
    public var sources: SourcePool?

    public init(server: Endpoint, peers: Int, rate: Double, duration: Double) {
        self.server = server; self.peers = peers; self.rate = rate; self.duration = duration
    }
}

/// Why a flow failed; raw values are the JSON keys.
public enum PunchFailure: String, CaseIterable, Sendable {
    case timeoutNoPunchHole = "timeout_no_punch_hole"
    case timeoutNoResponse = "timeout_no_response"
    case offline
    case idNotExist = "id_not_exist"
    case licenceMismatch = "licence_mismatch"
    case otherFailure = "other_failure"
    case wrongAnswer = "wrong_answer"
    case connectError = "connect_error"
    case closedByServer = "closed_by_server"
}

public struct PunchReport: Sendable {
    public var options: PunchOptions
    public var peersRegistered = 0
    public var flowsStarted = 0
    public var flowsOK = 0
    public var failures: [PunchFailure: Int] = [:]
    public var examples: [String] = []
    public var viaPunchHole = 0
    public var viaLocalAddr = 0
    public var keepAlivesSent = 0
    public var keepAliveReplies = 0
    public var keepAliveRequestPk = 0
    public var unexpectedDatagrams = 0
    public var measuredSeconds = 0.0
    public var maxSendLagMicros: UInt64 = 0
    public var latency = LatencyRecorder()
    /// From the due time to B receiving PunchHole/FetchLocalAddr.
    public var punchLatency = LatencyRecorder()
    public var server: ServerUsage?
    public var timeline: Timeline?

    public var failed: Int { failures.values.reduce(0, +) }
    public var flowsPerSecond: Double { measuredSeconds > 0 ? Double(flowsOK) / measuredSeconds : 0 }
    /// A wrong answer is an error of the server (or of the target); so is a run with no flow done.
    public var ok: Bool { (failures[.wrongAnswer] ?? 0) == 0 && (failures[.closedByServer] ?? 0) == 0 && flowsOK > 0 }

    mutating func merge(_ o: PunchReport) {
        peersRegistered += o.peersRegistered; flowsStarted += o.flowsStarted; flowsOK += o.flowsOK
        for (k, v) in o.failures { failures[k, default: 0] += v }
        examples += o.examples.prefix(max(0, 10 - examples.count))
        viaPunchHole += o.viaPunchHole; viaLocalAddr += o.viaLocalAddr
        keepAlivesSent += o.keepAlivesSent; keepAliveReplies += o.keepAliveReplies; keepAliveRequestPk += o.keepAliveRequestPk
        unexpectedDatagrams += o.unexpectedDatagrams
        measuredSeconds = max(measuredSeconds, o.measuredSeconds); maxSendLagMicros = max(maxSendLagMicros, o.maxSendLagMicros)
        latency.add(o.latency); punchLatency.add(o.punchLatency)
    }

    public var json: JSON {
        var o: [(String, JSON)] = [
            ("mode", .string("punch")),
            ("server", .string(options.server.description)),
            ("peers", .int(options.peers)),
            ("peers_registered", .int(peersRegistered)),
            ("target_rate", .double(options.rate)),
            ("duration_s", .double(options.duration)),
            ("same_intranet", .bool(options.sameIntranet)),
            ("threads", .int(options.threads)),
            ("flows_started", .int(flowsStarted)),
            ("flows_ok", .int(flowsOK)),
            ("flows_failed", .int(failed)),
            ("errors", .int(failed)),
            ("ok", .bool(ok)),
            ("failures", .object(PunchFailure.allCases.map { ($0.rawValue, .int(failures[$0] ?? 0)) })),
            ("failure_examples", .array(examples.map { .string($0) })),
            ("via_punch_hole", .int(viaPunchHole)),
            ("via_local_addr", .int(viaLocalAddr)),
            ("keep_alive", .object([("sent", .int(keepAlivesSent)), ("replies", .int(keepAliveReplies)), ("request_pk", .int(keepAliveRequestPk))])),
            ("unexpected_datagrams", .int(unexpectedDatagrams)),
            ("measured_s", .double(measuredSeconds)),
            ("flows_per_s", .double(flowsPerSecond)),
            ("max_send_lag_us", .int(Int(maxSendLagMicros))),
            ("latency", latency.json),
            ("punch_hole_latency", punchLatency.json),
            ("server_usage", server.map { $0.json(per: [("cpu_seconds_per_million_flows", Double(flowsStarted) / 1e6)]) } ?? .null),
        ]
        if let t = timeline { o.append(("timeline", t.json)) }
        return .object(o)
    }

    public var table: String {
        var lines = [
            "rdbench punch → \(options.server)  B peers \(options.peers) (registered \(peersRegistered))  target \(fmt(options.rate, 1)) flows/s for \(fmt(options.duration, 1)) s\(options.sameIntranet ? "  (same intranet: FetchLocalAddr/LocalAddr)" : "")",
            "  flows     started \(flowsStarted)  ok \(flowsOK) = \(fmt(flowsPerSecond, 1))/s  failed \(failed)  (via PunchHole \(viaPunchHole), via LocalAddr \(viaLocalAddr))",
            "  latency   \(latency.summary)   (due time → PunchHoleResponse at A; worst send lag \(fmtMicros(maxSendLagMicros)))",
            "  to B      \(punchLatency.summary)   (due time → PunchHole at B)",
            "  keep-alive RegisterPeer sent \(keepAlivesSent)  replies \(keepAliveReplies)  request_pk \(keepAliveRequestPk)",
        ]
        let f = PunchFailure.allCases.filter { (failures[$0] ?? 0) > 0 }.map { "\($0.rawValue) \(failures[$0]!)" }
        if !f.isEmpty { lines.append("  failures  " + f.joined(separator: "  ")) }
        for e in examples.prefix(5) { lines.append("  FAILED: \(e)") }
        if let s = server { lines.append(s.line("", per: [("million flows", Double(flowsStarted) / 1e6)])) }
        return lines.joined(separator: "\n")
    }
}

public enum PunchLoad {
    public static func run(_ o: PunchOptions, live: Bool = true) throws(HarnessError) -> PunchReport {
        guard o.peers > 0, o.rate > 0, o.duration > 0, o.threads > 0 else { throw HarnessError("--peers, --rate, --duration and --threads must be positive", exitCode: 64) }
        guard o.peers >= o.threads else { throw HarnessError("--peers must be at least --threads", exitCode: 64) }
        // Per flow: A's connection and B's. A healthy flow lives milliseconds; a second's worth of
        // flows in flight is the budget (past it, flows fail as connect_error naming EMFILE).
        let inFlight = Int(o.rate)
        try requireDescriptors(o.peers + 2 * inFlight + 64 * o.threads, for: "\(o.peers) peers at \(fmt(o.rate, 0)) flows/s")
        let sources = o.sources ?? SourcePool.defaultFor(o.server)
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        let shards = (0..<o.threads).map { t in (o.peers * t / o.threads)..<(o.peers * (t + 1) / o.threads) }
        // Setup (registration) happens before the measured part, on each shard's thread; the
        // monitor and the server's CPU cover the whole run, so setup is done first, synchronously.
        var peers: [PeerSet] = []
        for range in shards { peers.append(try PeerSet.register(o, range: range, sources: sources, tag: tag)) }
        let counters = shards.map { _ in LiveCounters() }
        var monitor = Monitor(label: "punch", unit: "flows", expectedSeconds: o.duration)
        monitor.live = live && monitor.live
        let boxes = peers.map { UncheckedBox($0) }
        let ((results, timeline), usage) = try ServerUsage.measure(o.serverPID) { () throws(HarnessError) in
            monitor.run(counters, shards.indices.map { i in
                { @Sendable () -> Result<PunchReport, HarnessError> in
                    Result { () throws(HarnessError) in try runShard(o, peers: boxes[i].value, shard: i, sources: sources, counters: counters[i]) }
                }
            })
        }
        for p in peers { p.close() }
        var report = try merge(results, into: PunchReport(options: o)) { $0.merge($1) }
        report.server = usage
        report.timeline = timeline
        return report
    }

    private struct Flow {
        var due: UInt64
        var b: Int
        var aFD: Int32
        var aAddress: SocketAddress
        var aConnected = false
        var aDecoder = FrameDecoder()
        var greeted = false
        var bFD: Int32 = -1
        var bConnected = false
        var punched: UInt64 = 0
        /// B's answer, sent once its TCP connection is up.
        var bAnswer: [UInt8] = []
        /// What A's PunchHoleResponse must say.
        var expectAddress: SocketAddress?
        var expectLocal: [UInt8] = []
        var relay = ""
    }

    enum Kind: UInt64 { case bUDP = 1, aTCP = 2, bTCP = 3, timer = 0xFF }

    @inline(__always) static func token(_ kind: Kind, _ index: Int) -> UInt64 { kind.rawValue << 56 | UInt64(index) }

    private static func runShard(_ o: PunchOptions, peers: PeerSet, shard: Int, sources: SourcePool,
                                 counters: LiveCounters) throws(HarnessError) -> PunchReport {
        var report = PunchReport(options: o)
        report.peersRegistered = peers.count
        let epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        let tfd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC))
        guard epfd >= 0, tfd >= 0 else { throw HarnessError("epoll/timerfd: \(errnoText())") }
        defer { close(epfd); close(tfd) }
        for (b, fd) in peers.fds.enumerated() {
            var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: token(.bUDP, b)))
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
        }
        var tev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: token(.timer, 0)))
        epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev)

        var flows: [Int: Flow] = [:]
        var byAddress: [SocketAddress: Int] = [:]
        var order = FIFO<Int>()
        defer { for f in flows.values { close(f.aFD); if f.bFD >= 0 { close(f.bFD) } } }
        let rate = o.rate / Double(o.threads)
        let step = 1e9 / rate
        // Shards start a fraction of a step apart so that together they are evenly spread.
        let start = monotonicNanos() + 2_000_000 + UInt64(step * Double(shard) / Double(o.threads))
        let end = start + UInt64(o.duration * 1e9)
        let keepAliveStep = o.keepAliveInterval * 1e9 / Double(peers.count)
        let timeoutNanos = UInt64(o.flowTimeout * 1e9)
        var k = 0, keepAlives = 0
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let keepAliveMessages = peers.ids.map { RendezvousMessage.registerPeer(.init(id: $0, serial: 3)).serializedBytes() }

        func finish(_ id: Int, _ failure: PunchFailure?, _ detail: @autoclosure () -> String = "") {
            guard let f = flows.removeValue(forKey: id) else { return }
            byAddress.removeValue(forKey: f.aAddress)
            close(f.aFD)
            if f.bFD >= 0 { close(f.bFD) }
            if let failure {
                report.failures[failure, default: 0] += 1
                counters.add(errors: 1)
                if report.examples.count < 10 { report.examples.append("flow \(id) to \(peers.ids[f.b]): \(failure.rawValue)\(detail().isEmpty ? "" : ": " + detail())") }
            } else {
                let now = monotonicNanos()
                report.flowsOK += 1
                counters.add(done: 1)
                report.latency.record(nanos: now > f.due ? now - f.due : 0)
            }
        }

        func startFlow(_ due: UInt64, _ now: UInt64) {
            let id = k
            k += 1
            let b = id % peers.count
            report.flowsStarted += 1
            if now > due { report.maxSendLagMicros = max(report.maxSendLagMicros, (now - due) / 1000) }
            // A's source: its B's address (same intranet) or one of the addresses no B uses.
            let source: in_addr_t? = !peers.distinctSources ? nil
                : o.sameIntranet ? peers.addresses[b]
                : sources.otherAddress(peers.globalIndex(b) + id, firstGroupUses: o.peers)
            let fd = tcpSocket(bindTo: source)
            guard fd >= 0 else {
                report.failures[.connectError, default: 0] += 1
                counters.add(errors: 1)
                if report.examples.count < 10 { report.examples.append("flow \(id): socket/bind: \(errnoText())") }
                return
            }
            let r = withSockaddr(o.server.sockaddr) { connect(fd, $0, $1) }
            if r != 0 && errno != EINPROGRESS {
                let e = errno
                close(fd)
                report.failures[.connectError, default: 0] += 1
                counters.add(errors: 1)
                if report.examples.count < 10 { report.examples.append("flow \(id): connect: \(errnoText(e))") }
                return
            }
            let address = localAddress(fd)
            flows[id] = Flow(due: due, b: b, aFD: fd, aAddress: address)
            byAddress[address] = id
            order.push(id)
            var ev = epoll_event(events: EPOLLOUT.rawValue, data: epoll_data_t(u64: token(.aTCP, id)))
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
        }

        /// A's connection is up: send the PunchHoleRequest and wait for the answer.
        func aConnected(_ id: Int) {
            guard let f = flows[id] else { return }
            var soError: Int32 = 0
            var len = socklen_t(4)
            getsockopt(f.aFD, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError != 0 { return finish(id, .connectError, "A: \(errnoText(soError))") }
            let request = try! FrameCodec.frame(RendezvousMessage.punchHoleRequest(
                .init(id: peers.ids[f.b], natType: .asymmetric, licenceKey: o.licenceKey, version: "1.4.2")).serializedBytes())
            let r = request.withUnsafeBytes { Glibc.send(f.aFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if r != request.count { return finish(id, .connectError, "A: PunchHoleRequest not sent whole") }
            flows[id]!.aConnected = true
            var ev = epoll_event(events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, data: epoll_data_t(u64: token(.aTCP, id)))
            epoll_ctl(epfd, EPOLL_CTL_MOD, f.aFD, &ev)
        }

        /// B got PunchHole/FetchLocalAddr for the flow whose A is `a`: open B's answer connection.
        func punched(b: Int, a: SocketAddress, relay: String, local: Bool, _ now: UInt64) {
            guard let id = byAddress[a], var f = flows[id] else { report.unexpectedDatagrams += 1; return }
            if f.b != b { return finish(id, .wrongAnswer, "\(local ? "FetchLocalAddr" : "PunchHole") for A \(a) reached \(peers.ids[b]), not \(peers.ids[f.b])") }
            if f.punched != 0 { return finish(id, .wrongAnswer, "B was sent two PunchHoles") }
            let expectLocal = o.sameIntranet || !peers.distinctSources
            if local != expectLocal { return finish(id, .wrongAnswer, "B got \(local ? "FetchLocalAddr" : "PunchHole"), expected \(expectLocal ? "FetchLocalAddr" : "PunchHole") (§5.3.1 step 7)") }
            f.punched = now
            f.relay = relay
            report.punchLatency.record(nanos: now > f.due ? now - f.due : 0)
            let fd = tcpSocket(bindTo: peers.distinctSources ? peers.addresses[b] : nil)
            guard fd >= 0 else { return finish(id, .connectError, "B: socket/bind: \(errnoText())") }
            let r = withSockaddr(o.server.sockaddr) { connect(fd, $0, $1) }
            if r != 0 && errno != EINPROGRESS { let e = errno; close(fd); return finish(id, .connectError, "B: connect: \(errnoText(e))") }
            f.bFD = fd
            let mangledA = AddrMangle.encode(a)
            if local {
                // B's LAN address: any private address B would listen on; A must get it back verbatim.
                let lan = SocketAddress(IPv4Address(192, 168, UInt8(b / 250 % 256), UInt8(b % 250 + 1)), port: 21118)
                f.expectLocal = AddrMangle.encode(lan)
                f.bAnswer = try! FrameCodec.frame(RendezvousMessage.localAddr(
                    .init(socketAddr: mangledA, localAddr: f.expectLocal, relayServer: relay, id: peers.ids[b], version: "1.4.2")).serializedBytes())
            } else {
                f.expectAddress = localAddress(fd)
                f.bAnswer = try! FrameCodec.frame(RendezvousMessage.punchHoleSent(
                    .init(socketAddr: mangledA, id: peers.ids[b], relayServer: relay, natType: .asymmetric, version: "1.4.2")).serializedBytes())
            }
            flows[id] = f
            var ev = epoll_event(events: EPOLLOUT.rawValue, data: epoll_data_t(u64: token(.bTCP, id)))
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
        }

        func bConnected(_ id: Int) {
            guard let f = flows[id], f.bFD >= 0 else { return }
            if f.bConnected {
                // hbbs ends B's connection after the answer (§5.3.4 step 3). B never reads on it (a
                // greeting KeyExchange, §4.5, is ignored as clients ignore it): drain until EOF.
                let n = buffer.withUnsafeMutableBytes { recv(f.bFD, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { close(f.bFD); flows[id]!.bFD = -1 }
                return
            }
            var soError: Int32 = 0
            var len = socklen_t(4)
            getsockopt(f.bFD, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError != 0 { return finish(id, .connectError, "B: \(errnoText(soError))") }
            let r = f.bAnswer.withUnsafeBytes { Glibc.send(f.bFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if r != f.bAnswer.count { return finish(id, .connectError, "B: answer not sent whole") }
            flows[id]!.bConnected = true
            var ev = epoll_event(events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, data: epoll_data_t(u64: token(.bTCP, id)))
            epoll_ctl(epfd, EPOLL_CTL_MOD, f.bFD, &ev)
        }

        /// A's connection is readable: the PunchHoleResponse, or EOF.
        func aReadable(_ id: Int) {
            guard var f = flows[id] else { return }
            let n = buffer.withUnsafeMutableBytes { recv(f.aFD, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 { if errno == EAGAIN || errno == EINTR { return }; return finish(id, .closedByServer, "A: \(errnoText())") }
            if n == 0 { return finish(id, .closedByServer, "hbbs closed A's connection before answering") }
            var answer: Result<RendezvousMessage, ProtocolError>?
            let fed = buffer.withUnsafeBytes { p in
                Result { () throws(ProtocolError) in
                    try f.aDecoder.feed(UnsafeRawBufferPointer(rebasing: p[..<n])) { frame throws(ProtocolError) in
                        let m = Result { () throws(ProtocolError) in try RendezvousMessage(serializedBytes: frame) }
                        // A greeting KeyExchange (§4.5, hbbs with a key) is skipped, as clients do: one, first.
                        if !f.greeted, case .success(.keyExchange) = m { f.greeted = true; return .continue }
                        f.greeted = true
                        answer = m
                        return .stop
                    }
                }
            }
            if case .failure(let error) = fed { return finish(id, .wrongAnswer, "A: bad frame (\(error))") }
            flows[id]!.aDecoder = f.aDecoder
            flows[id]!.greeted = f.greeted
            guard let answer else { return }
            guard case .success(let message) = answer else { return finish(id, .wrongAnswer, "A: undecodable message") }
            guard case .punchHoleResponse(let r) = message else { return finish(id, .wrongAnswer, "A got \(message.name), not PunchHoleResponse") }
            if r.socketAddr.isEmpty {
                if !r.otherFailure.isEmpty { return finish(id, .otherFailure, r.otherFailure) }
                switch r.failure.rawValue {
                case PunchHoleResponse.Failure.offline.rawValue: return finish(id, .offline)
                case PunchHoleResponse.Failure.idNotExist.rawValue: return finish(id, .idNotExist)
                case PunchHoleResponse.Failure.licenseMismatch.rawValue: return finish(id, .licenceMismatch)
                default: return finish(id, .otherFailure, "failure \(r.failure.rawValue)")
                }
            }
            if f.punched == 0 { return finish(id, .wrongAnswer, "PunchHoleResponse with an address before B was punched") }
            if r.relayServer != f.relay { return finish(id, .wrongAnswer, "relay_server \"\(r.relayServer)\", B said \"\(f.relay)\"") }
            if let expect = f.expectAddress {
                let got = AddrMangle.decode(r.socketAddr)
                if got != expect { return finish(id, .wrongAnswer, "socket_addr \(got), but B's PunchHoleSent came from \(expect)") }
                if r.union != .natType(.asymmetric) { return finish(id, .wrongAnswer, "nat_type \(String(describing: r.union)), B sent ASYMMETRIC") }
                report.viaPunchHole += 1
            } else {
                if r.socketAddr != f.expectLocal { return finish(id, .wrongAnswer, "socket_addr is not B's local_addr") }
                if r.union != .isLocal(true) { return finish(id, .wrongAnswer, "is_local not set after LocalAddr") }
                report.viaLocalAddr += 1
            }
            finish(id, nil)
        }

        func bDatagrams(_ b: Int) {
            let fd = peers.fds[b]
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n < 0 { return }
                let now = monotonicNanos()
                let message = buffer.withUnsafeBytes { p in try? RendezvousMessage(serializedBytes: UnsafeRawBufferPointer(rebasing: p[..<n])) }
                switch message {
                case .registerPeerResponse(let r)?:
                    report.keepAliveReplies += 1
                    if r.requestPk { report.keepAliveRequestPk += 1 }
                case .punchHole(let p)?:
                    punched(b: b, a: AddrMangle.decode(p.socketAddr).normalized, relay: p.relayServer, local: false, now)
                case .fetchLocalAddr(let p)?:
                    punched(b: b, a: AddrMangle.decode(p.socketAddr).normalized, relay: p.relayServer, local: true, now)
                default:
                    report.unexpectedDatagrams += 1
                }
            }
        }

        var events = [epoll_event](repeating: epoll_event(), count: 512)
        var armed: UInt64 = 0
        while true {
            var now = monotonicNanos()
            while true {
                let flowDue = start + UInt64(Double(k) * step)
                let keepAliveDue = start + UInt64(Double(keepAlives + 1) * keepAliveStep)
                if flowDue < end && flowDue <= now && flowDue <= keepAliveDue {
                    startFlow(flowDue, now)
                } else if keepAliveDue < end && keepAliveDue <= now {
                    let b = keepAlives % peers.count
                    keepAlives += 1
                    report.keepAlivesSent += 1
                    _ = keepAliveMessages[b].withUnsafeBytes { Glibc.send(peers.fds[b], $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                } else { break }
                now = monotonicNanos()
            }
            // Flows past their timeout, oldest first.
            while let id = order.first {
                guard let f = flows[id] else { _ = order.pop(); continue }
                guard now > f.due + timeoutNanos else { break }
                _ = order.pop()
                finish(id, f.punched == 0 ? .timeoutNoPunchHole : .timeoutNoResponse,
                       f.punched == 0 ? "B got nothing within \(fmt(o.flowTimeout, 1)) s" : "A got no PunchHoleResponse within \(fmt(o.flowTimeout, 1)) s")
            }
            let nextFlow = start + UInt64(Double(k) * step)
            if nextFlow >= end && flows.isEmpty { break }
            let nextKeepAlive = start + UInt64(Double(keepAlives + 1) * keepAliveStep)
            let wake = min(nextFlow < end ? nextFlow : UInt64.max, nextKeepAlive < end ? nextKeepAlive : UInt64.max, now + 20_000_000)
            if wake != armed {
                var spec = itimerspec()
                spec.it_value.tv_sec = Int(wake / 1_000_000_000)
                spec.it_value.tv_nsec = Int(wake % 1_000_000_000)
                timerfd_settime(tfd, Int32(TFD_TIMER_ABSTIME), &spec, nil)
                armed = wake
            }
            let count = epoll_wait(epfd, &events, Int32(events.count), 100)
            if count < 0 && errno != EINTR { throw HarnessError("epoll_wait: \(errnoText())") }
            for e in events.prefix(Int(max(0, count))) {
                let index = Int(e.data.u64 & ((1 << 56) - 1))
                switch Kind(rawValue: e.data.u64 >> 56) {
                case .timer?:
                    var v: UInt64 = 0
                    _ = read(tfd, &v, 8)
                    armed = 0
                case .bUDP?: bDatagrams(index)
                case .aTCP?:
                    if flows[index]?.aConnected == false { aConnected(index) } else { aReadable(index) }
                case .bTCP?: bConnected(index)
                case nil: break
                }
            }
        }
        report.measuredSeconds = Double(end - start) / 1e9
        return report
    }
}

/// A value moved to another thread once (the punch peers: created here, used only by one shard).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// 127.<octet>.(i / 250).(i % 250 + 1) in network byte order: up to 64,000 loopback sources.
func loopbackSource(octet: UInt8, index i: Int) -> in_addr_t {
    ((UInt32(127) << 24) | (UInt32(octet) << 16) | (UInt32(i / 250 % 256) << 8) | UInt32(i % 250 + 1)).bigEndian
}

/// A non-blocking TCP socket, bound to `address` (any port) when given. -1 with errno on failure.
func tcpSocket(bindTo address: in_addr_t?) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return -1 }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
    if let address {
        // The port is chosen at connect time, per destination: no ephemeral-port shortage at bind.
        setsockopt(fd, Int32(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, 4)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = address
        if withSockaddr(local, { bind(fd, $0, $1) }) != 0 { let e = errno; close(fd); errno = e; return -1 }
    }
    return fd
}

/// The local address of a socket (as hbbs sees it from the other end).
func localAddress(_ fd: Int32) -> SocketAddress {
    var a = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return SocketAddress(IPv4Address(UInt32(bigEndian: a.sin_addr.s_addr)), port: UInt16(bigEndian: a.sin_port))
}

/// Registered B peers of one shard: one connected UDP socket each.
final class PeerSet {
    var fds: [Int32] = []
    var ids: [String] = []
    var addresses: [in_addr_t] = []
    let first: Int
    let distinctSources: Bool
    var count: Int { fds.count }
    func globalIndex(_ b: Int) -> Int { first + b }

    init(first: Int, distinctSources: Bool) { self.first = first; self.distinctSources = distinctSources }

    func close() { for fd in fds { Glibc.close(fd) }; fds = [] }

    /// Creates the peers of `range` and registers each with RegisterPk then RegisterPeer; every
    /// one must be answered OK and `request_pk: false`. Throws when the server does not answer
    /// (exit 2) or answers otherwise (exit 1).
    static func register(_ o: PunchOptions, range: Range<Int>, sources: SourcePool, tag: String) throws(HarnessError) -> PeerSet {
        let set = PeerSet(first: range.lowerBound, distinctSources: sources.isDistinct)
        if sources.isDistinct && sources.count <= o.peers {
            throw HarnessError("punch needs more source addresses than B peers (\(o.peers)): A must come from other addresses; \(sources.count) available", exitCode: 64)
        }
        do throws(HarnessError) {
            for g in range {
                let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { throw HarnessError("socket: \(errnoText())") }
                set.fds.append(fd)
                let address = sources.address(g) ?? 0
                if set.distinctSources { try bindSource(fd, address) }
                guard withSockaddr(o.server.sockaddr, { connect(fd, $0, $1) }) == 0 else { throw HarnessError("connect \(o.server): \(errnoText())", exitCode: 2) }
                set.addresses.append(address)
                set.ids.append("rdp\(tag)x\(g)")
            }
            let pk = set.ids.map { RendezvousMessage.registerPk(.init(id: $0, uuid: randomBytes(16), pk: randomBytes(32))).serializedBytes() }
            try exchange(set, o, pk, what: "RegisterPk") { m in
                guard case .registerPkResponse(let r) = m else { return "\(m.name) instead of RegisterPkResponse" }
                return r.result == .ok ? nil : "RegisterPkResponse result \(r.result.rawValue), not OK"
            }
            let peer = set.ids.map { RendezvousMessage.registerPeer(.init(id: $0, serial: 3)).serializedBytes() }
            try exchange(set, o, peer, what: "RegisterPeer") { m in
                guard case .registerPeerResponse(let r) = m else { return "\(m.name) instead of RegisterPeerResponse" }
                return r.requestPk ? "request_pk after a successful RegisterPk" : nil
            }
        } catch {
            set.close()
            throw error
        }
        return set
    }

    /// Sends `messages[b]` from every peer (in batches of 256, resending once after 1 s) and checks
    /// each peer's reply with `check` (nil: fine, else what is wrong).
    private static func exchange(_ set: PeerSet, _ o: PunchOptions, _ messages: [[UInt8]], what: String,
                                 check: (RendezvousMessage) -> String?) throws(HarnessError) {
        var buffer = [UInt8](repeating: 0, count: 2048)
        var batch = 0
        var anyReply = false
        while batch < set.count {
            let range = batch..<min(set.count, batch + 256)
            var waiting = Set(range)
            for attempt in 0..<3 {
                for b in waiting { _ = messages[b].withUnsafeBytes { send(set.fds[b], $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) } }
                let deadline = monotonicNanos() + 1_000_000_000
                while !waiting.isEmpty && monotonicNanos() < deadline {
                    var polls = waiting.map { pollfd(fd: set.fds[$0], events: Int16(POLLIN), revents: 0) }
                    let ids = Array(waiting)
                    _ = poll(&polls, nfds_t(polls.count), 50)
                    for (j, p) in polls.enumerated() where p.revents != 0 {
                        let b = ids[j]
                        let n = buffer.withUnsafeMutableBytes { recv(set.fds[b], $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                        guard n >= 0 else { continue }
                        anyReply = true
                        guard let m = try? RendezvousMessage(serializedBytes: Array(buffer[..<n])) else {
                            throw HarnessError("\(o.server) answered \(what) with \(n) bytes that are not a RendezvousMessage")
                        }
                        if case .configureUpdate = m { continue }
                        if let wrong = check(m) { throw HarnessError("\(o.server) answered \(what) of \(set.ids[b]) with \(wrong)") }
                        waiting.remove(b)
                    }
                }
                if waiting.isEmpty { break }
                if !anyReply && attempt == 2 { throw HarnessError("no reply from \(o.server) to \(what) within 3 s", exitCode: 2) }
            }
            if !waiting.isEmpty { throw HarnessError("\(waiting.count) of \(range.count) \(what) got no reply from \(o.server)") }
            batch = range.upperBound
        }
    }
}
