import Glibc
import URing

/// How far an inline-splice direction goes on after one POLLIN before it polls again
/// (`SplicePump(inline: true)`).
public struct InlineBurst: Sendable, Equatable {
    /// A read of at least this many bytes (or one that filled its request) is followed by another
    /// splice at once: the sender is busy. Smaller reads (paced sessions) poll again, so they pay
    /// no extra splice that would find nothing.
    public var continueAfter: Int
    /// Bytes read per POLLIN at most, over all continued splices (also capped by the direction's
    /// `maxChunk`). Bounds how long one busy direction holds its worker.
    public var maximumBytes: Int
    public init(continueAfter: Int = 64 << 10, maximumBytes: Int = 4 << 20) {
        precondition(continueAfter > 0 && maximumBytes > 0)
        self.continueAfter = continueAfter
        self.maximumBytes = maximumBytes
    }
    /// One splice per POLLIN (the behaviour before bursts).
    public static let single = InlineBurst(continueAfter: Int.max, maximumBytes: 1)
}

/// Zero-copy forwarding between two non-blocking TCP sockets through pipes (hbbr raw mode,
/// PROTOCOL.md §8.4): bytes go socket → pipe → socket inside the kernel.
///
/// Per direction:
/// ```
/// idle:      POLL_ADD(src, POLLIN)                       no pipe held, no io-wq worker parked
/// readable:  acquire a pipe (none: recv/send this chunk through a pooled buffer instead)
///            SPLICE(src → pipe, chunk) ─hardlink→ SPLICE(pipe → dst, chunk)
/// dst full:  POLL_ADD(dst, POLLOUT) ─link→ SPLICE(pipe → dst, fill)    until the pipe is empty
/// empty:     last splice filled its chunk → splice again at once (inline: a read ≥ 64 KiB too, up
///            to `InlineBurst.maximumBytes` per POLLIN); otherwise release the pipe, poll
/// EOF:       (pipe drained) SHUTDOWN(dst, SHUT_WR); the direction is done, the other goes on
/// ```
/// Splices are non-blocking (`SPLICE_F_NONBLOCK` on `O_NONBLOCK` sockets and pipes): io_uring
/// runs every splice on an io-wq worker, and a splice that could block would park that worker
/// for as long as the peer is silent. Polling first keeps idle directions in the poll table.
/// The POLLIN is not linked to the splice because the pipe is taken only once data is there.
///
/// `chunk` is `min(maxChunk, pipe capacity)`: `setMaxChunk(_:for:)` is the per-splice length cap
/// for time-sliced bandwidth limits; `pause`/`resume` stop and restart a direction.
/// Lifecycle, events and ownership as described on `Pump`.
public final class SplicePump: Pump {
    /// - Parameters:
    ///   - a, b: connected, non-blocking TCP sockets. The pump owns them from here on and closes
    ///     them when it drains.
    ///   - tag: op, slot and generation for every operation; `aux` is the pump's.
    ///   - pool: this worker's pipes; the pump holds a pipe per direction only while bytes are in it.
    ///   - pendingAToB, pendingBToA: bytes already read from `a` (resp. `b`) into user space, for
    ///     example behind the first frame; sent to the other side before anything spliced.
    ///   - copyBuffers: this worker's buffers for chunks moved while `pool` has no pipe to lend;
    ///     a direction holds one only from the recv of such a chunk until all of it was sent.
    ///   - inline: after a POLLIN, splice with splice(2) on the owner's thread (two system calls,
    ///     no io-wq hand-off), or peek, send(2) and drop when the pool is empty; a full
    ///     destination still waits in the ring. A direction that filled its chunk polls again (an io_uring
    ///     poll on a readable socket completes at once), so one busy direction cannot hold the
    ///     worker. false: both splices go through the ring (io-wq), and so do a copied chunk's
    ///     recv and send.
    ///   - burst: with `inline`, how far a direction splices on after one POLLIN.
    public init(a: Int32, b: Int32, tag: UserData, pool: PipePool, copyBuffers: CopyBufferPool,
                pendingAToB: [UInt8] = [], pendingBToA: [UInt8] = [], inline: Bool = false, burst: InlineBurst = .init()) {
        super.init(a: a, b: b, tag: tag, pool: pool, copyBuffers: copyBuffers, bufferSize: copyBuffers.configuration.bufferSize,
                   maxChunk: Int(Int32.max), pendingAToB: pendingAToB, pendingBToA: pendingBToA)
        splicesInline = inline
        inlineBurst = burst
    }
}

