import Glibc
import CLoadHarness
import RustDeskProtocol

/// `rdbench register`: simulated peers keeping themselves registered with hbbs over UDP (§5.2).
///
/// Peers are spread over several UDP sockets, each connected to the server. Every peer sends one
/// RegisterPk (random 32-byte key, random uuid) in a warm-up phase, then RegisterPeer on an
/// open-loop schedule for `duration` seconds.
///
/// Matching replies: hbbs's replies carry no peer ID and no sequence (`3A 00` is the whole
/// RegisterPeerResponse), so replies are matched per socket and per message type, first in first
/// out: each socket keeps a FIFO of the scheduled times of its outstanding RegisterPeer requests
/// (and one of its RegisterPk requests). A reply pops the oldest entry. A connected UDP socket on
/// one path is not reordered in practice; if a reply is lost, the next reply is attributed to the
/// older request (its latency is overstated, never understated) and the youngest entry ends up
/// counted as lost, so the loss count stays exact. Entries older than `replyTimeout` are lost.
///
/// Scheduler: request k is due at `start + k / rate` (interval mode: rate = peers / interval,
/// request k goes to peer k mod N, so each peer sends once per interval at an evenly spread
/// phase). A timerfd wakes the loop at the due time; whatever is due is sent even if replies are
/// outstanding, and latency is measured from the due time (not the send time), so a sender that
/// falls behind shows up in the latency instead of hiding it (no coordinated omission). The
/// worst lag of a send behind its due time is reported separately.
///
/// Source addresses: hbbs limits RegisterPk per source IP (§5.2.5: ~31 per minute, ~300 IDs per
/// day, remembered per IP), as upstream does. Against a loopback server each socket binds its own
/// 127.R.x.y address (R drawn per run) and carries at most 30 peers, so a run measures the server,
/// not the blocker; TOO_FREQUENT answers are counted and reported.
public struct RegisterOptions: Sendable {
    public var server: Endpoint
    public var peers: Int
    public var interval: Double = 15
    public var rate: Double?
    public var duration: Double
    public var sockets: Int?
    /// Peers sharing one source address (`--peers-per-source`); the default keeps each address
    /// within hbbs's default per-IP RegisterPk limits. Raise it against a server whose limits
    /// are off (`--register-pk-ip-rate 0 --register-pk-ip-new-ids 0`) to register a population
    /// larger than the descriptor limit allows at 30 peers per socket.
    public var peersPerSource = RegisterLoad.maxPeersPerSourceAddress
    public var pkRate: Double = 5000
    public var serverPID: Int32?
    public var replyTimeout: Double = 3
    /// Generator threads, each with its share of peers, sockets and rate.
    public var threads = 1
    /// Source addresses; nil: SourcePool.defaultFor(server).
    public var sources: SourcePool?

    public init(server: Endpoint, peers: Int, duration: Double) {
        self.server = server; self.peers = peers; self.duration = duration
    }

    public var aggregateRate: Double { rate ?? Double(peers) / interval }
}

public struct RegisterReport: Sendable {
    public var options: RegisterOptions
    public var sockets = 0
    public var sourceAddresses = 0
    public var pkSent = 0
    public var pkOK = 0
    public var pkTooFrequent = 0
    public var pkUUIDMismatch = 0
    public var pkOther = 0
    public var pkLost = 0
    public var sent = 0
    public var replies = 0
    public var requestPk = 0
    public var lost = 0
    public var unexpected = 0
    public var configUpdates = 0
    /// Replies arriving after their request was counted lost (3 s).
    public var late = 0
    public var sendErrors = 0
    public var measuredSeconds = 0.0
    public var maxSendLagMicros: UInt64 = 0
    public var latency = LatencyRecorder()
    public var pkLatency = LatencyRecorder()
    /// The server during the RegisterPeer phase (per million RegisterPeer).
    public var server: ServerUsage?
    /// The server during the RegisterPk phase (per million RegisterPk; includes persistence).
    public var serverPk: ServerUsage?
    public var timeline: Timeline?
    /// A reply that is neither of the expected responses (nor a ConfigUpdate) is a wrong answer.
    public var ok: Bool { unexpected == 0 && replies > 0 }

    public var achievedRate: Double { measuredSeconds > 0 ? Double(sent) / measuredSeconds : 0 }
    public var replyRate: Double { measuredSeconds > 0 ? Double(replies) / measuredSeconds : 0 }

