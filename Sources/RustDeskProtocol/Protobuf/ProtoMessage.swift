/// A message of the RendezvousMessage schema. Conformers implement the three field-level hooks;
/// the extension provides decoding from and encoding to whole buffers.
public protocol ProtoMessage: Sendable, Equatable {
    init()
    /// Decodes one field whose key has been read. Returns false for a field the message does not
    /// know (or a known number with an unexpected wire type), which the caller then skips.
    /// `depth` is this message's nesting depth, to pass on to embedded messages.
    mutating func decodeField(number: Int, wireType: WireType, from reader: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool
    /// Size of the encoded fields (without this message's own key and length).
    func encodedFieldsSize() -> Int
    /// Writes the fields in field-number order, proto3 defaults omitted.
    func encodeFields(to writer: inout ProtoWriter) throws(ProtocolError)
}

extension ProtoMessage {
    /// Decodes a message from `bytes`. Unknown fields are skipped; an empty buffer is the default
    /// message. Throws on malformed input; never traps.
    @inlinable
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(ProtocolError) {
        var reader = ProtoReader(bytes)
        try self.init(reader: &reader, depth: 0)
    }

    @inlinable
    public init(serializedBytes bytes: [UInt8]) throws(ProtocolError) {
        let result = bytes.withUnsafeBytes { p in
            Result { () throws(ProtocolError) -> Self in try Self(serializedBytes: p) }
        }
        self = try result.get()
    }

    /// Decodes fields until the reader is exhausted.
    @inlinable
    public init(reader: inout ProtoReader, depth: Int) throws(ProtocolError) {
        guard depth <= ProtoLimits.maxDepth else { throw .nestingTooDeep }
        self.init()
        while let (number, wireType) = try reader.readTag() {
            if try !decodeField(number: number, wireType: wireType, from: &reader, depth: depth) {
                try reader.skipField(number: number, wireType: wireType, depth: depth)
            }
        }
    }

    /// Decodes an embedded message from a length-delimited field's payload.
    @inlinable
    public static func decodeEmbedded(from reader: inout ProtoReader, depth: Int) throws(ProtocolError) -> Self {
        let payload = try reader.readLengthDelimited()
        var inner = ProtoReader(payload)
        return try Self(reader: &inner, depth: depth + 1)
    }

    @inlinable public func serializedSize() -> Int { encodedFieldsSize() }

    /// Encodes into `buffer` without allocating; returns the number of bytes written.
    @inlinable
    public func serialize(into buffer: UnsafeMutableRawBufferPointer) throws(ProtocolError) -> Int {
        var writer = ProtoWriter(buffer)
        try encodeFields(to: &writer)
        return writer.count
    }

    /// Encodes into a new array (allocates; use `serialize(into:)` on hot paths).
    public func serializedBytes() -> [UInt8] {
        let size = serializedSize()
        return [UInt8](unsafeUninitializedCapacity: size) { buf, initialized in
            // The size was computed by the same rules; a failure here is a codec bug.
            initialized = try! serialize(into: UnsafeMutableRawBufferPointer(buf))
        }
    }
}

/// Proto3 enum values: an open set of Int32 that keeps unknown numbers (PROTOCOL.md §2.4).
public protocol ProtoEnum: RawRepresentable, Hashable, Sendable, CustomStringConvertible where RawValue == Int32 {
    init(rawValue: Int32)
    static var names: [Int32: String] { get }
}

extension ProtoEnum {
    public var description: String { Self.names[rawValue] ?? "\(rawValue)" }
}
