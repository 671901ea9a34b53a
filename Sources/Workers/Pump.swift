import Glibc
import URing

/// One of the two directions of a pumped pair of sockets `a` and `b`.
public enum PumpDirection: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Bytes read from `a`, written to `b`.
    case aToB = 0
    /// Bytes read from `b`, written to `a`.
    case bToA = 1

    public var description: String { self == .aToB ? "a→b" : "b→a" }
}

/// Bytes moved in one direction.
public struct PumpCounters: Sendable, Equatable {
    /// Bytes taken from the source socket (pending bytes handed to the pump are not counted).
    public var bytesRead: UInt64 = 0
    /// Bytes handed to the destination socket, pending bytes included.
    public var bytesWritten: UInt64 = 0
    /// The part of `bytesRead` taken with recv into a user-space buffer rather than spliced (all
    /// of it for `BufferedPump`; `SplicePump`'s copy fallback).
    public var bytesCopied: UInt64 = 0
    public init() {}
}

/// Why a pair stopped moving bytes.
public enum PumpEnd: Sendable, Equatable {
    /// Both sources reached end of stream and both half-closes were forwarded.
    case completed
    /// A read, write or poll failed (ECONNRESET, EPIPE, …); `direction` is where it happened.
    case failed(Errno, PumpDirection)
}

/// What a pump tells its owner after a completion or a call.
public enum PumpEvent: Sendable, Equatable {
    case none
    /// `direction`'s source reached end of stream, every byte of it was delivered and the
    /// destination was shut down for writing. The other direction may still run.
    case halfClosed(PumpDirection)
    /// Nothing more will move (reported once, and instead of a simultaneous `halfClosed`):
    /// the owner calls `close(ring:)`.
    case finished(PumpEnd)
    /// After `close(ring:)`: every operation delivered its final completion, the sockets are
    /// closed and the pipes returned. The owner forgets the pump (and may reuse its slot).
    case drained
}

/// The sub-operations of a direction, carried in `UserData.aux` as `direction << 4 | stage`.
enum PumpStage: UInt8 {
    case sendPending = 1
    case pollReadable = 2
    case spliceIn = 3
    case spliceOut = 4
    case pollWritable = 5
    case receive = 6
    case send = 7
    case shutdown = 8

    @inline(__always) var bit: UInt16 { 1 << rawValue }
}

/// The state of one direction. At most one chain of operations is in flight per direction, so a
/// stage appears at most once in `inFlight`, and the next step is chosen when `inFlight` is empty.
struct PumpLane {
    let source: Int32
    let destination: Int32
    /// Stages submitted whose (single, final) completion has not arrived.
    var inFlight: UInt16 = 0
    /// Bytes read before the switch to the pump, sent before anything else. Owned.
    var pending: UnsafeMutableRawBufferPointer?
    var pendingSent = 0
    /// The pipe while bytes are on their way through it (splice path).
    var pipe: Pipe?
    /// User-space buffer (copy path): bytes `bufferStart..<bufferEnd` are still to be sent. Owned.
    var buffer: UnsafeMutableRawBufferPointer?
    var bufferStart = 0
    var bufferEnd = 0
    /// Length asked of the latest read (splice in or recv) and what it returned.
    var lastRequested: Int32 = 0
    var lastRead: Int32 = 0
    /// A POLLIN arrived and no read consumed it yet.
    var readable = false
    /// A POLLIN was followed by a splice that found nothing (urgent data at the read mark stops
    /// TCP splicing while poll keeps reporting readable): read the next chunk with recv instead.
    var copyNextRead = false
    /// The splice in flight was started by a POLLIN (not a continuation).
    var readAfterPoll = false
    /// An inline copy left bytes in the source that the destination would not take: wait for
    /// POLLOUT on the destination before reading again.
    var awaitingRoom = false
    var sawEndOfStream = false
    var halfClosed = false
    var paused = false
    var maxChunk: Int
    var counters = PumpCounters()

    init(source: Int32, destination: Int32, pending: [UInt8], maxChunk: Int) {
        self.source = source
        self.destination = destination
        self.maxChunk = maxChunk
        if !pending.isEmpty {
            let p = UnsafeMutableRawBufferPointer.allocate(byteCount: pending.count, alignment: 16)
            p.copyBytes(from: pending)
            self.pending = p
        }
    }
}

