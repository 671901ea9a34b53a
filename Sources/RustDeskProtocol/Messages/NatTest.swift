/// NAT-test family (PROTOCOL.md §5.3.6, §5.4.1): the client learns its public source port.

/// C→S on TCP P / P-1. Wire: `1: serial int32`.
public struct TestNatRequest: ProtoMessage {
    public var serial: Int32
    public init() { self.init(serial: 0) }
    public init(serial: Int32) { self.serial = serial }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 1, wireType == .varint else { return false }
        serial = try r.readInt32()
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.int32(1, serial) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.int32(1, serial) }
}

/// S→C. Wire: `1: port int32` (observed source port), `2: cu ConfigUpdate` (TCP P only, when newer).
public struct TestNatResponse: ProtoMessage {
    public var port: Int32
    public var cu: ConfigUpdate?
    public init() { self.init(port: 0) }
    public init(port: Int32, cu: ConfigUpdate? = nil) { self.port = port; self.cu = cu }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .varint): port = try r.readInt32()
        case (2, .lengthDelimited): cu = try .decodeEmbedded(from: &r, depth: depth)
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.int32(1, port) + ProtoSize.message(2, cu) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.int32(1, port); try w.message(2, cu) }
}