    mutating func merge(_ o: RegisterReport) {
        sockets += o.sockets; sourceAddresses += o.sourceAddresses
        pkSent += o.pkSent; pkOK += o.pkOK; pkTooFrequent += o.pkTooFrequent; pkUUIDMismatch += o.pkUUIDMismatch
        pkOther += o.pkOther; pkLost += o.pkLost
        sent += o.sent; replies += o.replies; requestPk += o.requestPk; lost += o.lost; unexpected += o.unexpected
        configUpdates += o.configUpdates; late += o.late; sendErrors += o.sendErrors
        measuredSeconds = max(measuredSeconds, o.measuredSeconds); maxSendLagMicros = max(maxSendLagMicros, o.maxSendLagMicros)
        latency.add(o.latency); pkLatency.add(o.pkLatency)
        server = server ?? o.server; serverPk = serverPk ?? o.serverPk
    }

    public var json: JSON {
        var o: [(String, JSON)] = [
            ("mode", .string("register")),
            ("server", .string(options.server.description)),
            ("peers", .int(options.peers)),
            ("sockets", .int(sockets)),
            ("threads", .int(options.threads)),
            ("source_addresses", .int(sourceAddresses)),
            ("target_rate", .double(options.aggregateRate)),
            ("interval_s", options.rate == nil ? .double(options.interval) : .null),
            ("duration_s", .double(options.duration)),
            ("register_pk", .object([
                ("sent", .int(pkSent)), ("ok", .int(pkOK)), ("too_frequent", .int(pkTooFrequent)),
                ("uuid_mismatch", .int(pkUUIDMismatch)), ("other", .int(pkOther)), ("lost", .int(pkLost)),
                ("latency", pkLatency.json),
            ])),
            ("register_peer", .object([
                ("sent", .int(sent)), ("replies", .int(replies)), ("lost", .int(lost)),
                ("request_pk", .int(requestPk)), ("unexpected", .int(unexpected)), ("config_updates", .int(configUpdates)), ("late", .int(late)),
                ("send_errors", .int(sendErrors)),
                ("measured_s", .double(measuredSeconds)),
                ("achieved_rate", .double(achievedRate)), ("reply_rate", .double(replyRate)),
                ("max_send_lag_us", .int(Int(maxSendLagMicros))),
                ("latency", latency.json),
            ])),
            ("loss", .int(lost + pkLost)),
            ("errors", .int(unexpected)),
            ("ok", .bool(ok)),
        ]
        if let t = timeline { o.append(("timeline", t.json)) }
        o.append(("server_usage", server.map { $0.json(perUnit: "cpu_seconds_per_million_requests", units: Double(sent) / 1e6) } ?? .null))
        o.append(("server_usage_register_pk", serverPk.map { $0.json(perUnit: "cpu_seconds_per_million_requests", units: Double(pkSent) / 1e6) } ?? .null))
        return .object(o)
    }

    public var table: String {
        var lines = [
            "rdbench register → \(options.server)  peers \(options.peers)  sockets \(sockets) (\(sourceAddresses) source addresses)",
            "  RegisterPk    sent \(pkSent)  ok \(pkOK)  too_frequent \(pkTooFrequent)  uuid_mismatch \(pkUUIDMismatch)  lost \(pkLost)   \(pkLatency.summary)",
            "  RegisterPeer  sent \(sent) in \(fmt(measuredSeconds, 2)) s = \(fmt(achievedRate, 1))/s (target \(fmt(options.aggregateRate, 1))/s)  replies \(replies)  lost \(lost)  request_pk \(requestPk)\(unexpected > 0 ? "  WRONG ANSWERS \(unexpected)" : "")",
            "  latency       \(latency.summary)   (from due time; worst send lag \(fmtMicros(maxSendLagMicros)))",
        ]
        for (name, usage, count) in [("RegisterPk phase  ", serverPk, pkSent), ("RegisterPeer phase", server, sent)] {
            guard let s = usage else { continue }
            let perM = count > 0 ? s.cpuSeconds / (Double(count) / 1e6) : 0
            lines.append("  server \(name) pid \(s.pid)  cpu \(fmt(s.cpuSeconds, 3)) s (user \(fmt(s.userSeconds, 2)), sys \(fmt(s.systemSeconds, 2)))  = \(fmt(perM, 2)) cpu-s per million  peak RSS \(s.peakRSSKiB / 1024) MiB")
        }
        return lines.joined(separator: "\n")
    }
}

