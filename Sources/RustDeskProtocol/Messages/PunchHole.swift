/// Punch-hole family (PROTOCOL.md §5.3.1, §5.3.4): A asks S to reach B; S tells B; B answers.

/// Pro permission bits, 2 bits per permission at offset 2×value. Wire: `1: permissions uint64`.
public struct ControlPermissions: ProtoMessage {
    public var permissions: UInt64
    public init() { self.init(permissions: 0) }
    public init(permissions: UInt64) { self.permissions = permissions }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 1, wireType == .varint else { return false }
        permissions = try r.readUInt64()
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.uint64(1, permissions) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.uint64(1, permissions) }
}

/// Pro audit context. Wire: `1: conn_audit_ref string`.
public struct ControlledContext: ProtoMessage {
    public var connAuditRef: String
    public init() { self.init(connAuditRef: "") }
    public init(connAuditRef: String) { self.connAuditRef = connAuditRef }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 1, wireType == .lengthDelimited else { return false }
        connAuditRef = try r.readString()
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.string(1, connAuditRef) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.string(1, connAuditRef) }
}

/// A→S over TCP/WS. Wire: `1: id`, `2: nat_type`, `3: licence_key`, `4: conn_type`, `5: token`,
/// `6: version`, `7: udp_port int32`, `8: force_relay bool`, `9: upnp_port int32`,
/// `10: socket_addr_v6 bytes`, `11: switch_code string`.
public struct PunchHoleRequest: ProtoMessage {
    public var id: String
    public var natType: NatType
    public var licenceKey: String
    public var connType: ConnType
    public var token: String
    public var version: String
    public var udpPort: Int32
    public var forceRelay: Bool
    public var upnpPort: Int32
    public var socketAddrV6: [UInt8]
    public var switchCode: String
    public init() { self.init(id: "") }
    public init(id: String, natType: NatType = .unknownNat, licenceKey: String = "", connType: ConnType = .defaultConn,
                token: String = "", version: String = "", udpPort: Int32 = 0, forceRelay: Bool = false,
                upnpPort: Int32 = 0, socketAddrV6: [UInt8] = [], switchCode: String = "") {
        self.id = id; self.natType = natType; self.licenceKey = licenceKey; self.connType = connType
        self.token = token; self.version = version; self.udpPort = udpPort; self.forceRelay = forceRelay
        self.upnpPort = upnpPort; self.socketAddrV6 = socketAddrV6; self.switchCode = switchCode
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): id = try r.readString()
        case (2, .varint): natType = NatType(rawValue: try r.readInt32())
        case (3, .lengthDelimited): licenceKey = try r.readString()
        case (4, .varint): connType = ConnType(rawValue: try r.readInt32())
        case (5, .lengthDelimited): token = try r.readString()
        case (6, .lengthDelimited): version = try r.readString()
        case (7, .varint): udpPort = try r.readInt32()
        case (8, .varint): forceRelay = try r.readBool()
        case (9, .varint): upnpPort = try r.readInt32()
        case (10, .lengthDelimited): socketAddrV6 = try r.readBytes()
        case (11, .lengthDelimited): switchCode = try r.readString()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.string(1, id) + ProtoSize.int32(2, natType.rawValue) + ProtoSize.string(3, licenceKey)
            + ProtoSize.int32(4, connType.rawValue) + ProtoSize.string(5, token) + ProtoSize.string(6, version)
            + ProtoSize.int32(7, udpPort) + ProtoSize.bool(8, forceRelay) + ProtoSize.int32(9, upnpPort)
            + ProtoSize.bytes(10, socketAddrV6) + ProtoSize.string(11, switchCode)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.string(1, id); try w.int32(2, natType.rawValue); try w.string(3, licenceKey)
        try w.int32(4, connType.rawValue); try w.string(5, token); try w.string(6, version)
        try w.int32(7, udpPort); try w.bool(8, forceRelay); try w.int32(9, upnpPort)
        try w.bytes(10, socketAddrV6); try w.string(11, switchCode)
    }
}

