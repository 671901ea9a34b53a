import RustDeskProtocol
import Synchronization

/// Signed `IdPk` blobs (§4.4) already computed, so a peer punched again is not signed again.
///
/// An Ed25519 signature is deterministic, so the blob for an (ID, key) pair never changes while
/// the server key stays the same (it does, for the life of the process). Every PunchHoleResponse
/// and RelayResponse to a client that sent a version carries one, and signing costs tens of
/// microseconds, more than the rest of a punch-hole flow's user-space work together.
///
/// Sharded by ID hash with a lock per shard, like `PeerRegistry` (no lock shared by all workers).
/// Bounded: a shard that reaches `entriesPerShard` is emptied before the next insert, so the cache
/// never holds more than `capacity` entries (≈ 250 bytes each).
public final class SignedPeerKeyCache: Sendable {
    public static let shardCount = 64
    public static let entriesPerShard = 256
    public static var capacity: Int { shardCount * entriesPerShard }

    struct Entry {
        let pk: [UInt8]
        let signed: [UInt8]
    }

    final class Shard: Sendable {
        let table = Mutex<[String: Entry]>([:])
    }

    let shards: [Shard] = (0..<SignedPeerKeyCache.shardCount).map { _ in Shard() }

    public init() {}

    func shard(_ id: String) -> Shard { shards[Int(idHash(id) % UInt32(Self.shardCount))] }

    /// The blob for (`id`, `pk`): from the cache, or made by `sign` (outside the lock) and kept.
    public func signed(id: String, pk: [UInt8], sign: () -> [UInt8]) -> [UInt8] {
        let shard = shard(id)
        if let hit = shard.table.withLock({ t -> [UInt8]? in
            guard let e = t[id], e.pk == pk else { return nil }
            return e.signed
        }) {
            return hit
        }
        let blob = sign()
        shard.table.withLock { t in
            if t.count >= Self.entriesPerShard && t[id] == nil { t.removeAll(keepingCapacity: true) }
            t[id] = Entry(pk: pk, signed: blob)
        }
        return blob
    }

    /// Entries held (walks every shard: tests and metrics only).
    public var count: Int { shards.reduce(0) { $0 + $1.table.withLock { $0.count } } }
}