private struct Outstanding {
    var due: UInt64
}

private struct PeerSocket {
    var fd: Int32
    var pk = FIFO<UInt64>()
    var peer = FIFO<UInt64>()
}

public enum RegisterLoad {
    static let maxPeersPerSourceAddress = 30

    public static func run(_ o: RegisterOptions, live: Bool = true) throws(HarnessError) -> RegisterReport {
        guard o.threads > 0, o.threads <= o.peers else { throw HarnessError("--threads must be between 1 and --peers", exitCode: 64) }
        let counters = (0..<o.threads).map { _ in LiveCounters() }
        let sync = PhaseBarrier(parties: o.threads)
        let tag = UInt32.random(in: 0..<UInt32.max)
        let sources = o.sources ?? SourcePool.defaultFor(o.server)
        // The RegisterPk warm-up at its rate, then the measured phase.
        var monitor = Monitor(label: "register", unit: "replies", expectedSeconds: Double(o.peers) / o.pkRate + o.duration)
        monitor.live = live && monitor.live
        let (results, timeline) = monitor.run(counters, (0..<o.threads).map { shard in
            { @Sendable () -> Result<RegisterReport, HarnessError> in
                let r = Result { () throws(HarnessError) in
                    try runLoop(o, shard: shard, sync: sync, tag: tag, sources: sources, counters: counters[shard])
                }
                if case .failure = r { sync.abort() }
                return r
            }
        })
        // The shard that failed says why; the others only say that one did.
        for case .failure(let e) in results where e.message != PhaseBarrier.abandoned { throw e }
        var report = try merge(results, into: RegisterReport(options: o)) { $0.merge($1) }
        // The timeline covers the RegisterPk warm-up too; the RegisterPeer phase is the bulk.
        report.timeline = timeline
        return report
    }

