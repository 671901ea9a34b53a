/// Messages OSS hbbs never acts on but must parse (Pro features, LAN discovery): PROTOCOL.md §5.6, §5.7.

/// Wire: `1: token string`.
public struct HealthCheck: ProtoMessage {
    public var token: String
    public init() { self.init(token: "") }
    public init(token: String) { self.token = token }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard number == 1, wireType == .lengthDelimited else { return false }
        token = try r.readString()
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.string(1, token) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.string(1, token) }
}

/// Wire: `1: name`, `2: value`.
public struct HeaderEntry: ProtoMessage {
    public var name: String
    public var value: String
    public init() { self.init(name: "", value: "") }
    public init(name: String, value: String) { self.name = name; self.value = value }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): name = try r.readString()
        case (2, .lengthDelimited): value = try r.readString()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int { ProtoSize.string(1, name) + ProtoSize.string(2, value) }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) { try w.string(1, name); try w.string(2, value) }
}

/// Wire: `1: method`, `2: path`, `3: headers repeated HeaderEntry`, `4: body bytes`.
public struct HttpProxyRequest: ProtoMessage {
    public var method: String
    public var path: String
    public var headers: [HeaderEntry]
    public var body: [UInt8]
    public init() { self.init(method: "") }
    public init(method: String, path: String = "", headers: [HeaderEntry] = [], body: [UInt8] = []) {
        self.method = method; self.path = path; self.headers = headers; self.body = body
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .lengthDelimited): method = try r.readString()
        case (2, .lengthDelimited): path = try r.readString()
        case (3, .lengthDelimited):
            guard headers.count < ProtoLimits.maxRepeatedCount else { throw .tooManyRepeated }
            headers.append(try .decodeEmbedded(from: &r, depth: depth))
        case (4, .lengthDelimited): body = try r.readBytes()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.string(1, method) + ProtoSize.string(2, path) + ProtoSize.messages(3, headers) + ProtoSize.bytes(4, body)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.string(1, method); try w.string(2, path); try w.messages(3, headers); try w.bytes(4, body)
    }
}

/// Wire: `1: status int32`, `2: headers repeated HeaderEntry`, `3: body bytes`, `4: error string`.
public struct HttpProxyResponse: ProtoMessage {
    public var status: Int32
    public var headers: [HeaderEntry]
    public var body: [UInt8]
    public var error: String
    public init() { self.init(status: 0) }
    public init(status: Int32, headers: [HeaderEntry] = [], body: [UInt8] = [], error: String = "") {
        self.status = status; self.headers = headers; self.body = body; self.error = error
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        switch (number, wireType) {
        case (1, .varint): status = try r.readInt32()
        case (2, .lengthDelimited):
            guard headers.count < ProtoLimits.maxRepeatedCount else { throw .tooManyRepeated }
            headers.append(try .decodeEmbedded(from: &r, depth: depth))
        case (3, .lengthDelimited): body = try r.readBytes()
        case (4, .lengthDelimited): error = try r.readString()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.int32(1, status) + ProtoSize.messages(2, headers) + ProtoSize.bytes(3, body) + ProtoSize.string(4, error)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.int32(1, status); try w.messages(2, headers); try w.bytes(3, body); try w.string(4, error)
    }
}

/// LAN discovery between clients (UDP 21119); never reaches servers. Wire: `1: cmd`, `2: mac`,
/// `3: id`, `4: username`, `5: hostname`, `6: platform`, `7: misc` (all strings).
public struct PeerDiscovery: ProtoMessage {
    public var cmd: String
    public var mac: String
    public var id: String
    public var username: String
    public var hostname: String
    public var platform: String
    public var misc: String
    public init() { self.init(cmd: "") }
    public init(cmd: String, mac: String = "", id: String = "", username: String = "", hostname: String = "",
                platform: String = "", misc: String = "") {
        self.cmd = cmd; self.mac = mac; self.id = id; self.username = username; self.hostname = hostname
        self.platform = platform; self.misc = misc
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard wireType == .lengthDelimited else { return false }
        switch number {
        case 1: cmd = try r.readString()
        case 2: mac = try r.readString()
        case 3: id = try r.readString()
        case 4: username = try r.readString()
        case 5: hostname = try r.readString()
        case 6: platform = try r.readString()
        case 7: misc = try r.readString()
        default: return false
        }
        return true
    }
    public func encodedFieldsSize() -> Int {
        ProtoSize.string(1, cmd) + ProtoSize.string(2, mac) + ProtoSize.string(3, id) + ProtoSize.string(4, username)
            + ProtoSize.string(5, hostname) + ProtoSize.string(6, platform) + ProtoSize.string(7, misc)
    }
    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        try w.string(1, cmd); try w.string(2, mac); try w.string(3, id); try w.string(4, username)
        try w.string(5, hostname); try w.string(6, platform); try w.string(7, misc)
    }
}