/// S→B over UDP. Wire: `1: socket_addr bytes`, `2: relay_server`, `3: nat_type`, `4: udp_port`,
/// `5: force_relay`, `6: upnp_port`, `7: socket_addr_v6`, `8: control_permissions`,
/// `9: controlled_context`.
public struct PunchHole: ProtoMessage {
    public var socketAddr: [UInt8]
    public var relayServer: String
    public var natType: NatType
    public var udpPort: Int32
    public var forceRelay: Bool
    public var upnpPort: Int32
    public var socketAddrV6: [UInt8]
    public var controlPermissions: ControlPermissions?
    public var controlledContext: ControlledContext?
    public init() { self.init(socketAddr: []) }
    public init(socketAddr: [UInt8], relayServer: String = "", natType: NatType = .unknownNat, udpPort: Int32 = 0,
                forceRelay: Bool = false, upnpPort: Int32 = 0, socketAddrV6: [UInt8] = [],
                controlPermissions: ControlPermissions? = nil, controlledContext: ControlledContext? = nil) {
        self.socketAddr = socketAddr; self.relayServer = relayServer; self.natType = natType; self.udpPort = udpPort
        self.forceRelay = forceRelay; self.upnpPort = upnpPort; self.socketAddrV6 = socketAddrV6
        self.controlPermissions = controlPermissions; self.controlledContext = controlledContext
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): socketAddr = try r.readBytes()
        case (2, .lengthDelimited): relayServer = try r.readString()
        case (3, .varint): natType = NatType(rawValue: try r.readInt32())
        case (4, .varint): udpPort = try r.readInt32()
        case (5, .varint): forceRelay = try r.readBool()
        case (6, .varint): upnpPort = try r.readInt32()
        case (7, .lengthDelimited): socketAddrV6 = try r.readBytes()
        case (8, .lengthDelimited): controlPermissions = try .decodeEmbedded(from: &r, depth: depth)
        case (9, .lengthDelimited): controlledContext = try .decodeEmbedded(from: &r, depth: depth)
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.bytes(1, socketAddr) + ProtoSize.string(2, relayServer) + ProtoSize.int32(3, natType.rawValue)
            + ProtoSize.int32(4, udpPort) + ProtoSize.bool(5, forceRelay) + ProtoSize.int32(6, upnpPort)
            + ProtoSize.bytes(7, socketAddrV6) + ProtoSize.message(8, controlPermissions)
            + ProtoSize.message(9, controlledContext)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.bytes(1, socketAddr); try w.string(2, relayServer); try w.int32(3, natType.rawValue)
        try w.int32(4, udpPort); try w.bool(5, forceRelay); try w.int32(6, upnpPort)
        try w.bytes(7, socketAddrV6); try w.message(8, controlPermissions); try w.message(9, controlledContext)
    }
}

/// B→S over TCP/WS: B is ready for A's direct connection. Wire: `1: socket_addr` (A, as received),
/// `2: id`, `3: relay_server`, `4: nat_type`, `5: version`, `6: upnp_port`, `7: socket_addr_v6`.
public struct PunchHoleSent: ProtoMessage {
    public var socketAddr: [UInt8]
    public var id: String
    public var relayServer: String
    public var natType: NatType
    public var version: String
    public var upnpPort: Int32
    public var socketAddrV6: [UInt8]
    public init() { self.init(socketAddr: []) }
    public init(socketAddr: [UInt8], id: String = "", relayServer: String = "", natType: NatType = .unknownNat,
                version: String = "", upnpPort: Int32 = 0, socketAddrV6: [UInt8] = []) {
        self.socketAddr = socketAddr; self.id = id; self.relayServer = relayServer; self.natType = natType
        self.version = version; self.upnpPort = upnpPort; self.socketAddrV6 = socketAddrV6
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): socketAddr = try r.readBytes()
        case (2, .lengthDelimited): id = try r.readString()
        case (3, .lengthDelimited): relayServer = try r.readString()
        case (4, .varint): natType = NatType(rawValue: try r.readInt32())
        case (5, .lengthDelimited): version = try r.readString()
        case (6, .varint): upnpPort = try r.readInt32()
        case (7, .lengthDelimited): socketAddrV6 = try r.readBytes()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.bytes(1, socketAddr) + ProtoSize.string(2, id) + ProtoSize.string(3, relayServer)
            + ProtoSize.int32(4, natType.rawValue) + ProtoSize.string(5, version) + ProtoSize.int32(6, upnpPort)
            + ProtoSize.bytes(7, socketAddrV6)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.bytes(1, socketAddr); try w.string(2, id); try w.string(3, relayServer)
        try w.int32(4, natType.rawValue); try w.string(5, version); try w.int32(6, upnpPort)
        try w.bytes(7, socketAddrV6)
    }
}

