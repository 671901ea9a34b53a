import Glibc
import Testing

/// How hbbr uses the kernel: the io-wq threads that run its splices are capped per worker.
extension HbbrTests {
    /// Threads of `pid` whose name starts with `prefix` (io-wq workers are named `iou-wrk-<tid>`).
    func threadCount(_ pid: pid_t, prefix: String) -> Int {
        guard let tids = directoryEntries("/proc/\(pid)/task") else { return -1 }
        return tids.filter { tid in
            guard let f = fopen("/proc/\(pid)/task/\(tid)/comm", "r") else { return false }
            defer { fclose(f) }
            var buf = [CChar](repeating: 0, count: 64)
            return fgets(&buf, 64, f) != nil && String(cString: buf).hasPrefix(prefix)
        }.count
    }

    @Test func spliceThreadsStayWithinTheIOWorkerCap() throws {
        let server = try start(["--workers", "1", "--io-workers", "2", "--relay-mode", "splice-ring"])
        defer { server.stop() }
        var pairs: [(TCPClient, TCPClient)] = []
        for i in 0..<32 { pairs.append(try tcpPair(server, uuid: "U-iowq-\(i)")) }
        let chunk = Array(Pattern.shared.bytes[0..<(64 << 10)])
        var peak = 0
        for round in 0..<8 {
            for (a, _) in pairs { a.write(chunk) }
            for (_, b) in pairs { #expect(b.readExactly(chunk.count, within: 5) == chunk, "round \(round)") }
            peak = max(peak, threadCount(server.pid, prefix: "iou-wrk"))
        }
        #expect(peak >= 1, "splices ran on io-wq threads")
        #expect(peak <= 2, "at most --io-workers io-wq threads (saw \(peak))")
    }
}
