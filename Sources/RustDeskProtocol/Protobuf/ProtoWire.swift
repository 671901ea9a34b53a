/// A minimal proto3 wire-format codec for the RendezvousMessage schema (PROTOCOL.md §2.4, §5.1).
///
/// Why hand-written rather than swift-protobuf: see docs/ARCHITECTURE.md ("Protobuf"). In short,
/// the hot messages must decode and encode with no heap allocation beyond the result, into buffers
/// the io_uring engine owns; the measured comparison is in docs/PERFORMANCE.md.
///
/// Decoding is bounded: every length is checked against the remaining input before use, nesting
/// (embedded messages and unknown groups) is limited to `ProtoLimits.maxDepth`, repeated fields to
/// `ProtoLimits.maxRepeatedCount`, and every failure is a thrown `ProtocolError`, never a trap.

/// Limits applied while decoding untrusted input.
public enum ProtoLimits {
    /// Maximum nesting of embedded messages and unknown groups, as upstream's protobuf library
    /// (recursion limit 100). 300 000 × `0B` must fail here, not on the stack.
    public static let maxDepth = 100
    /// Maximum elements of one repeated field in one message. Frames are already capped at
    /// 64 KiB on hbbs, so this only matters for callers that decode larger buffers.
    public static let maxRepeatedCount = 65_536
}

/// Protobuf wire types. 6 and 7 are invalid.
public enum WireType: UInt8, Sendable {
    case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
}

/// Reads protobuf fields from a borrowed buffer. Never copies except for the values it returns.
public struct ProtoReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline var offset: Int

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.offset = 0
    }

    @inlinable public var isAtEnd: Bool { offset >= bytes.count }

    @inlinable
    public mutating func readVarint() throws(ProtocolError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw .truncated }
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 { throw .malformedVarint }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw .malformedVarint }
        }
    }

    /// Reads a field key. Returns nil at the end of input.
    @inlinable
    public mutating func readTag() throws(ProtocolError) -> (number: Int, wireType: WireType)? {
        if isAtEnd { return nil }
        let key = try readVarint()
        guard let wt = WireType(rawValue: UInt8(key & 7)) else { throw .invalidWireType }
        let number = key >> 3
        guard number >= 1 && number <= 0x1FFF_FFFF else { throw .invalidFieldNumber }
        return (Int(number), wt)
    }

    /// The payload of a length-delimited field, borrowed from the input.
    @inlinable
    public mutating func readLengthDelimited() throws(ProtocolError) -> UnsafeRawBufferPointer {
        let len = try readVarint()
        guard len <= UInt64(bytes.count - offset) else { throw .lengthTooLarge }
        let start = offset
        offset += Int(len)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }

    @inlinable public mutating func readInt32() throws(ProtocolError) -> Int32 { Int32(truncatingIfNeeded: try readVarint()) }
    @inlinable public mutating func readUInt64() throws(ProtocolError) -> UInt64 { try readVarint() }
    @inlinable public mutating func readBool() throws(ProtocolError) -> Bool { try readVarint() != 0 }

    @inlinable
    public mutating func readString() throws(ProtocolError) -> String {
        let raw = try readLengthDelimited()
        if raw.isEmpty { return "" }
        // IDs, UUID text and addresses are ASCII: check that word by word and build the String
        // through the concrete UTF-8 buffer initializer. The general validating initializer is
        // generic and unspecialized here (runtime metadata lookups, shared by all workers).
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        if Self.isASCII(raw) { return String(decoding: bytes, as: UTF8.self) }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
        return s
    }

    /// Whether every byte is below 0x80 (8 bytes at a time).
    @inlinable
    static func isASCII(_ raw: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        var acc: UInt64 = 0
        while i + 8 <= raw.count {
            acc |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < raw.count {
            acc |= UInt64(raw[i])
            i += 1
        }
        return acc & 0x8080_8080_8080_8080 == 0
    }

    @inlinable public mutating func readBytes() throws(ProtocolError) -> [UInt8] { Array(try readLengthDelimited()) }

    /// Skips a field the schema does not know, including (possibly nested) groups.
    /// - Parameters:
    ///   - number: the field number of the key just read (an end-group key must match it).
    ///   - depth: the nesting depth of the message being decoded.
    public mutating func skipField(number: Int, wireType: WireType, depth: Int) throws(ProtocolError) {
        switch wireType {
        case .varint: _ = try readVarint()
        case .fixed64: try advance(8)
        case .fixed32: try advance(4)
        case .lengthDelimited: _ = try readLengthDelimited()
        case .endGroup: throw .invalidWireType // an end without a start
        case .startGroup:
            // Iterative with an explicit stack depth: hostile input can nest groups arbitrarily.
            var open = 1
            var innermost = number
            var stack = [Int]()
            while open > 0 {
                guard depth + open <= ProtoLimits.maxDepth else { throw .nestingTooDeep }
                guard let (n, wt) = try readTag() else { throw .truncated }
                switch wt {
                case .startGroup:
                    stack.append(innermost); innermost = n; open += 1
                case .endGroup:
                    guard n == innermost else { throw .invalidWireType }
                    open -= 1
                    innermost = stack.popLast() ?? 0
                case .varint: _ = try readVarint()
                case .fixed64: try advance(8)
                case .fixed32: try advance(4)
                case .lengthDelimited: _ = try readLengthDelimited()
                }
            }
        }
    }

    @inlinable
    mutating func advance(_ n: Int) throws(ProtocolError) {
        guard bytes.count - offset >= n else { throw .truncated }
        offset += n
    }
}

