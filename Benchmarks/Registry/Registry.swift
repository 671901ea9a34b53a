// The hbbs peer registry (Rendezvous PeerRegistry through RendezvousCore's rules): what every
// registration datagram and every punch-hole request does to it. Rules only: no socket, no
// database. The 1,000,000-peer memory and cache-miss figures come from `engine-bench registry`
// (docs/PERFORMANCE.md); these measure the per-operation cost and allocations on a table of
// 10,000 peers.
import Benchmark
import BenchmarkSupport
import Rendezvous
import RustDeskProtocol

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = BenchmarkSupport.configuration()

    // RegisterPk of a peer the server has never seen (§5.2.2 after the database said "unknown"):
    // a new record, its GUID, the insert for the database. Each iteration starts from an empty
    // registry (made outside the measurement) so that every operation inserts.
    Benchmark("RegisterPk_new_peer") { benchmark in
        let core = RegistryInputs.core()
        let messages = RegistryInputs.registerPk
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            blackHole(core.completeRegisterPk(messages[i], from: RegistryInputs.source(i), loaded: nil, now: 1_000))
        }
        benchmark.stopMeasurement()
    }

    // The keep-alive every online peer sends every ~12 s: must not allocate.
    let registered = RegistryInputs.registeredCore()
    Benchmark("RegisterPeer_refresh_of_a_known_peer") { benchmark in
        let messages = RegistryInputs.registerPeer
        var now: Millis = 2_000
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            let outcome = registered.handleRegisterPeer(messages[i], from: RegistryInputs.source(i), now: now)
            precondition(outcome == .reply(requestPk: false, configUpdate: nil, ipChanged: false))
            now &+= 1
        }
        benchmark.stopMeasurement()
    }

    // A copy of the record (punch hole, relay request, key signing).
    Benchmark("Lookup_known_peer") { benchmark in
        let ids = RegistryInputs.ids
        for i in benchmark.scaledIterations {
            blackHole(registered.registry.peer(ids[i]))
        }
    }

    Benchmark("Online_check") { benchmark in
        let ids = RegistryInputs.ids
        var online = 0
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations where registered.registry.isOnline(ids[i], now: 5_000) { online += 1 }
        benchmark.stopMeasurement()
        precondition(online == benchmark.scaledIterations.count)
    }

    // The registry never evicts (as upstream, a peer stays in memory until restart); its one walk
    // over every record is the online/offline classification behind the console and metrics.
    // One operation = one sweep over all 10,000 peers, half of them expired.
    let halfExpired = RegistryInputs.registeredCore(expiredEvery: 2)
    Benchmark("Online_sweep_over_10000_peers",
              configuration: BenchmarkSupport.configuration(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            let online = halfExpired.registry.onlineCount(now: 40_000)
            precondition(online == RegistryInputs.peerCount / 2)
        }
    }
}

/// Inputs shaped like real peers: 10-digit IDs (inline Strings), 16-byte UUIDs, 32-byte keys,
/// IPv4 peers on a dual-stack socket.
enum RegistryInputs {
    static let peerCount = 10_000
    static let ids = (0..<peerCount).map { String(1_000_000_000 + $0 * 7) }
    static let uuid = [UInt8](repeating: 0xAB, count: 16)
    static let pk = [UInt8](repeating: 0xCD, count: 32)
    static let registerPk = ids.map { RegisterPk(id: $0, uuid: uuid, pk: pk) }
    static let registerPeer = ids.map { RegisterPeer(id: $0, serial: 3) }

    static func source(_ i: Int) -> SocketAddress {
        SocketAddress(IPv6Address(high: 0, low: 0xFFFF_0000_0000 | UInt64(0x0A00_0000 + i)), port: UInt16(1024 + i % 60_000))
    }

    /// An empty registry with the IP blocker's limits off.
    static func core() -> RendezvousCore {
        var limits = IPBlocker.Limits()
        limits.perWindow = 0
        limits.newIDsPerDay = 0
        return RendezvousCore(settings: RendezvousSettings(ipLimits: limits))
    }

    /// Every peer registered (RegisterPk at t = 1 s); with `expiredEvery: n`, every n-th peer
    /// registered at t = 0 instead, long enough before the sweep's t = 40 s to be offline.
    static func registeredCore(expiredEvery n: Int = 0) -> RendezvousCore {
        let core = core()
        for i in 0..<peerCount {
            let at: Millis = n > 0 && i % n == 0 ? 0 : 20_000
            let (result, _) = core.completeRegisterPk(registerPk[i], from: source(i), loaded: nil, now: n > 0 ? at : 1_000)
            precondition(result == .ok)
        }
        return core
    }
}
