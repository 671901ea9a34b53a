// The engine's per-completion bookkeeping, without a ring: the UserData tag every SQE carries,
// the SlotTable that maps it back to a connection (generations catch stale completions), and the
// PipePool a splice pump takes a pipe from and returns it to. All of it runs on a worker thread
// for every completion or transfer and must not allocate.
import Benchmark
import BenchmarkSupport
import URing
import Workers

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = BenchmarkSupport.configuration()

    // Pack the four fields, then read them back as the dispatch switch does.
    Benchmark("UserData_pack_and_unpack") { benchmark in
        var check: UInt64 = 0
        for i in benchmark.scaledIterations {
            let tag = UserData(op: UInt8(truncatingIfNeeded: i), slot: UInt32(i), generation: UInt16(truncatingIfNeeded: i &* 3), aux: 1)
            let back = UserData(rawValue: blackHoleIdentity(tag.rawValue))
            check &+= UInt64(back.op) &+ UInt64(back.slot) &+ UInt64(back.generation) &+ UInt64(back.aux)
        }
        blackHole(check)
    }

    // A connection arrives (insert), completions find it by handle, it closes (remove); then a
    // completion for the old occupant arrives and must miss. 256 live connections around it.
    Benchmark("SlotTable_insert_lookup_remove_stale_lookup") { benchmark in
        var table = SlotTable<Connection>(capacity: 1024)
        for i in 0..<256 { _ = table.insert(Connection(fd: Int32(i), bytes: 0)) }
        var misses = 0
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            let handle = table.insert(Connection(fd: Int32(i), bytes: 0))!
            let tag = handle.userData(op: 3)
            _ = table.withElement(SlotTable<Connection>.Handle(tag)) { $0.bytes &+= 64 }
            blackHole(table[handle])
            table.remove(handle)
            if table[SlotTable<Connection>.Handle(tag)] == nil { misses += 1 }
        }
        benchmark.stopMeasurement()
        precondition(misses == benchmark.scaledIterations.count)
    }

    // Lend an empty pipe and take it back. The return asks the kernel whether the pipe is really
    // empty (one ioctl FIONREAD), which is most of the cost.
    Benchmark("PipePool_acquire_and_release") { benchmark in
        var configuration = PipePool.Configuration()
        configuration.maximumPipes = 4
        configuration.preallocated = 4
        configuration.pipeSize = 64 << 10
        let pool = try PipePool(configuration: configuration)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let pipe = pool.acquire()!
            blackHole(pipe.readFD)
            pool.release(pipe)
        }
        benchmark.stopMeasurement()
        precondition(pool.inUse == 0 && pool.discarded == 0 && pool.open == 4)
    }
}

/// What a worker might keep per connection.
struct Connection {
    var fd: Int32
    var bytes: UInt64
}

/// Hides a value from the optimiser so that packing and unpacking are not folded together.
@inline(never)
func blackHoleIdentity(_ value: UInt64) -> UInt64 { value }