/// Writes protobuf fields into a caller-owned buffer; allocation-free. Every write is bounds
/// checked and throws `.bufferTooSmall` rather than overrunning.
public struct ProtoWriter {
    @usableFromInline let buffer: UnsafeMutableRawBufferPointer
    /// Bytes written so far.
    @usableFromInline var _count: Int
    public var count: Int { _count }

    @inlinable
    public init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
        self._count = 0
    }

    @inlinable
    public mutating func writeByte(_ b: UInt8) throws(ProtocolError) {
        guard count < buffer.count else { throw .bufferTooSmall }
        buffer[count] = b
        _count += 1
    }

    @inlinable
    public mutating func writeVarint(_ value: UInt64) throws(ProtocolError) {
        var v = value
        while v >= 0x80 {
            try writeByte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        try writeByte(UInt8(v))
    }

    @inlinable
    public mutating func writeTag(_ number: Int, _ wireType: WireType) throws(ProtocolError) {
        try writeVarint(UInt64(number) << 3 | UInt64(wireType.rawValue))
    }

    @inlinable
    public mutating func writeRaw(_ bytes: UnsafeRawBufferPointer) throws(ProtocolError) {
        guard buffer.count - count >= bytes.count else { throw .bufferTooSmall }
        if let base = bytes.baseAddress, !bytes.isEmpty {
            (buffer.baseAddress! + count).copyMemory(from: base, byteCount: bytes.count)
        }
        _count += bytes.count
    }

    // MARK: Fields. The plain forms omit proto3 defaults; `always` forms are for oneof members,
    // which are written even when they hold the default value (PROTOCOL.md §2.4).

    @inlinable public mutating func int32(_ n: Int, _ v: Int32) throws(ProtocolError) { if v != 0 { try int32(n, always: v) } }
    @inlinable public mutating func int32(_ n: Int, always v: Int32) throws(ProtocolError) {
        try writeTag(n, .varint); try writeVarint(UInt64(bitPattern: Int64(v)))
    }
    @inlinable public mutating func uint64(_ n: Int, _ v: UInt64) throws(ProtocolError) {
        if v != 0 { try writeTag(n, .varint); try writeVarint(v) }
    }
    @inlinable public mutating func bool(_ n: Int, _ v: Bool) throws(ProtocolError) { if v { try bool(n, always: v) } }
    @inlinable public mutating func bool(_ n: Int, always v: Bool) throws(ProtocolError) {
        try writeTag(n, .varint); try writeByte(v ? 1 : 0)
    }
    @inlinable public mutating func string(_ n: Int, _ v: String) throws(ProtocolError) { if !v.isEmpty { try string(n, always: v) } }
    @inlinable public mutating func string(_ n: Int, always v: String) throws(ProtocolError) {
        let length = v.utf8.count
        try writeTag(n, .lengthDelimited)
        try writeVarint(UInt64(length))
        guard buffer.count - count >= length else { throw .bufferTooSmall }
        var native = v // withUTF8 needs a mutable string; a native one is not copied.
        let dest = buffer.baseAddress! + count
        native.withUTF8 { p in if let base = p.baseAddress { dest.copyMemory(from: base, byteCount: length) } }
        _count += length
    }
    @inlinable public mutating func bytes(_ n: Int, _ v: [UInt8]) throws(ProtocolError) { if !v.isEmpty { try bytes(n, always: v) } }
    @inlinable public mutating func bytes(_ n: Int, always v: [UInt8]) throws(ProtocolError) {
        try writeTag(n, .lengthDelimited)
        try writeVarint(UInt64(v.count))
        guard buffer.count - count >= v.count else { throw .bufferTooSmall }
        let dest = buffer.baseAddress! + count
        v.withUnsafeBytes { p in if let base = p.baseAddress { dest.copyMemory(from: base, byteCount: p.count) } }
        _count += v.count
    }
    @inlinable public mutating func bytes(_ n: Int, always v: UnsafeRawBufferPointer) throws(ProtocolError) {
        try writeTag(n, .lengthDelimited); try writeVarint(UInt64(v.count)); try writeRaw(v)
    }
    /// An embedded message; nil means absent.
    @inlinable public mutating func message<M: ProtoMessage>(_ n: Int, _ m: M?) throws(ProtocolError) {
        guard let m else { return }
        try writeTag(n, .lengthDelimited)
        try writeVarint(UInt64(m.encodedFieldsSize()))
        try m.encodeFields(to: &self)
    }
    @inlinable public mutating func strings(_ n: Int, _ v: [String]) throws(ProtocolError) { for s in v { try string(n, always: s) } }
    @inlinable public mutating func bytesList(_ n: Int, _ v: [[UInt8]]) throws(ProtocolError) { for b in v { try bytes(n, always: b) } }
    @inlinable public mutating func messages<M: ProtoMessage>(_ n: Int, _ v: [M]) throws(ProtocolError) { for m in v { try message(n, m) } }
}

