import Glibc
import RustDeskProtocol
import ServerKit
import URing
import Workers

/// Message relay between two paired halves when at least one is WebSocket (PROTOCOL.md §8.4):
/// each side yields messages (decoded frames on TCP, binary messages on WebSocket) and every
/// non-empty one is written to the other side as one message of that side's transport. Empty
/// messages and non-binary WebSocket messages are not forwarded (they still count as activity:
/// the owner sees their bytes in `bytesRead`).
///
/// Same events and lifecycle as `Pump` (`start`, `handle`, `close`, `drained`), so `RelaySession`
/// drives both alike. Per side one plain `recv` into the side's buffer at a time, re-armed only
/// while the other side has less than `highWater` bytes queued: a slow reader closes the
/// writer's TCP window instead of growing a queue. Memory per direction is bounded by the
/// receive buffer, one partial message (`FrameLimits.relayMaxFrameLength`) and the queue (at
/// most `highWater` plus one message).
///
/// Operations are tagged `UserData(op: tag.op, slot: tag.slot, generation: tag.generation,
/// aux: side << 4 | stage)`. Confined to the owner's thread; must drain before release.
final class FramedRelay {
    enum Stage: UInt8 { case receive = 1, send = 2 }

    struct Side {
        let fd: Int32
        let kind: MessageStream.Kind
        /// In a box of its own: feeding it mutates it in place while the handler appends to the
        /// other side (a copy out of `sides` and back would copy a partial 16-MiB message on
        /// every receive).
        let decoder: StreamBox
        /// Receive target; owned, freed when the relay drains.
        let buffer: UnsafeMutableRawBufferPointer
        var receiving = false
        var paused = false
        var maxChunk: Int
        var bytesRead: UInt64 = 0
        /// Bytes for this side.
        var outbox = Outbox()
    }

    let tag: UserData
    let highWater: Int
    var sides: [Side]
    var end: PumpEnd?
    var endReported = false
    var closing = false
    private(set) var isDrained = false
    final class StreamBox {
        var stream: MessageStream
        init(_ stream: MessageStream) { self.stream = stream }
    }

    /// - Parameters:
    ///   - a, b: the halves: descriptor, transport and the stream that read their first message.
    ///     A framed side's stream is replaced by a relay-sized one fed with `aRaw`/`bRaw` (the
    ///     bytes behind its first frame); a WebSocket side keeps its stream, and the messages it
    ///     held since the first one are forwarded first. The relay owns the descriptors from here.
    init(a: PairedHalf, b: PairedHalf, tag: UserData, bufferSize: Int, highWater: Int) {
        self.tag = tag
        self.highWater = highWater
        sides = [a, b].map { half in
            var stream = half.stream
            if half.webSocket { stream.resumeDelivery() }
            else { stream = MessageStream(kind: .framed, maxMessageSize: FrameLimits.relayMaxFrameLength) }
            return Side(fd: half.fd, kind: half.webSocket ? .webSocket : .framed, decoder: StreamBox(stream),
                        buffer: .allocate(byteCount: bufferSize, alignment: 64), maxChunk: bufferSize)
        }
        // What each half sent behind its first message, in order, before anything read later.
        for (s, half) in [a, b].enumerated() {
            if half.webSocket {
                for m in half.heldMessages where !m.isEmpty { appendMessage(m, to: 1 - s) }
            } else if !half.rawBytes.isEmpty {
                feed(s, bytes: half.rawBytes)
            }
        }
    }

    deinit { precondition(isDrained, "a framed relay was released before it drained") }

    // MARK: Owner's interface (as `Pump`)

    func start(ring: inout Ring) -> PumpEvent {
        for s in 0..<2 { advance(s, &ring) }
        return pairEvent()
    }

    func handle(_ c: Completion, ring: inout Ring) -> PumpEvent {
        let s = Int(c.userData.aux >> 4)
        guard s < 2, let stage = Stage(rawValue: c.userData.aux & 0x0F) else { return .none }
        switch stage {
        case .receive:
            sides[s].receiving = false
            if !closing && end == nil {
                if c.result > 0 {
                    let n = Int(c.result)
                    sides[s].bytesRead &+= UInt64(n)
                    decode(s, UnsafeMutableRawBufferPointer(rebasing: sides[s].buffer[..<n]))
                } else if c.result == 0 {
                    end = .completed
                } else if c.result != -ECANCELED && c.result != -EINTR {
                    fail(Errno(rawValue: -c.result), s)
                }
            }
        case .send:
            if !sides[s].outbox.completed(c.result) && !closing && end == nil {
                fail(Errno(rawValue: -c.result), s)
            }
        }
        if closing { return finishDraining() }
        advance(0, &ring)
        advance(1, &ring)
        return pairEvent()
    }

