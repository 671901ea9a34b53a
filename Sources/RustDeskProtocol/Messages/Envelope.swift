/// The envelope: every message on every hbbs/hbbr transport is one `RendezvousMessage`, a single
/// oneof `union` over fields 6–28 (PROTOCOL.md §5.1.1). Fields 1–5 are unused.
///
/// Wire: `<member field number, wire type 2> <length> <member message>`. A set member is always
/// written, even when it is the default message (`RegisterPeerResponse{}` is `3a 00`).
/// If a (malformed) input carries several members, the last one wins, as in protobuf.
public enum RendezvousMessage: ProtoMessage {
    case none
    case registerPeer(RegisterPeer) // 6
    case registerPeerResponse(RegisterPeerResponse) // 7
    case punchHoleRequest(PunchHoleRequest) // 8
    case punchHole(PunchHole) // 9
    case punchHoleSent(PunchHoleSent) // 10
    case punchHoleResponse(PunchHoleResponse) // 11
    case fetchLocalAddr(FetchLocalAddr) // 12
    case localAddr(LocalAddr) // 13
    case configureUpdate(ConfigUpdate) // 14
    case registerPk(RegisterPk) // 15
    case registerPkResponse(RegisterPkResponse) // 16
    case softwareUpdate(SoftwareUpdate) // 17
    case requestRelay(RequestRelay) // 18
    case relayResponse(RelayResponse) // 19
    case testNatRequest(TestNatRequest) // 20
    case testNatResponse(TestNatResponse) // 21
    case peerDiscovery(PeerDiscovery) // 22
    case onlineRequest(OnlineRequest) // 23
    case onlineResponse(OnlineResponse) // 24
    case keyExchange(KeyExchange) // 25
    case hc(HealthCheck) // 26
    case httpProxyRequest(HttpProxyRequest) // 27
    case httpProxyResponse(HttpProxyResponse) // 28

    public init() { self = .none }

    /// The oneof field number of the member, or nil for `.none`.
    public var fieldNumber: Int? {
        switch self {
        case .none: return nil
        case .registerPeer: return 6
        case .registerPeerResponse: return 7
        case .punchHoleRequest: return 8
        case .punchHole: return 9
        case .punchHoleSent: return 10
        case .punchHoleResponse: return 11
        case .fetchLocalAddr: return 12
        case .localAddr: return 13
        case .configureUpdate: return 14
        case .registerPk: return 15
        case .registerPkResponse: return 16
        case .softwareUpdate: return 17
        case .requestRelay: return 18
        case .relayResponse: return 19
        case .testNatRequest: return 20
        case .testNatResponse: return 21
        case .peerDiscovery: return 22
        case .onlineRequest: return 23
        case .onlineResponse: return 24
        case .keyExchange: return 25
        case .hc: return 26
        case .httpProxyRequest: return 27
        case .httpProxyResponse: return 28
        }
    }

    /// A stable name of the member for logs and drop counters (the proto field name).
    public var kind: String {
        switch self {
        case .none: return "none"
        case .registerPeer: return "register_peer"
        case .registerPeerResponse: return "register_peer_response"
        case .punchHoleRequest: return "punch_hole_request"
        case .punchHole: return "punch_hole"
        case .punchHoleSent: return "punch_hole_sent"
        case .punchHoleResponse: return "punch_hole_response"
        case .fetchLocalAddr: return "fetch_local_addr"
        case .localAddr: return "local_addr"
        case .configureUpdate: return "configure_update"
        case .registerPk: return "register_pk"
        case .registerPkResponse: return "register_pk_response"
        case .softwareUpdate: return "software_update"
        case .requestRelay: return "request_relay"
        case .relayResponse: return "relay_response"
        case .testNatRequest: return "test_nat_request"
        case .testNatResponse: return "test_nat_response"
        case .peerDiscovery: return "peer_discovery"
        case .onlineRequest: return "online_request"
        case .onlineResponse: return "online_response"
        case .keyExchange: return "key_exchange"
        case .hc: return "hc"
        case .httpProxyRequest: return "http_proxy_request"
        case .httpProxyResponse: return "http_proxy_response"
        }
    }