/// Encoded sizes, mirroring `ProtoWriter` exactly (same default-omission rules).
public enum ProtoSize {
    @inlinable public static func varint(_ v: UInt64) -> Int { v == 0 ? 1 : (64 - v.leadingZeroBitCount + 6) / 7 }
    @inlinable public static func tag(_ n: Int) -> Int { varint(UInt64(n) << 3) }
    @inlinable public static func int32(_ n: Int, _ v: Int32) -> Int { v == 0 ? 0 : int32(n, always: v) }
    @inlinable public static func int32(_ n: Int, always v: Int32) -> Int { tag(n) + varint(UInt64(bitPattern: Int64(v))) }
    @inlinable public static func uint64(_ n: Int, _ v: UInt64) -> Int { v == 0 ? 0 : tag(n) + varint(v) }
    @inlinable public static func bool(_ n: Int, _ v: Bool) -> Int { v ? tag(n) + 1 : 0 }
    @inlinable public static func bool(_ n: Int, always v: Bool) -> Int { tag(n) + 1 }
    @inlinable public static func delimited(_ n: Int, length: Int) -> Int { tag(n) + varint(UInt64(length)) + length }
    @inlinable public static func string(_ n: Int, _ v: String) -> Int { v.isEmpty ? 0 : delimited(n, length: v.utf8.count) }
    @inlinable public static func bytes(_ n: Int, _ v: [UInt8]) -> Int { v.isEmpty ? 0 : delimited(n, length: v.count) }
    @inlinable public static func message<M: ProtoMessage>(_ n: Int, _ m: M?) -> Int {
        guard let m else { return 0 }
        return delimited(n, length: m.encodedFieldsSize())
    }
    @inlinable public static func strings(_ n: Int, _ v: [String]) -> Int { v.reduce(0) { $0 + delimited(n, length: $1.utf8.count) } }
    @inlinable public static func bytesList(_ n: Int, _ v: [[UInt8]]) -> Int { v.reduce(0) { $0 + delimited(n, length: $1.count) } }
    @inlinable public static func messages<M: ProtoMessage>(_ n: Int, _ v: [M]) -> Int { v.reduce(0) { $0 + message(n, $1) } }
}
