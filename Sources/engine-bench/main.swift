import Glibc
import URing

// engine-bench: the io_uring engine measured against plain baselines in the same run
// (docs/PERFORMANCE.md, "Engine and servers"). Loopback only; every run stops by itself.

let usage = """
    usage: engine-bench udp   [--requests N] [--clients C] [--workers W] [--window K] [--rounds R] [--timeout S] [--pin] [--json]
           engine-bench relay [--pairs P] [--bytes B] [--mode splice|buffered|direct|all] [--workers W]
                              [--buffer-size B] [--pipe-size B] [--pipes N] [--rounds R] [--timeout S] [--pin] [--json]

           engine-bench registry [--peers N] [--json]
           engine-bench serve-udp --port P [--bind IPV4] [--threads N] [--mode recvmmsg]

    serve-udp  the bare baseline for `rdbench compare`: answers every RegisterPeer datagram with the
           constant RegisterPeerResponse `3A 00` and every RegisterPk with RegisterPkResponse OK from a
           plain recvmmsg/sendmmsg loop (one thread per SO_REUSEPORT socket, default 1), no registry
           behind it, until SIGINT/SIGTERM. Prints "listening on HOST:PORT" on stderr when ready.

    registry  N peers through hbbs's registration rules (RegisterPk, then RegisterPeer): heap bytes
           per registered peer and ns per operation, single-threaded (default 1000000).
    udp    an io_uring UDP request/response server (multishot recvmsg, provided buffers, sendmsg from
           slots) and then a blocking recvmmsg/sendmmsg server (batch 64), each answering N requests
           from C client threads; server CPU seconds per million requests and the ratio.
           Defaults: 2000000 requests, 4 clients, window 32 per client, 1 server thread.
    relay  P pairs moving B bytes each way: directly (client to sink), then through a relay on the
           engine with SplicePump and/or BufferedPump; throughput, ratio to direct, relay CPU s/GB.
           The direct baseline always runs first. Defaults: 1 pair, 1G, all modes, 1 worker,
           64K buffers, 1M pipes, 64 pipes per worker.
    Sizes take K, M, G (binary). --timeout bounds each phase (default 120 s). --pin pins server
    threads (io_uring workers and baseline threads alike) to the allowed CPUs.
    """

struct UsageError: Error { var message: String }

func parseCount(_ s: String) -> Int? {
    Int(s.filter { $0 != "_" && $0 != "," })
}

func parseSize(_ s: String) -> Int? {
    guard let last = s.last else { return nil }
    let shifts: [Character: Int] = ["k": 10, "K": 10, "m": 20, "M": 20, "g": 30, "G": 30]
    if let shift = shifts[last] { return parseCount(String(s.dropLast())).map { $0 << shift } }
    return parseCount(s)
}

/// Flags as (name → value); `--pin` and `--json` take none.
func parseFlags(_ args: ArraySlice<String>, allowed: Set<String>) throws(UsageError) -> [String: String] {
    var out: [String: String] = [:]
    var i = args.startIndex
    while i < args.endIndex {
        let a = args[i]
        guard a.hasPrefix("--"), allowed.contains(a) else { throw UsageError(message: "unknown option \(a)") }
        if a == "--pin" || a == "--json" {
            out[a] = ""
            i += 1
            continue
        }
        guard i + 1 < args.endIndex else { throw UsageError(message: "\(a) needs a value") }
        out[a] = args[i + 1]
        i += 2
    }
    return out
}

func value<T>(_ flags: [String: String], _ name: String, _ parse: (String) -> T?, positive: Bool = true) throws(UsageError) -> T? {
    guard let text = flags[name] else { return nil }
    guard let v = parse(text) else { throw UsageError(message: "\(name): cannot read \(text)") }
    if positive, let n = v as? Int, n <= 0 { throw UsageError(message: "\(name) must be positive") }
    return v
}

