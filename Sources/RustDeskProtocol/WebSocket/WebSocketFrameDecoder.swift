/// What the decoder saw complete in the input: one whole message or one control frame.
///
/// The buffers are borrowed: they are valid only inside the `handle` call that receives them and
/// point either into the caller's input (unmasked in place) or into the decoder's own buffer.
/// Copy what must outlive the call. Text payloads and close reasons are valid UTF-8.
public enum WebSocketFrameEvent {
    case binaryMessageArrived(UnsafeRawBufferPointer)
    case textMessageArrived(UnsafeRawBufferPointer)
    /// The caller answers with a pong carrying the same payload (RFC 6455 §5.5.2).
    case pingArrived(UnsafeRawBufferPointer)
    case pongArrived(UnsafeRawBufferPointer)
    /// `code` is nil when the close frame had no body. The decoder ignores everything after it.
    case closeArrived(code: UInt16?, reason: UnsafeRawBufferPointer)
}

/// Borrowed buffers must not cross threads.
@available(*, unavailable)
extension WebSocketFrameEvent: Sendable {}

/// An owned copy of a `WebSocketFrameEvent`, for callers off the hot path (tests, the load
/// harness).
public enum WebSocketMessage: Hashable, Sendable {
    case binary([UInt8])
    case text(String)
    case ping([UInt8])
    case pong([UInt8])
    case close(code: UInt16?, reason: String)

    init(_ event: WebSocketFrameEvent) {
        switch event {
        case .binaryMessageArrived(let p): self = .binary(Array(p))
        case .textMessageArrived(let p): self = .text(String(decoding: p, as: UTF8.self))
        case .pingArrived(let p): self = .ping(Array(p))
        case .pongArrived(let p): self = .pong(Array(p))
        case .closeArrived(let code, let reason): self = .close(code: code, reason: String(decoding: reason, as: UTF8.self))
        }
    }
}

/// A streaming RFC 6455 frame decoder. Feed it whatever the socket returned, in order; it calls
/// back once per complete message or control frame.
///
/// Checks (each throws, and the connection must then be dropped):
/// * `.webSocketProtocolViolation`: a reserved bit set (no extension is ever negotiated), a
///   reserved opcode, a frame not masked as the role requires (clients must mask, servers must
///   not), a 64-bit length with its top bit set, a control frame over 125 bytes or without FIN, a
///   continuation with no message open or a new message while one is open, a text message or
///   close reason that is not UTF-8, a one-byte close body, a close code not allowed on the wire.
/// * `.frameTooLarge`: a data frame announcing more than `maxFrameSize`.
/// * `.webSocketMessageTooLarge`: a data frame that would take its message past `maxMessageSize`.
///
/// Both size checks run on the frame header, before any payload byte is buffered, so an
/// over-limit announcement costs no allocation. Non-minimal length encodings are accepted.
///
/// Memory: the decoder holds at most `maxBufferedByteCount` bytes (an unfinished message, an
/// unfinished control frame, an unfinished header). A whole unfragmented frame found in one input
/// is unmasked in place and handed out without copying; only frames split across inputs and
/// fragmented messages are copied into the decoder's buffer, which keeps its capacity between
/// messages up to `retainedBufferCapacity`. Once that buffer is warm, decoding allocates nothing.
public struct WebSocketFrameDecoder: Sendable {
    /// Which side of the connection this decoder reads for; decides the required mask bit.
    public enum Role: Sendable, Hashable {
        /// Reads client frames: every frame must be masked.
        case server
        /// Reads server frames: no frame may be masked.
        case client
    }

    /// 16 MiB, upstream's (tungstenite) frame limit; enough for a video frame relayed by hbbr.
    public static let defaultMaxFrameSize = 16 << 20
    /// 64 MiB, upstream's message limit. Only fragmented messages can exceed a frame; RustDesk
    /// clients never fragment, so hbbr may lower this to `defaultMaxFrameSize` without loss.
    public static let defaultMaxMessageSize = 64 << 20
    /// 64 KiB for hbbs, whose largest rendezvous message is far smaller (PROTOCOL.md §2.1).
    public static let rendezvousMaxMessageSize = 64 << 10
    /// 256 KiB of buffer capacity survive a finished message; a larger buffer is released so that
    /// one huge message does not pin memory for the rest of the connection.
    public static let defaultRetainedBufferCapacity = 256 << 10

