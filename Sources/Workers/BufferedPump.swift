import Glibc
import URing

/// Forwarding between two TCP sockets through a user-space buffer per direction: recv into the
/// buffer, send all of it (looping on short sends), recv again. The path for pairs that cannot
/// splice (no pipe, or a side that needs framing such as WebSocket). Same interface, events and
/// lifecycle as `SplicePump` (see `Pump`): pending bytes first, half-close forwarded, counters,
/// `pause`/`resume`, `setMaxChunk` (caps each recv), close then drain.
///
/// Why a plain `recv` into a per-direction buffer rather than multishot recv on a provided-buffer
/// ring: the relay must not read faster than the destination takes bytes. One recv at a time per
/// direction, re-armed only after the send completed, gives that backpressure for free: the
/// source's TCP window closes while the destination is slow. A multishot recv keeps filling
/// buffers from the shared ring whatever the destination does, so it would need cancelling and
/// re-arming around every slow send, and one slow peer could empty the ring for every connection
/// of the worker. The cost is the buffer a waiting recv pins; the buffer size (64 KiB default,
/// measured: it matters more than splice versus copy) bounds memory at `2 × bufferSize` per pair.
/// A recv waiting for data parks no io-wq worker: io_uring waits through its internal poll.
public final class BufferedPump: Pump {
    /// - Parameters:
    ///   - a, b: connected, non-blocking TCP sockets. The pump owns them from here on and closes
    ///     them when it drains.
    ///   - tag: op, slot and generation for every operation; `aux` is the pump's.
    ///   - bufferSize: bytes per direction (each recv reads at most this).
    ///   - pendingAToB, pendingBToA: bytes already read from `a` (resp. `b`) into user space; sent
    ///     to the other side before anything else.
    ///   - inline: after a recv completion, send(2) the chunk on the owner's thread and, while the
    ///     reads fill the buffer and the destination takes everything, recv(2) and send again at
    ///     once (up to `burst.maximumBytes` and the direction's `maxChunk` per completion) before
    ///     the next recv goes to the ring. A full destination still waits in the ring (a ring
    ///     send). false: every recv and send goes through the ring (one completion each).
    ///   - burst: with `inline`, how far a direction copies on after one completion.
    public init(a: Int32, b: Int32, tag: UserData, bufferSize: Int = 64 << 10,
                pendingAToB: [UInt8] = [], pendingBToA: [UInt8] = [], inline: Bool = true, burst: InlineBurst = .init()) {
        super.init(a: a, b: b, tag: tag, pool: nil, copyBuffers: nil, bufferSize: bufferSize, maxChunk: bufferSize,
                   pendingAToB: pendingAToB, pendingBToA: pendingBToA)
        copiesInline = inline
        inlineBurst = burst
    }
}

// MARK: The copy stages (chosen by `Pump.step`; also `SplicePump`'s fallback).

extension Pump {
    /// recv of up to one chunk into the lane's buffer.
    func submitReceive(_ d: Int, _ ring: inout Ring) throws(Errno) {
        try ring.recv(fd: lanes[d].source, into: receiveTarget(d), userData: userData(d, .receive))
        mark(d, .receive)
    }

