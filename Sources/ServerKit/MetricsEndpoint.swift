import CoreMetrics
import Glibc
import Prometheus
import ServerConfig
import Synchronization
import URing
import Workers

/// `--metrics ADDR:PORT`: a small blocking HTTP/1.1 server on its own thread, off the data path.
/// `GET /metrics` runs the server's collector (which reads the workers' counters and publishes
/// them into the Prometheus registry) and answers the text exposition format; `GET /health`
/// answers `200 {"status":"ok",…}` while serving and `503 {"status":"stopping"}` once a stop
/// signal arrived. One request per connection, each bounded: 8 KiB head, 2 s per read and 5 s in
/// all, `Connection: close`. Connections are served one at a time.
public final class MetricsEndpoint: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The address bound (the port is the real one when 0 was asked for).
    public let endpoint: SocketEndpoint
    let server: String
    let listener: Int32
    let running = Atomic<Bool>(true)
    let stopping = Atomic<Bool>(false)
    let startedAt = monotonicNanos()
    private var thread: pthread_t?
    private var collect: @Sendable () -> Void = {}

    static let readTimeoutSeconds = 2
    static let requestDeadlineNanos: UInt64 = 5_000_000_000

    /// Binds `address` (no SO_REUSEPORT: a second process on the same port must fail here).
    /// - Throws: a message naming the address and the errno, for the startup error line.
    public init(address: SocketAddressLiteral, server: String, registry: PrometheusCollectorRegistry) throws(MetricsEndpointError) {
        self.server = server
        self.registry = registry
        var options = SocketOptions()
        options.reusePort = false
        options.backlog = 16
        do {
            let (fd, _) = try bindSocket(port: address.port, bind: address.ip, tcp: true, options: options)
            listener = fd
            endpoint = try Socket.localEndpoint(fd)
        } catch {
            throw MetricsEndpointError(message: "cannot listen for metrics on \(address): \(error)")
        }
    }

    /// Starts serving; `collect` runs on the endpoint's thread before every `/metrics` answer.
    public func start(collect: @escaping @Sendable () -> Void) {
        self.collect = collect
        Self.bootstrapMetricsOnce(registry)
        let box = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        guard pthread_create(&t, nil, { raw in
            let endpoint = Unmanaged<MetricsEndpoint>.fromOpaque(raw!).takeRetainedValue()
            endpoint.serve()
            return nil
        }, box) == 0 else {
            Unmanaged<MetricsEndpoint>.fromOpaque(box).release()
            Log.error("metrics: cannot start the endpoint thread")
            return
        }
        thread = t
    }

    /// From now on `/health` answers 503 (called when a stop signal arrives).
    public func markStopping() { stopping.store(true, ordering: .relaxed) }

    /// Stops the thread (within its 200-ms poll, or after the request being served) and closes
    /// the listener.
    public func stop() {
        markStopping()
        running.store(false, ordering: .relaxed)
        if let thread { pthread_join(thread, nil) }
        thread = nil
        Socket.close(listener)
    }

    /// swift-metrics users in the process (libraries included) report into the same registry.
    static let bootstrapped = Atomic<Bool>(false)
    static func bootstrapMetricsOnce(_ registry: PrometheusCollectorRegistry) {
        guard bootstrapped.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    // MARK: Serving

    func serve() {
        while running.load(ordering: .relaxed) {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 200)
            guard ready > 0 else { continue }
            // accept(2) gives a blocking socket (Linux does not inherit O_NONBLOCK); accept4 is
            // hidden behind _GNU_SOURCE, so CLOEXEC is set after.
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { continue } // EAGAIN (listener is non-blocking), ECONNABORTED, EMFILE…
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var tv = timeval(tv_sec: Self.readTimeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            serveConnection(fd)
            Glibc.close(fd)
        }
    }

    func serveConnection(_ fd: Int32) {
        let deadline = monotonicNanos() + Self.requestDeadlineNanos
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while true {
            switch MetricsHTTP.parse(received) {
            case .request(let method, let path):
                let (status, bytes) = answer(method: method, path: path)
                reply(fd, path: path, status: status, bytes)
                return
            case .malformed:
                reply(fd, status: 400, "bad request")
                return
            case .tooLarge:
                reply(fd, status: 431, "request too large")
                return
            case .incomplete:
                break
            }
            if monotonicNanos() >= deadline {
                reply(fd, status: 408, "request timeout")
                return
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                reply(fd, status: 408, "request timeout")
                return
            }
            if n <= 0 { return }
            received.append(contentsOf: chunk[..<n])
        }
    }

    /// The status and the response to a complete request.
    func answer(method: String, path: String) -> (Int, [UInt8]) {
        guard path == "/metrics" || path == "/health" else { return (404, MetricsHTTP.text(status: 404, "not found")) }
        guard method == "GET" else { return (405, MetricsHTTP.text(status: 405, "method not allowed", extraHeaders: ["Allow: GET"])) }
        if path == "/health" {
            if stopping.load(ordering: .relaxed) { return (503, MetricsHTTP.json(status: 503, #"{"status":"stopping"}"#)) }
            let uptime = (monotonicNanos() - startedAt) / 1_000_000_000
            return (200, MetricsHTTP.json(status: 200, #"{"status":"ok","server":"\#(server)","uptime_seconds":\#(uptime)}"#))
        }
        collect()
        return (200, MetricsHTTP.response(status: 200, contentType: MetricsHTTP.prometheusContentType, body: registry.emitToBuffer()))
    }

    /// Sends a short plain-text answer and counts it.
    func reply(_ fd: Int32, status: Int, _ text: String) {
        reply(fd, path: nil, status: status, MetricsHTTP.text(status: status, text))
    }

    /// Sends a response and counts it (a scrape shows the scrapes before it).
    func reply(_ fd: Int32, path: String?, status: Int, _ bytes: [UInt8]) {
        send(fd, bytes)
        count(path: path, status: status)
    }

    /// `ringdesk_<server>_http_requests_total{path,status}` through the swift-metrics API (the
    /// factory bootstrapped in `start` puts it into this registry).
    func count(path: String?, status: Int) {
        let label = path == "/metrics" || path == "/health" ? path! : "other"
        CoreMetrics.Counter(label: "ringdesk_\(server)_http_requests_total", dimensions: [("path", label), ("status", String(status))]).increment()
    }

    func send(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}

/// Why the metrics endpoint could not start.
public struct MetricsEndpointError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Publishing worker-local counters into the registry at scrape time. Used only on the
/// endpoint's thread (the collector), so it needs no locks of its own.
public final class MetricsPublisher: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    /// `hbbs` or `hbbr`: every name is `ringdesk_<server>_<name>`.
    public let server: String

    public init(server: String, registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.server = server
    }

    func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ringdesk", subsystem: server, metricName: name, unitName: "", helpText: help)
    }

    /// A Prometheus counter that follows a running total kept elsewhere.
    public func counter(_ name: String, help: String, labels: [(String, String)] = []) -> DeltaCounter {
        DeltaCounter(registry.makeCounter(descriptor: descriptor(name, help), labels: labels))
    }

    public func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: descriptor(name, help), labels: labels)
    }
}

/// A registry counter fed from a monotonic total: each scrape adds what the total grew by.
public final class DeltaCounter: @unchecked Sendable {
    let counter: Prometheus.Counter
    var published: UInt64 = 0

    init(_ counter: Prometheus.Counter) { self.counter = counter }

    /// Brings the counter up to `total` (a total never shrinks; a smaller value is ignored).
    public func publish(_ total: UInt64) {
        guard total > published else { return }
        counter.increment(by: Int64(clamping: total - published))
        published = total
    }
}

/// The engine's per-worker figures (`EngineCounter`): `<prefix>ring_sqes_total`,
/// `ring_cqes_total`, `ring_enobufs_total`, each labelled `worker`.
public final class EngineMetrics: @unchecked Sendable {
    let table: CounterTable
    let counters: [[DeltaCounter]] // [worker][EngineCounter]

    public init(_ publisher: MetricsPublisher, table: CounterTable) {
        self.table = table
        let help: [EngineCounter: String] = [
            .sqes: "io_uring submission queue entries queued, per worker",
            .cqes: "io_uring completions handled, per worker",
            .bufferRingEmpty: "multishot receives ended by ENOBUFS (provided-buffer ring empty), per worker",
        ]
        counters = (0..<table.workers).map { w in
            EngineCounter.allCases.map { c in
                publisher.counter("ring_\(c.label)_total", help: help[c]!, labels: [("worker", String(w))])
            }
        }
    }

    public func publish() {
        for w in 0..<table.workers {
            for c in EngineCounter.allCases { counters[w][c.rawValue].publish(table.value(worker: w, c.rawValue)) }
        }
    }
}