/// The machinery shared by `SplicePump` and `BufferedPump`: two directions between non-blocking
/// TCP sockets `a` and `b`, driven by completions on the owner's ring.
///
/// Per direction, in order: the pending bytes (sent with `send`); then cycles of "read a chunk
/// from the source, write all of it to the destination" (by splice through a pipe, or by recv and
/// send through a user-space buffer); at end of stream, `shutdown(destination, SHUT_WR)`.
/// A failure ends the pair (`finished(.failed)`); the owner then calls `close(ring:)`, which
/// cancels what is in flight and reports `drained` after the last final completion
/// (STYLE.md habit 3): only then are pipes returned, buffers freed and sockets closed.
///
/// Every operation is tagged `UserData(op: tag.op, slot: tag.slot, generation: tag.generation,
/// aux: direction << 4 | stage)`; the owner routes completions with `tag.op` to `handle`.
/// Confined to the owner's thread. Use through `SplicePump` or `BufferedPump`. A pump must
/// have drained before it is released (it traps otherwise); `close(ring:)` also works on a pump
/// that never started, and then drains at once.
public class Pump {
    public let a: Int32
    public let b: Int32
    let tag: UserData
    var lanes: [PumpLane]
    let pool: PipePool?
    /// `SplicePump`'s copy fallback: a lane takes a buffer from here for one chunk and gives it
    /// back when the chunk was sent. nil (`BufferedPump`): each lane allocates its own buffer on
    /// its first recv and keeps it until the pump drains.
    let copyBuffers: CopyBufferPool?
    /// Size of a lane's user-space buffer.
    let bufferSize: Int
    /// Splice path: wait for POLLIN without a pipe, then take one. Copy path: recv directly.
    let pollsBeforeReading: Bool
    /// Splice path: after a POLLIN, call splice(2) on the owner's thread instead of submitting
    /// the two splices to the ring (which always runs them on io-wq threads). A destination
    /// that is full still waits in the ring (POLLOUT linked to a ring splice).
    var splicesInline = false
    /// With `splicesInline`: how far a direction splices on after one POLLIN; with
    /// `copiesInline`, how far it copies on after one recv completion.
    var inlineBurst = InlineBurst()
    /// Copy path (`BufferedPump`): send a received chunk with send(2) on the owner's thread and
    /// go on with recv(2) while the sender is busy (`copyInlineBurst`).
    var copiesInline = false
    var end: PumpEnd?
    var endReported = false
    var started = false
    var closing = false
    public private(set) var isDrained = false

    init(a: Int32, b: Int32, tag: UserData, pool: PipePool?, copyBuffers: CopyBufferPool?, bufferSize: Int, maxChunk: Int,
         pendingAToB: [UInt8], pendingBToA: [UInt8]) {
        precondition(bufferSize > 0 && maxChunk > 0)
        self.a = a
        self.b = b
        self.tag = tag
        self.pool = pool
        self.copyBuffers = copyBuffers
        self.bufferSize = bufferSize
        pollsBeforeReading = pool != nil
        lanes = [
            PumpLane(source: a, destination: b, pending: pendingAToB, maxChunk: maxChunk),
            PumpLane(source: b, destination: a, pending: pendingBToA, maxChunk: maxChunk),
        ]
    }

    deinit {
        // Dropping a pump with operations in flight would free memory the kernel still uses.
        precondition(isDrained, "a pump was released before it drained")
    }

    // MARK: Owner's interface

    /// Submits the first operations of both directions.
    @discardableResult
    public func start(ring: inout Ring) -> PumpEvent {
        precondition(!started, "a pump starts once")
        started = true
        advance(0, &ring)
        advance(1, &ring)
        return pairEvent(nil)
    }

    /// One completion tagged with this pump's op, slot and generation.
    public func handle(_ completion: Completion, ring: inout Ring) -> PumpEvent {
        let aux = completion.userData.aux
        let d = Int(aux >> 4)
        guard d < 2, let stage = PumpStage(rawValue: aux & 0x0F), lanes[d].inFlight & stage.bit != 0 else {
            assertionFailure("pump completion for an operation not in flight: \(completion.userData)")
            return .none
        }
        lanes[d].inFlight &= ~stage.bit
        let failure = record(completion.result, stage: stage, lane: d)
        if closing { return finishDraining() }
        if let failure { fail(failure, d) }
        let shutDown = stage == .shutdown
        if lanes[d].inFlight == 0 { advance(d, &ring) }
        return pairEvent(shutDown ? PumpDirection(rawValue: UInt8(d)) : nil)
    }

