/// One rendezvous/relay connection's inbound side, whatever its transport (PROTOCOL.md §2):
/// length-prefixed frames on plain TCP, or an HTTP upgrade followed by WebSocket binary messages.
/// The server feeds it what it reads and gets protobuf payloads and the bytes it must write back
/// (the 101 response, pongs). Bounded by the transport's limits; never traps.
public struct MessageStream: Sendable {
    public enum Kind: Sendable, Equatable { case framed, webSocket }

    /// What the stream saw. Buffers are borrowed: valid only during the handler call.
    public enum Event {
        /// A complete message payload (a framed payload or one binary WebSocket message).
        case message(UnsafeRawBufferPointer)
        /// Bytes the server must send now, in order (the 101 response, a pong).
        case reply(UnsafeRawBufferPointer)
        /// The WebSocket upgrade completed; the caller derives the client address from it.
        case upgraded(WebSocketUpgradeRequest)
        /// A text or pong message: activity only (hbbs skips it, hbbr counts it as activity).
        case nonBinary
        /// The client sent a WebSocket close frame; nothing more will be delivered.
        case closed
    }

    public let kind: Kind
    var frames: FrameDecoder
    var upgrade: WebSocketUpgradeParser?
    var webSocket: WebSocketFrameDecoder
    /// WebSocket mode after `.stop`: messages decoded past the stop, kept in order.
    public private(set) var heldMessages: [[UInt8]] = []
    public private(set) var isStopped = false

    /// - Parameter maxMessageSize: frame limit on TCP, message limit on WebSocket (frames are
    ///   limited to the same value).
    public init(kind: Kind, maxMessageSize: Int) {
        self.kind = kind
        frames = FrameDecoder(maxFrameLength: min(maxMessageSize, FrameLimits.maxEncodableLength))
        upgrade = kind == .webSocket ? WebSocketUpgradeParser() : nil
        webSocket = WebSocketFrameDecoder(configuration: .init(role: .server, maxFrameSize: maxMessageSize, maxMessageSize: maxMessageSize))
    }

    /// Whether the WebSocket upgrade is still pending.
    public var awaitingUpgrade: Bool { upgrade != nil }

    /// Bytes held for an unfinished message (bounded by the limits).
    public var bufferedByteCount: Int {
        frames.bufferedByteCount + webSocket.bufferedByteCount + (upgrade?.bufferedByteCount ?? 0) + heldMessages.reduce(0) { $0 + $1.count }
    }

    /// Consumes `input` (its contents may be modified: WebSocket payloads are unmasked in place).
    /// `handle` returns `.stop` to stop delivering messages: on TCP the rest stays raw in the frame
    /// decoder (`takeRawBytes()`), on WebSocket later messages are kept in `heldMessages`.
    /// - Throws: `ProtocolError` for malformed or over-limit input; the connection must close
    ///   (after sending `WebSocketHandshake.badRequestResponse` for a failed upgrade).
    public mutating func feed(_ input: UnsafeMutableRawBufferPointer, _ handle: (Event) -> FrameDecoder.Next) throws(ProtocolError) {
        switch kind {
        case .framed:
            try frames.feed(UnsafeRawBufferPointer(input)) { payload in handle(.message(payload)) }
        case .webSocket:
            if var parser = upgrade {
                let progress = try parser.feed(UnsafeRawBufferPointer(input))
                upgrade = parser
                guard case .complete(let request, let leftover) = progress else { return }
                upgrade = nil
                let response = WebSocketHandshake.switchingProtocolsResponse(for: request)
                _ = response.withUnsafeBytes { handle(.reply($0)) }
                _ = handle(.upgraded(request))
                guard !leftover.isEmpty else { return }
                // Bytes pipelined behind the head (rare): decode them from a copy.
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: leftover.count, alignment: 1)
                defer { scratch.deallocate() }
                leftover.withUnsafeBytes { scratch.copyMemory(from: $0) }
                try decodeWebSocket(scratch, handle)
                return
            }
            try decodeWebSocket(input, handle)
        }
    }

    mutating func decodeWebSocket(_ input: UnsafeMutableRawBufferPointer, _ handle: (Event) -> FrameDecoder.Next) throws(ProtocolError) {
        var stopped = isStopped
        var held = heldMessages
        defer { isStopped = stopped; heldMessages = held }
        try webSocket.decode(input) { event in
            switch event {
            case .binaryMessageArrived(let payload):
                if stopped { held.append(Array(payload)); return }
                if handle(.message(payload)) == .stop { stopped = true }
            case .textMessageArrived, .pongArrived:
                if !stopped { _ = handle(.nonBinary) }
            case .pingArrived(let payload):
                var pong: [UInt8] = []
                try? WebSocketFrameEncoder.appendFrame(.pong, fin: true, payload: payload, maskKey: nil, to: &pong)
                _ = pong.withUnsafeBytes { handle(.reply($0)) }
            case .closeArrived:
                _ = handle(.closed)
            }
        }
    }

    /// WebSocket after `.stop`: deliver later messages to the handler again (hbbr, once a paired
    /// half starts relaying; take what was held first with `takeHeldMessages()`). A framed stream
    /// stays stopped: its raw bytes belong to the caller after `takeRawBytes()`.
    public mutating func resumeDelivery() {
        if kind == .webSocket { isStopped = false }
    }

    /// TCP after `.stop`: the raw bytes that followed the last delivered frame.
    public mutating func takeRawBytes() -> [UInt8] { frames.takeBuffered() }

    /// WebSocket after `.stop`: the messages decoded after the stop.
    public mutating func takeHeldMessages() -> [[UInt8]] {
        defer { heldMessages = [] }
        return heldMessages
    }

    /// Header bytes `outgoing` needs in front of a payload of `length` on this transport.
    public static func headerSize(kind: Kind, payloadLength: Int) -> Int {
        kind == .framed ? FrameCodec.headerSize(forLength: payloadLength) : WebSocketFrameEncoder.headerSize(payloadCount: payloadLength)
    }

    /// Writes `message` for this transport (a BytesCodec frame, or one unmasked binary WebSocket
    /// message) into `buffer` without allocating; returns the size.
    public static func write<M: ProtoMessage>(_ message: M, kind: Kind, into buffer: UnsafeMutableRawBufferPointer) throws(ProtocolError) -> Int {
        let length = message.serializedSize()
        let h: Int
        switch kind {
        case .framed: h = try FrameCodec.writeHeader(length: length, into: buffer)
        case .webSocket: h = try WebSocketFrameEncoder.writeHeader(.binary, fin: true, payloadCount: length, maskKey: nil, into: buffer)
        }
        return h + (try message.serialize(into: UnsafeMutableRawBufferPointer(rebasing: buffer[h...])))
    }

    /// `write` into a new array.
    public static func encode<M: ProtoMessage>(_ message: M, kind: Kind) -> [UInt8] {
        let size = headerSize(kind: kind, payloadLength: message.serializedSize()) + message.serializedSize()
        return [UInt8](unsafeUninitializedCapacity: size) { buf, n in
            n = try! write(message, kind: kind, into: UnsafeMutableRawBufferPointer(buf))
        }
    }

    /// Raw payload bytes (already serialised) for this transport, into a new array.
    public static func encode(payload: UnsafeRawBufferPointer, kind: Kind) throws(ProtocolError) -> [UInt8] {
        switch kind {
        case .framed:
            return try FrameCodec.header(forLength: payload.count) + Array(payload)
        case .webSocket:
            var out: [UInt8] = []
            try WebSocketFrameEncoder.appendFrame(.binary, fin: true, payload: payload, maskKey: nil, to: &out)
            return out
        }
    }
}
