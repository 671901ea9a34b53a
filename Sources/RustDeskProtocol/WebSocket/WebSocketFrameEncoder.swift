/// Writes RFC 6455 frames with the minimal length encoding.
///
/// Servers send unmasked frames (`maskKey: nil`); clients, such as the load harness, must mask
/// every frame (RFC 6455 §5.3) and pass a key. RustDesk needs only one binary frame per message
/// (PROTOCOL.md §2.3), so a message is `encodeFrame(.binary, payload: …)`; `fin: false` and
/// `.continuation` exist for tests and for fragmenting clients.
///
/// Misuse that would put an invalid frame on the wire (a control frame over 125 bytes or without
/// FIN, a negative length) throws `ProtocolError.webSocketProtocolViolation` instead of trapping.
public enum WebSocketFrameEncoder {
    /// The largest header any frame can have: 2 + 8 (64-bit length) + 4 (mask key).
    public static let maxHeaderSize = webSocketMaxHeaderSize

    /// The header size for a payload of `payloadCount` bytes, so callers can reserve room in
    /// front of a payload they write first: 2, 4 or 10 bytes, plus 4 when `masked`.
    public static func headerSize(payloadCount: Int, masked: Bool = false) -> Int {
        let lengthBytes = payloadCount <= 125 ? 0 : payloadCount <= 0xFFFF ? 2 : 8
        return 2 + lengthBytes + (masked ? 4 : 0)
    }

    /// Writes only the header of a frame at the start of `buffer`; the payload follows it
    /// (masked by the caller with the same key if `maskKey` is given).
    /// - Returns: the number of header bytes written, `headerSize(payloadCount:masked:)`.
    /// - Throws: `.webSocketProtocolViolation` for an invalid frame (see the type's contract);
    ///   `.bufferTooSmall` if `buffer` cannot hold the header.
    public static func writeHeader(
        _ opcode: WebSocketOpcode, fin: Bool = true, payloadCount: Int,
        maskKey: WebSocketMaskKey? = nil, into buffer: UnsafeMutableRawBufferPointer
    ) throws(ProtocolError) -> Int {
        try validate(opcode, fin: fin, payloadCount: payloadCount)
        guard buffer.count >= headerSize(payloadCount: payloadCount, masked: maskKey != nil) else { throw .bufferTooSmall }
        return storeHeader(opcode, fin: fin, payloadCount: payloadCount, maskKey: maskKey, into: buffer)
    }

    /// Writes a whole frame (header, then the payload, masked if `maskKey` is given) at the start
    /// of `buffer`. `payload` must not overlap `buffer`.
    /// - Returns: the number of bytes written.
    /// - Throws: `.webSocketProtocolViolation` for an invalid frame; `.bufferTooSmall` if the
    ///   frame does not fit.
    public static func encodeFrame(
        _ opcode: WebSocketOpcode, fin: Bool = true, payload: UnsafeRawBufferPointer,
        maskKey: WebSocketMaskKey? = nil, into buffer: UnsafeMutableRawBufferPointer
    ) throws(ProtocolError) -> Int {
        try validate(opcode, fin: fin, payloadCount: payload.count)
        let header = headerSize(payloadCount: payload.count, masked: maskKey != nil)
        guard buffer.count - header >= payload.count else { throw .bufferTooSmall }
        _ = storeHeader(opcode, fin: fin, payloadCount: payload.count, maskKey: maskKey, into: buffer)
        let body = UnsafeMutableRawBufferPointer(rebasing: buffer[header ..< header + payload.count])
        body.copyMemory(from: payload)
        maskKey?.apply(to: body, payloadOffset: 0)
        return header + payload.count
    }

    /// Appends a whole frame to `output`. Allocation-free when `output` has spare capacity.
    /// - Throws: `.webSocketProtocolViolation` for an invalid frame; `output` is then unchanged.
    public static func appendFrame(
        _ opcode: WebSocketOpcode, fin: Bool = true, payload: some Collection<UInt8>,
        maskKey: WebSocketMaskKey? = nil, to output: inout [UInt8]
    ) throws(ProtocolError) {
        let payloadCount = payload.count
        try validate(opcode, fin: fin, payloadCount: payloadCount)
        let start = output.count
        let header = headerSize(payloadCount: payloadCount, masked: maskKey != nil)
        output.reserveCapacity(start + header + payloadCount)
        output.append(contentsOf: repeatElement(0, count: header))
        output.append(contentsOf: payload)
        output.withUnsafeMutableBytes { bytes in
            let frame = UnsafeMutableRawBufferPointer(rebasing: bytes[start...])
            _ = storeHeader(opcode, fin: fin, payloadCount: payloadCount, maskKey: maskKey, into: frame)
            maskKey?.apply(to: UnsafeMutableRawBufferPointer(rebasing: frame[header...]), payloadOffset: 0)
        }
    }

    /// Stores a validated header into a buffer known to be large enough; returns its size.
    private static func storeHeader(
        _ opcode: WebSocketOpcode, fin: Bool, payloadCount: Int,
        maskKey: WebSocketMaskKey?, into buffer: UnsafeMutableRawBufferPointer
    ) -> Int {
        buffer[0] = (fin ? 0x80 : 0) | opcode.rawValue
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        var offset = 2
        if payloadCount <= 125 {
            buffer[1] = maskBit | UInt8(payloadCount)
        } else if payloadCount <= 0xFFFF {
            buffer[1] = maskBit | 126
            buffer.storeBytes(of: UInt16(payloadCount).bigEndian, toByteOffset: 2, as: UInt16.self)
            offset = 4
        } else {
            buffer[1] = maskBit | 127
            buffer.storeBytes(of: UInt64(payloadCount).bigEndian, toByteOffset: 2, as: UInt64.self)
            offset = 10
        }
        if let maskKey {
            buffer.storeBytes(of: maskKey.value.bigEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
        return offset
    }

    private static func validate(_ opcode: WebSocketOpcode, fin: Bool, payloadCount: Int) throws(ProtocolError) {
        guard payloadCount >= 0 else { throw .webSocketProtocolViolation }
        if opcode.isControl && (!fin || payloadCount > webSocketMaxControlPayload) {
            throw .webSocketProtocolViolation
        }
    }
}