/// S→A: where B is, or why not. `socketAddr` empty ⇔ failure. Wire: `1: socket_addr`, `2: pk`,
/// `3: failure`, `4: relay_server`, oneof union { `5: nat_type`, `6: is_local` }, `7: other_failure`,
/// `8: feedback`, `9: is_udp`, `10: upnp_port`, `11: socket_addr_v6`.
public struct PunchHoleResponse: ProtoMessage {
    public enum Union: Sendable, Equatable {
        case natType(NatType)
        case isLocal(Bool)
    }
    public var socketAddr: [UInt8]
    public var pk: [UInt8]
    public var failure: Failure
    public var relayServer: String
    public var union: Union?
    public var otherFailure: String
    public var feedback: Int32
    public var isUdp: Bool
    public var upnpPort: Int32
    public var socketAddrV6: [UInt8]
    public init() { self.init(socketAddr: []) }
    public init(socketAddr: [UInt8], pk: [UInt8] = [], failure: Failure = .idNotExist, relayServer: String = "",
                union: Union? = nil, otherFailure: String = "", feedback: Int32 = 0, isUdp: Bool = false,
                upnpPort: Int32 = 0, socketAddrV6: [UInt8] = []) {
        self.socketAddr = socketAddr; self.pk = pk; self.failure = failure; self.relayServer = relayServer
        self.union = union; self.otherFailure = otherFailure; self.feedback = feedback; self.isUdp = isUdp
        self.upnpPort = upnpPort; self.socketAddrV6 = socketAddrV6
    }
    /// A failure answer: only `failure` set.
    public init(failure: Failure) { self.init(socketAddr: [], failure: failure) }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): socketAddr = try r.readBytes()
        case (2, .lengthDelimited): pk = try r.readBytes()
        case (3, .varint): failure = Failure(rawValue: try r.readInt32())
        case (4, .lengthDelimited): relayServer = try r.readString()
        case (5, .varint): union = .natType(NatType(rawValue: try r.readInt32()))
        case (6, .varint): union = .isLocal(try r.readBool())
        case (7, .lengthDelimited): otherFailure = try r.readString()
        case (8, .varint): feedback = try r.readInt32()
        case (9, .varint): isUdp = try r.readBool()
        case (10, .varint): upnpPort = try r.readInt32()
        case (11, .lengthDelimited): socketAddrV6 = try r.readBytes()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        var size = ProtoSize.bytes(1, socketAddr) + ProtoSize.bytes(2, pk) + ProtoSize.int32(3, failure.rawValue)
            + ProtoSize.string(4, relayServer)
        switch union {
        case .natType(let t): size += ProtoSize.int32(5, always: t.rawValue)
        case .isLocal(let b): size += ProtoSize.bool(6, always: b)
        case nil: break
        }
        return size + ProtoSize.string(7, otherFailure) + ProtoSize.int32(8, feedback) + ProtoSize.bool(9, isUdp)
            + ProtoSize.int32(10, upnpPort) + ProtoSize.bytes(11, socketAddrV6)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.bytes(1, socketAddr); try w.bytes(2, pk); try w.int32(3, failure.rawValue); try w.string(4, relayServer)
        switch union {
        case .natType(let t): try w.int32(5, always: t.rawValue)
        case .isLocal(let b): try w.bool(6, always: b)
        case nil: break
        }
        try w.string(7, otherFailure); try w.int32(8, feedback); try w.bool(9, isUdp)
        try w.int32(10, upnpPort); try w.bytes(11, socketAddrV6)
    }
}