    /// Cancels what is in flight; `.drained` now or with the last final completion. Idempotent.
    @discardableResult
    func close(ring: inout Ring) -> PumpEvent {
        guard !closing else { return .none }
        closing = true
        for s in 0..<2 where sides[s].receiving || sides[s].outbox.isSending {
            // Shutting the socket down ends a receive waiting for data and a send waiting for
            // room; the cancel covers a receive the kernel has not started.
            _ = Glibc.shutdown(sides[s].fd, Int32(SHUT_RDWR))
            if sides[s].receiving { try? ring.cancel(userData(s, .receive)) }
        }
        return finishDraining()
    }

    func bytesRead(_ s: Int) -> UInt64 { sides[s].bytesRead }
    func pause(_ s: Int) { sides[s].paused = true }
    func resume(_ s: Int, ring: inout Ring) -> PumpEvent {
        sides[s].paused = false
        advance(s, &ring)
        return pairEvent()
    }
    func setMaxChunk(_ bytes: Int, for s: Int) { sides[s].maxChunk = max(1, min(bytes, sides[s].buffer.count)) }

    // MARK: Moving messages

    /// Feeds received bytes to side `s`'s stream and queues what it yields.
    private func decode(_ s: Int, _ input: UnsafeMutableRawBufferPointer) {
        let box = sides[s].decoder
        var replies: [UInt8] = []
        var peerClosed = false
        let result = Result { () throws(ProtocolError) in
            try box.stream.feed(input) { event in
                switch event {
                case .message(let payload): if !payload.isEmpty { appendMessage(payload, to: 1 - s) }
                case .reply(let bytes): replies.append(contentsOf: bytes)
                case .upgraded, .nonBinary: break
                case .closed: peerClosed = true
                }
                return .continue
            }
        }
        if !replies.isEmpty { sides[s].outbox.append(replies) }
        if case .failure = result { fail(Errno(rawValue: EPROTO), s) }
        if peerClosed && end == nil { end = .completed }
    }

    private func feed(_ s: Int, bytes: [UInt8]) {
        var copy = bytes
        copy.withUnsafeMutableBytes { decode(s, $0) }
    }

    /// Queues one message for side `d` in its transport's framing.
    private func appendMessage(_ payload: some Collection<UInt8>, to d: Int) {
        let kind = sides[d].kind
        sides[d].outbox.withQueue { queue in
            switch kind {
            case .framed:
                let start = queue.count
                queue.append(contentsOf: repeatElement(0, count: FrameCodec.headerSize(forLength: payload.count)))
                queue.append(contentsOf: payload)
                queue.withUnsafeMutableBytes { out in
                    _ = try? FrameCodec.writeHeader(length: payload.count, into: UnsafeMutableRawBufferPointer(rebasing: out[start...]))
                }
            case .webSocket:
                try? WebSocketFrameEncoder.appendFrame(.binary, fin: true, payload: payload, maskKey: nil, to: &queue)
            }
        }
    }

    /// Submits what side `s` can do now: send its queue, and receive if the other side's queue
    /// is below the high-water mark.
    private func advance(_ s: Int, _ ring: inout Ring) {
        guard !closing, end == nil else { return }
        do throws(Errno) {
            let fd = sides[s].fd
            try sides[s].outbox.submit(fd: fd, ring: &ring, userData: userData(s, .send))
            if !sides[s].receiving && !sides[s].paused && sides[1 - s].outbox.pendingCount < highWater {
                let length = min(sides[s].maxChunk, sides[s].buffer.count)
                try ring.recv(fd: sides[s].fd, into: UnsafeMutableRawBufferPointer(rebasing: sides[s].buffer[..<length]),
                              userData: userData(s, .receive))
                sides[s].receiving = true
            }
        } catch {
            fail(error, s)
        }
    }

    private func fail(_ error: Errno, _ s: Int) {
        if end == nil { end = .failed(error, PumpDirection(rawValue: UInt8(s))!) }
    }

    private func pairEvent() -> PumpEvent {
        if closing { return .none }
        if let end, !endReported {
            endReported = true
            return .finished(end)
        }
        return .none
    }

    private func finishDraining() -> PumpEvent {
        guard !isDrained, !sides[0].receiving, !sides[0].outbox.isSending, !sides[1].receiving, !sides[1].outbox.isSending else { return .none }
        for s in 0..<2 {
            sides[s].buffer.deallocate()
            Socket.close(sides[s].fd)
        }
        isDrained = true
        return .drained
    }

    @inline(__always)
    private func userData(_ s: Int, _ stage: Stage) -> UserData {
        UserData(op: tag.op, slot: tag.slot, generation: tag.generation, aux: UInt8(s) << 4 | stage.rawValue)
    }
}
