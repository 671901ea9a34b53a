import Synchronization

/// Relay bandwidth settings (PROTOCOL.md §8.5). "Mb/s" is 2^20 bits per second.
public struct BandwidthSettings: Sendable, Equatable {
    public static let bitsPerMb: Double = 1_048_576

    /// One limiter shared by all sessions and both directions.
    public var totalMbps: Double = 1024
    /// Per session, both directions; read when a session starts.
    public var singleMbps: Double = 128
    /// Per session when downgraded or blacklisted; read when a session starts.
    public var limitMbps: Double = 32
    /// Stored as whole hundredths (`floor(value × 100)`), as upstream.
    public var downgradeThresholdHundredths: Int = 66
    /// Seconds of session life before the downgrade check applies.
    public var downgradeStartCheckSeconds: Int = 1800

    public init() {}

    public var downgradeThreshold: Double { Double(downgradeThresholdHundredths) / 100 }

    /// Applies one environment-style value; values ≤ 0 or unparseable are ignored (default kept).
    /// Returns whether it was applied.
    @discardableResult
    public mutating func apply(_ name: String, _ text: String) -> Bool {
        switch name {
        case "TOTAL_BANDWIDTH": return set(&totalMbps, text)
        case "SINGLE_BANDWIDTH": return set(&singleMbps, text)
        case "LIMIT_SPEED": return set(&limitMbps, text)
        case "DOWNGRADE_THRESHOLD":
            guard let v = Double(text), v > 0, v.isFinite else { return false }
            downgradeThresholdHundredths = Int((v * 100).rounded(.down))
            return true
        case "DOWNGRADE_START_CHECK":
            guard let v = Int(text), v > 0 else { return false }
            downgradeStartCheckSeconds = v
            return true
        default: return false
        }
    }

    private func set(_ field: inout Double, _ text: String) -> Bool {
        guard let v = Double(text), v > 0, v.isFinite else { return false }
        field = v
        return true
    }

    /// Shortest decimal form (`32`, not `32.0`; `0.66`), as the console prints numbers.
    public static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}

/// A token bucket in bytes. Not thread-safe: per-session buckets live on the session's worker;
/// the shared total limiter is `SharedTokenBucket`.
///
/// Rather than blocking (upstream awaits the limiter), the relay asks how many bytes it may move
/// now and, when none, how long to wait: splice lengths are capped per time slice, so limits apply
/// without copying bytes through user space.
public struct TokenBucket: Sendable, Equatable {
    /// Bytes per second.
    public private(set) var rate: Double
    /// Largest burst, in bytes.
    public let burst: Double
    var tokens: Double
    var last: UInt64 // ns

    /// - Parameters:
    ///   - bitsPerSecond: the limit.
    ///   - burstSeconds: how much unused allowance may accumulate (default 0.1 s worth, min 64 KiB).
    public init(bitsPerSecond: Double, burstSeconds: Double = 0.1, now: UInt64) {
        rate = bitsPerSecond / 8
        burst = max(rate * burstSeconds, 65_536)
        tokens = burst
        last = now
    }

    mutating func refill(now: UInt64) {
        if now > last {
            tokens = min(burst, tokens + Double(now - last) / 1e9 * rate)
            last = now
        }
    }

    /// Bytes that may be moved now (0 when the bucket is empty).
    public mutating func available(now: UInt64) -> Int {
        refill(now: now)
        return tokens >= 1 ? Int(tokens) : 0
    }

    /// Records `bytes` moved (may overdraw; later calls then wait it off).
    public mutating func consume(_ bytes: Int, now: UInt64) {
        refill(now: now)
        tokens -= Double(bytes)
    }

    /// Nanoseconds until at least `bytes` (capped at the burst) are available.
    public mutating func delay(for bytes: Int, now: UInt64) -> UInt64 {
        refill(now: now)
        let need = min(Double(bytes), burst) - tokens
        return need <= 0 ? 0 : UInt64((need / rate * 1e9).rounded(.up))
    }

    public mutating func setRate(bitsPerSecond: Double) { rate = bitsPerSecond / 8 }
}

/// The one limiter shared by all sessions (TOTAL_BANDWIDTH). Workers take allowance in chunks
/// (a grant), so the lock is touched once per chunk, not per byte or per splice.
public final class SharedTokenBucket: Sendable {
    let bucket: Mutex<TokenBucket>
    public init(bitsPerSecond: Double, now: UInt64) { bucket = Mutex(TokenBucket(bitsPerSecond: bitsPerSecond, burstSeconds: 0.05, now: now)) }

    /// Takes up to `wanted` bytes of allowance; returns what was granted (possibly 0).
    public func grant(_ wanted: Int, now: UInt64) -> Int {
        bucket.withLock { b in
            let n = min(wanted, b.available(now: now))
            if n > 0 { b.consume(n, now: now) }
            return n
        }
    }

    public func delay(for bytes: Int, now: UInt64) -> UInt64 { bucket.withLock { $0.delay(for: bytes, now: now) } }
    public func setRate(bitsPerSecond: Double) { bucket.withLock { $0.setRate(bitsPerSecond: bitsPerSecond) } }
}
