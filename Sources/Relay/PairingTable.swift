import Synchronization

/// Halves waiting for their partner, by uuid (PROTOCOL.md §8.3). Shared by all workers because
/// the two halves of a pair may be accepted by different workers; touched once per connection,
/// never per byte.
///
/// Bounded: at most `capacity` waiting halves (a flood of unpaired halves is refused, not queued),
/// each removed when paired, when its 30-s wait expires, or when its connection ends.
public final class PairingTable<Half: Sendable>: Sendable {
    public struct Waiting: Sendable {
        public var half: Half
        public var since: UInt64 // ms
    }
    public static var defaultCapacity: Int { 65_536 }
    /// How long a half waits for its partner.
    public static var waitMs: UInt64 { 30_000 }

    let table = Mutex<[String: Waiting]>([:])
    public let capacity: Int

    public init(capacity: Int = PairingTable.defaultCapacity) { self.capacity = capacity }

    public enum Arrival: Sendable {
        /// A partner was waiting: pair with it (it has been removed).
        case paired(with: Half)
        /// Now waiting.
        case waiting
        /// The table is full: close this half.
        case refused
    }

    public func arrive(uuid: String, half: Half, nowMs: UInt64) -> Arrival {
        table.withLock { t in
            if let w = t.removeValue(forKey: uuid) { return .paired(with: w.half) }
            guard t.count < capacity else { return .refused }
            t[uuid] = Waiting(half: half, since: nowMs)
            return .waiting
        }
    }

    /// Removes the entry for `uuid` if `matches` its half (its connection ended, or it expired).
    @discardableResult
    public func remove(uuid: String, where matches: (Half) -> Bool) -> Half? {
        table.withLock { t in
            guard let w = t[uuid], matches(w.half) else { return nil }
            t[uuid] = nil
            return w.half
        }
    }

    /// Removes and returns every half that has waited `waitMs` or longer.
    public func expire(nowMs: UInt64) -> [Half] {
        table.withLock { t in
            let expired = t.filter { nowMs >= $0.value.since + Self.waitMs }
            for k in expired.keys { t[k] = nil }
            return expired.values.map(\.half)
        }
    }

    public var count: Int { table.withLock { $0.count } }
}
