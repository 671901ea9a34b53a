import Glibc
import Rendezvous
import RustDeskProtocol

/// `registry`: memory per registered peer and the cost of the registration rules, the figures
/// behind hbbs's 1,000,000-online-peers design point (docs/PERFORMANCE.md).
enum RegistryBench {
    struct Result {
        var peers: Int
        var bytesPerPeer: Double
        var registerPkNanos: Double
        var registerPeerNanos: Double
        var onlineCheckNanos: Double
    }

    /// Resident bytes of the process (`/proc/self/statm`); over a million peers the page
    /// granularity is noise.
    static func heapInUse() -> Int {
        guard let f = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(f) }
        var size = 0, resident = 0
        _ = withUnsafeMutablePointer(to: &size) { s in withUnsafeMutablePointer(to: &resident) { r in
            withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
        } }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func nanos() -> UInt64 {
        var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func run(peers: Int) -> Result {
        var limits = IPBlocker.Limits()
        limits.perWindow = 0
        limits.newIDsPerDay = 0
        let core = RendezvousCore(settings: RendezvousSettings(ipLimits: limits))
        // Realistic records: 9–10-digit IDs, 16-byte machine UIDs, 32-byte keys, IPv4-mapped sources.
        let ids = (0..<peers).map { String(1_000_000_000 + $0 * 7) }
        let uuid = [UInt8](repeating: 0xAB, count: 16)
        let pk = [UInt8](repeating: 0xCD, count: 32)
        func source(_ i: Int) -> SocketAddress {
            SocketAddress(IPv6Address(high: 0, low: 0xFFFF_0000_0000 | UInt64(0x0A00_0000 + i)), port: UInt16(1024 + i % 60_000))
        }
        let before = heapInUse()
        var t0 = nanos()
        for (i, id) in ids.enumerated() {
            _ = core.completeRegisterPk(RegisterPk(id: id, uuid: uuid, pk: pk), from: source(i), loaded: nil, now: 1_000)
        }
        let registerPk = Double(nanos() - t0) / Double(peers)
        let after = heapInUse()
        t0 = nanos()
        for (i, id) in ids.enumerated() {
            _ = core.handleRegisterPeer(RegisterPeer(id: id, serial: 3), from: source(i), now: 2_000)
        }
        let registerPeer = Double(nanos() - t0) / Double(peers)
        t0 = nanos()
        var online = 0
        for id in ids where core.registry.isOnline(id, now: 3_000) { online += 1 }
        let check = Double(nanos() - t0) / Double(peers)
        precondition(online == peers, "every peer must be online")
        return Result(peers: peers, bytesPerPeer: Double(after - before) / Double(peers),
                      registerPkNanos: registerPk, registerPeerNanos: registerPeer, onlineCheckNanos: check)
    }
}

func runRegistry(_ args: ArraySlice<String>) throws -> Bool {
    var peers = 1_000_000
    var json = false
    var i = args.startIndex
    while i < args.endIndex {
        switch args[i] {
        case "--peers":
            i += 1
            guard i < args.endIndex, let n = parseCount(args[i]), n > 0 else { throw UsageError(message: "--peers needs a positive count") }
            peers = n
        case "--json": json = true
        default: throw UsageError(message: "unknown option \(args[i])")
        }
        i += 1
    }
    let r = RegistryBench.run(peers: peers)
    if json {
        write("{\"peers\":\(r.peers),\"bytes_per_peer\":\(Int(r.bytesPerPeer)),\"register_pk_ns\":\(Int(r.registerPkNanos)),\"register_peer_ns\":\(Int(r.registerPeerNanos)),\"online_check_ns\":\(Int(r.onlineCheckNanos))}\n", to: 1)
    } else {
        write("""
            registry: \(r.peers) peers registered (RegisterPk, then RegisterPeer each)
              resident bytes per peer    \(Int(r.bytesPerPeer)) bytes
              RegisterPk (new peer)      \(Int(r.registerPkNanos)) ns/op  (rules only: no socket, no database)
              RegisterPeer (keep-alive)  \(Int(r.registerPeerNanos)) ns/op
              online check               \(Int(r.onlineCheckNanos)) ns/op

            """, to: 1)
    }
    return true
}
