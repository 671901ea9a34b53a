import Glibc
import URing

/// A JSON value for `--json` (written by hand: the target needs no Foundation).
indirect enum JSON {
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    var text: String {
        switch self {
        case .number(let x): return x.isFinite ? fixed(x, 6) : "null"
        case .integer(let i): return String(i)
        case .string(let s): return quoted(s)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.map { quoted($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    private func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// `x` with exactly `decimals` digits after the point.
func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "—" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    let sign = x < 0 && scaled != 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(whole) }
    let f = String(fraction)
    return sign + String(whole) + "." + String(repeating: "0", count: decimals - f.count) + f
}

/// A plain-text table with right-aligned columns (the first left-aligned).
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return c == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ")
    }
    return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
}

/// The machine as the run saw it: the figures mean little without the load next to them.
struct MachineState {
    var kernel: String
    var allowedCPUs: Int
    var loadBefore: String
    var loadAfter = ""
    var startedUTC: String
    var build: String

    static func now() -> MachineState {
        var u = utsname()
        uname(&u)
        let kernel = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        return MachineState(kernel: kernel, allowedCPUs: (try? Affinity.allowedCPUs().count) ?? 0,
                            loadBefore: loadAverage(), startedUTC: utcTimestamp(), build: build)
    }

    static func loadAverage() -> String {
        (readSmallFile("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func utcTimestamp() -> String {
        var t = time(nil)
        var tm = tm()
        gmtime_r(&t, &tm)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &tm)
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var json: JSON {
        .object([("kernel", .string(kernel)), ("allowed_cpus", .integer(allowedCPUs)), ("load_average_before", .string(loadBefore)),
                 ("load_average_after", .string(loadAfter)), ("started_utc", .string(startedUTC)), ("build", .string(build))])
    }

    var text: String {
        "machine: \(allowedCPUs) CPUs allowed, kernel \(kernel), \(build) build, started \(startedUTC)\n"
            + "load average (1/5/15 min): \(loadBefore) before, \(loadAfter) after"
    }
}

extension PhaseCPU {
    /// "seconds (threads)", with the workers that exited before the end of the phase.
    var ioWorkerText: String {
        fixed(ioWorkerSeconds, 2) + " (\(ioWorkerThreads)" + (ioWorkersExited > 0 ? ", \(ioWorkersExited) exited)" : ")")
    }

    var json: JSON {
        .object([
            ("server_thread_seconds", .number(serverSeconds)),
            ("server_user_seconds", .number(serverUserSeconds)),
            ("server_system_seconds", .number(serverSystemSeconds)),
            ("io_wq_seconds", .number(ioWorkerSeconds)),
            ("io_wq_threads", .integer(ioWorkerThreads)),
            ("io_wq_exited", .integer(ioWorkersExited)),
            ("other_io_wq_seconds", .number(otherIoWorkerSeconds)),
            ("process_seconds", .number(processSeconds)),
            ("ksoftirqd_seconds_system_wide", .number(softirqThreadSeconds)),
        ])
    }
}

enum UDPReport {
    static func text(_ o: UDPOptions, _ rounds: [UDPRound], _ machine: MachineState) -> String {
        var rows: [[String]] = []
        for (i, r) in rounds.enumerated() {
            for p in [r.uring, r.baseline] {
                rows.append([String(i + 1), p.server, fixed(p.requestsPerSecond / 1000, 1), fixed(p.wallSeconds, 2),
                             String(p.served), String(p.clients.lost), fixed(p.cpu.serverSeconds, 2),
                             fixed(p.cpu.serverUserSeconds, 2) + "/" + fixed(p.cpu.serverSystemSeconds, 2),
                             p.cpu.ioWorkerText, fixed(p.cpuSecondsPerMillion, 3),
                             fixed(p.generatorSeconds, 2), fixed(p.restSeconds, 2), fixed(p.cpu.softirqThreadSeconds, 2),
                             p.clean ? "yes" : "NO"])
            }
        }
        var out = "engine-bench udp: \(o.requests) requests of \(UDPWire.request.count) bytes, \(o.clients) clients (window \(o.window)), "
            + "\(o.workers) server thread\(o.workers == 1 ? "" : "s")\(o.pin ? " (pinned)" : "")\n" + machine.text + "\n\n"
        out += table(["round", "server", "k req/s", "wall s", "served", "lost", "thread CPU s", "user/sys s", "io-wq s (threads)",
                      "CPU s per M req", "clients CPU s", "other CPU s", "ksoftirqd s", "clean"], rows)
        out += "\n\n"
        for (i, r) in rounds.enumerated() {
            out += "round \(i + 1): io_uring ÷ recvmmsg: CPU per request \(fixed(r.cpuRatio, 3)), requests/s \(fixed(r.throughputRatio, 3))\n"
        }
        out += "CPU = the server's threads (per-thread CPU clocks; io_uring completion work the kernel runs in the worker's\n"
            + "context is in its system time) + its io-wq workers (iou-wrk-<tid>, sampled). other = the rest of this process\n"
            + "(main and sampler threads, unsampled io-wq tails); ksoftirqd = deferred network work, system-wide, in no figure."
        return out
    }

    static func json(_ o: UDPOptions, _ rounds: [UDPRound], _ machine: MachineState) -> JSON {
        func phase(_ p: UDPPhaseResult) -> JSON {
            .object([
                ("server", .string(p.server)), ("threads", .integer(p.threads)),
                ("requests_sent", .integer(p.clients.sent)), ("replies", .integer(p.clients.replies)),
                ("served", .integer(p.served)), ("lost", .integer(p.clients.lost)), ("late", .integer(p.clients.late)),
                ("bad_replies", .integer(p.clients.badReplies)), ("client_errors", .integer(p.clients.errors)),
                ("invalid", .integer(p.invalid)), ("server_send_failures", .integer(p.serverSendFailures)),
                ("send_pool_exhausted", .integer(p.sendPoolExhausted)), ("receive_rearms", .integer(p.receiveRearms)),
                ("timed_out", .bool(p.clients.timedOut)), ("wall_seconds", .number(p.wallSeconds)),
                ("requests_per_second", .number(p.requestsPerSecond)),
                ("server_cpu_seconds_per_million", .number(p.cpuSecondsPerMillion)),
                ("cpu", p.cpu.json), ("clients_cpu_seconds", .number(p.generatorSeconds)),
                ("rest_of_process_cpu_seconds", .number(p.restSeconds)), ("clean", .bool(p.clean)),
            ])
        }
        return .object([
            ("command", .string("udp")),
            ("parameters", .object([("requests", .integer(o.requests)), ("clients", .integer(o.clients)), ("workers", .integer(o.workers)),
                                    ("window", .integer(o.window)), ("reply_timeout_ms", .integer(o.replyTimeoutMillis)),
                                    ("request_bytes", .integer(UDPWire.request.count)), ("reply_bytes", .integer(UDPWire.reply.count)),
                                    ("recvmmsg_batch", .integer(MmsgUDPServer.batch)), ("pinned", .bool(o.pin))])),
            ("machine", machine.json),
            ("rounds", .array(rounds.map { r in
                .object([("io_uring", phase(r.uring)), ("recvmmsg", phase(r.baseline)),
                         ("cpu_per_request_ratio", .number(r.cpuRatio)), ("throughput_ratio", .number(r.throughputRatio))])
            })),
        ])
    }
}

enum RelayReport {
    static func text(_ o: RelayOptions, _ rounds: [RelayRound], _ machine: MachineState) -> String {
        var rows: [[String]] = []
        for (i, r) in rounds.enumerated() {
            for p in r.phases {
                let relay = p.relay != nil
                rows.append([String(i + 1), p.mode.rawValue, fixed(p.gigabytesPerSecond, 3),
                             r.throughputRatio(p).map { fixed($0, 3) } ?? "1", fixed(p.wallSeconds, 2),
                             relay ? fixed(p.cpu.serverSeconds, 2) : "—",
                             relay ? p.cpu.ioWorkerText : "—",
                             p.relayCPUSecondsPerGB.map { fixed($0, 3) } ?? "—",
                             fixed(p.generatorSeconds, 2), fixed(p.restSeconds, 2), fixed(p.cpu.softirqThreadSeconds, 2),
                             p.relay.map { String($0.poolRefusals) } ?? "—",
                             p.clean ? "yes" : "NO"])
            }
        }
        let each = o.bytes >= 1 << 30 && o.bytes % (1 << 30) == 0 ? "\(o.bytes >> 30) GiB" : "\(o.bytes >> 20) MiB"
        var out = "engine-bench relay: \(o.pairs) pair\(o.pairs == 1 ? "" : "s") × \(each) each way, \(o.workers) relay worker\(o.workers == 1 ? "" : "s")"
            + "\(o.pin ? " (pinned)" : ""), buffered pump \(o.bufferSize >> 10) KiB, pipes \(o.pool.pipeSize >> 10) KiB × ≤\(o.pool.maximumPipes) per worker\n"
            + machine.text + "\n\n"
        out += table(["round", "mode", "GB/s", "÷ direct", "wall s", "worker CPU s", "io-wq CPU s (threads)", "relay CPU s/GB",
                      "generator CPU s", "other CPU s", "ksoftirqd s", "copy fallbacks", "verified"], rows)
        out += "\n\nGB/s = payload delivered in both directions ÷ wall time (1 GB = 10⁹ bytes). Relay CPU = its worker threads\n"
            + "+ their io-wq workers (iou-wrk-<worker tid>: where io_uring runs every splice), sampled every 20 ms. other = the\n"
            + "rest of this process; ksoftirqd = deferred network work, system-wide, in no figure. copy fallbacks = chunks\n"
            + "a splice direction copied through a buffer because every pipe of the worker's pool was lent.\n"
        for p in rounds.flatMap(\.phases) where !p.clean {
            var reasons = Array(p.failures.prefix(5))
            if p.clients.timedOut || p.sinks.timedOut { reasons.insert("timed out", at: 0) }
            if reasons.isEmpty { reasons = ["\(p.bytesDelivered) of \(2 * p.pairs * p.bytesEachWay) bytes delivered"] }
            out += "\(p.mode.rawValue): NOT CLEAN: " + reasons.joined(separator: "; ") + "\n"
        }
        return out
    }

    static func json(_ o: RelayOptions, _ rounds: [RelayRound], _ machine: MachineState) -> JSON {
        func phase(_ p: RelayPhaseResult, _ r: RelayRound) -> JSON {
            var fields: [(String, JSON)] = [
                ("mode", .string(p.mode.rawValue)), ("pairs", .integer(p.pairs)), ("bytes_each_way", .integer(p.bytesEachWay)),
                ("bytes_delivered", .integer(p.bytesDelivered)), ("wall_seconds", .number(p.wallSeconds)),
                ("gigabytes_per_second", .number(p.gigabytesPerSecond)),
                ("ratio_to_direct", r.throughputRatio(p).map { .number($0) } ?? .null),
                ("relay_cpu_seconds_per_gb", p.relayCPUSecondsPerGB.map { .number($0) } ?? .null),
                ("cpu", p.cpu.json), ("generator_cpu_seconds", .number(p.generatorSeconds)),
                ("rest_of_process_cpu_seconds", .number(p.restSeconds)),
                ("pairs_verified", .integer(min(p.clients.completed, p.sinks.completed))),
                ("timed_out", .bool(p.clients.timedOut || p.sinks.timedOut)),
                ("failures", .array(p.failures.map { .string($0) })), ("clean", .bool(p.clean)),
            ]
            if let s = p.relay {
                fields.append(("relay", .object([
                    ("pairs_completed", .integer(s.pairsCompleted)), ("pairs_failed", .integer(s.pairsFailed)),
                    ("bytes_forwarded", .integer(Int(s.bytesForwarded))), ("copy_fallbacks", .integer(s.poolRefusals)),
                    ("undersized_pipes", .integer(s.undersizedPipes)), ("discarded_pipes", .integer(s.discardedPipes)),
                    ("peak_pipes_open", .integer(s.peakPipesOpen)),
                ])))
            }
            return .object(fields)
        }
        return .object([
            ("command", .string("relay")),
            ("parameters", .object([("pairs", .integer(o.pairs)), ("bytes_each_way", .integer(o.bytes)), ("workers", .integer(o.workers)),
                                    ("modes", .array(o.modes.map { .string($0.rawValue) })), ("buffer_size", .integer(o.bufferSize)),
                                    ("pipe_size", .integer(o.pool.pipeSize)), ("max_pipes_per_worker", .integer(o.pool.maximumPipes)),
                                    ("pinned", .bool(o.pin))])),
            ("machine", machine.json),
            ("rounds", .array(rounds.map { r in .array(r.phases.map { phase($0, r) }) })),
        ])
    }
}