    public struct Configuration: Sendable, Hashable {
        public var role: Role
        /// Largest data frame payload accepted.
        public var maxFrameSize: Int
        /// Largest reassembled data message accepted.
        public var maxMessageSize: Int
        /// Buffer capacity kept after a message completes.
        public var retainedBufferCapacity: Int

        public init(
            role: Role = .server,
            maxFrameSize: Int = WebSocketFrameDecoder.defaultMaxFrameSize,
            maxMessageSize: Int = WebSocketFrameDecoder.defaultMaxMessageSize,
            retainedBufferCapacity: Int = WebSocketFrameDecoder.defaultRetainedBufferCapacity
        ) {
            self.role = role
            self.maxFrameSize = maxFrameSize
            self.maxMessageSize = maxMessageSize
            self.retainedBufferCapacity = retainedBufferCapacity
        }

        /// Server side with upstream's limits (16 MiB frame, 64 MiB message): hbbr.
        public static let upstreamCompatible = Configuration()
        /// Server side with 64 KiB frame and message limits: hbbs.
        public static let rendezvous = Configuration(
            maxFrameSize: WebSocketFrameDecoder.rendezvousMaxMessageSize,
            maxMessageSize: WebSocketFrameDecoder.rendezvousMaxMessageSize
        )
    }

    private struct FrameInProgress {
        var opcode: WebSocketOpcode
        var fin: Bool
        var maskKey: WebSocketMaskKey?
        var remaining: Int
        /// Payload bytes already taken; gives the mask phase of the next byte.
        var consumed: Int
    }

    public let configuration: Configuration

    private var frame: FrameInProgress?
    /// `.text` or `.binary` from the first frame of a data message until its FIN frame ends.
    private var messageOpcode: WebSocketOpcode?
    /// Earlier fragments of the open message, then the part of a data frame split across inputs.
    private var messageBuffer: [UInt8] = []
    /// The part of a control frame split across inputs.
    private var controlBuffer: [UInt8] = []
    /// A header split across inputs, kept inline so that staging it never allocates.
    private var stagedHeader: (UInt64, UInt64) = (0, 0)
    private var stagedHeaderCount = 0

    /// True once a close frame has been delivered; later input is ignored.
    public private(set) var isClosed = false

    public init(configuration: Configuration = .upstreamCompatible) {
        self.configuration = configuration
    }

    /// Bytes the decoder currently holds for unfinished frames and messages.
    public var bufferedByteCount: Int { messageBuffer.count + controlBuffer.count + stagedHeaderCount }

    /// The most `bufferedByteCount` can ever be with this configuration.
    public var maxBufferedByteCount: Int {
        min(configuration.maxMessageSize, Int.max - 256) + webSocketMaxControlPayload + webSocketMaxHeaderSize
    }

    /// Decodes all of `input`, calling `handle` for each complete message or control frame in
    /// order, and keeps any unfinished frame for the next call.
    ///
    /// Payload bytes are unmasked in place, so `input`'s contents are unspecified afterwards.
    /// After a delivered close frame the rest of `input` and all later input are ignored.
    /// - Throws: see the type's contract. Events decoded before the offending frame have been
    ///   delivered; the decoder must not be used after it throws.
    public mutating func decode(
        _ input: UnsafeMutableRawBufferPointer, handle: (WebSocketFrameEvent) -> Void
    ) throws(ProtocolError) {
        var index = 0
        while index < input.count && !isClosed {
            if frame == nil {
                guard try stageOrParseHeader(input, index: &index) else { return }
            }
            try takePayload(input, index: &index, handle: handle)
        }
    }

    /// Decodes `bytes` and returns owned copies of the events. Convenient, not allocation-free.
    public mutating func decode(_ bytes: some Collection<UInt8>) throws(ProtocolError) -> [WebSocketMessage] {
        var input = Array(bytes)
        var messages: [WebSocketMessage] = []
        try input.withUnsafeMutableBufferPointer { (buffer) throws(ProtocolError) in
            try decode(UnsafeMutableRawBufferPointer(buffer)) { messages.append(WebSocketMessage($0)) }
        }
        return messages
    }

    // MARK: Header

