import Glibc
import Testing
@testable import URing

/// Multishot receives end when the kernel says so (a completion without `hasMore`): when the
/// provided buffers run out (-ENOBUFS) and when the completion queue is full. The owner re-arms
/// and no byte is lost or reordered.
@Suite(.timeLimit(.minutes(1)))
struct MultishotTests {
    static let recv = UserData(op: 1, slot: 0, generation: 1)

    /// Receives `expected.count` bytes from `fd` through multishot recv on `buffers`, re-arming
    /// every time the kernel ends it. `holdBuffers`: keep every buffer of one arm until it ends
    /// (so the ring runs dry), instead of recycling each at once.
    func receiveAll(
        _ fd: Int32, expecting count: Int, ring: inout Ring, buffers: ProvidedBufferRing, holdBuffers: Bool
    ) throws -> (bytes: [UInt8], endings: [Int32]) {
        var received: [UInt8] = []
        var endings: [Int32] = []
        var held: [UInt16] = []
        let batch = UnsafeMutableBufferPointer<Completion>.allocate(capacity: 64)
        defer { batch.deallocate() }
        try ring.multishotRecv(fd: fd, group: buffers.group, userData: Self.recv)
        let deadline = monotonicMillis() + 10_000
        while received.count < count {
            try #require(monotonicMillis() < deadline, "only \(received.count) of \(count) bytes arrived; endings \(endings)")
            try ring.submitAndWait(minimum: 1, timeoutNanos: 100_000_000)
            while true {
                let n = ring.reapCompletions(into: batch)
                if n == 0 { break }
                for c in batch[0..<n] {
                    try #require(c.userData == Self.recv)
                    if let id = c.bufferID {
                        buffers.taken(id)
                        try #require(c.result > 0)
                        received.append(contentsOf: buffers.buffer(id)[0..<Int(c.result)])
                        if holdBuffers { held.append(id) } else { buffers.recycle(id) }
                    } else {
                        try #require(c.result < 0, "a completion without a buffer must be an error, got \(c.result)")
                    }
                    if !c.hasMore {
                        endings.append(c.result < 0 ? c.result : 1)
                        try #require(c.result > 0 || c.result == -ENOBUFS, "unexpected end: \(c.result)")
                        for id in held { buffers.recycle(id) }
                        held.removeAll()
                        if received.count < count {
                            try ring.multishotRecv(fd: fd, group: buffers.group, userData: Self.recv)
                        }
                    }
                }
            }
        }
        for id in held { buffers.recycle(id) }
        return (received, endings)
    }

    @Test func runningOutOfProvidedBuffersEndsTheReceiveAndARearmLosesNothing() throws {
        var ring = try Ring(entries: 16)
        let buffers = try ProvidedBufferRing(ring: &ring, group: 1, count: 4, bufferSize: 1024)
        defer { buffers.unregister(from: &ring) }
        let pair = try TCPPair()
        let data = patternBytes(48 * 1024, seed: 42)
        try writeAll(pair.client, data)
        let (received, endings) = try receiveAll(pair.server, expecting: data.count, ring: &ring, buffers: buffers, holdBuffers: true)
        #expect(received == data)
        // 48 KiB through four 1 KiB buffers held until each arm ends: at least 11 arms ran dry.
        #expect(endings.filter { $0 == -ENOBUFS }.count >= 11, "endings: \(endings)")
        #expect(buffers.outstanding == 0)
        // Cancel the last arm so nothing is left pointing at the buffer ring.
        try ring.cancel(Self.recv)
        var reaper = Reaper()
        _ = try reaper.final(Self.recv, &ring)
    }

    @Test func aFullCompletionQueueEndsTheReceiveAndARearmLosesNothing() throws {
        // 8 CQEs of room and 16-byte buffers: 2 KiB waiting in the socket needs 128 completions,
        // so the kernel finds the CQ full and ends the multishot with a successful final completion.
        var ring = try Ring(entries: 4, completionEntries: 8)
        let buffers = try ProvidedBufferRing(ring: &ring, group: 1, count: 256, bufferSize: 16)
        defer { buffers.unregister(from: &ring) }
        let pair = try TCPPair()
        let data = patternBytes(2048, seed: 7)
        try writeAll(pair.client, data)
        let (received, endings) = try receiveAll(pair.server, expecting: data.count, ring: &ring, buffers: buffers, holdBuffers: false)
        #expect(received == data)
        #expect(endings.contains(1), "no successful final completion; endings: \(endings)")
        try ring.cancel(Self.recv)
        var reaper = Reaper()
        _ = try reaper.final(Self.recv, &ring)
    }

    @Test func aBufferRingHandsOutEachBufferOnceUntilRecycled() throws {
        var ring = try Ring(entries: 16)
        let buffers = try ProvidedBufferRing(ring: &ring, group: 3, count: 2, bufferSize: 64)
        defer { buffers.unregister(from: &ring) }
        let first = buffers.buffer(0).baseAddress!, second = buffers.buffer(1).baseAddress!
        #expect(second == first + 64)
        let pair = try TCPPair()
        var reaper = Reaper()
        var ids: [UInt16] = []
        for round in 0..<3 {
            try writeAll(pair.client, [UInt8(round)])
            let tag = UserData(op: 1, slot: UInt32(round))
            try ring.multishotRecv(fd: pair.server, group: 3, userData: tag)
            try reaper.pump(&ring) { $0.contains { $0.userData == tag && $0.bufferID != nil } }
            let c = try #require(reaper.seen.first(where: { $0.userData == tag && $0.bufferID != nil }))
            buffers.taken(c.bufferID!)
            ids.append(c.bufferID!)
            let byte = buffers.buffer(c.bufferID!).first
            #expect(byte == UInt8(round))
            try ring.cancel(tag)
            _ = try reaper.final(tag, &ring)
            if round == 1 {
                // Both buffers are out: the next receive must wait for a recycle.
                #expect(buffers.outstanding == 2)
                #expect(Set(ids).count == 2)
                buffers.recycle(ids[0])
            }
        }
        #expect(ids[2] == ids[0], "the only free buffer is the recycled one")
        buffers.recycle(ids[1])
        buffers.recycle(ids[2])
        #expect(buffers.outstanding == 0)
    }
}
