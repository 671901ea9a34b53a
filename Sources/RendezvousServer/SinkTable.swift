import RustDeskProtocol
import Synchronization
import URing

/// Where an answer for A can be written: A's connection, on whichever worker owns it (§6).
public struct SinkRef: Sendable, Equatable {
    public var worker: Int
    /// The connection's slot and generation in its worker's table.
    public var slot: UInt32
    public var generation: UInt16
    public var kind: MessageStream.Kind
}

/// The punch "sink" table: normalised address → A's connection. Sharded so that workers rarely
/// meet on a lock; touched once per punch or relay request and once per answer.
public final class SinkTable: Sendable {
    final class Shard: Sendable { let table = Mutex<[SocketAddress: SinkRef]>([:]) }
    static let shardCount = 64
    let shards = (0..<SinkTable.shardCount).map { _ in Shard() }

    public init() {}

    func shard(_ key: SocketAddress) -> Shard {
        var h: UInt64 = 1469598103934665603
        func mix(_ v: UInt64) { h = (h ^ v) &* 1099511628211 }
        switch key.ip {
        case .v4(let a): mix(UInt64(a.value))
        case .v6(let a): mix(a.high); mix(a.low)
        }
        mix(UInt64(key.port))
        return shards[Int(h % UInt64(Self.shardCount))]
    }

    /// Inserts (replacing any entry for the key, whose sink is then dropped).
    public func insert(_ key: SocketAddress, _ sink: SinkRef) {
        shard(key).table.withLock { $0[key] = sink }
    }

    /// Lookup-and-remove: each sink delivers at most one message.
    public func take(_ key: SocketAddress) -> SinkRef? {
        shard(key).table.withLock { $0.removeValue(forKey: key) }
    }

    /// Removes the entry for `key` whoever owns it (A's read loop ended).
    public func remove(_ key: SocketAddress) {
        _ = shard(key).table.withLock { $0.removeValue(forKey: key) }
    }

    public var count: Int { shards.reduce(0) { $0 + $1.table.withLock { $0.count } } }
}