    /// Parses the next header from `input` at `index`, directly when it is whole there, else via
    /// the inline staging area. Returns false when the input ended inside the header.
    private mutating func stageOrParseHeader(
        _ input: UnsafeMutableRawBufferPointer, index: inout Int
    ) throws(ProtocolError) -> Bool {
        let available = input.count - index
        if stagedHeaderCount == 0, available >= 2 {
            let size = Self.headerSize(input[index], input[index + 1])
            if available >= size {
                let fields = Self.headerFields(UnsafeRawBufferPointer(rebasing: input[index ..< index + size]))
                index += size
                try beginFrame(fields)
                return true
            }
        }
        Self.stage(input, index: &index, into: &stagedHeader, count: &stagedHeaderCount, upTo: 2)
        guard stagedHeaderCount >= 2 else { return false }
        let size = withUnsafeBytes(of: stagedHeader) { Self.headerSize($0[0], $0[1]) }
        Self.stage(input, index: &index, into: &stagedHeader, count: &stagedHeaderCount, upTo: size)
        guard stagedHeaderCount == size else { return false }
        stagedHeaderCount = 0
        let fields = withUnsafeBytes(of: stagedHeader) { Self.headerFields(UnsafeRawBufferPointer(rebasing: $0[0 ..< size])) }
        try beginFrame(fields)
        return true
    }

