import Glibc
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

/// `rdbench relay`: P pairs through hbbr (§8), or directly connected (`--direct`, the baseline).
///
/// Each half connects to hbbr's TCP port, sends one framed `RequestRelay{uuid, licence_key}` and
/// at once sends the first 64 bytes of its pattern (hbbr keeps bytes sent before pairing and
/// forwards them, §8.3 step 5); the rest of its `bytes` follow once it has received its first
/// byte from the other half, i.e. once pairing is seen. Each half reads exactly `bytes` from the other and checks every
/// byte against the stream it must be. No half-close: hbbr ends a session when either side ends
/// (§8.4), so a half closes only after it has sent and received everything.
///
/// Pairing latency: from the moment the second half's RequestRelay was written to the first byte
/// either half receives from the other (hbbr sends nothing of its own, so that is the first sign
/// of pairing). Pairs/s: pairs over the time from the first connect until every pair has seen its
/// first byte. Throughput: verified bytes (both directions) over the time from the first connect
/// to the last byte.
public struct RelayOptions: Sendable {
    public var server: Endpoint?
    public var pairs: Int
    public var bytes: Int
    public var direct = false
    public var licenceKey = ""
    public var serverPID: Int32?
    public var timeout: Double = 120

    public init(server: Endpoint?, pairs: Int, bytes: Int) {
        self.server = server; self.pairs = pairs; self.bytes = bytes
    }
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
    public var pairing = LatencyRecorder()
    public var server: ServerUsage?

    public var throughputBytesPerSecond: Double { seconds > 0 ? Double(bytesVerified) / seconds : 0 }
    public var pairsPerSecond: Double { pairingSeconds > 0 ? Double(pairsPaired) / pairingSeconds : 0 }
    public var ok: Bool { failures.isEmpty && !timedOut && pairsCompleted == options.pairs }

    public var json: JSON {
        .object([
            ("mode", .string(options.direct ? "relay-direct" : "relay")),
            ("server", options.server.map { .string($0.description) } ?? .null),
            ("pairs", .int(options.pairs)),
            ("bytes_each_way", .int(options.bytes)),
            ("pairs_completed", .int(pairsCompleted)),
            ("pairs_paired", .int(pairsPaired)),
            ("bytes_sent", .int(bytesSent)),
            ("bytes_verified", .int(bytesVerified)),
            ("bytes_expected", .int(options.pairs * options.bytes * 2)),
            ("ok", .bool(ok)),
            ("timed_out", .bool(timedOut)),
            ("failures", .array(failures.prefix(20).map { .string($0) })),
            ("seconds", .double(seconds)),
            ("throughput_bytes_per_s", .double(throughputBytesPerSecond)),
            ("throughput_mib_per_s", .double(throughputBytesPerSecond / 1_048_576)),
            ("pairs_per_s", .double(pairsPerSecond)),
            ("pairing_latency", pairing.json),
            ("server_usage", server.map { $0.json(perUnit: "cpu_seconds_per_gb", units: Double(bytesVerified) / 1e9) } ?? .null),
        ])
    }

