import Glibc
import Testing
import URing

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

/// `--pin-workers`: each worker thread runs on one CPU of the process's mask by default; with
/// `no` every thread keeps the whole mask (the scheduler may move it).
extension HbbrTests {
    /// The CPUs in a `Cpus_allowed_list` line of a /proc status file ("0-3,6"), or nil.
    func allowedCPUs(_ statusPath: String) -> Int? {
        guard let f = fopen(statusPath, "r") else { return nil }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 512)
        while fgets(&buf, 512, f) != nil {
            let line = String(cString: buf)
            guard line.hasPrefix("Cpus_allowed_list:") else { continue }
            var count = 0
            for part in line.dropFirst("Cpus_allowed_list:".count).split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" }) {
                let ends = part.split(separator: "-").compactMap { Int($0) }
                count += ends.count == 2 ? ends[1] - ends[0] + 1 : 1
            }
            return count
        }
        return nil
    }

    @Test(arguments: [true, false])
    func workersArePinnedUnlessToldNot(pinned: Bool) throws {
        guard let mask = try? Affinity.allowedCPUs().count, mask >= 2 else {
            print("skipped: this process may run on one CPU only, so pinned and unpinned look the same")
            return
        }
        let server = try start(["--workers", "2"] + (pinned ? [] : ["--pin-workers", "no"]))
        defer { server.stop() }
        let threads = directoryEntries("/proc/\(server.pid)/task") ?? []
        let onOneCPU = threads.filter { allowedCPUs("/proc/\(server.pid)/task/\($0)/status") == 1 }.count
        print("hbbr --pin-workers \(pinned ? "yes" : "no"): \(onOneCPU) of \(threads.count) threads on one CPU (mask: \(mask) CPUs)")
        if pinned {
            #expect(onOneCPU >= 2, "the two workers run on one CPU each (\(threads.count) threads)")
        } else {
            #expect(onOneCPU == 0, "no thread is confined to one CPU")
        }
        #expect(server.log.contains("with 2 \(pinned ? "pinned" : "unpinned") workers"))
    }
}