    public mutating func decodeField(number: Int, wireType: WireType, from r: inout ProtoReader, depth: Int) throws(ProtocolError) -> Bool {
        guard wireType == .lengthDelimited else { return false }
        switch number {
        case 6: self = .registerPeer(try .decodeEmbedded(from: &r, depth: depth))
        case 7: self = .registerPeerResponse(try .decodeEmbedded(from: &r, depth: depth))
        case 8: self = .punchHoleRequest(try .decodeEmbedded(from: &r, depth: depth))
        case 9: self = .punchHole(try .decodeEmbedded(from: &r, depth: depth))
        case 10: self = .punchHoleSent(try .decodeEmbedded(from: &r, depth: depth))
        case 11: self = .punchHoleResponse(try .decodeEmbedded(from: &r, depth: depth))
        case 12: self = .fetchLocalAddr(try .decodeEmbedded(from: &r, depth: depth))
        case 13: self = .localAddr(try .decodeEmbedded(from: &r, depth: depth))
        case 14: self = .configureUpdate(try .decodeEmbedded(from: &r, depth: depth))
        case 15: self = .registerPk(try .decodeEmbedded(from: &r, depth: depth))
        case 16: self = .registerPkResponse(try .decodeEmbedded(from: &r, depth: depth))
        case 17: self = .softwareUpdate(try .decodeEmbedded(from: &r, depth: depth))
        case 18: self = .requestRelay(try .decodeEmbedded(from: &r, depth: depth))
        case 19: self = .relayResponse(try .decodeEmbedded(from: &r, depth: depth))
        case 20: self = .testNatRequest(try .decodeEmbedded(from: &r, depth: depth))
        case 21: self = .testNatResponse(try .decodeEmbedded(from: &r, depth: depth))
        case 22: self = .peerDiscovery(try .decodeEmbedded(from: &r, depth: depth))
        case 23: self = .onlineRequest(try .decodeEmbedded(from: &r, depth: depth))
        case 24: self = .onlineResponse(try .decodeEmbedded(from: &r, depth: depth))
        case 25: self = .keyExchange(try .decodeEmbedded(from: &r, depth: depth))
        case 26: self = .hc(try .decodeEmbedded(from: &r, depth: depth))
        case 27: self = .httpProxyRequest(try .decodeEmbedded(from: &r, depth: depth))
        case 28: self = .httpProxyResponse(try .decodeEmbedded(from: &r, depth: depth))
        default: return false
        }
        return true
    }

    public func encodedFieldsSize() -> Int {
        switch self {
        case .none: return 0
        case .registerPeer(let m): return ProtoSize.delimited(6, length: m.encodedFieldsSize())
        case .registerPeerResponse(let m): return ProtoSize.delimited(7, length: m.encodedFieldsSize())
        case .punchHoleRequest(let m): return ProtoSize.delimited(8, length: m.encodedFieldsSize())
        case .punchHole(let m): return ProtoSize.delimited(9, length: m.encodedFieldsSize())
        case .punchHoleSent(let m): return ProtoSize.delimited(10, length: m.encodedFieldsSize())
        case .punchHoleResponse(let m): return ProtoSize.delimited(11, length: m.encodedFieldsSize())
        case .fetchLocalAddr(let m): return ProtoSize.delimited(12, length: m.encodedFieldsSize())
        case .localAddr(let m): return ProtoSize.delimited(13, length: m.encodedFieldsSize())
        case .configureUpdate(let m): return ProtoSize.delimited(14, length: m.encodedFieldsSize())
        case .registerPk(let m): return ProtoSize.delimited(15, length: m.encodedFieldsSize())
        case .registerPkResponse(let m): return ProtoSize.delimited(16, length: m.encodedFieldsSize())
        case .softwareUpdate(let m): return ProtoSize.delimited(17, length: m.encodedFieldsSize())
        case .requestRelay(let m): return ProtoSize.delimited(18, length: m.encodedFieldsSize())
        case .relayResponse(let m): return ProtoSize.delimited(19, length: m.encodedFieldsSize())
        case .testNatRequest(let m): return ProtoSize.delimited(20, length: m.encodedFieldsSize())
        case .testNatResponse(let m): return ProtoSize.delimited(21, length: m.encodedFieldsSize())
        case .peerDiscovery(let m): return ProtoSize.delimited(22, length: m.encodedFieldsSize())
        case .onlineRequest(let m): return ProtoSize.delimited(23, length: m.encodedFieldsSize())
        case .onlineResponse(let m): return ProtoSize.delimited(24, length: m.encodedFieldsSize())
        case .keyExchange(let m): return ProtoSize.delimited(25, length: m.encodedFieldsSize())
        case .hc(let m): return ProtoSize.delimited(26, length: m.encodedFieldsSize())
        case .httpProxyRequest(let m): return ProtoSize.delimited(27, length: m.encodedFieldsSize())
        case .httpProxyResponse(let m): return ProtoSize.delimited(28, length: m.encodedFieldsSize())
        }
    }

    public func encodeFields(to w: inout ProtoWriter) throws(ProtocolError) {
        switch self {
        case .none: return
        case .registerPeer(let m): try w.message(6, m)
        case .registerPeerResponse(let m): try w.message(7, m)
        case .punchHoleRequest(let m): try w.message(8, m)
        case .punchHole(let m): try w.message(9, m)
        case .punchHoleSent(let m): try w.message(10, m)
        case .punchHoleResponse(let m): try w.message(11, m)
        case .fetchLocalAddr(let m): try w.message(12, m)
        case .localAddr(let m): try w.message(13, m)
        case .configureUpdate(let m): try w.message(14, m)
        case .registerPk(let m): try w.message(15, m)
        case .registerPkResponse(let m): try w.message(16, m)
        case .softwareUpdate(let m): try w.message(17, m)
        case .requestRelay(let m): try w.message(18, m)
        case .relayResponse(let m): try w.message(19, m)
        case .testNatRequest(let m): try w.message(20, m)
        case .testNatResponse(let m): try w.message(21, m)
        case .peerDiscovery(let m): try w.message(22, m)
        case .onlineRequest(let m): try w.message(23, m)
        case .onlineResponse(let m): try w.message(24, m)
        case .keyExchange(let m): try w.message(25, m)
        case .hc(let m): try w.message(26, m)
        case .httpProxyRequest(let m): try w.message(27, m)
        case .httpProxyResponse(let m): try w.message(28, m)
        }
    }
}