func write(_ text: String, to fd: Int32) {
    var bytes = Array((text + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { return }
        off += n
    }
}

func runUDP(_ args: ArraySlice<String>) throws -> Bool {
    let flags = try parseFlags(args, allowed: ["--requests", "--clients", "--workers", "--window", "--rounds", "--timeout", "--pin", "--json"])
    var o = UDPOptions()
    if let v = try value(flags, "--requests", parseCount) { o.requests = v }
    if let v = try value(flags, "--clients", parseCount) { o.clients = v }
    if let v = try value(flags, "--workers", parseCount) { o.workers = v }
    if let v = try value(flags, "--window", parseCount) { o.window = v }
    if let v = try value(flags, "--rounds", parseCount) { o.rounds = v }
    if let v = try value(flags, "--timeout", Double.init) { o.timeoutSeconds = v }
    o.pin = flags["--pin"] != nil
    var machine = MachineState.now()
    let rounds = try UDPBench.run(o)
    machine.loadAfter = MachineState.loadAverage()
    write(flags["--json"] != nil ? UDPReport.json(o, rounds, machine).text : UDPReport.text(o, rounds, machine), to: 1)
    return rounds.allSatisfy { $0.uring.clean && $0.baseline.clean }
}

func runRelay(_ args: ArraySlice<String>) throws -> Bool {
    let flags = try parseFlags(args, allowed: ["--pairs", "--bytes", "--mode", "--workers", "--buffer-size", "--pipe-size", "--pipes",
                                               "--rounds", "--timeout", "--pin", "--json"])
    var o = RelayOptions()
    if let v = try value(flags, "--pairs", parseCount) { o.pairs = v }
    if let v = try value(flags, "--bytes", parseSize) { o.bytes = v }
    if let v = try value(flags, "--workers", parseCount) { o.workers = v }
    if let v = try value(flags, "--buffer-size", parseSize) { o.bufferSize = v }
    if let v = try value(flags, "--pipe-size", parseSize) { o.pool.pipeSize = v }
    if let v = try value(flags, "--pipes", parseCount) { o.pool.maximumPipes = v }
    if let v = try value(flags, "--rounds", parseCount) { o.rounds = v }
    if let v = try value(flags, "--timeout", Double.init) { o.timeoutSeconds = v }
    o.pin = flags["--pin"] != nil
    switch flags["--mode"] ?? "all" {
    case "all": o.modes = [.direct, .splice, .buffered]
    case "direct": o.modes = [.direct]
    case "splice": o.modes = [.direct, .splice]
    case "buffered": o.modes = [.direct, .buffered]
    case let m: throw UsageError(message: "--mode: unknown mode \(m)")
    }
    var machine = MachineState.now()
    let rounds = try RelayBench.run(o)
    machine.loadAfter = MachineState.loadAverage()
    write(flags["--json"] != nil ? RelayReport.json(o, rounds, machine).text : RelayReport.text(o, rounds, machine), to: 1)
    return rounds.allSatisfy { $0.phases.allSatisfy(\.clean) }
}

func runServeUDP(_ args: ArraySlice<String>) throws -> Bool {
    let flags = try parseFlags(args, allowed: ["--port", "--bind", "--threads", "--mode"])
    guard let port = try value(flags, "--port", { UInt16($0) }) else { throw UsageError(message: "--port P is required") }
    let threads = try value(flags, "--threads", parseCount) ?? 1
    guard (flags["--mode"] ?? "recvmmsg") == "recvmmsg" else { throw UsageError(message: "--mode: only recvmmsg") }
    var address = in_addr()
    let host = flags["--bind"] ?? "127.0.0.1"
    guard inet_pton(AF_INET, host, &address) == 1 else { throw UsageError(message: "--bind: not an IPv4 address: \(host)") }
    var options = SocketOptions()
    options.receiveBufferSize = 4 << 20
    var fds: [Int32] = []
    for _ in 0..<threads {
        fds.append(try Socket.udp(SocketEndpoint(ipv4: UInt32(bigEndian: address.s_addr), port: port), options: options))
    }
    // Signals are taken by sigwait on this thread; the server threads inherit the blocked mask.
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &signals, nil)
    let server = MmsgUDPServer(fds: fds, pinTo: nil, answers: .rendezvousConstant)
    write("engine-bench serve-udp: listening on \(host):\(port) (recvmmsg, \(threads) thread\(threads == 1 ? "" : "s"))", to: 2)
    var signal: Int32 = 0
    sigwait(&signals, &signal)
    server.stop()
    let t = server.board.totals
    write("engine-bench serve-udp: served \(t.served), ignored \(t.invalid), send failures \(t.sendFailures)", to: 2)
    return true
}

let arguments = CommandLine.arguments
do {
    let clean: Bool
    switch arguments.count > 1 ? arguments[1] : "" {
    case "udp": clean = try runUDP(arguments.dropFirst(2))
    case "relay": clean = try runRelay(arguments.dropFirst(2))
    case "registry": clean = try runRegistry(arguments.dropFirst(2))
    case "serve-udp": clean = try runServeUDP(arguments.dropFirst(2))
    case "-h", "--help", "help":
        write(usage, to: 1)
        exit(0)
    default:
        write(usage, to: 2)
        exit(2)
    }
    // 1: the run finished but something was lost, wrong or timed out (see the report).
    exit(clean ? 0 : 1)
} catch let e as UsageError {
    write("engine-bench: \(e.message)\n\n" + usage, to: 2)
    exit(2)
} catch {
    write("engine-bench: \(error)", to: 2)
    exit(3)
}
