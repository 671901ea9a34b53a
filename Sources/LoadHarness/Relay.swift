import Glibc
import CLoadHarness
import RustDeskProtocol

/// One pseudo-random block every stream is cut from: stream s's byte i is
/// `block[(start(s) + i) % length]`. The odd length keeps repetitions off buffer boundaries, and
/// distinct starts per (pair, direction) make bytes of the wrong stream or at the wrong offset fail.
final class PatternBlock: @unchecked Sendable {
    let length = (1 << 20) + 4093
    let block: UnsafeMutableRawBufferPointer

    init(seed: UInt64) {
        block = .allocate(byteCount: length + 8, alignment: 64)
        var x = seed | 1
        var i = 0
        while i + 8 <= block.count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            block.storeBytes(of: x, toByteOffset: i, as: UInt64.self)
            i += 8
        }
    }

    deinit { block.deallocate() }

    func start(pair: Int, role: Int) -> Int { (pair * 2 + role) * 104_729 % length }

    func matches(_ bytes: UnsafeRawBufferPointer, start: Int, offset: Int) -> Bool {
        var done = 0
        while done < bytes.count {
            let at = (start + offset + done) % length
            let n = min(bytes.count - done, length - at)
            if memcmp(bytes.baseAddress! + done, block.baseAddress! + at, n) != 0 { return false }
            done += n
        }
        return true
    }
}

/// Which halves of a relay pair send.
public enum RelayDirection: String, Sendable {
    case both
    case aToB = "a-to-b"
}

/// `rdbench relay`: P pairs through hbbr (§8), or directly connected (`--direct`, the baseline).
///
/// Each half connects to hbbr's TCP port, sends one framed `RequestRelay{uuid, licence_key}` and
/// at once sends the first 64 bytes of its pattern (hbbr keeps bytes sent before pairing and
/// forwards them, §8.3 step 5); the rest follows once either half of the pair has received its
/// first byte, i.e. once pairing is seen. Every received byte is checked against the stream it
/// must be. No half-close: hbbr ends a session when either side ends (§8.4), so a half closes only
/// after it has sent everything and received everything the other half sent.
///
/// Amount: `bytes` per sending half, or sending for `duration` seconds (every half stops at the same
/// moment, `duration` after the start). Pacing (`rate`, bytes per second per sending half): a half
/// may have sent `64 + rate × (time since its pair paired)`; a 20 ms tick tops every half up to that
/// allowance, in sends of at least 4 KiB (or what is left), so 10,000 paced pairs cost one pass over
/// the halves per tick rather than a timer each. Unpaced halves send whenever the socket takes data.
///
/// Pairing latency: from the moment the second half's RequestRelay was written to the first byte
/// either half receives from the other (hbbr sends nothing of its own, so that is the first sign
/// of pairing). Pairs are opened at most `connectWindow` at a time (a SYN flood at the listener
/// would measure the backlog, not hbbr). Pairs/s: pairs over the time from the first connect until
/// every pair has paired. Throughput: verified bytes (both directions) over the time from the first
/// connect to the last byte.
public struct RelayOptions: Sendable {
    public var server: Endpoint?
    public var pairs: Int
    /// Bytes per sending half; nil with `duration`.
    public var bytes: Int?
    public var duration: Double?
    /// Bytes per second per sending half; nil: as fast as possible.
    public var rate: Double?
    public var direction = RelayDirection.both
    public var direct = false
    /// `--direct` through a TCP proxy (e.g. HAProxy) whose backend is the local sink: A connects
    /// here, the proxy connects to the sink (`sinkPort`), the sink's accept is B.
    public var through: Endpoint?
    /// Port of the local sink (`--direct`); 0 = any.
    public var sinkPort: UInt16 = 0
    public var licenceKey = ""
    public var serverPID: Int32?
    public var timeout: Double?
    public var threads = 1
    public var connectWindow = 512

    public init(server: Endpoint?, pairs: Int, bytes: Int) {
        self.server = server; self.pairs = pairs; self.bytes = bytes
    }

    public init(server: Endpoint?, pairs: Int, duration: Double) {
        self.server = server; self.pairs = pairs; self.duration = duration
    }

    /// How long sending should take (for the progress line), when known.
    var expectedSeconds: Double? { duration ?? bytes.flatMap { b in rate.map { Double(b) / $0 } } }
    var effectiveTimeout: Double { timeout ?? ((expectedSeconds ?? 0) + 120) }
}