    /// Stops `direction` from reading its source until `resume`: its counters' `bytesRead` stays
    /// put. A receive waiting for data is cancelled (one that already got bytes completes and is
    /// counted). Bytes already read (pending ones, a pipe's, a buffer's) are still delivered, so
    /// a paused direction gives its pipe back like an idle one. For bandwidth limits.
    @discardableResult
    public func pause(_ direction: PumpDirection, ring: inout Ring) -> PumpEvent {
        let d = Int(direction.rawValue)
        guard !lanes[d].paused else { return .none }
        lanes[d].paused = true
        if lanes[d].inFlight & PumpStage.receive.bit != 0 {
            do { try ring.cancel(userData(d, .receive)) } catch { fail(error, d) }
        }
        return pairEvent(nil)
    }

    /// Lets a paused direction move bytes again.
    @discardableResult
    public func resume(_ direction: PumpDirection, ring: inout Ring) -> PumpEvent {
        let d = Int(direction.rawValue)
        guard lanes[d].paused else { return .none }
        lanes[d].paused = false
        if lanes[d].inFlight == 0 { advance(d, &ring) }
        return pairEvent(nil)
    }

    /// Caps the bytes of each later read of `direction` (a splice or a recv) at `bytes` (≥ 1):
    /// with `pause`/`resume`, a time-sliced bandwidth limit that costs no copying.
    public func setMaxChunk(_ bytes: Int, for direction: PumpDirection) {
        lanes[Int(direction.rawValue)].maxChunk = max(1, bytes)
    }

    public func maxChunk(_ direction: PumpDirection) -> Int { lanes[Int(direction.rawValue)].maxChunk }

    /// Ends the pair: cancels everything in flight. Returns `.drained` if nothing was in flight;
    /// otherwise `handle` returns `.drained` with the last final completion. Idempotent.
    @discardableResult
    public func close(ring: inout Ring) -> PumpEvent {
        guard !closing else { return .none }
        closing = true
        for d in 0..<2 {
            let flying = lanes[d].inFlight
            for stage in Self.cancellableStages where flying & stage.bit != 0 {
                // Not found (ENOENT) is fine: a linked operation that has not started fails with
                // its chain, and a running splice finishes on its own (it never blocks).
                do {
                    try ring.cancel(userData(d, stage))
                } catch {
                    // The submission queue is wedged. Shutting the sockets down still ends every
                    // operation that could wait (polls see POLLHUP, recv and send fail).
                    Glibc.shutdown(a, Int32(SHUT_RDWR))
                    Glibc.shutdown(b, Int32(SHUT_RDWR))
                }
            }
        }
        return finishDraining()
    }

    public func counters(_ direction: PumpDirection) -> PumpCounters { lanes[Int(direction.rawValue)].counters }
    public func isPaused(_ direction: PumpDirection) -> Bool { lanes[Int(direction.rawValue)].paused }
    /// The direction's end of stream was forwarded (`halfClosed` was reached).
    public func isHalfClosed(_ direction: PumpDirection) -> Bool { lanes[Int(direction.rawValue)].halfClosed }
    /// Pipes this pump holds now (0 when idle).
    public var pipesHeld: Int { lanes.reduce(0) { $0 + ($1.pipe == nil ? 0 : 1) } }
    /// User-space buffers this pump holds now (`SplicePump`: 0 when idle; `BufferedPump`: one
    /// per direction that has read, kept until it drains).
    public var buffersHeld: Int { lanes.reduce(0) { $0 + ($1.buffer == nil ? 0 : 1) } }
    /// Why the pair ended, once it has.
    public var endReason: PumpEnd? { end }
    /// Operations in flight (for tests and diagnostics).
    public var operationsInFlight: Int { lanes.reduce(0) { $0 + $1.inFlight.nonzeroBitCount } }

    // MARK: Completions

