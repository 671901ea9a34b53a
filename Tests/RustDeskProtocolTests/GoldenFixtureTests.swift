import Testing
import RustDeskProtocol

/// Golden bytes from an independent encoder (scripts/gen-fixtures.py: Google's Python protobuf
/// runtime on proto/rendezvous.proto). Each message is rebuilt here from the same values the
/// script uses, so decoding must give exactly it and encoding must give exactly the file.
/// When a value changes in the script, change it here too (and rerun the script).
@Suite(.timeLimit(.minutes(1)))
struct GoldenFixtureTests {
    @Test(arguments: GoldenFixtures.messages)
    func fixtureDecodesToTheSwiftBuiltMessageAndEncodesBackToTheSameBytes(_ fixture: GoldenFixture) throws {
        let bytes = try GoldenFixtures.read(fixture.name + ".bin")
        let decoded = try RendezvousMessage(serializedBytes: bytes)
        #expect(decoded == fixture.message)
        #expect(hexString(fixture.message.serializedBytes()) == hexString(bytes))
        #expect(fixture.message.serializedSize() == bytes.count)
    }

    @Test func idPkFixtureMatchesTheSignedPeerKeyExample() throws {
        let bytes = try GoldenFixtures.read("id_pk.bin")
        let expected = IdPk(id: "123456789", pk: [UInt8](repeating: 0x11, count: 32))
        #expect(try IdPk(serializedBytes: bytes) == expected)
        #expect(expected.serializedBytes() == bytes)
    }

    @Test(arguments: GoldenFixtures.unknownFields)
    func unknownFieldsOfEveryWireTypeAreSkippedAndDroppedOnReencode(_ fixture: GoldenFixture) throws {
        let withUnknown = try GoldenFixtures.read(fixture.name + ".bin")
        let canonical = try GoldenFixtures.read(fixture.name + ".canonical.bin")
        let decoded = try RendezvousMessage(serializedBytes: withUnknown)
        #expect(decoded == fixture.message)
        #expect(try RendezvousMessage(serializedBytes: canonical) == fixture.message)
        #expect(hexString(decoded.serializedBytes()) == hexString(canonical))
    }

    @Test func everyEnvelopeMemberHasAFullyPopulatedFixture() {
        let kinds = Set(GoldenFixtures.messages.filter(\.isFullyPopulated).map(\.message.kind))
        #expect(kinds.count == 23, "members without a full fixture")
        #expect(!kinds.contains(RendezvousMessage.none.kind))
    }

    @Test func everyFixtureFileIsCheckedByThisSuite() throws {
        var checked: Set<String> = ["id_pk.bin"]
        for fixture in GoldenFixtures.messages { checked.insert(fixture.name + ".bin") }
        for fixture in GoldenFixtures.unknownFields {
            checked.insert(fixture.name + ".bin")
            checked.insert(fixture.name + ".canonical.bin")
        }
        let onDisk = Set(try listFiles(GoldenFixtures.directory).filter { $0.hasSuffix(".bin") })
        #expect(onDisk.subtracting(checked).sorted() == [], "fixtures on disk that no test reads")
        #expect(checked.subtracting(onDisk).sorted() == [], "fixtures this suite expects but the script did not write")
    }
}

/// One fixture file stem and the message it must decode to.
struct GoldenFixture: Sendable, CustomTestStringConvertible {
    let name: String
    let message: RendezvousMessage
    /// False for the presence/default edge cases, which set few fields on purpose.
    var isFullyPopulated = true
    var testDescription: String { name }
}

/// The values of scripts/gen-fixtures.py, rebuilt with the Swift codec's types.
enum GoldenFixtures {
    static let directory: String = {
        var path = #filePath
        path = String(path[..<path.lastIndex(of: "/")!]) // Tests/RustDeskProtocolTests
        return path + "/Fixtures"
    }()

    static func read(_ file: String) throws -> [UInt8] { try readFile(directory + "/" + file) }

    // Shared values; names match the script's.
    static let v6A = hex("20010db8000000000000000000000001e5f4")
    static let v6B = hex("fe800000000000000211223344556677fffe")
    static let socketAddr = hex("f4a8f0ac682470fe8964")
    static let signedPk = seq(0x40, 109)

