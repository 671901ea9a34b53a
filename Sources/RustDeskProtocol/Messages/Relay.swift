/// Relay family (PROTOCOL.md §5.3.2, §5.3.3, §8): meeting at hbbr.

/// A→S, S→B (forwarded with `socketAddr` set), and A/B→R as the first relay frame.
/// Wire: `1: id`, `2: uuid string`, `3: socket_addr`, `4: relay_server`, `5: secure`, `6: licence_key`,
/// `7: conn_type`, `8: token`, `9: control_permissions`, `10: controlled_context`, `11: switch_code`.
public struct RequestRelay: ProtoMessage {
    public var id: String
    public var uuid: String
    public var socketAddr: [UInt8]
    public var relayServer: String
    public var secure: Bool
    public var licenceKey: String
    public var connType: ConnType
    public var token: String
    public var controlPermissions: ControlPermissions?
    public var controlledContext: ControlledContext?
    public var switchCode: String
    public init() { self.init(id: "") }
    public init(id: String, uuid: String = "", socketAddr: [UInt8] = [], relayServer: String = "", secure: Bool = false,
                licenceKey: String = "", connType: ConnType = .defaultConn, token: String = "",
                controlPermissions: ControlPermissions? = nil, controlledContext: ControlledContext? = nil,
                switchCode: String = "") {
        self.id = id; self.uuid = uuid; self.socketAddr = socketAddr; self.relayServer = relayServer
        self.secure = secure; self.licenceKey = licenceKey; self.connType = connType; self.token = token
        self.controlPermissions = controlPermissions; self.controlledContext = controlledContext
        self.switchCode = switchCode
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): id = try r.readString()
        case (2, .lengthDelimited): uuid = try r.readString()
        case (3, .lengthDelimited): socketAddr = try r.readBytes()
        case (4, .lengthDelimited): relayServer = try r.readString()
        case (5, .varint): secure = try r.readBool()
        case (6, .lengthDelimited): licenceKey = try r.readString()
        case (7, .varint): connType = ConnType(rawValue: try r.readInt32())
        case (8, .lengthDelimited): token = try r.readString()
        case (9, .lengthDelimited): controlPermissions = try .decodeEmbedded(from: &r, depth: depth)
        case (10, .lengthDelimited): controlledContext = try .decodeEmbedded(from: &r, depth: depth)
        case (11, .lengthDelimited): switchCode = try r.readString()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.string(1, id) + ProtoSize.string(2, uuid) + ProtoSize.bytes(3, socketAddr)
            + ProtoSize.string(4, relayServer) + ProtoSize.bool(5, secure) + ProtoSize.string(6, licenceKey)
            + ProtoSize.int32(7, connType.rawValue) + ProtoSize.string(8, token)
            + ProtoSize.message(9, controlPermissions) + ProtoSize.message(10, controlledContext)
            + ProtoSize.string(11, switchCode)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.string(1, id); try w.string(2, uuid); try w.bytes(3, socketAddr); try w.string(4, relayServer)
        try w.bool(5, secure); try w.string(6, licenceKey); try w.int32(7, connType.rawValue); try w.string(8, token)
        try w.message(9, controlPermissions); try w.message(10, controlledContext); try w.string(11, switchCode)
    }
}

/// B→S and S→A. Wire: `1: socket_addr`, `2: uuid`, `3: relay_server`, oneof union { `4: id`, `5: pk` },
/// `6: refuse_reason`, `7: version`, `9: feedback`, `10: socket_addr_v6`, `11: upnp_port`.
public struct RelayResponse: ProtoMessage {
    public enum Union: Sendable, Equatable {
        case id(String)
        case pk([UInt8])
    }
    public var socketAddr: [UInt8]
    public var uuid: String
    public var relayServer: String
    public var union: Union?
    public var refuseReason: String
    public var version: String
    public var feedback: Int32
    public var socketAddrV6: [UInt8]
    public var upnpPort: Int32
    public init() { self.init(socketAddr: []) }
    public init(socketAddr: [UInt8], uuid: String = "", relayServer: String = "", union: Union? = nil,
                refuseReason: String = "", version: String = "", feedback: Int32 = 0, socketAddrV6: [UInt8] = [],
                upnpPort: Int32 = 0) {
        self.socketAddr = socketAddr; self.uuid = uuid; self.relayServer = relayServer; self.union = union
        self.refuseReason = refuseReason; self.version = version; self.feedback = feedback
        self.socketAddrV6 = socketAddrV6; self.upnpPort = upnpPort
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): socketAddr = try r.readBytes()
        case (2, .lengthDelimited): uuid = try r.readString()
        case (3, .lengthDelimited): relayServer = try r.readString()
        case (4, .lengthDelimited): union = .id(try r.readString())
        case (5, .lengthDelimited): union = .pk(try r.readBytes())
        case (6, .lengthDelimited): refuseReason = try r.readString()
        case (7, .lengthDelimited): version = try r.readString()
        case (9, .varint): feedback = try r.readInt32()
        case (10, .lengthDelimited): socketAddrV6 = try r.readBytes()
        case (11, .varint): upnpPort = try r.readInt32()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        var size = ProtoSize.bytes(1, socketAddr) + ProtoSize.string(2, uuid) + ProtoSize.string(3, relayServer)
        switch union {
        case .id(let s): size += ProtoSize.delimited(4, length: s.utf8.count)
        case .pk(let b): size += ProtoSize.delimited(5, length: b.count)
        case nil: break
        }
        return size + ProtoSize.string(6, refuseReason) + ProtoSize.string(7, version) + ProtoSize.int32(9, feedback)
            + ProtoSize.bytes(10, socketAddrV6) + ProtoSize.int32(11, upnpPort)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.bytes(1, socketAddr); try w.string(2, uuid); try w.string(3, relayServer)
        switch union {
        case .id(let s): try w.string(4, always: s)
        case .pk(let b): try w.bytes(5, always: b)
        case nil: break
        }
        try w.string(6, refuseReason); try w.string(7, version); try w.int32(9, feedback)
        try w.bytes(10, socketAddrV6); try w.int32(11, upnpPort)
    }
}