    static let cancellableStages: [PumpStage] = [.sendPending, .pollReadable, .spliceIn, .spliceOut, .pollWritable, .receive, .send, .shutdown]

    /// Books one result; returns the error that ends the pair, if it is one.
    ///
    /// Expected, not failures: ECANCELED (our own cancel, or the rest of a chain whose head was
    /// cancelled), EAGAIN (a non-blocking splice with nothing to move, or a full destination),
    /// EINTR (a running splice interrupted by a cancel).
    func record(_ result: Int32, stage: PumpStage, lane d: Int) -> Errno? {
        if result < 0 {
            let e = Errno(rawValue: -result)
            if stage == .spliceIn || stage == .receive { lanes[d].lastRead = 0 }
            switch e {
            case .canceled, .interrupted: return nil
            case .wouldBlock:
                // After a continuation splice: nothing queued, poll again. After a POLLIN: the
                // splice is stuck (urgent data); let recv take the next chunk.
                if stage == .spliceIn && lanes[d].readAfterPoll { lanes[d].copyNextRead = true; lanes[d].readable = true }
                return nil
            default:
                // A failed shutdown (ENOTCONN: the peer is gone) still ends the direction.
                if stage == .shutdown { lanes[d].halfClosed = true; return nil }
                return e
            }
        }
        let n = Int(result)
        switch stage {
        case .sendPending:
            guard n > 0 else { return Errno.brokenPipe }
            lanes[d].pendingSent += n
            lanes[d].counters.bytesWritten &+= UInt64(n)
        case .pollReadable:
            lanes[d].readable = true
        case .pollWritable:
            break
        case .spliceIn:
            lanes[d].lastRead = result
            if n == 0 { lanes[d].sawEndOfStream = true; break }
            lanes[d].pipe!.filled(n)
            lanes[d].counters.bytesRead &+= UInt64(n)
        case .spliceOut:
            if n > 0 {
                lanes[d].pipe!.drained(n)
                lanes[d].counters.bytesWritten &+= UInt64(n)
            }
        case .receive:
            lanes[d].lastRead = result
            if n == 0 { lanes[d].sawEndOfStream = true; break }
            lanes[d].bufferStart = 0
            lanes[d].bufferEnd = n
            lanes[d].counters.bytesRead &+= UInt64(n)
            lanes[d].counters.bytesCopied &+= UInt64(n)
        case .send:
            guard n > 0 else { return Errno.brokenPipe }
            lanes[d].bufferStart += n
            lanes[d].counters.bytesWritten &+= UInt64(n)
        case .shutdown:
            lanes[d].halfClosed = true
        }
        return nil
    }

    /// The event for the owner after a step; `halfClosed` is the direction whose shutdown just
    /// completed, if any.
    func pairEvent(_ halfClosed: PumpDirection?) -> PumpEvent {
        if closing { return .none }
        if end == nil && lanes[0].halfClosed && lanes[1].halfClosed { end = .completed }
        if let end, !endReported {
            endReported = true
            return .finished(end)
        }
        if let halfClosed, lanes[Int(halfClosed.rawValue)].halfClosed { return .halfClosed(halfClosed) }
        return .none
    }

    func fail(_ error: Errno, _ d: Int) {
        if end == nil { end = .failed(error, PumpDirection(rawValue: UInt8(d))!) }
    }

    /// After the last final completion of a closing pump: give back pipes, free memory, close
    /// the sockets.
    func finishDraining() -> PumpEvent {
        guard !isDrained, lanes[0].inFlight == 0, lanes[1].inFlight == 0 else { return .none }
        for d in 0..<2 {
            if let pipe = lanes[d].pipe {
                pool!.release(pipe)
                lanes[d].pipe = nil
            }
            lanes[d].pending?.deallocate()
            lanes[d].pending = nil
            releaseBuffer(d)
        }
        Socket.close(a)
        Socket.close(b)
        isDrained = true
        return .drained
    }

    // MARK: Choosing the next step

    /// Submits the next chain of `d` when nothing of it is in flight.
    func advance(_ d: Int, _ ring: inout Ring) {
        guard end == nil, !closing, lanes[d].inFlight == 0, !lanes[d].halfClosed else { return }
        do {
            try step(d, &ring)
        } catch {
            // Only when the submission queue is full and io_uring_enter fails (EBUSY with a full
            // completion queue): give up on the pair rather than spin.
            fail(error, d)
        }
    }