    /// `count` bytes counting up from `start`, wrapping at 256 (the script's `seq`).
    static func seq(_ start: Int, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: start + $0) }
    }

    static let punchHoleResponseFields = PunchHoleResponse(
        socketAddr: hex("0102030405060708090a"), pk: signedPk, failure: .licenseOveruse,
        relayServer: "hbbr.example.net", union: nil, otherFailure: "licence expired ✗", feedback: -1,
        isUdp: true, upnpPort: 12345, socketAddrV6: v6B
    )

    static let relayResponseFields = RelayResponse(
        socketAddr: socketAddr, uuid: "uuid-1", relayServer: "r.example.com", union: nil,
        refuseReason: "refused — busy", version: "1.4.2", feedback: -7, socketAddrV6: v6A, upnpPort: 21117
    )

    static let messages: [GoldenFixture] = [
        GoldenFixture(name: "register_peer", message: .registerPeer(RegisterPeer(id: "987654321", serial: -1))),
        GoldenFixture(name: "register_peer_response", message: .registerPeerResponse(RegisterPeerResponse(requestPk: true))),
        GoldenFixture(name: "punch_hole_request", message: .punchHoleRequest(PunchHoleRequest(
            id: "123456789", natType: .symmetric, licenceKey: "OeVuKk5nlHiXp+APNn0Y3pC1Iwpwn44JGqrQCsWqmBw=",
            connType: .terminal, token: "tok-ABC", version: "1.4.2", udpPort: 40000, forceRelay: true,
            upnpPort: Int32.min, socketAddrV6: v6A, switchCode: "c3dpdGNoLWNvZGU="
        ))),
        GoldenFixture(name: "punch_hole", message: .punchHole(PunchHole(
            socketAddr: socketAddr, relayServer: "r.example.com:21117", natType: NatType(rawValue: 7),
            udpPort: 65535, forceRelay: true, upnpPort: 1, socketAddrV6: v6B,
            controlPermissions: ControlPermissions(permissions: 0xFEDC_BA98_7654_3210),
            controlledContext: ControlledContext(connAuditRef: "audit-Ω-001")
        ))),
        GoldenFixture(name: "punch_hole_sent", message: .punchHoleSent(PunchHoleSent(
            socketAddr: socketAddr, id: "555666777", relayServer: "relay.example.org", natType: .asymmetric,
            version: "1.3.9", upnpPort: 21116, socketAddrV6: v6A
        ))),
        GoldenFixture(name: "punch_hole_response_nat_type", message: .punchHoleResponse({
            var m = punchHoleResponseFields
            m.union = .natType(.symmetric)
            return m
        }())),
        GoldenFixture(name: "punch_hole_response_is_local", message: .punchHoleResponse({
            var m = punchHoleResponseFields
            m.union = .isLocal(true)
            return m
        }())),
        GoldenFixture(name: "fetch_local_addr", message: .fetchLocalAddr(FetchLocalAddr(
            socketAddr: socketAddr, relayServer: "r2.example.com", socketAddrV6: v6A,
            controlPermissions: ControlPermissions(permissions: UInt64.max),
            controlledContext: ControlledContext(connAuditRef: "ctx-fetch")
        ))),
        GoldenFixture(name: "local_addr", message: .localAddr(LocalAddr(
            socketAddr: socketAddr, localAddr: hex("c0a801055b7c"), relayServer: "LOCAL-IP", id: "123456789",
            version: "1.4.0", socketAddrV6: v6B
        ))),
        GoldenFixture(name: "configure_update", message: .configureUpdate(ConfigUpdate(
            serial: Int32.max, rendezvousServers: ["a.example.com", "b.example.com:21116", "[2001:db8::1]:21116"]
        ))),
        GoldenFixture(name: "register_pk", message: .registerPk(RegisterPk(
            id: "new-id-1", uuid: seq(0xF0, 16), pk: seq(0x11, 32), oldId: "123456789", noRegisterDevice: true
        ))),
        GoldenFixture(name: "register_pk_response", message: .registerPkResponse(RegisterPkResponse(
            result: .notDeployed, keepAlive: 120
        ))),
        GoldenFixture(name: "software_update", message: .softwareUpdate(SoftwareUpdate(
            url: "https://example.com/rustdesk-1.4.2.exe?lang=ü"
        ))),
        GoldenFixture(name: "request_relay", message: .requestRelay(RequestRelay(
            id: "123456789", uuid: "3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f", socketAddr: socketAddr,
            relayServer: "relay.example.org:21117", secure: true, licenceKey: "key==", connType: ConnType(rawValue: 7),
            token: "pro-token", controlPermissions: ControlPermissions(permissions: 0x8000_0000_0000_0001),
            controlledContext: ControlledContext(connAuditRef: "audit-relay"), switchCode: "sw"
        ))),
        GoldenFixture(name: "relay_response_id", message: .relayResponse({
            var m = relayResponseFields
            m.union = .id("123456789")
            return m
        }())),
        GoldenFixture(name: "relay_response_pk", message: .relayResponse({
            var m = relayResponseFields
            m.union = .pk(signedPk)
            return m
        }())),
        GoldenFixture(name: "test_nat_request", message: .testNatRequest(TestNatRequest(serial: 1_000_000))),
        GoldenFixture(name: "test_nat_response", message: .testNatResponse(TestNatResponse(
            port: 54321, cu: ConfigUpdate(serial: 5, rendezvousServers: ["a.example.com", "b.example.com"])
        ))),
        GoldenFixture(name: "peer_discovery", message: .peerDiscovery(PeerDiscovery(
            cmd: "ping", mac: "00:1a:2b:3c:4d:5e", id: "123456789", username: "Zoë Ångström", hostname: "日本-pc",
            platform: "Linux 🐧", misc: #"{"k":1}"#
        ))),
        GoldenFixture(name: "online_request", message: .onlineRequest(OnlineRequest(
            id: "111111111", peers: ["123456789", "987654321", "555666777"]
        ))),
        GoldenFixture(name: "online_response", message: .onlineResponse(OnlineResponse(states: hex("a040ff00")))),
        GoldenFixture(name: "key_exchange", message: .keyExchange(KeyExchange(
            keys: [seq(0, 96), seq(0xAB, 32), seq(0xE0, 48)]
        ))),
        GoldenFixture(name: "hc", message: .hc(HealthCheck(token: "health-token-🔑"))),
        GoldenFixture(name: "http_proxy_request", message: .httpProxyRequest(HttpProxyRequest(
            method: "POST", path: "/api/heartbeat?x=1&y=ä",
            headers: [HeaderEntry(name: "Content-Type", value: "application/json"), HeaderEntry(name: "X-Trace", value: "abc123")],
            body: Array(#"{"id":"123"}"#.utf8) + [0x00, 0xFF]
        ))),
        GoldenFixture(name: "http_proxy_response", message: .httpProxyResponse(HttpProxyResponse(
            status: 502, headers: [HeaderEntry(name: "Server", value: "ringdesk"), HeaderEntry(name: "Retry-After", value: "5")],
            body: hex("fffe00"), error: "upstream timeout"
        ))),

        // Presence and default-value edge cases.
        GoldenFixture(name: "empty", message: .none, isFullyPopulated: false),
        GoldenFixture(name: "register_peer_response_default", message: .registerPeerResponse(RegisterPeerResponse()),
                      isFullyPopulated: false),
        GoldenFixture(name: "punch_hole_response_nat_type_default",
                      message: .punchHoleResponse(PunchHoleResponse(socketAddr: [], union: .natType(.unknownNat))),
                      isFullyPopulated: false),
        GoldenFixture(name: "relay_response_pk_empty",
                      message: .relayResponse(RelayResponse(socketAddr: [], union: .pk([]))), isFullyPopulated: false),
        GoldenFixture(name: "test_nat_response_empty_cu",
                      message: .testNatResponse(TestNatResponse(port: 0, cu: ConfigUpdate())), isFullyPopulated: false),
    ]

    static let unknownFields: [GoldenFixture] = [
        GoldenFixture(name: "unknown_fields_envelope", message: .registerPeer(RegisterPeer(id: "123456789", serial: 3))),
        GoldenFixture(name: "unknown_fields_register_peer", message: .registerPeer(RegisterPeer(id: "123456789", serial: 3))),
        GoldenFixture(name: "unknown_fields_nested", message: .punchHole(PunchHole(
            socketAddr: socketAddr, relayServer: "r.example.com", natType: .asymmetric,
            controlPermissions: ControlPermissions(permissions: 0xFEDC_BA98_7654_3210),
            controlledContext: ControlledContext(connAuditRef: "audit-Ω-001")
        ))),
        GoldenFixture(name: "unknown_fields_repeated", message: .onlineRequest(OnlineRequest(
            id: "111111111", peers: ["123456789", "987654321"]
        ))),
    ]
}