    /// The inline form of a copied chunk (an inline `SplicePump` with no pipe to be had, after a
    /// POLLIN), which holds no buffer afterwards: on this thread, non-blocking, peek at up to one
    /// chunk of the source into a pooled buffer (`MSG_PEEK`), send what the destination takes,
    /// then drop exactly that many bytes from the source (`MSG_TRUNC`, no copy). The buffer goes
    /// back before this returns. Bytes the destination did not take stay in the source's receive
    /// queue, where TCP pushes back on the sender; the direction waits for POLLOUT on the
    /// destination (`awaitingRoom`) before it reads again. One syscall more than recv + send, but
    /// a stuck or slow destination pins no user-space memory.
    func copyInline(_ d: Int, _ ring: inout Ring) throws(Errno) {
        let scratch = copyBuffers!.acquire()
        defer { copyBuffers!.release(scratch) }
        let length = min(lanes[d].maxChunk, scratch.count)
        lanes[d].lastRequested = Int32(length)
        let peeked = Socket.receiveNow(lanes[d].source, into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<length]), peek: true)
        guard peeked > 0 else {
            // 0: end of stream; -EAGAIN: nothing after all; anything else ends the pair.
            if let failure = record(peeked, stage: .receive, lane: d) { fail(failure, d); return }
            try step(d, &ring)
            return
        }
        let sent = Socket.sendNow(lanes[d].destination, from: UnsafeRawBufferPointer(rebasing: scratch[..<Int(peeked)]))
        if sent < 0 {
            let e = Errno(rawValue: -sent)
            // EAGAIN: the destination is full; everything stays in the source.
            if e != .wouldBlock && e != .interrupted { fail(e, d); return }
        }
        let moved = max(0, Int(sent))
        if moved > 0 {
            // Expected: none; the bytes were just peeked and only this thread reads the socket.
            let dropped = Socket.discardNow(lanes[d].source, count: moved)
            guard dropped == Int32(moved) else {
                assertionFailure("dropped \(dropped) of \(moved) peeked bytes")
                fail(Errno(rawValue: dropped < 0 ? -dropped : EIO), d)
                return
            }
            lanes[d].counters.bytesRead &+= UInt64(moved)
            lanes[d].counters.bytesCopied &+= UInt64(moved)
            lanes[d].counters.bytesWritten &+= UInt64(moved)
        }
        lanes[d].lastRead = Int32(moved)
        if moved < Int(peeked) { lanes[d].awaitingRoom = true }
        try step(d, &ring)
    }

    /// Where the next recv of `d` goes: up to one chunk at the start of the lane's buffer (taken
    /// from the pool, or allocated on first use without one); the lane's buffer is empty after.
    func receiveTarget(_ d: Int) -> UnsafeMutableRawBufferPointer {
        if lanes[d].buffer == nil {
            lanes[d].buffer = copyBuffers?.acquire() ?? .allocate(byteCount: bufferSize, alignment: 64)
        }
        let length = min(lanes[d].maxChunk, bufferSize)
        lanes[d].lastRequested = Int32(length)
        lanes[d].bufferStart = 0
        lanes[d].bufferEnd = 0
        return UnsafeMutableRawBufferPointer(rebasing: lanes[d].buffer![..<length])
    }

    /// Gives `d`'s buffer back to the pool (or frees it without one). Nothing in flight may
    /// point at it.
    func releaseBuffer(_ d: Int) {
        guard let buffer = lanes[d].buffer else { return }
        if let copyBuffers { copyBuffers.release(buffer) } else { buffer.deallocate() }
        lanes[d].buffer = nil
        lanes[d].bufferStart = 0
        lanes[d].bufferEnd = 0
    }

    @inline(__always)
    func unsentBytes(_ d: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: lanes[d].buffer![lanes[d].bufferStart..<lanes[d].bufferEnd])
    }

    /// `BufferedPump(inline: true)`, when a recv completion left bytes in the buffer: send them
    /// now with send(2), and while each read filled its request and the destination took all of
    /// it, recv(2) the next chunk and send it too, booked exactly as completions would be. Ends
    /// with a ring send when the destination is full (it waits for room, holding the rest), or
    /// with `step` (a ring recv, which waits for data) when the source has nothing more, the
    /// read was short, or the burst's allowance (`InlineBurst.maximumBytes`, the direction's
    /// `maxChunk`: a limited direction reads no more per completion than with one recv) is
    /// spent. Each ring round trip may wait for the worker's batched wake-up; this keeps one
    /// busy direction from paying one per 64 KiB, while small reads (paced sessions) still
    /// make one recv and one send per completion.
    func copyInlineBurst(_ d: Int, _ ring: inout Ring) throws(Errno) {
        var allowance = min(lanes[d].maxChunk, inlineBurst.maximumBytes) - max(0, Int(lanes[d].lastRead))
        while true {
            while lanes[d].bufferEnd > lanes[d].bufferStart {
                let sent = Socket.sendNow(lanes[d].destination, from: unsentBytes(d))
                if sent == -EAGAIN {
                    try submitSend(d, &ring)
                    return
                }
                if sent == -EINTR { continue }
                if let failure = record(sent, stage: .send, lane: d) { fail(failure, d); return }
            }
            guard lanes[d].lastRead > 0, lanes[d].lastRead == lanes[d].lastRequested, allowance > 0,
                  !lanes[d].sawEndOfStream, !lanes[d].paused, end == nil else { break }
            let target = receiveTarget(d)
            let got = Socket.receiveNow(lanes[d].source, into: UnsafeMutableRawBufferPointer(rebasing: target[..<min(target.count, allowance)]), peek: false)
            lanes[d].lastRequested = Int32(min(target.count, allowance))
            if got == -EAGAIN || got == -EINTR { lanes[d].lastRead = 0; break }
            if let failure = record(got, stage: .receive, lane: d) { fail(failure, d); return }
            allowance -= Int(max(0, got))
        }
        try step(d, &ring)
    }

    /// send of the buffered bytes not yet sent (io_uring waits for room; a short send loops).
    func submitSend(_ d: Int, _ ring: inout Ring) throws(Errno) {
        try ring.send(fd: lanes[d].destination, from: unsentBytes(d), userData: userData(d, .send))
        mark(d, .send)
    }
}
