import Glibc
import Testing
@testable import URing

/// `Ring.submitAndWait(minimum:minWaitMicros:)`: the kernel's bounded wait for a batch
/// (IORING_FEAT_MIN_TIMEOUT, 6.12+), which both servers' workers use for `--batch-wait`.
@Suite(.timeLimit(.minutes(1)), .enabled(if: Ring.kernelSupportsMinWait(), "kernel without IORING_FEAT_MIN_TIMEOUT (6.12+)"))
struct BatchedWaitTests {
    /// Waits once; returns the completions ready afterwards and the milliseconds it took.
    static func timedWait(_ ring: inout Ring, minimum: Int, micros: UInt32) throws -> (ready: Int, millis: Int) {
        let start = monotonicMillis()
        try ring.submitAndWait(minimum: minimum, minWaitMicros: micros)
        return (ring.readyCompletions, monotonicMillis() - start)
    }

    @Test func fewerCompletionsThanAskedEndTheWaitWhenTheMinimumWaitIsOver() throws {
        var ring = try Ring(entries: 8)
        try ring.nop(userData: UserData(op: 1))
        let (ready, waited) = try Self.timedWait(&ring, minimum: 8, micros: 40_000)
        #expect(ready == 1)
        #expect(waited >= 35, "held out for the batch: \(waited) ms")
        #expect(waited < 2_000, "then settled for the one completion: \(waited) ms")
    }

    @Test func aFullBatchEndsTheWaitAtOnce() throws {
        var ring = try Ring(entries: 8)
        for i in 0..<8 { try ring.nop(userData: UserData(op: 1, slot: UInt32(i))) }
        let (ready, waited) = try Self.timedWait(&ring, minimum: 8, micros: 5_000_000)
        #expect(ready == 8)
        #expect(waited < 2_000, "did not sit out the 5 s minimum wait: \(waited) ms")
    }

    @Test func withNothingReadyTheFirstLaterCompletionEndsTheWait() throws {
        var ring = try Ring(entries: 8)
        let spec = UnsafeMutablePointer<KernelTimespec>.allocate(capacity: 1)
        defer { spec.deallocate() }
        spec.pointee = KernelTimespec(tv_sec: 0, tv_nsec: 150_000_000)
        try ring.timeout(spec, userData: UserData(op: 2))
        let (ready, waited) = try Self.timedWait(&ring, minimum: 8, micros: 10_000)
        // Neither returned empty when the 10 ms were over nor waited for 8: the timeout's
        // completion at 150 ms ended it.
        #expect(ready == 1)
        #expect(waited >= 140, "\(waited) ms")
        #expect(waited < 3_000, "\(waited) ms")
    }

    @Test func aMinimumOfOneOrNoWaitTimeIsAPlainWait() throws {
        var ring = try Ring(entries: 8)
        try ring.nop(userData: UserData(op: 1))
        let (ready, waited) = try Self.timedWait(&ring, minimum: 1, micros: 5_000_000)
        #expect(ready == 1)
        #expect(waited < 2_000, "\(waited) ms")
        try ring.nop(userData: UserData(op: 1))
        let (ready2, waited2) = try Self.timedWait(&ring, minimum: 8, micros: 0)
        #expect(ready2 == 2)
        #expect(waited2 < 2_000, "\(waited2) ms")
    }
}
