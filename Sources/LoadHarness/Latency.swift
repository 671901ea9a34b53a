import Histogram

/// Latencies in microseconds, kept in an HdrHistogram (3 significant digits, up to 60 s).
public struct LatencyRecorder: Sendable {
    var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000,
                                      numberOfSignificantValueDigits: .three)

    public init() {}

    public mutating func record(nanos: UInt64) {
        let micros = max(1, min(nanos / 1000, 60_000_000))
        _ = histogram.record(micros)
    }

    public mutating func add(_ other: LatencyRecorder) { histogram.add(other.histogram) }

    public var count: UInt64 { histogram.totalCount }

    public func percentile(_ p: Double) -> UInt64 { count == 0 ? 0 : histogram.valueAtPercentile(p) }

    var json: JSON {
        .object([
            ("count", .int(Int(count))),
            ("p50_us", .int(Int(percentile(50)))),
            ("p90_us", .int(Int(percentile(90)))),
            ("p99_us", .int(Int(percentile(99)))),
            ("p999_us", .int(Int(percentile(99.9)))),
            ("max_us", .int(Int(count == 0 ? 0 : histogram.max))),
            ("mean_us", .double(count == 0 ? 0 : histogram.mean)),
        ])
    }

    var summary: String {
        count == 0 ? "-" : "p50 \(fmtMicros(percentile(50)))  p90 \(fmtMicros(percentile(90)))  p99 \(fmtMicros(percentile(99)))  max \(fmtMicros(histogram.max))"
    }
}

func fmtMicros(_ us: UInt64) -> String {
    if us >= 10_000 { return fmt(Double(us) / 1000, 1) + " ms" }
    if us >= 1000 { return fmt(Double(us) / 1000, 2) + " ms" }
    return "\(us) µs"
}

func fmt(_ v: Double, _ decimals: Int) -> String {
    guard v.isFinite else { return "-" }
    var p = 1.0
    for _ in 0..<decimals { p *= 10 }
    let r = (v * p).rounded() / p
    var s = String(r)
    if let dot = s.firstIndex(of: ".") {
        let have = s.distance(from: dot, to: s.endIndex) - 1
        if decimals == 0 { s = String(s[..<dot]) } else if have < decimals { s += String(repeating: "0", count: decimals - have) }
    }
    return s
}
