import Synchronization

/// The per-IP RegisterPk limiter (PROTOCOL.md §5.2.5), with upstream's numbers as defaults and
/// each limit switchable off (an office of 500 machines behind one NAT address hits the daily one).
///
/// Entries are kept after their windows end (as upstream; the console's `ib` prunes), but the
/// table is bounded: when it is full, expired entries are pruned, and if none can be pruned the new
/// IP is refused (counted as `refusedTableFull`) so that spoofed-source floods cannot grow memory.
public final class IPBlocker: Sendable {
    public struct Limits: Sendable, Equatable {
        /// More than this many RegisterPk within a 60-s window are refused (upstream 30; 0 = off).
        public var perWindow: Int = 30
        /// More than this many distinct IDs per day are refused for new IDs (upstream 300; 0 = off).
        public var newIDsPerDay: Int = 300
        /// Most IPs tracked at once.
        public var maxTrackedIPs: Int = 262_144
        public init(perWindow: Int = 30, newIDsPerDay: Int = 300, maxTrackedIPs: Int = 262_144) {
            self.perWindow = perWindow; self.newIDsPerDay = newIDsPerDay; self.maxTrackedIPs = maxTrackedIPs
        }
    }

    public struct Entry: Sendable, Equatable {
        public var count: Int
        public var t1: Millis
        public var ids: Set<String>
        public var t2: Millis
    }

    public static let windowSeconds: UInt64 = 60
    public static let idWindowSeconds: UInt64 = 86_400

    let limits: Limits
    let state = Mutex<(table: [String: Entry], refusedTableFull: Int)>(([:], 0))

    public init(limits: Limits = .init()) { self.limits = limits }

    /// Decides one RegisterPk from `ip` (textual, raw form) for `id`; true = allowed.
    public func allow(ip: String, id: String, now: Millis) -> Bool {
        state.withLock { s in
            guard var e = s.table[ip] else {
                if s.table.count >= limits.maxTrackedIPs {
                    Self.prune(&s.table, now: now)
                    if s.table.count >= limits.maxTrackedIPs { s.refusedTableFull += 1; return false }
                }
                s.table[ip] = Entry(count: 0, t1: now, ids: [], t2: now)
                return true
            }
            defer { s.table[ip] = e }
            if moreThanWholeSeconds(Self.windowSeconds, since: e.t1, now: now) {
                e.count = 0
            } else if limits.perWindow > 0 && e.count > limits.perWindow {
                return false
            }
            e.count += 1
            e.t1 = now
            let isNew = !e.ids.contains(id)
            if moreThanWholeSeconds(Self.idWindowSeconds, since: e.t2, now: now) {
                e.ids.removeAll()
            } else if limits.newIDsPerDay > 0 && e.ids.count > limits.newIDsPerDay {
                return !isNew
            }
            // With the daily limit off, IDs need not be remembered at all (and must not grow).
            if isNew && limits.newIDsPerDay > 0 { e.ids.insert(id) }
            e.t2 = now
            return true
        }
    }

    /// Removes entries whose both windows have expired (the console's `ib` does this first).
    public func prune(now: Millis) { state.withLock { Self.prune(&$0.table, now: now) } }

    static func prune(_ table: inout [String: Entry], now: Millis) {
        table = table.filter { _, e in
            !(moreThanWholeSeconds(windowSeconds, since: e.t1, now: now) && moreThanWholeSeconds(idWindowSeconds, since: e.t2, now: now))
        }
    }

    public var entries: [(ip: String, entry: Entry)] { state.withLock { $0.table.map { ($0.key, $0.value) } } }
    public func entry(_ ip: String) -> Entry? { state.withLock { $0.table[ip] } }
    @discardableResult public func remove(_ ip: String) -> Entry? { state.withLock { $0.table.removeValue(forKey: ip) } }
    public var refusedBecauseFull: Int { state.withLock { $0.refusedTableFull } }
}

/// The IP-change table (§5.2.6), diagnostics for the console's `ic`. Bounded like the blocker.
public final class IPChangeTable: Sendable {
    public struct Entry: Sendable, Equatable {
        public var t: Millis
        public var ips: [String: Int]
    }
    public static let resetSeconds: UInt64 = 180
    public static let pruneSeconds: UInt64 = 360
    public static let maxEntries = 65_536
    let table = Mutex<[String: Entry]>([:])

    public init() {}

    public func record(id: String, ip: String, now: Millis) {
        table.withLock { t in
            if var e = t[id], !moreThanWholeSeconds(Self.resetSeconds, since: e.t, now: now) {
                e.ips[ip, default: 0] += 1
                t[id] = e
            } else {
                if t[id] == nil && t.count >= Self.maxEntries { Self.prune(&t, now: now) }
                if t[id] != nil || t.count < Self.maxEntries { t[id] = Entry(t: now, ips: [ip: 1]) }
            }
        }
    }

    /// Removes entries older than 360 s or with fewer than 2 IPs (what `ic` does first).
    public func prune(now: Millis) { table.withLock { Self.prune(&$0, now: now) } }
    static func prune(_ t: inout [String: Entry], now: Millis) {
        t = t.filter { !moreThanWholeSeconds(pruneSeconds, since: $0.value.t, now: now) && $0.value.ips.count >= 2 }
    }
    public var entries: [(id: String, entry: Entry)] { table.withLock { $0.map { ($0.key, $0.value) } } }
    public func entry(_ id: String) -> Entry? { table.withLock { $0[id] } }
    @discardableResult public func remove(_ id: String) -> Entry? { table.withLock { $0.removeValue(forKey: id) } }
}

/// The punch-request log for the console's `pr` (§5.3.1 step 4), capped (upstream never trims).
public final class PunchRequestLog: Sendable {
    public struct Entry: Sendable, Equatable {
        /// Wall-clock Unix seconds, for the RFC 3339 output.
        public var unixSeconds: Int64
        /// Monotonic time, for the 60-s duplicate suppression.
        public var at: Millis
        public var from: String
        public var id: String
        public var to: String
    }
    public static let capacity = 10_000
    static let duplicateScan = 30
    static let duplicateWindow: Millis = 60_000
    /// A ring buffer: `head` is the oldest entry once the ring is full.
    let log = Mutex<(ring: [Entry], head: Int)>(([], 0))

    public init() {}

    /// Appends unless one of the last 30 entries (newest first) has the same source and ID and the
    /// first such match is younger than 60 s.
    public func append(_ entry: Entry) {
        log.withLock { l in
            let n = l.ring.count
            for k in 0..<min(Self.duplicateScan, n) {
                let e = l.ring[(l.head + n - 1 - k) % n]
                guard e.from == entry.from && e.id == entry.id else { continue }
                if entry.at >= e.at && entry.at - e.at < Self.duplicateWindow { return }
                break
            }
            if n < Self.capacity {
                l.ring.append(entry)
            } else {
                l.ring[l.head] = entry
                l.head = (l.head + 1) % n
            }
        }
    }

    /// Entries `start ..< start+count`, oldest first.
    public func entries(start: Int, count: Int) -> [Entry] {
        log.withLock { l in
            let n = l.ring.count
            guard start < n else { return [] }
            return (start..<min(n, start + count)).map { l.ring[(l.head + $0) % n] }
        }
    }
    public func clear() { log.withLock { $0 = ([], 0) } }
    public var count: Int { log.withLock { $0.ring.count } }
}
