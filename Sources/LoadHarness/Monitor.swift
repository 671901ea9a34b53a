import Glibc
import Synchronization
import URing

/// Counters a generator publishes while it runs, read by the monitor thread (relaxed atomics:
/// the figures are for display and the per-second timeline; final figures come from the reports).
public final class LiveCounters: Sendable {
    /// Units of work done (flows, replies, verified bytes).
    let done = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    public init() {}
    @inline(__always) func add(done n: Int) { done.add(n, ordering: .relaxed) }
    @inline(__always) func add(errors n: Int) { errors.add(n, ordering: .relaxed) }
    var values: (done: Int, errors: Int) { (done.load(ordering: .relaxed), errors.load(ordering: .relaxed)) }
}

/// One second of a run: the work done in it (units per second) and the errors in it.
public struct TimelineSample: Sendable {
    public var second: Double
    public var rate: Double
    public var errors: Int

    var json: JSON { .object([("t", .double(second)), ("rate", .double(rate)), ("errors", .int(errors))]) }
}

/// What a run looked like second by second, and how it is shown while it runs.
public struct Timeline: Sendable {
    public var unit: String
    public var samples: [TimelineSample] = []

    var json: JSON { .object([("unit", .string(unit)), ("samples", .array(samples.map(\.json)))]) }
}

/// Runs generator bodies on their own threads while the calling thread samples their counters once
/// per second (the timeline for `--report`) and, when standard error is a terminal, redraws one
/// progress line four times a second: rate, errors, elapsed and remaining time.
public struct Monitor {
    public var label: String
    /// Expected length of the run, for "remaining" (nil: unknown).
    public var expectedSeconds: Double?
    /// How a rate is shown: units per second, scaled by `displayScale` (e.g. bytes → MiB).
    public var unit: String
    public var displayScale: Double = 1
    /// False: the line shows errors and times only (a run of several parts with different units).
    public var showsRate = true
    public var live: Bool = isatty(2) == 1

    public init(label: String, unit: String, expectedSeconds: Double?) {
        self.label = label; self.unit = unit; self.expectedSeconds = expectedSeconds
    }

    /// Starts one thread per body, each given its index; returns their results in order and the
    /// timeline of `counters` (summed over all bodies).
    public func run<R: Sendable>(_ counters: [LiveCounters], _ bodies: [@Sendable () -> R]) -> ([R], Timeline) {
        let results = Mutex<[Int: R]>([:])
        let finished = Atomic<Int>(0)
        let start = monotonicNanos()
        let threads = bodies.enumerated().map { (i, body) in
            PlainThread {
                let r = body()
                results.withLock { $0[i] = r }
                finished.add(1, ordering: .releasing)
            }
        }
        var timeline = Timeline(unit: unit)
        var lastSample = (t: start, done: 0, errors: 0)
        var lastDraw = (t: start, done: 0)
        var drew = false
        while finished.load(ordering: .acquiring) < bodies.count {
            usleep(50_000)
            let now = monotonicNanos()
            let totals = counters.reduce((done: 0, errors: 0)) { ($0.done + $1.values.done, $0.errors + $1.values.errors) }
            if now - lastSample.t >= 1_000_000_000 {
                let dt = Double(now - lastSample.t) / 1e9
                timeline.samples.append(TimelineSample(second: Double(now - start) / 1e9,
                                                       rate: Double(totals.done - lastSample.done) / dt,
                                                       errors: totals.errors - lastSample.errors))
                lastSample = (now, totals.done, totals.errors)
            }
            if live && now - lastDraw.t >= 250_000_000 {
                let dt = Double(now - lastDraw.t) / 1e9
                let rate = Double(totals.done - lastDraw.done) / dt * displayScale
                let elapsed = Double(now - start) / 1e9
                var line = "\r\u{1B}[K\(label)  " + (showsRate ? "\(fmt(rate, rate < 100 ? 1 : 0)) \(unit)/s  " : "") + "errors \(totals.errors)  elapsed \(fmt(elapsed, 1)) s"
                if let e = expectedSeconds { line += "  remaining \(fmt(max(0, e - elapsed), 1)) s" }
                writeError(line)
                drew = true
                lastDraw = (now, totals.done)
            }
        }
        threads.forEach { $0.join() }
        // The last, partial second (when it is long enough to say something).
        let end = monotonicNanos()
        if end - lastSample.t >= 250_000_000 {
            let totals = counters.reduce((done: 0, errors: 0)) { ($0.done + $1.values.done, $0.errors + $1.values.errors) }
            timeline.samples.append(TimelineSample(second: Double(end - start) / 1e9,
                                                   rate: Double(totals.done - lastSample.done) / (Double(end - lastSample.t) / 1e9),
                                                   errors: totals.errors - lastSample.errors))
        }
        if drew { writeError("\r\u{1B}[K") }
        let r = results.withLock { m in (0..<bodies.count).map { m[$0]! } }
        return (r, timeline)
    }
}

/// The shards' results merged into `report` in order; the first failure is thrown.
func merge<Part, Report>(_ results: [Result<Part, HarnessError>], into report: Report,
                         _ add: (inout Report, Part) -> Void) throws(HarnessError) -> Report {
    var report = report
    for r in results {
        switch r {
        case .success(let part): add(&report, part)
        case .failure(let e): throw e
        }
    }
    return report
}

/// Generator shards going through phases together: `wait()` returns when every party arrived,
/// or throws once any party gave up (`abort()`), so a failing shard never leaves the others waiting.
final class PhaseBarrier: Sendable {
    private let parties: Int
    private let arrived = Atomic<Int>(0)
    private let aborted = Atomic<Bool>(false)

    static let abandoned = "another generator thread failed"

    init(parties: Int) { self.parties = parties }

    func abort() { aborted.store(true, ordering: .releasing) }

    /// Waits for the others at the next phase boundary (a generation is `parties` arrivals).
    func wait() throws(HarnessError) {
        let ticket = arrived.add(1, ordering: .acquiringAndReleasing).newValue
        let target = (ticket + parties - 1) / parties * parties
        while arrived.load(ordering: .acquiring) < target {
            if aborted.load(ordering: .acquiring) { throw HarnessError(Self.abandoned) }
            usleep(200)
        }
    }
}
