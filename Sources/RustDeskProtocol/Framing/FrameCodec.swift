/// The TCP length-prefix codec ("BytesCodec", PROTOCOL.md §2.1).
///
/// Header: the two low bits of the first byte give the header size (1–4 bytes); the header read
/// as a little-endian integer, shifted right by two, is the payload length. The encoder always
/// uses the smallest header; the decoder accepts non-minimal ones, as upstream does.

/// Frame size limits (named so that servers and docs refer to one place).
public enum FrameLimits {
    /// Largest payload the 30-bit length field can express.
    public static let maxEncodableLength = 0x3FFF_FFFF
    /// Default maximum payload on hbbs ports: every rendezvous message is far smaller.
    public static let rendezvousMaxFrameLength = 64 * 1024
    /// Default maximum payload on hbbr in framed (WebSocket/TCP mixed) mode: video frames.
    public static let relayMaxFrameLength = 16 * 1024 * 1024
}

public enum FrameCodec {
    /// Header bytes needed for a payload of `length` bytes (1 to 4).
    @inlinable
    public static func headerSize(forLength length: Int) -> Int {
        switch length {
        case ...0x3F: return 1
        case ...0x3FFF: return 2
        case ...0x3F_FFFF: return 3
        default: return 4
        }
    }

    /// Writes the minimal header for `length` into `buffer`; returns its size.
    /// Throws `.frameEncodeOverflow` past `FrameLimits.maxEncodableLength`, `.bufferTooSmall` if it does not fit.
    @inlinable
    public static func writeHeader(length: Int, into buffer: UnsafeMutableRawBufferPointer) throws(ProtocolError) -> Int {
        guard length >= 0, length <= FrameLimits.maxEncodableLength else { throw .frameEncodeOverflow }
        let size = headerSize(forLength: length)
        guard buffer.count >= size else { throw .bufferTooSmall }
        let value = UInt32(length) << 2 | UInt32(size - 1)
        for i in 0..<size { buffer[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
        return size
    }

    /// The header for `length` as an array (tests, cold paths).
    public static func header(forLength length: Int) throws(ProtocolError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 4)
        let n = try out.withUnsafeMutableBytes { p in Result { () throws(ProtocolError) in try writeHeader(length: length, into: p) } }.get()
        out.removeLast(4 - n)
        return out
    }

    /// `header || payload` as a new array.
    public static func frame(_ payload: [UInt8]) throws(ProtocolError) -> [UInt8] {
        try header(forLength: payload.count) + payload
    }

    /// Writes `message` framed (header, then payload) into `buffer` without allocating; returns
    /// the total size.
    @inlinable
    public static func writeFrame<M: ProtoMessage>(_ message: M, into buffer: UnsafeMutableRawBufferPointer) throws(ProtocolError) -> Int {
        let length = message.serializedSize()
        let h = try writeHeader(length: length, into: buffer)
        let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[h...])
        return h + (try message.serialize(into: rest))
    }

    /// Parses a header at the start of `bytes`. Returns nil when more bytes are needed to know the
    /// header; otherwise the header size and payload length.
    @inlinable
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer) -> (headerSize: Int, length: Int)? {
        guard let first = bytes.first else { return nil }
        let size = Int(first & 3) + 1
        guard bytes.count >= size else { return nil }
        var value: UInt32 = 0
        for i in 0..<size { value |= UInt32(bytes[i]) << (8 * UInt32(i)) }
        return (size, Int(value >> 2))
    }
}

/// Streaming decoder for length-prefixed frames: partial input, many frames per read, and a
/// maximum payload length enforced as soon as a header is complete, before any payload is buffered.
///
/// Frames lying wholly inside one `feed` input are handed out without copying; only a frame split
/// across inputs is reassembled in an internal buffer (reused, bounded by the maximum).
public struct FrameDecoder: Sendable {
    /// What the frame handler wants next.
    public enum Next: Sendable { case `continue`, stop }

    public let maxFrameLength: Int
    /// Partial frame (header and payload so far), or, after `.stop`, the undelivered bytes.
    @usableFromInline var pending: [UInt8] = []
    /// Set once a handler returned `.stop`: later input is only buffered (hbbr's switch to raw mode).
    public private(set) var isStopped = false

    public init(maxFrameLength: Int = FrameLimits.rendezvousMaxFrameLength) {
        precondition(maxFrameLength >= 0 && maxFrameLength <= FrameLimits.maxEncodableLength)
        self.maxFrameLength = maxFrameLength
    }

    /// Bytes held that are not yet part of a delivered frame.
    public var bufferedByteCount: Int { pending.count }

    /// Consumes `input`, calling `onFrame` with each complete payload in order. The payload is only
    /// valid during the call. If `onFrame` returns `.stop`, the rest of the input is kept and every
    /// later `feed` only buffers; collect those bytes with `takeBuffered()`.
    ///
    /// - Throws: `.frameTooLarge` when a header announces more than `maxFrameLength` (the stream
    ///   must then be closed: its framing is lost), or whatever `onFrame` throws.
    public mutating func feed(_ input: UnsafeRawBufferPointer, onFrame: (UnsafeRawBufferPointer) throws(ProtocolError) -> Next) throws(ProtocolError) {
        if isStopped { pending.append(contentsOf: input); return }
        var offset = 0
        // First finish a frame left over from earlier input.
        while !pending.isEmpty {
            let header = pending.withUnsafeBytes { FrameCodec.parseHeader($0) }
            guard let (headerSize, length) = header else {
                guard offset < input.count else { return }
                pending.append(input[offset]); offset += 1
                continue
            }
            guard length <= maxFrameLength else { throw .frameTooLarge }
            let total = headerSize + length
            let take = min(total - pending.count, input.count - offset)
            pending.reserveCapacity(total)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<(offset + take)]))
            offset += take
            guard pending.count == total else { return }
            let next = try pending.withUnsafeBytes { p in
                Result { () throws(ProtocolError) in try onFrame(UnsafeRawBufferPointer(rebasing: p[headerSize..<total])) }
            }.get()
            pending.removeAll(keepingCapacity: pending.capacity <= Self.retainedCapacity)
            if next == .stop { return stop(keeping: input, from: offset) }
        }
        // Then deliver frames straight from the input.
        while offset < input.count {
            let rest = UnsafeRawBufferPointer(rebasing: input[offset...])
            guard let (headerSize, length) = FrameCodec.parseHeader(rest) else {
                pending.append(contentsOf: rest); return
            }
            guard length <= maxFrameLength else { throw .frameTooLarge }
            guard rest.count >= headerSize + length else {
                pending.reserveCapacity(headerSize + length)
                pending.append(contentsOf: rest)
                return
            }
            let next = try onFrame(UnsafeRawBufferPointer(rebasing: rest[headerSize..<(headerSize + length)]))
            offset += headerSize + length
            if next == .stop { return stop(keeping: input, from: offset) }
        }
    }

    /// Returns and clears every byte buffered but not delivered as a frame (after `.stop`: the raw
    /// bytes that followed the last delivered frame, in order).
    public mutating func takeBuffered() -> [UInt8] {
        defer { pending = [] }
        return pending
    }

    /// A reassembly buffer larger than this is released after use rather than kept per connection.
    static let retainedCapacity = 64 * 1024

    private mutating func stop(keeping input: UnsafeRawBufferPointer, from offset: Int) {
        isStopped = true
        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset...]))
    }
}