    public var table: String {
        var lines = [
            "rdbench relay → \(options.direct ? "direct (local sink, no relay)" : options.server?.description ?? "-")  pairs \(options.pairs) × \(options.bytes) B each way",
            "  completed \(pairsCompleted)/\(options.pairs)  verified \(bytesVerified) B  in \(fmt(seconds, 3)) s = \(fmt(throughputBytesPerSecond / 1_048_576, 1)) MiB/s",
            "  pairing       \(pairing.summary)   \(fmt(pairsPerSecond, 1)) pairs/s",
        ]
        if let s = server {
            let perGB = bytesVerified > 0 ? s.cpuSeconds / (Double(bytesVerified) / 1e9) : 0
            lines.append("  server pid \(s.pid)  cpu \(fmt(s.cpuSeconds, 3)) s (user \(fmt(s.userSeconds, 2)), sys \(fmt(s.systemSeconds, 2)))  = \(fmt(perGB, 3)) cpu-s per GB  peak RSS \(s.peakRSSKiB / 1024) MiB")
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
    var sent = 0
    var received = 0
    var requestSent = false
    var closed = false
    var failure: String?
}

public enum RelayLoad {
    static let chunk = 256 << 10

    public static func run(_ o: RelayOptions) throws(HarnessError) -> RelayReport {
        guard o.pairs > 0, o.bytes >= 0 else { throw HarnessError("--pairs must be positive", exitCode: 64) }
        raiseFileLimit()
        var report = RelayReport(options: o)
        let pattern = PatternBlock(seed: 0x9E37_79B9_7F4A_7C15 ^ UInt64(o.pairs))
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        var halves: [Half] = []
        defer { for h in halves where !h.closed { close(h.fd) } }
        // Pair timing: when the second RequestRelay went out, and the first byte seen.
        var pairStart = [UInt64](repeating: 0, count: o.pairs)
        var firstByte = [UInt64](repeating: 0, count: o.pairs)

        var listener: Int32 = -1
        var sink = sockaddr_in()
        if o.direct {
            listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            sink.sin_family = sa_family_t(AF_INET)
            sink.sin_addr.s_addr = (UInt32(127) << 24 | 1).bigEndian
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            guard withSockaddr(sink, { bind(listener, $0, $1) }) == 0, listen(listener, 1024) == 0,
                  withUnsafeMutablePointer(to: &sink, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }) == 0
            else { throw HarnessError("local sink: \(errnoText())") }
        }
        defer { if listener >= 0 { close(listener) } }

        let cpuBefore = try o.serverPID.map { pid throws(HarnessError) in try ServerSample.read(pid: pid) }
        let t0 = monotonicNanos()
        // Direct: connect and accept pair by pair (pairing latency = connect to accept). Relay: every
        // half starts a non-blocking connect now; the loop sends its RequestRelay once connected.
        var request: [[UInt8]] = []
        for p in 0..<o.pairs {
            if o.direct {
                let started = monotonicNanos()
                let a = try connectTCP(sink, what: "local sink", blocking: true)
                let b = accept(listener, nil, nil)
                guard b >= 0 else { close(a); throw HarnessError("accept: \(errnoText())") }
                let t = monotonicNanos()
                pairStart[p] = t
                firstByte[p] = t
                report.pairing.record(nanos: t - started)
                halves.append(Half(fd: a, pair: p, sendStart: pattern.start(pair: p, role: 0), receiveStart: pattern.start(pair: p, role: 1), requestSent: true))
                halves.append(Half(fd: b, pair: p, sendStart: pattern.start(pair: p, role: 1), receiveStart: pattern.start(pair: p, role: 0), requestSent: true))
            } else {
                request.append(try! FrameCodec.frame(RendezvousMessage.requestRelay(
                    .init(id: "", uuid: "rdbench-\(tag)-\(p)", licenceKey: o.licenceKey)).serializedBytes()))
                for role in 0..<2 {
                    let fd = try connectTCP(o.server!.sockaddr, what: o.server!.description, blocking: false)
                    halves.append(Half(fd: fd, pair: p, sendStart: pattern.start(pair: p, role: role), receiveStart: pattern.start(pair: p, role: 1 - role)))
                }
            }
        }
        var requestsSent = [Int](repeating: 0, count: o.pairs)
        for h in halves { _ = fcntl(h.fd, F_SETFL, fcntl(h.fd, F_GETFL) | O_NONBLOCK) }

        // One thread, poll(2) over every half.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        let deadline = t0 + UInt64(o.timeout * 1e9)
        var lastByte = t0
        var fds: [pollfd] = []
        var index: [Int] = []
        while true {
            fds.removeAll(keepingCapacity: true)
            index.removeAll(keepingCapacity: true)
            for i in halves.indices where !halves[i].closed {
                var events = Int16(POLLIN)
                if halves[i].sent < sendLimit(halves[i], o.bytes) || !halves[i].requestSent { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: halves[i].fd, events: events, revents: 0))
                index.append(i)
            }
            if fds.isEmpty { break }
            let now = monotonicNanos()
            if now >= deadline { report.timedOut = true; break }
            let r = poll(&fds, nfds_t(fds.count), Int32(min(1000, (deadline - now) / 1_000_000 + 1)))
            if r < 0 && errno != EINTR { throw HarnessError("poll: \(errnoText())") }
            for k in fds.indices where fds[k].revents != 0 {
                let i = index[k]
                let ev = fds[k].revents
                if ev & Int16(POLLOUT) != 0 && !halves[i].requestSent {
                    // Connected (or failed): send the framed RequestRelay, then the stream.
                    let p = halves[i].pair
                    var soError: Int32 = 0
                    var len = socklen_t(4)
                    getsockopt(halves[i].fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                    if soError != 0 {
                        if report.failures.isEmpty && !halves.contains(where: { $0.requestSent }) {
                            throw HarnessError("cannot connect to \(o.server!): \(errnoText(soError))", exitCode: 2)
                        }
                        halves[i].failure = "connect: \(errnoText(soError))"
                    } else {
                        let r = request[p].withUnsafeBytes { Glibc.send(halves[i].fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                        if r != request[p].count { halves[i].failure = "RequestRelay not sent whole: \(r < 0 ? errnoText() : String(r))" }
                        halves[i].requestSent = true
                        requestsSent[p] += 1
                        if requestsSent[p] == 2 { pairStart[p] = monotonicNanos() }
                    }
                }
                if ev & Int16(POLLOUT) != 0 && halves[i].requestSent && halves[i].failure == nil { send(&halves[i], pattern, total: o.bytes) }
                if ev & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let before = halves[i].received
                    receive(&halves[i], buffer, pattern, total: o.bytes)
                    if halves[i].received > before {
                        let t = monotonicNanos()
                        lastByte = t
                        let p = halves[i].pair
                        if firstByte[p] == 0 && pairStart[p] != 0 {
                            firstByte[p] = t
                            report.pairing.record(nanos: t > pairStart[p] ? t - pairStart[p] : 0)
                        }
                    }
                }
                let h = halves[i]
                if h.failure != nil || (h.sent == o.bytes && h.received == o.bytes) {
                    close(h.fd)
                    halves[i].closed = true
                }
            }
        }
        let end = max(lastByte, t0 + 1)
        if let before = cpuBefore, let pid = o.serverPID {
            report.server = ServerUsage(pid: pid, before: before, after: try ServerSample.read(pid: pid))
        }
        var done = [Int](repeating: 0, count: o.pairs)
        for h in halves {
            report.bytesSent += h.sent
            report.bytesVerified += h.received
            if let f = h.failure { report.failures.append("pair \(h.pair): \(f)") }
            else if h.sent == o.bytes && h.received == o.bytes { done[h.pair] += 1 }
            else if report.timedOut { report.failures.append("pair \(h.pair): timed out after sending \(h.sent), receiving \(h.received) B") }
        }
        report.pairsCompleted = done.filter { $0 == 2 }.count
        report.pairsPaired = firstByte.filter { $0 != 0 }.count
        report.seconds = Double(end - t0) / 1e9
        report.pairingSeconds = Double((firstByte.filter { $0 != 0 }.max() ?? t0) - t0) / 1e9
        if o.bytes == 0 { report.pairsCompleted = o.pairs }
        return report
    }

    private static func connectTCP(_ address: sockaddr_in, what: String, blocking: Bool) throws(HarnessError) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (blocking ? 0 : Int32(SOCK_NONBLOCK.rawValue)), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errnoText())") }
        guard withSockaddr(address, { connect(fd, $0, $1) }) == 0 || (!blocking && errno == EINPROGRESS) else {
            let e = errno
            close(fd)
            throw HarnessError("cannot connect to \(what): \(errnoText(e))", exitCode: 2)
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        return fd
    }

    /// Bytes sent before pairing is seen. Until a half has received its first byte from the other
    /// (which proves pairing), it sends only this much, so the bulk of the streams does not delay
    /// pairing (the generator is one thread) and the pairing latency is not the generator's.
    static let preamble = 64

    fileprivate static func sendLimit(_ h: Half, _ total: Int) -> Int { h.received > 0 ? total : min(total, preamble) }

    private static func send(_ h: inout Half, _ pattern: PatternBlock, total fullTotal: Int) {
        var moved = 0
        let total = sendLimit(h, fullTotal)
        while h.sent < total && h.failure == nil && moved < 4 * chunk {
            let at = (h.sendStart + h.sent) % pattern.length
            let n = min(total - h.sent, pattern.length - at, chunk)
            let r = Glibc.send(h.fd, pattern.block.baseAddress! + at, n, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if r < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return }
                h.failure = "send after \(h.sent) B: \(errnoText())"
                return
            }
            h.sent += r
            moved += r
        }
    }

    private static func receive(_ h: inout Half, _ buffer: UnsafeMutableRawBufferPointer, _ pattern: PatternBlock, total: Int) {
        var moved = 0
        while h.failure == nil && moved < 4 * chunk {
            let r = recv(h.fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            if r < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return }
                h.failure = "recv after \(h.received) B: \(errnoText())"
                return
            }
            if r == 0 {
                if h.received < total { h.failure = "closed after \(h.received) of \(total) B" }
                return
            }
            if h.received + r > total { h.failure = "received \(h.received + r) B, more than \(total)"; return }
            if !pattern.matches(UnsafeRawBufferPointer(rebasing: buffer[..<r]), start: h.receiveStart, offset: h.received) {
                h.failure = "bytes \(h.received)..<\(h.received + r) do not match the pattern"
                return
            }
            h.received += r
            moved += r
        }
    }
}
