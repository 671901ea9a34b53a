// The configuration and threshold tolerances shared by every suite, so that all of them are
// measured, stored and checked the same way (Benchmarks/RESULTS.md, "Thresholds").
import Benchmark

public enum BenchmarkSupport {
    /// Tolerances applied when `swift package benchmark thresholds check` compares a run's p90
    /// with the p90 stored in `Thresholds/<Suite>.<Benchmark>.p90.json`.
    ///
    /// * Allocations are exact: any change, up or down, fails the check, and the stored count is
    ///   the budget (0 where the hot path must not allocate). A deliberate change is recorded by
    ///   updating the thresholds in the same commit.
    /// * Wall clock p90 may be up to 2.5× the stored p90 (+150 %) before it counts as a
    ///   regression: the reference machine is a shared 2-core VM whose p90 moves by 2× with its
    ///   neighbours' builds. This catches order-of-magnitude slips (an allocation, a lock, a copy
    ///   per byte), not percent-level drift; compare baselines on a quiet machine for that.
    ///   With a tolerance of 100 % or more an improvement is never reported (it would have to be
    ///   negative time), so a faster machine passes.
    /// * Throughput is displayed but not stored (see `metrics`).
    public static var tolerances: [BenchmarkMetric: BenchmarkThresholds] { [
        .wallClock: .init(relative: [.p90: 150]),
        .mallocCountTotal: .init(absolute: [.p90: 0]),
    ] }

    /// What every suite reports. Throughput is the wall clock inverted (operations per second);
    /// it is left out of the stored thresholds because package-benchmark 1.38.1 writes a
    /// larger-is-better metric's 90th percentile but checks its 10th, so a stored throughput
    /// would fail against itself. `memoryLeaked` is not collected: the malloc-interposer backend
    /// (the `MallocInterposer` trait) does not produce it, and package-benchmark refuses to run a
    /// threshold it cannot check.
    public static var metrics: [BenchmarkMetric] { [.wallClock, .throughput, .mallocCountTotal] }

    /// `scalingFactor` operations per iteration (`benchmark.scaledIterations`), so that one
    /// iteration is long enough for the clock and the malloc counters; figures are per operation
    /// unless `--scale` is given.
    public static func configuration(
        scalingFactor: BenchmarkScalingFactor = .kilo, maxDuration: Duration = .seconds(2)
    ) -> Benchmark.Configuration {
        .init(
            metrics: metrics,
            scalingFactor: scalingFactor,
            maxDuration: maxDuration,
            maxIterations: 100_000,
            thresholds: tolerances
        )
    }

    /// A writable copy of `bytes` (decoders that unmask or consume in place need one); the
    /// caller deallocates it.
    public static func mutableCopy(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        bytes.withUnsafeBytes { copy.copyMemory(from: $0) }
        return copy
    }
}
