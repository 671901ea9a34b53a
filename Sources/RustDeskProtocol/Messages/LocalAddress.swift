/// Same-intranet family (PROTOCOL.md §5.3.5): S asks B for its LAN address; B answers.

/// S→B over UDP. Wire: `1: socket_addr`, `2: relay_server`, `3: socket_addr_v6`,
/// `4: control_permissions`, `5: controlled_context`.
public struct FetchLocalAddr: ProtoMessage {
    public var socketAddr: [UInt8]
    public var relayServer: String
    public var socketAddrV6: [UInt8]
    public var controlPermissions: ControlPermissions?
    public var controlledContext: ControlledContext?
    public init() { self.init(socketAddr: []) }
    public init(socketAddr: [UInt8], relayServer: String = "", socketAddrV6: [UInt8] = [],
                controlPermissions: ControlPermissions? = nil, controlledContext: ControlledContext? = nil) {
        self.socketAddr = socketAddr; self.relayServer = relayServer; self.socketAddrV6 = socketAddrV6
        self.controlPermissions = controlPermissions; self.controlledContext = controlledContext
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): socketAddr = try r.readBytes()
        case (2, .lengthDelimited): relayServer = try r.readString()
        case (3, .lengthDelimited): socketAddrV6 = try r.readBytes()
        case (4, .lengthDelimited): controlPermissions = try .decodeEmbedded(from: &r, depth: depth)
        case (5, .lengthDelimited): controlledContext = try .decodeEmbedded(from: &r, depth: depth)
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.bytes(1, socketAddr) + ProtoSize.string(2, relayServer) + ProtoSize.bytes(3, socketAddrV6)
            + ProtoSize.message(4, controlPermissions) + ProtoSize.message(5, controlledContext)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.bytes(1, socketAddr); try w.string(2, relayServer); try w.bytes(3, socketAddrV6)
        try w.message(4, controlPermissions); try w.message(5, controlledContext)
    }
}

/// B→S over TCP/WS. Wire: `1: socket_addr` (A, as received), `2: local_addr` (B's LAN ip:port),
/// `3: relay_server`, `4: id`, `5: version`, `6: socket_addr_v6`.
public struct LocalAddr: ProtoMessage {
    public var socketAddr: [UInt8]
    public var localAddr: [UInt8]
    public var relayServer: String
    public var id: String
    public var version: String
    public var socketAddrV6: [UInt8]
    public init() { self.init(socketAddr: []) }
    public init(socketAddr: [UInt8], localAddr: [UInt8] = [], relayServer: String = "", id: String = "",
                version: String = "", socketAddrV6: [UInt8] = []) {
        self.socketAddr = socketAddr; self.localAddr = localAddr; self.relayServer = relayServer; self.id = id
        self.version = version; self.socketAddrV6 = socketAddrV6
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): socketAddr = try r.readBytes()
        case (2, .lengthDelimited): localAddr = try r.readBytes()
        case (3, .lengthDelimited): relayServer = try r.readString()
        case (4, .lengthDelimited): id = try r.readString()
        case (5, .lengthDelimited): version = try r.readString()
        case (6, .lengthDelimited): socketAddrV6 = try r.readBytes()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.bytes(1, socketAddr) + ProtoSize.bytes(2, localAddr) + ProtoSize.string(3, relayServer)
            + ProtoSize.string(4, id) + ProtoSize.string(5, version) + ProtoSize.bytes(6, socketAddrV6)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.bytes(1, socketAddr); try w.bytes(2, localAddr); try w.string(3, relayServer)
        try w.string(4, id); try w.string(5, version); try w.bytes(6, socketAddrV6)
    }
}
