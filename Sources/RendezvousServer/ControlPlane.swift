import Glibc
import Rendezvous
import RustDeskProtocol
import ServerConfig
import ServerKit
import Synchronization
import URing

/// Background duties of hbbs that are not on the data path: the UDP self-test watchdog (§1.4) and
/// the relay health checks (§7.3). Plain threads; they only send a datagram a second or open a
/// few TCP probes every 3 s.
final class ControlPlane: @unchecked Sendable {
    let options: HbbsOptions
    let relays: RelaySelector
    let running = Atomic<Bool>(true)
    var threads: [pthread_t] = []

    /// More than this many whole seconds without a reply fails the self-test (upstream: 12).
    static let selfTestTimeoutSeconds: Int = 12
    static let healthCheckIntervalSeconds: Int = 3
    static let probeTimeout: Duration = .seconds(3)

    init(options: HbbsOptions, relays: RelaySelector) {
        self.options = options
        self.relays = relays
    }

    func start() {
        if options.selfTest != .disabled { spawn { $0.runSelfTest() } }
        spawn { $0.runHealthChecks() }
    }

    func stop() {
        running.store(false, ordering: .relaxed)
        for t in threads { pthread_join(t, nil) }
        threads = []
    }

    private func spawn(_ body: @escaping (ControlPlane) -> Void) {
        final class Box { let plane: ControlPlane; let body: (ControlPlane) -> Void; init(_ p: ControlPlane, _ b: @escaping (ControlPlane) -> Void) { plane = p; body = b } }
        let box = Unmanaged.passRetained(Box(self, body)).toOpaque()
        var t = pthread_t()
        if pthread_create(&t, nil, { raw in
            let b = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            b.body(b.plane)
            return nil
        }, box) == 0 {
            threads.append(t)
        } else {
            Unmanaged<Box>.fromOpaque(box).release()
        }
    }

    /// Sleeps up to `seconds`, waking early when stopping; false when stopping.
    private func pause(seconds: Int) -> Bool {
        for _ in 0..<(seconds * 10) {
            if !running.load(ordering: .relaxed) { return false }
            usleep(100_000)
        }
        return running.load(ordering: .relaxed)
    }

    /// §1.4: RegisterPeer `(:test_hbbs:)` to our own UDP port every second; more than 12 whole
    /// seconds without a parseable reply ends the process with status 1 (a supervisor restarts it).
    /// A failure against an unspecified target's IPv6 loopback is retried once against 127.0.0.1.
    func runSelfTest() {
        var targets: [SocketEndpoint] = []
        switch options.selfTest {
        case .disabled: return
        case .mainListener:
            let port = options.port
            if let bind = options.bindAddress, !bind.octets.allSatisfy({ $0 == 0 }) {
                targets = [bind.isIPv4 ? SocketEndpoint(ipv4: bind.octets.reduce(0) { $0 << 8 | UInt32($1) }, port: port) : SocketEndpoint(ipv6: bind.octets, port: port)]
            } else {
                targets = [SocketEndpoint(ipv6: Array(repeating: 0, count: 15) + [1], port: port), .loopbackV4(port: port)]
            }
        case .address(let a):
            let unspecified = a.ip.octets.allSatisfy { $0 == 0 }
            if a.ip.isIPv4 {
                targets = [SocketEndpoint(ipv4: unspecified ? 0x7F00_0001 : a.ip.octets.reduce(0) { $0 << 8 | UInt32($1) }, port: a.port)]
            } else {
                targets = [SocketEndpoint(ipv6: unspecified ? Array(repeating: 0, count: 15) + [1] : a.ip.octets, port: a.port)]
                if unspecified { targets.append(.loopbackV4(port: a.port)) }
            }
        }
        let request = RendezvousMessage.registerPeer(RegisterPeer(id: "(:test_hbbs:)")).serializedBytes()
        for (attempt, target) in targets.enumerated() {
            if selfTest(target, request) { return } // stopped
            if attempt + 1 < targets.count { Log.warn("self-test against \(target) failed; retrying against \(targets[attempt + 1])"); continue }
            Log.error("self-test failed: no reply from our own UDP port \(target) for more than \(Self.selfTestTimeoutSeconds) s; exiting so that a supervisor restarts hbbs (disable with TEST_HBBS=no)")
            exit(1)
        }
    }

    /// Runs the self-test against one target until it fails (false) or the server stops (true).
    private func selfTest(_ target: SocketEndpoint, _ request: [UInt8]) -> Bool {
        let fd = socket(target.family, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var lastReply = monotonicSeconds()
        var buf = [UInt8](repeating: 0, count: 256)
        while running.load(ordering: .relaxed) {
            _ = try? target.withSockaddr { (sa, len) throws(Errno) in
                request.withUnsafeBytes { _ = sendto(fd, $0.baseAddress, $0.count, 0, sa, len) }
            }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0, (try? RendezvousMessage(serializedBytes: Array(buf[..<n]))) != nil { lastReply = monotonicSeconds() }
            if monotonicSeconds() - lastReply > Self.selfTestTimeoutSeconds { return false }
            if n > 0 { _ = pause(seconds: 1) }
        }
        return true
    }

    /// §7.3: every 3 s, when more than one relay is configured, probe each by TCP (3 s timeout);
    /// if any answers, the active list becomes the reachable ones.
    func runHealthChecks() {
        while pause(seconds: Self.healthCheckIntervalSeconds) {
            let configured = relays.configured
            guard configured.count > 1 else { continue }
            let reachable = Mutex<[String]>([])
            DispatchlessParallel.run(configured.count) { i in
                let entry = configured[i]
                if Self.probe(RelaySelector.probeTarget(entry)) { reachable.withLock { $0.append(entry) } }
            }
            let ok = reachable.withLock { $0 }
            if !ok.isEmpty && ok != relays.active {
                relays.setActive(ok)
                Log.info("reachable relay servers: \(ok.joined(separator: ", "))")
            }
        }
    }

    static func probe(_ target: String) -> Bool {
        guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else { return false }
        var host = String(target[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let addresses = try? Resolver.addresses(forHost: host), let first = addresses.first else { return false }
        return (try? BlockingConnect.connectAndClose(to: first, port: port, timeout: probeTimeout)) != nil
    }
}

func monotonicSeconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec
}

/// Runs `body(i)` for `0..<count` on that many threads and joins them (control plane only).
enum DispatchlessParallel {
    static func run(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        final class Box: @unchecked Sendable { let i: Int; let body: @Sendable (Int) -> Void; init(_ i: Int, _ b: @escaping @Sendable (Int) -> Void) { self.i = i; body = b } }
        var threads: [pthread_t] = []
        for i in 0..<count {
            var t = pthread_t()
            let box = Unmanaged.passRetained(Box(i, body)).toOpaque()
            if pthread_create(&t, nil, { raw in
                let b = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                b.body(b.i)
                return nil
            }, box) == 0 { threads.append(t) } else { Unmanaged<Box>.fromOpaque(box).release(); body(i) }
        }
        for t in threads { pthread_join(t, nil) }
    }
}
