/// Pieces of the RFC 6455 §5.2 base framing shared by the decoder and the encoder.
///
/// Wire layout of a frame header:
/// ```
/// byte 0: FIN(1) RSV1(1) RSV2(1) RSV3(1) opcode(4)
/// byte 1: MASK(1) length(7)        126 → 16-bit length follows, 127 → 64-bit length follows
/// [2 or 8 bytes extended length, big-endian]
/// [4 bytes masking key, present iff MASK]
/// payload
/// ```

/// A frame opcode (RFC 6455 §5.2). Values 3–7 and 11–15 are reserved and rejected by the decoder.
public enum WebSocketOpcode: UInt8, Sendable, Hashable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Control frames (close, ping, pong) carry at most 125 bytes and are never fragmented.
    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// A client-to-server masking key (RFC 6455 §5.3). `value` holds the four key octets big-endian,
/// so `WebSocketMaskKey(0x37FA_213D)` is sent as `37 fa 21 3d`.
public struct WebSocketMaskKey: Hashable, Sendable {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }

    /// The key as it sits in memory read little-endian: its low byte is the first key octet.
    /// Rotating it right by 8·k bits yields the key phase for payload offset k.
    var littleEndianPhaseZero: UInt32 { value.byteSwapped }

    init(littleEndianPhaseZero: UInt32) { value = littleEndianPhaseZero.byteSwapped }

    /// XORs `bytes` with the key, treating `bytes[0]` as payload octet number `payloadOffset` of
    /// its frame. Masking and unmasking are the same operation. Allocation-free; eight bytes per
    /// step.
    func apply(to bytes: UnsafeMutableRawBufferPointer, payloadOffset: Int) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        let shift = UInt32((payloadOffset & 3) * 8)
        let phase = littleEndianPhaseZero
        let rotated = shift == 0 ? phase : (phase >> shift) | (phase << (32 - shift))
        let wide = UInt64(rotated) | UInt64(rotated) << 32
        var i = 0
        let count = bytes.count
        while count - i >= 8 {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            base.storeBytes(of: (word ^ wide).littleEndian, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        // Whole 8-byte steps keep the phase, so the tail starts at the same rotation.
        var tailKey = rotated
        while i < count {
            base.storeBytes(of: base.load(fromByteOffset: i, as: UInt8.self) ^ UInt8(truncatingIfNeeded: tailKey),
                            toByteOffset: i, as: UInt8.self)
            tailKey = (tailKey >> 8) | (tailKey << 24)
            i += 1
        }
    }
}

/// Control frame payload limit (RFC 6455 §5.5).
let webSocketMaxControlPayload = 125
/// 2 fixed bytes + 8 extended length bytes + 4 mask bytes.
let webSocketMaxHeaderSize = 14
