import Synchronization

/// Per-worker counters for metrics: one block of 64-bit relaxed atomics per worker, each block on
/// cache lines of its own, written only by its worker and read by any thread (the metrics scrape).
///
/// The single-writer rule is what keeps the hot path cheap: `CounterSlot.add` is a relaxed load
/// and a relaxed store (plain moves on x86-64 and arm64, no locked read-modify-write), and no
/// other worker ever touches the line. Readers see each value whole, possibly a moment old.
/// Memory is allocated once and never grows.
public final class CounterTable: @unchecked Sendable {
    public let workers: Int
    public let counters: Int
    /// Atomics per worker block: `counters` rounded up to whole 128-byte units (two cache lines,
    /// so the adjacent-line prefetcher does not pair one worker's line with another's).
    let stride: Int
    let base: UnsafeMutablePointer<Atomic<UInt64>>
    static let blockAlignment = 128

    public init(workers: Int, counters: Int) {
        precondition(workers > 0 && counters >= 0)
        self.workers = workers
        self.counters = counters
        let perBlock = Self.blockAlignment / MemoryLayout<UInt64>.stride
        stride = max(1, (counters + perBlock - 1) / perBlock) * perBlock
        let total = workers * stride
        base = UnsafeMutableRawPointer.allocate(byteCount: total * MemoryLayout<UInt64>.stride, alignment: Self.blockAlignment)
            .bindMemory(to: Atomic<UInt64>.self, capacity: total)
        for i in 0..<total { (base + i).initialize(to: Atomic(0)) }
    }

    deinit {
        base.deinitialize(count: workers * stride)
        base.deallocate()
    }

    /// Worker `worker`'s block; only that worker may write through it.
    public func slot(_ worker: Int) -> CounterSlot {
        precondition(worker >= 0 && worker < workers)
        return CounterSlot(base: base + worker * stride, count: counters)
    }

    /// One counter of one worker.
    public func value(worker: Int, _ counter: Int) -> UInt64 {
        precondition(counter >= 0 && counter < counters)
        return (base + worker * stride + counter).pointee.load(ordering: .relaxed)
    }

    /// One counter summed over every worker.
    public func sum(_ counter: Int) -> UInt64 {
        (0..<workers).reduce(0) { $0 &+ value(worker: $1, counter) }
    }
}

/// A worker's block of a `CounterTable`. Copies share the block; use it from the owning worker
/// only (`load` is safe anywhere).
public struct CounterSlot: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Atomic<UInt64>>
    public let count: Int

    @usableFromInline init(base: UnsafeMutablePointer<Atomic<UInt64>>, count: Int) {
        self.base = base
        self.count = count
    }

    /// Adds `amount` to counter `index` (single writer: load then store, no locked instruction).
    @inlinable
    public func add(_ index: Int, _ amount: UInt64 = 1) {
        assert(index >= 0 && index < count)
        let p = base + index
        p.pointee.store(p.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// Sets counter `index` (gauges such as open connections).
    @inlinable
    public func set(_ index: Int, _ value: UInt64) {
        assert(index >= 0 && index < count)
        (base + index).pointee.store(value, ordering: .relaxed)
    }

    @inlinable
    public func load(_ index: Int) -> UInt64 {
        assert(index >= 0 && index < count)
        return (base + index).pointee.load(ordering: .relaxed)
    }
}

/// The engine's own per-worker figures, kept by `WorkerGroup` in `engineCounters`.
public enum EngineCounter: Int, CaseIterable, Sendable {
    /// SQEs filled and queued to the kernel.
    case sqes
    /// Completions dispatched by the worker loop (engine ops included).
    case cqes
    /// Multishot receives ended by `-ENOBUFS`: a provided-buffer ring ran empty (counted by the
    /// handler that re-arms them).
    case bufferRingEmpty

    /// The metric label value.
    public var label: String {
        switch self {
        case .sqes: return "sqes"
        case .cqes: return "cqes"
        case .bufferRingEmpty: return "enobufs"
        }
    }
}

extension CounterSlot {
    @inlinable public func add(_ counter: EngineCounter, _ amount: UInt64 = 1) { add(counter.rawValue, amount) }
}