// MARK: The splice stages (chosen by `Pump.step`).

extension Pump {
    /// SPLICE(source → pipe) hard-linked to SPLICE(pipe → destination), both non-blocking. The
    /// hard link lets the second run even when the first is short (which a plain link would
    /// treat as failure); when the first moved nothing, the second finds an empty pipe and
    /// returns EAGAIN.
    func submitSpliceCycle(_ d: Int, _ ring: inout Ring, afterPoll: Bool) throws(Errno) {
        let pipe = lanes[d].pipe!
        let length = UInt32(min(lanes[d].maxChunk, pipe.capacity))
        lanes[d].lastRequested = Int32(length)
        lanes[d].readAfterPoll = afterPoll
        let source = lanes[d].source, destination = lanes[d].destination
        if splicesInline {
            try spliceInline(d, source: source, destination: destination, length: length, &ring)
            return
        }
        try ring.splice(from: source, to: pipe.writeFD, length: length, userData: userData(d, .spliceIn), flags: .hardLink)
        mark(d, .spliceIn)
        try ring.splice(from: pipe.readFD, to: destination, length: length, userData: userData(d, .spliceOut))
        mark(d, .spliceOut)
    }

    /// The inline form of a splice cycle: both splices now, on this thread, booked exactly as
    /// their completions would be. While the reads are large (`InlineBurst.continueAfter`: a
    /// busy sender, more is probably queued) and the destination took everything, splice again
    /// at once instead of polling, up to `InlineBurst.maximumBytes` and the direction's
    /// `maxChunk` per wake-up, so one busy direction still cannot hold the worker and a limited
    /// one reads no more per completion than with a single read. Then the next step (a drain
    /// through the ring if the destination was full, a POLLIN otherwise). `step` does not
    /// continue inline, so this is the only loop.
    func spliceInline(_ d: Int, source: Int32, destination: Int32, length: UInt32, _ ring: inout Ring) throws(Errno) {
        var allowance = min(lanes[d].maxChunk, inlineBurst.maximumBytes)
        var length = Int(length)
        while true {
            let read = spliceNow(from: source, to: lanes[d].pipe!.writeFD, length: length)
            if let failure = record(read, stage: .spliceIn, lane: d) { fail(failure, d); return }
            let fill = lanes[d].pipe!.fill
            if fill > 0 {
                let written = spliceNow(from: lanes[d].pipe!.readFD, to: destination, length: fill)
                if let failure = record(written, stage: .spliceOut, lane: d) { fail(failure, d); return }
            }
            let got = Int(lanes[d].lastRead)
            allowance -= max(0, got)
            guard got > 0, got >= inlineBurst.continueAfter || got == length, allowance > 0,
                  lanes[d].pipe!.fill == 0, !lanes[d].sawEndOfStream, !lanes[d].paused, end == nil else { break }
            length = min(allowance, lanes[d].pipe!.capacity)
            lanes[d].lastRequested = Int32(length)
            lanes[d].readAfterPoll = false
        }
        try step(d, &ring)
    }

    /// POLL(destination, POLLOUT) linked to SPLICE(pipe → destination): the destination was
    /// full, so wait until it has room (no retrying on EAGAIN), then move what the pipe holds.
    func submitDrain(_ d: Int, _ ring: inout Ring) throws(Errno) {
        let pipe = lanes[d].pipe!
        let destination = lanes[d].destination
        try ring.pollAdd(fd: destination, events: Int16(POLLOUT), userData: userData(d, .pollWritable), flags: .link)
        mark(d, .pollWritable)
        try ring.splice(from: pipe.readFD, to: destination, length: UInt32(pipe.fill), userData: userData(d, .spliceOut))
        mark(d, .spliceOut)
    }
}