    /// Copies header bytes from `input` into `staging` until it holds `target` bytes or the
    /// input ends.
    private static func stage(
        _ input: UnsafeMutableRawBufferPointer, index: inout Int,
        into staging: inout (UInt64, UInt64), count: inout Int, upTo target: Int
    ) {
        let taken = min(target - count, input.count - index)
        guard taken > 0 else { return }
        withUnsafeMutableBytes(of: &staging) { bytes in
            UnsafeMutableRawBufferPointer(rebasing: bytes[count ..< count + taken])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[index ..< index + taken]))
        }
        count += taken
        index += taken
    }

    /// The header size announced by its first two bytes.
    private static func headerSize(_ byte0: UInt8, _ byte1: UInt8) -> Int {
        let lengthCode = byte1 & 0x7F
        let extended = lengthCode == 126 ? 2 : lengthCode == 127 ? 8 : 0
        return 2 + extended + (byte1 & 0x80 != 0 ? 4 : 0)
    }

    private struct HeaderFields {
        var byte0: UInt8
        var byte1: UInt8
        var length: UInt64
        var maskKey: WebSocketMaskKey?
    }

    /// Reads the fields of a complete header of `headerSize` bytes.
    private static func headerFields(_ header: UnsafeRawBufferPointer) -> HeaderFields {
        let byte1 = header[1]
        var offset = 2
        var length = UInt64(byte1 & 0x7F)
        if length == 126 {
            length = UInt64(UInt16(bigEndian: header.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            offset = 4
        } else if length == 127 {
            length = UInt64(bigEndian: header.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            offset = 10
        }
        let maskKey = byte1 & 0x80 == 0 ? nil : WebSocketMaskKey(
            littleEndianPhaseZero: UInt32(littleEndian: header.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        return HeaderFields(byte0: header[0], byte1: byte1, length: length, maskKey: maskKey)
    }

    /// Validates a complete header and opens its frame. Every limit is enforced here, before any
    /// payload byte is buffered.
    private mutating func beginFrame(_ header: HeaderFields) throws(ProtocolError) {
        guard header.byte0 & 0x70 == 0, let opcode = WebSocketOpcode(rawValue: header.byte0 & 0x0F) else {
            throw .webSocketProtocolViolation
        }
        let fin = header.byte0 & 0x80 != 0
        guard (header.maskKey != nil) == (configuration.role == .server), header.length >> 63 == 0 else {
            throw .webSocketProtocolViolation
        }
        let length = Int(truncatingIfNeeded: header.length)

        if opcode.isControl {
            guard fin, length <= webSocketMaxControlPayload else { throw .webSocketProtocolViolation }
            if opcode == .close && length == 1 { throw .webSocketProtocolViolation }
        } else {
            if opcode == .continuation {
                guard messageOpcode != nil else { throw .webSocketProtocolViolation }
            } else {
                guard messageOpcode == nil else { throw .webSocketProtocolViolation }
            }
            guard length <= configuration.maxFrameSize else { throw .frameTooLarge }
            guard length <= configuration.maxMessageSize - messageBuffer.count else { throw .webSocketMessageTooLarge }
            if opcode != .continuation { messageOpcode = opcode }
        }
        frame = FrameInProgress(opcode: opcode, fin: fin, maskKey: header.maskKey, remaining: length, consumed: 0)
    }

    // MARK: Payload

    /// Takes as much of the open frame's payload as `input` holds and delivers the frame or
    /// message it completes.
    private mutating func takePayload(
        _ input: UnsafeMutableRawBufferPointer, index: inout Int, handle: (WebSocketFrameEvent) -> Void
    ) throws(ProtocolError) {
        guard var current = frame else { return }
        let count = min(current.remaining, input.count - index)
        let chunk = UnsafeMutableRawBufferPointer(rebasing: input[index ..< index + count])
        current.maskKey?.apply(to: chunk, payloadOffset: current.consumed)
        index += count
        let completesFrame = count == current.remaining

        // Whole frame in this input: hand it out where it lies.
        if completesFrame && current.consumed == 0 {
            if current.opcode.isControl {
                frame = nil
                try Self.deliverControl(current.opcode, payload: UnsafeRawBufferPointer(chunk), handle: handle)
                isClosed = current.opcode == .close
                return
            }
            if current.fin && messageBuffer.isEmpty {
                frame = nil
                try Self.deliverMessage(takeMessageOpcode(), payload: UnsafeRawBufferPointer(chunk), handle: handle)
                return
            }
        }

        if current.opcode.isControl {
            controlBuffer.append(contentsOf: UnsafeRawBufferPointer(chunk))
        } else {
            messageBuffer.append(contentsOf: UnsafeRawBufferPointer(chunk))
        }
        current.remaining -= count
        current.consumed += count
        guard current.remaining == 0 else {
            frame = current
            return
        }
        frame = nil
        if current.opcode.isControl {
            defer { controlBuffer.removeAll(keepingCapacity: true) }
            try controlBuffer.withUnsafeBufferPointer { (payload) throws(ProtocolError) in
                try Self.deliverControl(current.opcode, payload: UnsafeRawBufferPointer(payload), handle: handle)
            }
            isClosed = current.opcode == .close
        } else if current.fin {
            defer { releaseMessageBuffer() }
            let opcode = takeMessageOpcode()
            try messageBuffer.withUnsafeBufferPointer { (payload) throws(ProtocolError) in
                try Self.deliverMessage(opcode, payload: UnsafeRawBufferPointer(payload), handle: handle)
            }
        }
    }

    private mutating func takeMessageOpcode() -> WebSocketOpcode? {
        defer { messageOpcode = nil }
        return messageOpcode
    }

    private mutating func releaseMessageBuffer() {
        if messageBuffer.capacity > configuration.retainedBufferCapacity {
            messageBuffer = []
        } else {
            messageBuffer.removeAll(keepingCapacity: true)
        }
    }

    private static func deliverMessage(
        _ opcode: WebSocketOpcode?, payload: UnsafeRawBufferPointer, handle: (WebSocketFrameEvent) -> Void
    ) throws(ProtocolError) {
        if opcode == .text {
            guard Self.isValidUTF8(payload) else { throw .webSocketProtocolViolation }
            handle(.textMessageArrived(payload))
        } else {
            handle(.binaryMessageArrived(payload))
        }
    }

    private static func deliverControl(
        _ opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, handle: (WebSocketFrameEvent) -> Void
    ) throws(ProtocolError) {
        switch opcode {
        case .ping:
            handle(.pingArrived(payload))
        case .pong:
            handle(.pongArrived(payload))
        default:
            var code: UInt16?
            var reason = UnsafeRawBufferPointer(rebasing: payload[0..<0])
            if payload.count >= 2 {
                let value = UInt16(payload[0]) << 8 | UInt16(payload[1])
                reason = UnsafeRawBufferPointer(rebasing: payload[2...])
                guard Self.isAllowedCloseCode(value), Self.isValidUTF8(reason) else {
                    throw .webSocketProtocolViolation
                }
                code = value
            }
            handle(.closeArrived(code: code, reason: reason))
        }
    }

    /// RFC 6455 §7.4: codes an endpoint may put in a close frame (IANA-registered 1000–1003 and
    /// 1007–1014, plus the 3000–4999 ranges for libraries and applications).
    private static func isAllowedCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    private static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
