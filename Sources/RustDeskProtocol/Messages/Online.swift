/// Online-status family (PROTOCOL.md §5.4.2).

/// C→S. Wire: `1: id` (requester, ignored), `2: peers repeated string`.
public struct OnlineRequest: ProtoMessage {
    public var id: String
    public var peers: [String]
    public init() { self.init(id: "") }
    public init(id: String, peers: [String] = []) { self.id = id; self.peers = peers }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): id = try r.readString()
        case (2, .lengthDelimited):
            guard peers.count < ProtoLimits.maxRepeatedCount else { throw .tooManyRepeated }
            peers.append(try r.readString())
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.string(1, id) + ProtoSize.strings(2, peers) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.string(1, id); try w.strings(2, peers) }
}

/// S→C. Wire: `1: states bytes`: one bit per requested peer, MSB first, ceil(n/8) bytes.
public struct OnlineResponse: ProtoMessage {
    public var states: [UInt8]
    public init() { self.init(states: []) }
    public init(states: [UInt8]) { self.states = states }

    /// Packs per-peer online flags the way clients read them: peer i is bit `7 - i % 8` of byte `i / 8`.
    public init(online: [Bool]) {
        var states = [UInt8](repeating: 0, count: (online.count + 7) / 8)
        for (i, on) in online.enumerated() where on { states[i / 8] |= 0x80 >> UInt8(i % 8) }
        self.states = states
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 1, wireType == .lengthDelimited else { return false }
        states = try r.readBytes()
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.bytes(1, states) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.bytes(1, states) }
}