public struct RelayReport: Sendable {
    public var options: RelayOptions
    public var pairsCompleted = 0
    public var pairsPaired = 0
    public var bytesSent = 0
    public var bytesVerified = 0
    public var failures: [String] = []
    public var timedOut = false
    public var seconds = 0.0
    public var pairingSeconds = 0.0
    /// Sum over sending halves of the time from pairing to their last byte sent.
    public var sendingSeconds = 0.0
    public var pairing = LatencyRecorder()
    public var server: ServerUsage?
    public var timeline: Timeline?

    public var throughputBytesPerSecond: Double { seconds > 0 ? Double(bytesVerified) / seconds : 0 }
    public var pairsPerSecond: Double { pairingSeconds > 0 ? Double(pairsPaired) / pairingSeconds : 0 }
    /// Achieved rate per sending half while it was sending (compare with `--rate`).
    public var ratePerHalf: Double { sendingSeconds > 0 ? Double(bytesSent) / sendingSeconds : 0 }
    public var ok: Bool { failures.isEmpty && !timedOut && pairsCompleted == options.pairs }
    var sendersPerPair: Int { options.direction == .both ? 2 : 1 }

    mutating func merge(_ o: RelayReport) {
        pairsCompleted += o.pairsCompleted; pairsPaired += o.pairsPaired
        bytesSent += o.bytesSent; bytesVerified += o.bytesVerified
        failures += o.failures; timedOut = timedOut || o.timedOut
        seconds = max(seconds, o.seconds); pairingSeconds = max(pairingSeconds, o.pairingSeconds)
        sendingSeconds += o.sendingSeconds
        pairing.add(o.pairing)
    }

    public var json: JSON {
        var o: [(String, JSON)] = [
            ("mode", .string(options.direct ? (options.through == nil ? "relay-direct" : "relay-through-proxy") : "relay")),
            ("through", options.through.map { .string($0.description) } ?? .null),
            ("server", options.server.map { .string($0.description) } ?? .null),
            ("pairs", .int(options.pairs)),
            ("direction", .string(options.direction.rawValue)),
            ("bytes_each_way", options.bytes.map { .int($0) } ?? .null),
            ("duration_s", options.duration.map { .double($0) } ?? .null),
            ("rate_per_direction", options.rate.map { .double($0) } ?? .null),
            ("threads", .int(options.threads)),
            ("pairs_completed", .int(pairsCompleted)),
            ("pairs_paired", .int(pairsPaired)),
            ("bytes_sent", .int(bytesSent)),
            ("bytes_verified", .int(bytesVerified)),
            ("bytes_expected", .int(options.bytes.map { options.pairs * $0 * sendersPerPair } ?? bytesSent)),
            ("ok", .bool(ok)),
            ("errors", .int(failures.count + (timedOut ? 1 : 0))),
            ("timed_out", .bool(timedOut)),
            ("failures", .array(failures.prefix(20).map { .string($0) })),
            ("seconds", .double(seconds)),
            ("throughput_bytes_per_s", .double(throughputBytesPerSecond)),
            ("throughput_mib_per_s", .double(throughputBytesPerSecond / 1_048_576)),
            ("achieved_rate_per_direction", .double(ratePerHalf)),
            ("pairs_per_s", .double(pairsPerSecond)),
            ("pairing_latency", pairing.json),
            ("server_usage", server.map { $0.json(per: [("cpu_seconds_per_gb", Double(bytesVerified) / 1e9),
                                                        ("cpu_seconds_per_pair", Double(options.pairs))]) } ?? .null),
        ]
        if let t = timeline { o.append(("timeline", t.json)) }
        return .object(o)
    }

