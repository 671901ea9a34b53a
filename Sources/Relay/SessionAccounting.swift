import Synchronization

/// Per-session accounting (PROTOCOL.md §8.5): evaluated at most once per second of elapsed time,
/// it decides blocklist ends, blacklist/downgrade speed limits and feeds the usage table.
public struct SessionAccounting: Sendable, Equatable {
    /// `floor(SINGLE bits/s × threshold / 1000)`, fixed at session start.
    public let thresholdBitsPerMs: UInt64
    public let startCheckMs: UInt64
    public private(set) var lastEvaluation: UInt64 // ms
    public private(set) var intervalBits: UInt64 = 0
    public private(set) var elapsedMs: UInt64 = 0
    public private(set) var totalBits: UInt64 = 0
    public private(set) var highestKbps: UInt64 = 0
    public private(set) var currentKbps: UInt64 = 0
    public private(set) var downgraded = false
    public private(set) var blacklisted = false

    public static let evaluationIntervalMs: UInt64 = 1000

    public init(settings: BandwidthSettings, nowMs: UInt64) {
        thresholdBitsPerMs = UInt64((settings.singleMbps * BandwidthSettings.bitsPerMb * settings.downgradeThreshold / 1000).rounded(.down))
        startCheckMs = UInt64(settings.downgradeStartCheckSeconds) * 1000
        lastEvaluation = nowMs
    }

    /// Counts `bytes` received from either side.
    public mutating func record(bytes: Int) { intervalBits &+= UInt64(bytes) * 8 }

    public enum Verdict: Equatable, Sendable {
        case unchanged
        /// The session's IP is now blocklisted: end it.
        case end
        /// The session's per-session limit changed (low speed when true).
        case limitChanged(lowSpeed: Bool)
    }

    /// Evaluates if at least a second has passed since the last evaluation.
    public mutating func evaluate(nowMs: UInt64, blocked: Bool, blacklisted nowBlacklisted: Bool) -> Verdict {
        guard nowMs >= lastEvaluation + Self.evaluationIntervalMs else { return .unchanged }
        if blocked { return .end }
        let n = nowMs - lastEvaluation
        lastEvaluation = nowMs
        let wasLow = downgraded || blacklisted
        blacklisted = nowBlacklisted
        currentKbps = intervalBits / n
        highestKbps = max(highestKbps, currentKbps)
        elapsedMs += n
        totalBits &+= intervalBits
        intervalBits = 0
        if !downgraded && elapsedMs > startCheckMs && totalBits > elapsedMs * thresholdBitsPerMs {
            downgraded = true
        }
        let isLow = downgraded || blacklisted
        return isLow != wasLow ? .limitChanged(lowSpeed: isLow) : .unchanged
    }

    public var usage: UsageTable.Usage {
        .init(elapsedMs: elapsedMs, totalBits: totalBits, highestKbps: highestKbps, currentKbps: currentKbps)
    }
}

/// Active sessions' usage for the console's `u` (PROTOCOL.md §9.2), keyed by `ip:port` of the
/// second arrival. Updated once per second per session: the lock is off the per-byte path.
public final class UsageTable: Sendable {
    public struct Usage: Sendable, Equatable {
        public var elapsedMs: UInt64
        public var totalBits: UInt64
        public var highestKbps: UInt64
        public var currentKbps: UInt64
        public init(elapsedMs: UInt64 = 0, totalBits: UInt64 = 0, highestKbps: UInt64 = 0, currentKbps: UInt64 = 0) {
            self.elapsedMs = elapsedMs; self.totalBits = totalBits; self.highestKbps = highestKbps; self.currentKbps = currentKbps
        }
    }
    let table = Mutex<[String: Usage]>([:])
    public init() {}
    public func set(_ key: String, _ usage: Usage) { table.withLock { $0[key] = usage } }
    public func remove(_ key: String) { _ = table.withLock { $0.removeValue(forKey: key) } }
    public var count: Int { table.withLock { $0.count } }

    /// The `u` output: sessions with elapsed > 0, by total bytes descending.
    public func report() -> String {
        let rows = table.withLock { $0.filter { $0.value.elapsedMs > 0 } }.sorted {
            $0.value.totalBits != $1.value.totalBits ? $0.value.totalBits > $1.value.totalBits : $0.key < $1.key
        }
        return rows.map { key, u in
            let mb = Double(u.totalBits) / 8 / 1_048_576
            let average = u.totalBits / u.elapsedMs
            return "\(key): \(u.elapsedMs / 1000)s \(Self.twoDecimals(mb))MB \(u.highestKbps)kb/s \(average)kb/s \(u.currentKbps)kb/s\n"
        }.joined()
    }

    static func twoDecimals(_ v: Double) -> String {
        let hundredths = Int64((v * 100).rounded())
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}
