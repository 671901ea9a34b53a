/// Registration family (PROTOCOL.md §5.2): B's keep-alive and key registration over UDP P.

/// B→S keep-alive, every 15 s. Wire: `1: id string`, `2: serial int32`.
public struct RegisterPeer: ProtoMessage {
    public var id: String
    public var serial: Int32
    public init() { self.init(id: "") }
    public init(id: String, serial: Int32 = 0) { self.id = id; self.serial = serial }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): id = try r.readString()
        case (2, .varint): serial = try r.readInt32()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.string(1, id) + ProtoSize.int32(2, serial) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.string(1, id); try w.int32(2, serial)
    }
}

/// S→B reply to RegisterPeer. Wire: `2: request_pk bool`.
public struct RegisterPeerResponse: ProtoMessage {
    public var requestPk: Bool
    public init() { self.init(requestPk: false) }
    public init(requestPk: Bool) { self.requestPk = requestPk }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 2, wireType == .varint else { return false }
        requestPk = try r.readBool()
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.bool(2, requestPk) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.bool(2, requestPk) }
}

/// B→S identity and key registration. Wire: `1: id`, `2: uuid bytes`, `3: pk bytes`,
/// `4: old_id string`, `5: no_register_device bool`.
public struct RegisterPk: ProtoMessage {
    public var id: String
    public var uuid: [UInt8]
    public var pk: [UInt8]
    public var oldId: String
    public var noRegisterDevice: Bool
    public init() { self.init(id: "") }
    public init(id: String, uuid: [UInt8] = [], pk: [UInt8] = [], oldId: String = "", noRegisterDevice: Bool = false) {
        self.id = id; self.uuid = uuid; self.pk = pk; self.oldId = oldId; self.noRegisterDevice = noRegisterDevice
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): id = try r.readString()
        case (2, .lengthDelimited): uuid = try r.readBytes()
        case (3, .lengthDelimited): pk = try r.readBytes()
        case (4, .lengthDelimited): oldId = try r.readString()
        case (5, .varint): noRegisterDevice = try r.readBool()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.string(1, id) + ProtoSize.bytes(2, uuid) + ProtoSize.bytes(3, pk) + ProtoSize.string(4, oldId)
            + ProtoSize.bool(5, noRegisterDevice)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.string(1, id); try w.bytes(2, uuid); try w.bytes(3, pk); try w.string(4, oldId); try w.bool(5, noRegisterDevice)
    }
}

/// S→B answer to RegisterPk. Wire: `1: result enum`, `2: keep_alive int32` (seconds, TCP registration).
public struct RegisterPkResponse: ProtoMessage {
    public var result: Result
    public var keepAlive: Int32
    public init() { self.init(result: .ok) }
    public init(result: Result, keepAlive: Int32 = 0) { self.result = result; self.keepAlive = keepAlive }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .varint): result = Result(rawValue: try r.readInt32())
        case (2, .varint): keepAlive = try r.readInt32()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.int32(1, result.rawValue) + ProtoSize.int32(2, keepAlive) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.int32(1, result.rawValue); try w.int32(2, keepAlive)
    }
}

/// Runtime reconfiguration pushed to clients. Wire: `1: serial int32`, `2: rendezvous_servers repeated string`.
public struct ConfigUpdate: ProtoMessage {
    public var serial: Int32
    public var rendezvousServers: [String]
    public init() { self.init(serial: 0) }
    public init(serial: Int32, rendezvousServers: [String] = []) { self.serial = serial; self.rendezvousServers = rendezvousServers }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .varint): serial = try r.readInt32()
        case (2, .lengthDelimited):
            guard rendezvousServers.count < ProtoLimits.maxRepeatedCount else { throw .tooManyRepeated }
            rendezvousServers.append(try r.readString())
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.int32(1, serial) + ProtoSize.strings(2, rendezvousServers) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.int32(1, serial); try w.strings(2, rendezvousServers)
    }
}

/// Legacy software-update notice. Wire: `1: url string`.
public struct SoftwareUpdate: ProtoMessage {
    public var url: String
    public init() { self.init(url: "") }
    public init(url: String) { self.url = url }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 1, wireType == .lengthDelimited else { return false }
        url = try r.readString()
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.string(1, url) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.string(1, url) }
}
