import Glibc
import Prometheus
import ServerConfig
import ServerKit
import Testing
import Workers

@Suite(.timeLimit(.minutes(1)))
struct MetricsHTTPTests {
    func parse(_ text: String) -> MetricsHTTP.Parse { MetricsHTTP.parse(Array(text.utf8)) }

    @Test func completeRequestLineAndHeaders() {
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n") == .request(method: "GET", path: "/metrics"))
        #expect(parse("GET /health?verbose=1 HTTP/1.0\r\n\r\n") == .request(method: "GET", path: "/health"))
        #expect(parse("POST /metrics HTTP/1.1\n\n") == .request(method: "POST", path: "/metrics"))
    }

    @Test func incompleteUntilTheBlankLine() {
        #expect(parse("") == .incomplete)
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n") == .incomplete)
    }

    @Test func malformedRequestLines() {
        for text in ["GET\r\n\r\n", "get /metrics HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
                     "GET /metrics HTTP/2\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "\u{16}\u{03}\u{01}\r\n\r\n"] {
            #expect(parse(text) == .malformed, "\(text.debugDescription)")
        }
    }

    @Test func oversizedHeads() {
        let long = "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: MetricsHTTP.maxRequestBytes) + "\r\n\r\n"
        #expect(parse(long) == .tooLarge)
        #expect(parse(String(repeating: "a", count: MetricsHTTP.maxRequestBytes + 1)) == .tooLarge)
    }

    @Test func responsesCloseTheConnection() {
        let r = String(decoding: MetricsHTTP.json(status: 503, #"{"status":"stopping"}"#), as: UTF8.self)
        #expect(r == "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 22\r\nConnection: close\r\n\r\n{\"status\":\"stopping\"}\n")
    }
}

@Suite(.timeLimit(.minutes(1)))
struct CounterTableTests {
    @Test func workersWriteTheirOwnBlocksAndReadersSum() {
        let t = CounterTable(workers: 3, counters: 20)
        t.slot(0).add(1)
        t.slot(2).add(1, 41)
        t.slot(1).set(19, 7)
        t.slot(1).add(EngineCounter.bufferRingEmpty, 5)
        #expect(t.sum(1) == 42 && t.value(worker: 2, 1) == 41)
        #expect(t.value(worker: 1, 19) == 7 && t.sum(19) == 7)
        #expect(t.value(worker: 1, EngineCounter.bufferRingEmpty.rawValue) == 5)
    }

    @Test func concurrentWritersOnSeparateBlocksLoseNothing() async {
        let t = CounterTable(workers: 4, counters: 3)
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<4 {
                group.addTask { let s = t.slot(w); for _ in 0..<100_000 { s.add(2) } }
            }
        }
        #expect(t.sum(2) == 400_000)
    }
}

/// The endpoint on a real loopback socket.
@Suite(.timeLimit(.minutes(1)))
struct MetricsEndpointTests {
    func request(_ port: UInt16, _ text: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { return "<connect \(errno)>" }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func servesMetricsHealthAndErrors() throws {
        let registry = PrometheusCollectorRegistry()
        let endpoint = try MetricsEndpoint(address: SocketAddressLiteral("127.0.0.1:0")!, server: "test", registry: registry)
        let publisher = MetricsPublisher(server: "test", registry: registry)
        let table = CounterTable(workers: 2, counters: EngineCounter.allCases.count)
        let engine = EngineMetrics(publisher, table: table)
        let things = publisher.counter("things_total", help: "Things", labels: [("kind", "a")])
        table.slot(1).add(EngineCounter.sqes, 9)
        endpoint.start {
            things.publish(table.sum(EngineCounter.cqes.rawValue) + 3)
            engine.publish()
        }
        defer { endpoint.stop() }
        let port = endpoint.endpoint.port
        #expect(port != 0)

        let metrics = request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(metrics.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(metrics.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(metrics.contains("Connection: close"))
        #expect(metrics.contains("# TYPE ringdesk_test_things_total counter"))
        #expect(metrics.contains("ringdesk_test_things_total{kind=\"a\"} 3\n"))
        #expect(metrics.contains("ringdesk_test_ring_sqes_total{worker=\"1\"} 9\n"))
        #expect(metrics.contains("ringdesk_test_ring_sqes_total{worker=\"0\"} 0\n"))
        // A second scrape publishes only what changed.
        table.slot(0).add(EngineCounter.cqes, 2)
        let again = request(port, "GET /metrics HTTP/1.1\r\n\r\n")
        #expect(again.contains("ringdesk_test_things_total{kind=\"a\"} 5\n"))
        #expect(again.contains("ringdesk_test_ring_cqes_total{worker=\"0\"} 2\n"))

        let health = request(port, "GET /health HTTP/1.1\r\n\r\n")
        #expect(health.hasPrefix("HTTP/1.1 200 OK\r\n") && health.contains(#"{"status":"ok","server":"test","uptime_seconds":"#))
        #expect(request(port, "GET /nothing HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 404 "))
        let post = request(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        #expect(post.hasPrefix("HTTP/1.1 405 ") && post.contains("Allow: GET"))
        #expect(request(port, "HELLO\r\n\r\n").hasPrefix("HTTP/1.1 400 "))
        let big = request(port, "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "b", count: 9000))
        #expect(big.isEmpty || big.hasPrefix("HTTP/1.1 431 "))

        endpoint.markStopping()
        let stopping = request(port, "GET /health HTTP/1.1\r\n\r\n")
        #expect(stopping.hasPrefix("HTTP/1.1 503 ") && stopping.hasSuffix("\r\n\r\n{\"status\":\"stopping\"}\n"))
    }

    @Test func bindFailureIsAClearError() throws {
        let registry = PrometheusCollectorRegistry()
        let first = try MetricsEndpoint(address: SocketAddressLiteral("127.0.0.1:0")!, server: "test", registry: registry)
        defer { first.stop() }
        let taken = "127.0.0.1:\(first.endpoint.port)"
        #expect {
            _ = try MetricsEndpoint(address: SocketAddressLiteral(taken)!, server: "test", registry: registry)
        } throws: { error in
            "\(error)".contains("cannot listen for metrics on \(taken)") && "\(error)".lowercased().contains("in use")
        }
    }
}