    /// One shard (of `o.threads`): its share of the peers, sockets and rate. Shards go through the
    /// phases together (PhaseBarrier) so that shard 0 can take the server's CPU per phase.
    static func runLoop(_ o: RegisterOptions, shard: Int, sync: PhaseBarrier, tag: UInt32, sources: SourcePool,
                        counters: LiveCounters) throws(HarnessError) -> RegisterReport {
        guard o.peers > 0, o.duration > 0, o.aggregateRate > 0 else { throw HarnessError("--peers, --duration and the rate must be positive", exitCode: 64) }
        raiseFileLimit()
        var report = RegisterReport(options: o)
        let shards = o.threads
        var totalSockets = o.sockets ?? min(o.peers, 256)
        if sources.isDistinct { totalSockets = max(totalSockets, (o.peers + o.peersPerSource - 1) / o.peersPerSource) }
        totalSockets = max(shards, min(totalSockets, o.peers, 64_000))
        let peerRange = (o.peers * shard / shards)..<(o.peers * (shard + 1) / shards)
        let socketRange = (totalSockets * shard / shards)..<(totalSockets * (shard + 1) / shards)
        let socketCount = socketRange.count
        report.sockets = socketCount
        report.sourceAddresses = sources.isDistinct ? min(socketCount, sources.count) : (shard == 0 ? 1 : 0)

        // Sockets, each bound to its own source address (SourcePool: 127.R.x.y for a loopback
        // server, R drawn per run so that back-to-back runs do not meet the blocker's memory).
        var socks: [PeerSocket] = []
        defer { for s in socks { close(s.fd) } }
        for i in socketRange {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw HarnessError("socket: \(errnoText())") }
            socks.append(PeerSocket(fd: fd))
            var buf: Int32 = 1 << 20
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, 4)
            if let address = sources.address(i) { try bindSource(fd, address) }
            let r = withSockaddr(o.server.sockaddr) { connect(fd, $0, $1) }
            guard r == 0 else { throw HarnessError("connect \(o.server): \(errnoText())", exitCode: 2) }
        }

        // Reachability: any reply to a probe within the reply timeout.
        try probe(socks[0].fd, o)

        // Peers: local peer p uses local socket p % sockets; random uuid and key per peer, IDs unique per run.
        let ids = peerRange.map { "rdb\(String(tag, radix: 36))x\($0)" }
        let n = ids.count
        let epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        let tfd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC))
        guard epfd >= 0, tfd >= 0 else { throw HarnessError("epoll/timerfd: \(errnoText())") }
        defer { close(epfd); close(tfd) }
        for (i, s) in socks.enumerated() {
            var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(i)))
            epoll_ctl(epfd, EPOLL_CTL_ADD, s.fd, &ev)
        }
        var tev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64.max))
        epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev)

        var state = LoopState()
        let timeoutNanos = UInt64(o.replyTimeout * 1e9)

        // Phase 1: RegisterPk once per peer, paced at pkRate. The server's CPU is taken per phase.
        try sync.wait()
        let cpuBefore = shard == 0 ? try o.serverPID.map { pid throws(HarnessError) in try ServerSample.read(pid: pid) } : nil
        let pkStart = monotonicNanos() + 1_000_000
        let pkStep = 1e9 * Double(shards) / o.pkRate
        var k = 0
        // Built before the clock starts: generating keys must not delay the schedule.
        let pkMessages = ids.map { RendezvousMessage.registerPk(.init(id: $0, uuid: randomBytes(16), pk: randomBytes(32))).serializedBytes() }
        loop(epfd: epfd, tfd: tfd, socks: &socks, state: &state, report: &report, counters: counters, timeoutNanos: timeoutNanos,
             nextDue: { k < n ? pkStart + UInt64(Double(k) * pkStep) : nil },
             send: { due, now, socks, report in
                 let p = k
                 k += 1
                 let s = p % socketCount
                 let bytes = pkMessages[p]
                 if bytes.withUnsafeBytes({ Glibc.send(socks[s].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) < 0 {
                     report.sendErrors += 1
                 }
                 socks[s].pk.push(due)
                 report.pkSent += 1
             })

        // Phase 2 (measured): RegisterPeer on the open-loop schedule.
        try sync.wait()
        let cpuMiddle = shard == 0 ? try o.serverPID.map { pid throws(HarnessError) in try ServerSample.read(pid: pid) } : nil
        if let before = cpuBefore, let middle = cpuMiddle, let pid = o.serverPID {
            report.serverPk = ServerUsage(pid: pid, before: before, after: middle)
        }
        let step = 1e9 * Double(shards) / o.aggregateRate
        // Shards start a fraction of a step apart so that together they are evenly spread.
        let start = monotonicNanos() + 1_000_000 + UInt64(step * Double(shard) / Double(shards))
        let end = start + UInt64(o.duration * 1e9)
        let messages = ids.map { RendezvousMessage.registerPeer(.init(id: $0, serial: 3)).serializedBytes() }
        k = 0
        report.maxSendLagMicros = 0
        loop(epfd: epfd, tfd: tfd, socks: &socks, state: &state, report: &report, counters: counters, timeoutNanos: timeoutNanos,
             nextDue: {
                 let due = start + UInt64(Double(k) * step)
                 return due < end ? due : nil
             },
             send: { due, now, socks, report in
                 let p = k % n
                 k += 1
                 let s = p % socketCount
                 let r = messages[p].withUnsafeBytes { Glibc.send(socks[s].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                 if r < 0 { report.sendErrors += 1 }
                 socks[s].peer.push(due)
                 report.sent += 1
                 if now > due { report.maxSendLagMicros = max(report.maxSendLagMicros, (now - due) / 1000) }
             })
        report.measuredSeconds = Double(end - start) / 1e9
        try sync.wait()
        if let middle = cpuMiddle, let pid = o.serverPID {
            report.server = ServerUsage(pid: pid, before: middle, after: try ServerSample.read(pid: pid))
        }
        return report
    }

    private struct LoopState {
        var buffer = [UInt8](repeating: 0, count: 2048)
        var lastExpiry: UInt64 = 0
    }

    /// Sends whatever `nextDue` says is due (timerfd-paced), receives and matches replies, and
    /// after the last send waits until every request is answered or timed out.
    private static func loop(epfd: Int32, tfd: Int32, socks: inout [PeerSocket], state: inout LoopState,
                             report: inout RegisterReport, counters: LiveCounters, timeoutNanos: UInt64,
                             nextDue: () -> UInt64?,
                             send: (UInt64, UInt64, inout [PeerSocket], inout RegisterReport) -> Void) {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var lastSend = monotonicNanos()
        var armed: UInt64 = 0
        while true {
            var now = monotonicNanos()
            var due = nextDue()
            while let d = due, d <= now {
                send(d, now, &socks, &report)
                lastSend = now
                due = nextDue()
                now = monotonicNanos()
            }
            if now - state.lastExpiry > 50_000_000 || due == nil {
                expire(&socks, &report, counters, before: now > timeoutNanos ? now - timeoutNanos : 0)
                state.lastExpiry = now
            }
            if due == nil {
                if socks.allSatisfy({ $0.pk.isEmpty && $0.peer.isEmpty }) { return }
                if now > lastSend + timeoutNanos {
                    expire(&socks, &report, counters, before: UInt64.max)
                    return
                }
            }
            // Arm the timer for the next due time (or a short tick while draining).
            let wake = due ?? (now + 50_000_000)
            if wake != armed {
                var spec = itimerspec()
                spec.it_value.tv_sec = Int(wake / 1_000_000_000)
                spec.it_value.tv_nsec = Int(wake % 1_000_000_000)
                timerfd_settime(tfd, Int32(TFD_TIMER_ABSTIME), &spec, nil)
                armed = wake
            }
            let n = epoll_wait(epfd, &events, Int32(events.count), 100)
            if n <= 0 { continue }
            for e in events[0..<Int(n)] {
                let index = e.data.u64
                if index == UInt64.max {
                    var v: UInt64 = 0
                    _ = read(tfd, &v, 8)
                    armed = 0
                    continue
                }
                receive(&socks[Int(index)], &state.buffer, &report, counters)
            }
        }
    }

    private static func receive(_ s: inout PeerSocket, _ buffer: inout [UInt8], _ report: inout RegisterReport, _ counters: LiveCounters) {
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(s.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN, or ECONNREFUSED from an ICMP error: the request times out as lost.
            }
            let now = monotonicNanos()
            let message = buffer.withUnsafeBytes { p in try? RendezvousMessage(serializedBytes: UnsafeRawBufferPointer(rebasing: p[..<n])) }
            switch message {
            case .registerPeerResponse(let r)?:
                guard let due = s.peer.pop() else { report.late += 1; continue }
                report.replies += 1
                counters.add(done: 1)
                if r.requestPk { report.requestPk += 1 }
                report.latency.record(nanos: now > due ? now - due : 0)
            case .registerPkResponse(let r)?:
                guard let due = s.pk.pop() else { report.late += 1; continue }
                switch r.result.rawValue {
                case RegisterPkResponse.Result.ok.rawValue: report.pkOK += 1
                case RegisterPkResponse.Result.tooFrequent.rawValue: report.pkTooFrequent += 1
                case RegisterPkResponse.Result.uuidMismatch.rawValue: report.pkUUIDMismatch += 1
                default: report.pkOther += 1
                }
                report.pkLatency.record(nanos: now > due ? now - due : 0)
            case .configureUpdate?:
                report.configUpdates += 1  // after RegisterPeer when hbbs's serial is above ours (§5.2.1 step 5)
            default:
                report.unexpected += 1
                counters.add(errors: 1)
            }
        }
    }

    private static func expire(_ socks: inout [PeerSocket], _ report: inout RegisterReport, _ counters: LiveCounters, before: UInt64) {
        for i in socks.indices {
            while let d = socks[i].peer.first, d < before { _ = socks[i].peer.pop(); report.lost += 1; counters.add(errors: 1) }
            while let d = socks[i].pk.first, d < before { _ = socks[i].pk.pop(); report.pkLost += 1; counters.add(errors: 1) }
        }
    }

    /// Sends a RegisterPeer probe every 0.5 s until any reply or `replyTimeout`.
    private static func probe(_ fd: Int32, _ o: RegisterOptions) throws(HarnessError) {
        let bytes = RendezvousMessage.registerPeer(.init(id: "rdbench-probe", serial: 3)).serializedBytes()
        let deadline = monotonicNanos() + UInt64(o.replyTimeout * 1e9)
        var buffer = [UInt8](repeating: 0, count: 2048)
        var nextSend: UInt64 = 0
        while true {
            let now = monotonicNanos()
            if now >= deadline { throw HarnessError("no reply from \(o.server) within \(fmt(o.replyTimeout, 0)) s", exitCode: 2) }
            if now >= nextSend {
                _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                nextSend = now + 500_000_000
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n >= 0 else { continue }
            switch try? RendezvousMessage(serializedBytes: Array(buffer[..<n])) {
            case .registerPeerResponse?: return
            case .configureUpdate?: continue
            case let m?: throw HarnessError("\(o.server) answered RegisterPeer with \(m.name), not RegisterPeerResponse")
            case nil: throw HarnessError("\(o.server) answered RegisterPeer with \(n) bytes that are not a RendezvousMessage")
            }
        }
    }
}
