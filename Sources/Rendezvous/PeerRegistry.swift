import RustDeskProtocol
import Synchronization

/// The in-memory peer table, sharded by ID hash so that workers handling different peers never
/// contend: each shard has its own lock, and no lock is shared by all workers (issue "hbbs").
///
/// Lookups of IDs not in memory never touch the database here; the server asks `PeerStore` on its
/// own thread and inserts the loaded record with `insertIfAbsent`.
/// FNV-1a over an ID's UTF-8 bytes: how the sharded tables pick a shard (stable across runs,
/// unlike `Hasher`; no allocation).
@usableFromInline
func idHash(_ id: String) -> UInt32 {
    var h: UInt32 = 2_166_136_261
    for b in id.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
    return h
}

public final class PeerRegistry: Sendable {
    /// Number of shards: a power of two comfortably above the worker count, so two workers
    /// rarely meet on one lock.
    public static let shardCount = 256
    /// A shard is a class so the (non-copyable) mutex can live in an array.
    @usableFromInline final class Shard: Sendable {
        @usableFromInline let table = Mutex<[String: PeerRecord]>([:])
        init() {}
    }
    @usableFromInline let shards: [Shard]

    public init() {
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    @usableFromInline
    func shardIndex(_ id: String) -> Int { Int(idHash(id) & UInt32(Self.shardCount - 1)) }

    /// Runs `body` with exclusive access to the record for `id` (nil if absent). Setting it to nil
    /// removes it; setting a value inserts or updates.
    @inlinable
    public func withPeer<R>(_ id: String, _ body: (inout PeerRecord?) -> R) -> R {
        // In place through the dictionary's modify accessor: one hash lookup, no copy of the
        // record (so no retain of its shared bytes), removal when set to nil.
        shards[shardIndex(id)].table.withLock { table in body(&table[id]) }
    }

    /// A copy of the record, if in memory.
    public func peer(_ id: String) -> PeerRecord? { withPeer(id) { $0 } }

    /// Inserts `record` unless the ID is already in memory (a concurrent registration won); returns
    /// the record now in memory.
    @discardableResult
    public func insertIfAbsent(_ id: String, _ record: PeerRecord) -> PeerRecord {
        withPeer(id) { existing in
            if existing == nil { existing = record }
            return existing!
        }
    }

    /// Whether `id` is in memory and online.
    public func isOnline(_ id: String, now: Millis) -> Bool {
        withPeer(id) { $0?.isOnline(now: now) ?? false }
    }

    /// Number of records in memory (walks every shard: console and metrics only).
    public var count: Int { shards.reduce(0) { $0 + $1.table.withLock { $0.count } } }

    /// Number of online records (walks every shard: console and metrics only).
    public func onlineCount(now: Millis) -> Int {
        shards.reduce(0) { sum, shard in sum + shard.table.withLock { t in t.values.reduce(0) { $0 + ($1.isOnline(now: now) ? 1 : 0) } } }
    }
}