    /// The next chain for `d`, chosen from what the finished one left: pending bytes, unsent
    /// copied bytes, bytes in the pipe, end of stream, or a new read. Every result was booked on
    /// its own in `record`, so a chain whose link was cut (when `nextSQE` had to submit between
    /// two of its SQEs, the kernel runs the first alone) still ends in a consistent state.
    func step(_ d: Int, _ ring: inout Ring) throws(Errno) {
        // 1. Bytes read before the switch, first and in order.
        if let p = lanes[d].pending {
            if lanes[d].pendingSent < p.count {
                let rest = UnsafeRawBufferPointer(rebasing: p[lanes[d].pendingSent...])
                try ring.send(fd: lanes[d].destination, from: rest, userData: userData(d, .sendPending))
                mark(d, .sendPending)
                return
            }
            p.deallocate()
            lanes[d].pending = nil
        }
        // 2. Copied bytes not yet sent (a short send); once all are sent, a pooled buffer goes
        // back (nothing in flight points at it: `step` runs only with nothing in flight).
        if lanes[d].bufferEnd > lanes[d].bufferStart {
            if copiesInline {
                try copyInlineBurst(d, &ring)
            } else {
                try submitSend(d, &ring)
            }
            return
        }
        if copyBuffers != nil && lanes[d].buffer != nil { releaseBuffer(d) }
        // 3. Bytes in the pipe, or an empty pipe to give back.
        if lanes[d].pipe != nil {
            assert(lanes[d].pipe!.fill >= 0, "more spliced out of a pipe than into it")
            if lanes[d].pipe!.fill > 0 {
                try submitDrain(d, &ring)
                return
            }
            if !splicesInline && !lanes[d].sawEndOfStream && !lanes[d].paused && lanes[d].lastRead > 0 && lanes[d].lastRead == lanes[d].lastRequested {
                // The last splice filled its chunk, so more is probably queued: splice again
                // without polling. If nothing is there it returns EAGAIN at once (non-blocking
                // socket), and the direction goes back to polling without a pipe.
                try submitSpliceCycle(d, &ring, afterPoll: false)
                return
            }
            pool!.release(lanes[d].pipe!)
            lanes[d].pipe = nil
        }
        // 4. End of stream, once everything before it was delivered.
        if lanes[d].sawEndOfStream {
            try ring.shutdown(fd: lanes[d].destination, how: Int32(SHUT_WR), userData: userData(d, .shutdown))
            mark(d, .shutdown)
            return
        }
        // 5. Read the next chunk, once the destination has room for it.
        if lanes[d].paused { return }
        if lanes[d].awaitingRoom {
            lanes[d].awaitingRoom = false
            try ring.pollAdd(fd: lanes[d].destination, events: Int16(POLLOUT), userData: userData(d, .pollWritable))
            mark(d, .pollWritable)
            return
        }
        if !pollsBeforeReading {
            try submitReceive(d, &ring)
            return
        }
        if !lanes[d].readable {
            try ring.pollAdd(fd: lanes[d].source, events: Int16(POLLIN), userData: userData(d, .pollReadable))
            mark(d, .pollReadable)
            return
        }
        lanes[d].readable = false
        if !lanes[d].copyNextRead, let pipe = pool!.acquire() {
            lanes[d].pipe = pipe
            try submitSpliceCycle(d, &ring, afterPoll: true)
            return
        }
        // No pipe to be had (or splice is stuck behind urgent data): copy this chunk.
        lanes[d].copyNextRead = false
        if splicesInline {
            try copyInline(d, &ring)
            return
        }
        try submitReceive(d, &ring)
    }

    // MARK: Submissions. Each stage is marked in flight as soon as its SQE is filled, so a
    // failure part-way through a chain still waits for what was queued.

    @inline(__always)
    func userData(_ d: Int, _ stage: PumpStage) -> UserData {
        UserData(op: tag.op, slot: tag.slot, generation: tag.generation, aux: UInt8(d) << 4 | stage.rawValue)
    }

    @inline(__always)
    func mark(_ d: Int, _ stage: PumpStage) {
        lanes[d].inFlight |= stage.bit
    }
}