    public var table: String {
        let amount = options.bytes.map { "\($0) B" } ?? "\(fmt(options.duration ?? 0, 1)) s"
        let pace = options.rate.map { " at \(fmt($0 / 1024, 1)) KiB/s" } ?? ""
        var lines = [
            "rdbench relay → \(options.direct ? "direct (local sink, no relay)" : options.server?.description ?? "-")  pairs \(options.pairs) × \(amount)\(pace) \(options.direction == .both ? "each way" : "A to B")",
            "  completed \(pairsCompleted)/\(options.pairs)  verified \(bytesVerified) B  in \(fmt(seconds, 3)) s = \(fmt(throughputBytesPerSecond / 1_048_576, 1)) MiB/s  (\(fmt(ratePerHalf / 1024, 1)) KiB/s per direction while sending)",
            "  pairing       \(pairing.summary)   \(fmt(pairsPerSecond, 1)) pairs/s",
        ]
        if let s = server {
            lines.append(s.line("", per: [("GB", Double(bytesVerified) / 1e9), ("pair", Double(options.pairs))]))
        }
        if timedOut { lines.append("  TIMED OUT") }
        for f in failures.prefix(5) { lines.append("  FAILED: \(f)") }
        return lines.joined(separator: "\n")
    }
}

private struct Half {
    var fd: Int32
    let pair: Int
    let sendStart: Int
    let receiveStart: Int
    let sends: Bool
    var sent = 0
    var received = 0
    var requestSent = false
    var writable = false
    var sendDone: Bool
    var sendStopped: UInt64 = 0
    var closed = false
    var failure: String?
    /// In `again`: its last pump stopped at the per-call cap with the socket still writable.
    var queued = false
}

/// Raises RLIMIT_NOFILE to its hard limit and checks that `needed` descriptors fit.
func requireDescriptors(_ needed: Int, for what: String) throws(HarnessError) {
    raiseFileLimit()
    var l = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &l)
    if Int(clamping: l.rlim_cur) < needed {
        throw HarnessError("\(what) needs about \(needed) file descriptors, but RLIMIT_NOFILE is \(l.rlim_cur) (hard limit \(l.rlim_max)); raise the hard limit (ulimit -Hn, LimitNOFILE=) or use fewer")
    }
}

public enum RelayLoad {
    static let chunk = 256 << 10
    static let minimumPacedSend = 4096

    public static func run(_ o: RelayOptions, live: Bool = true) throws(HarnessError) -> RelayReport {
        guard o.pairs > 0, o.threads > 0 else { throw HarnessError("--pairs and --threads must be positive", exitCode: 64) }
        guard o.bytes != nil || o.duration != nil else { throw HarnessError("--bytes or --duration is required", exitCode: 64) }
        if let r = o.rate, r <= 0 { throw HarnessError("--rate must be positive", exitCode: 64) }
        try requireDescriptors(o.pairs * 2 + 64 * o.threads, for: "\(o.pairs) pairs")
        let pattern = PatternBlock(seed: 0x9E37_79B9_7F4A_7C15 ^ UInt64(o.pairs))
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        let shards = (0..<o.threads).map { t in (o.pairs * t / o.threads)..<(o.pairs * (t + 1) / o.threads) }
        let counters = shards.map { _ in LiveCounters() }
        var monitor = Monitor(label: "relay", unit: "MiB", expectedSeconds: o.expectedSeconds)
        monitor.displayScale = 1.0 / 1_048_576
        monitor.live = live && monitor.live
        let ((results, timeline), usage) = try ServerUsage.measure(o.serverPID) { () throws(HarnessError) in
            monitor.run(counters, shards.enumerated().map { (i, range) in
                { @Sendable () -> Result<RelayReport, HarnessError> in
                    Result { () throws(HarnessError) in try runShard(o, pairs: range, pattern: pattern, tag: tag, counters: counters[i]) }
                }
            })
        }
        var report = try merge(results, into: RelayReport(options: o)) { $0.merge($1) }
        report.server = usage
        var t = timeline
        t.samples = t.samples.map { var s = $0; s.rate /= 1_048_576; return s }
        t.unit = "MiB"
        report.timeline = t
        return report
    }

