/// Key material messages (PROTOCOL.md §4.4, §4.5).

/// "Secure TCP" handshake. Wire: `1: keys repeated bytes`.
public struct KeyExchange: ProtoMessage {
    public var keys: [[UInt8]]
    public init() { self.init(keys: []) }
    public init(keys: [[UInt8]]) { self.keys = keys }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 1, wireType == .lengthDelimited else { return false }
        guard keys.count < ProtoLimits.maxRepeatedCount else { throw .tooManyRepeated }
        keys.append(try r.readBytes())
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.bytesList(1, keys) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.bytesList(1, keys) }
}

/// The peer identity hbbs vouches for (message.proto, not part of RendezvousMessage).
/// Wire: `1: id string`, `2: pk bytes`. Signed as a libsodium combined message (§4.4).
public struct IdPk: ProtoMessage {
    public var id: String
    public var pk: [UInt8]
    public init() { self.init(id: "", pk: []) }
    public init(id: String, pk: [UInt8]) { self.id = id; self.pk = pk }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): id = try r.readString()
        case (2, .lengthDelimited): pk = try r.readBytes()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.string(1, id) + ProtoSize.bytes(2, pk) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.string(1, id); try w.bytes(2, pk) }
}