    private static func runShard(_ o: RelayOptions, pairs range: Range<Int>, pattern: PatternBlock, tag: String,
                                 counters: LiveCounters) throws(HarnessError) -> RelayReport {
        var report = RelayReport(options: o)
        let n = range.count
        guard n > 0 else { return report }
        var halves: [Half] = []
        halves.reserveCapacity(2 * n)
        defer { for h in halves where !h.closed { close(h.fd) } }
        // Per local pair: when the second RequestRelay went out, and when the first byte was seen.
        var pairStart = [UInt64](repeating: 0, count: n)
        var firstByte = [UInt64](repeating: 0, count: n)
        var requestsSent = [Int](repeating: 0, count: n)
        // A relay pair leaves the connect window once it paired or failed.
        var settled = [Bool](repeating: false, count: n)

        var listener: Int32 = -1
        var sink = sockaddr_in()
        if o.direct {
            listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            sink.sin_family = sa_family_t(AF_INET)
            sink.sin_addr.s_addr = (UInt32(127) << 24 | 1).bigEndian
            sink.sin_port = o.sinkPort.bigEndian
            var one: Int32 = 1
            setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            guard withSockaddr(sink, { bind(listener, $0, $1) }) == 0, listen(listener, 1024) == 0,
                  withUnsafeMutablePointer(to: &sink, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }) == 0
            else { throw HarnessError("local sink: \(errnoText())") }
        }
        defer { if listener >= 0 { close(listener) } }
        let epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        let tfd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC))
        guard epfd >= 0, tfd >= 0 else { throw HarnessError("epoll/timerfd: \(errnoText())") }
        defer { close(epfd); close(tfd) }
        let tick: UInt64 = (o.rate != nil || o.duration != nil) ? 20_000_000 : 100_000_000
        var spec = itimerspec()
        spec.it_interval.tv_nsec = Int(tick); spec.it_value.tv_nsec = Int(tick)
        timerfd_settime(tfd, 0, &spec, nil)
        var tev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64.max))
        epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev)

        let t0 = monotonicNanos()
        let deadline = t0 + UInt64(o.effectiveTimeout * 1e9)
        let stopAt = o.duration.map { t0 + UInt64($0 * 1e9) }
        let cap = o.bytes ?? Int.max
        var opened = 0, closedHalves = 0, connecting = 0
        var lastByte = t0

        func add(_ fd: Int32, _ local: Int, role: Int, connected: Bool) throws(HarnessError) {
            let p = range.lowerBound + local
            let sends = role == 0 || o.direction == .both
            halves.append(Half(fd: fd, pair: p, sendStart: pattern.start(pair: p, role: role),
                               receiveStart: pattern.start(pair: p, role: 1 - role), sends: sends,
                               requestSent: connected, writable: connected, sendDone: !sends || cap == 0))
            var ev = epoll_event(events: EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue,
                                 data: epoll_data_t(u64: UInt64(halves.count - 1)))
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
        }
        // Opens pairs up to the connect window: direct pairs are connected and accepted at once.
        func openPairs() throws(HarnessError) {
            while opened < n && connecting < o.connectWindow {
                let local = opened
                opened += 1
                if o.direct {
                    let started = monotonicNanos()
                    let a: Int32
                    if let p = o.through {
                        a = try connectTCP(p.sockaddr, what: "proxy \(p)", blocking: true)
                    } else {
                        a = try connectTCP(sink, what: "local sink", blocking: true)
                    }
                    let b = accept(listener, nil, nil)
                    guard b >= 0 else { close(a); throw HarnessError("accept: \(errnoText())") }
                    _ = fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK)
                    _ = fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK)
                    pairStart[local] = monotonicNanos()
                    report.pairing.record(nanos: pairStart[local] - started)
                    try add(a, local, role: 0, connected: true)
                    try add(b, local, role: 1, connected: true)
                } else {
                    for role in 0..<2 { try add(try connectTCP(o.server!.sockaddr, what: o.server!.description, blocking: false), local, role: role, connected: false) }
                    connecting += 1
                }
            }
        }
        let requests = (0..<n).map { local in
            try! FrameCodec.frame(RendezvousMessage.requestRelay(
                .init(id: "", uuid: "rdbench-\(tag)-\(range.lowerBound + local)", licenceKey: o.licenceKey)).serializedBytes())
        }

        func paired(_ local: Int) -> Bool { firstByte[local] != 0 || (o.direct && pairStart[local] != 0) }
        func pairedAt(_ local: Int) -> UInt64 { o.direct ? pairStart[local] : firstByte[local] }
        func local(_ i: Int) -> Int { i / 2 }

        func settle(_ l: Int) {
            if !o.direct && !settled[l] { settled[l] = true; connecting -= 1 }
        }
        func fail(_ i: Int, _ why: String) {
            guard halves[i].failure == nil else { return }
            halves[i].failure = why
            counters.add(errors: 1)
            settle(local(i))
        }
        func stopSending(_ i: Int, _ now: UInt64) {
            if !halves[i].sendDone {
                halves[i].sendDone = true
                halves[i].sendStopped = now
            }
        }
        // Halves whose pump stopped at its per-call cap while the socket could take more. Events are
        // edge-triggered, so no EPOLLOUT would come for them: they go on after this round of
        // events (before, they waited for the next timer tick, up to 100 ms of idle sender).
        var again: [Int] = []
        /// Sends what half `i` may send now: the preamble before pairing, then up to its pace.
        func pump(_ i: Int, _ now: UInt64, tick: Bool) {
            guard halves[i].sends, !halves[i].sendDone, halves[i].writable, !halves[i].closed, halves[i].failure == nil else { return }
            let l = local(i)
            var limit = min(cap, preamble)
            if paired(l) {
                if let rate = o.rate {
                    let elapsed = Double(now - pairedAt(l)) / 1e9
                    limit = min(cap, preamble + Int(rate * elapsed))
                    // Between ticks only whole chunks of pace: fewer, larger sends.
                    if !tick && limit - halves[i].sent < minimumPacedSend && limit < cap { return }
                } else {
                    limit = cap
                }
            }
            var moved = 0
            while halves[i].sent < limit && moved < 4 * chunk {
                let at = (halves[i].sendStart + halves[i].sent) % pattern.length
                let m = min(limit - halves[i].sent, pattern.length - at, chunk)
                let r = Glibc.send(halves[i].fd, pattern.block.baseAddress! + at, m, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if r < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN { halves[i].writable = false; break }
                    fail(i, "send after \(halves[i].sent) B: \(errnoText())")
                    return
                }
                halves[i].sent += r
                moved += r
            }
            if halves[i].sent == cap { stopSending(i, now) }
            else if halves[i].writable && halves[i].sent < limit && !halves[i].queued {
                halves[i].queued = true
                again.append(i)
            }
        }
        func isComplete(_ i: Int) -> Bool {
            let h = halves[i], p = halves[i ^ 1]
            return h.sendDone && p.sendDone && h.received == p.sent && h.failure == nil
        }
        func closeIfDone(_ i: Int) {
            guard !halves[i].closed else { return }
            if halves[i].failure != nil || isComplete(i) {
                close(halves[i].fd)
                halves[i].closed = true
                closedHalves += 1
            }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        /// Reads until EAGAIN (edge-triggered), checking every byte.
        func drain(_ i: Int) {
            while halves[i].failure == nil && !halves[i].closed {
                let r = recv(halves[i].fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
                if r < 0 {
                    if errno == EINTR { continue }
                    if errno != EAGAIN { fail(i, "recv after \(halves[i].received) B: \(errnoText())") }
                    return
                }
                if r == 0 {
                    if !isComplete(i) {
                        let other = halves[i ^ 1]
                        fail(i, halves[i].received == 0 && !paired(local(i)) ? "closed by the server before pairing"
                             : "closed by the server after \(halves[i].received) of \(other.sendDone ? String(other.sent) : "more") B")
                    }
                    return
                }
                let h = halves[i]
                if h.received + r > halves[i ^ 1].sent {
                    fail(i, "received \(h.received + r) B, but the other half sent \(halves[i ^ 1].sent)")
                    return
                }
                if !pattern.matches(UnsafeRawBufferPointer(rebasing: buffer[..<r]), start: h.receiveStart, offset: h.received) {
                    fail(i, "bytes \(h.received)..<\(h.received + r) do not match the pattern")
                    return
                }
                halves[i].received += r
                counters.add(done: r)
                let now = monotonicNanos()
                lastByte = now
                let l = local(i)
                if firstByte[l] == 0 {
                    firstByte[l] = now
                    if !o.direct && pairStart[l] != 0 { report.pairing.record(nanos: now > pairStart[l] ? now - pairStart[l] : 0) }
                    settle(l)
                    // Pairing seen: both halves may now send beyond the preamble.
                    pump(i, now, tick: true)
                    pump(i ^ 1, now, tick: true)
                }
            }
        }

        try openPairs()
        var events = [epoll_event](repeating: epoll_event(), count: 1024)
        while closedHalves < 2 * n || opened < n {
            let now = monotonicNanos()
            if now >= deadline { report.timedOut = true; break }
            let count = epoll_wait(epfd, &events, Int32(events.count), again.isEmpty ? 200 : 0)
            if count < 0 && errno != EINTR { throw HarnessError("epoll_wait: \(errnoText())") }
            for e in events.prefix(Int(max(0, count))) {
                if e.data.u64 == UInt64.max {
                    var v: UInt64 = 0
                    _ = read(tfd, &v, 8)
                    let now = monotonicNanos()
                    let stop = stopAt.map { now >= $0 } ?? false
                    for i in halves.indices where !halves[i].closed {
                        if stop && halves[i].requestSent { stopSending(i, now) }
                        pump(i, now, tick: true)
                    }
                    for i in halves.indices { closeIfDone(i) }
                    try openPairs()
                    continue
                }
                let i = Int(e.data.u64)
                guard !halves[i].closed else { continue }
                if e.events & EPOLLOUT.rawValue != 0 {
                    if !halves[i].requestSent {
                        var soError: Int32 = 0
                        var len = socklen_t(4)
                        getsockopt(halves[i].fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                        if soError != 0 {
                            if !halves.contains(where: { $0.requestSent }) {
                                throw HarnessError("cannot connect to \(o.server!): \(errnoText(soError))", exitCode: 2)
                            }
                            fail(i, "connect: \(errnoText(soError))")
                        } else {
                            let l = local(i)
                            let r = requests[l].withUnsafeBytes { Glibc.send(halves[i].fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                            if r != requests[l].count { fail(i, "RequestRelay not sent whole: \(r < 0 ? errnoText() : String(r))") }
                            halves[i].requestSent = true
                            requestsSent[l] += 1
                            if requestsSent[l] == 2 { pairStart[l] = monotonicNanos() }
                        }
                    }
                    halves[i].writable = true
                    pump(i, monotonicNanos(), tick: false)
                }
                if e.events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                    drain(i)
                }
                closeIfDone(i)
                closeIfDone(i ^ 1)
            }
            if !again.isEmpty {
                let list = again
                again.removeAll(keepingCapacity: true)
                let now = monotonicNanos()
                for i in list {
                    halves[i].queued = false
                    guard !halves[i].closed else { continue }
                    pump(i, now, tick: false)
                    closeIfDone(i)
                }
            }
        }
        let end = max(lastByte, t0 + 1)
        var done = [Int](repeating: 0, count: n)
        for (i, h) in halves.enumerated() {
            report.bytesSent += h.sent
            report.bytesVerified += h.received
            if h.sends && h.sendStopped > 0 && paired(local(i)) && h.sendStopped > pairedAt(local(i)) {
                report.sendingSeconds += Double(h.sendStopped - pairedAt(local(i))) / 1e9
            }
            if let f = h.failure { report.failures.append("pair \(h.pair): \(f)") }
            else if h.closed { done[local(i)] += 1 }
            else if report.timedOut { report.failures.append("pair \(h.pair): timed out after sending \(h.sent), receiving \(h.received) B") }
        }
        report.pairsCompleted = done.filter { $0 == 2 }.count
        report.pairsPaired = (0..<n).filter { paired($0) }.count
        report.seconds = Double(end - t0) / 1e9
        report.pairingSeconds = Double(((0..<n).filter { paired($0) }.map { pairedAt($0) }.max() ?? t0) - t0) / 1e9
        return report
    }

    private static func connectTCP(_ address: sockaddr_in, what: String, blocking: Bool) throws(HarnessError) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (blocking ? 0 : Int32(SOCK_NONBLOCK.rawValue)), 0)
        guard fd >= 0 else {
            if errno == EMFILE || errno == ENFILE { throw HarnessError("out of file descriptors (\(errnoText())): use fewer pairs or raise RLIMIT_NOFILE", exitCode: 1) }
            throw HarnessError("socket: \(errnoText())")
        }
        guard withSockaddr(address, { connect(fd, $0, $1) }) == 0 || (!blocking && errno == EINPROGRESS) else {
            let e = errno
            close(fd)
            if e == EADDRNOTAVAIL { throw HarnessError("no local port left to connect to \(what) (\(errnoText(e))): use fewer pairs", exitCode: 1) }
            throw HarnessError("cannot connect to \(what): \(errnoText(e))", exitCode: 2)
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        return fd
    }

    /// Bytes sent before pairing is seen: enough to detect pairing, small enough that the bulk of
    /// the streams does not delay pairing of the others.
    static let preamble = 64
}
