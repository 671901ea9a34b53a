import Testing
@testable import RustDeskProtocol

/// PROTOCOL.md Appendix A.1: every RendezvousMessage vector, byte for byte, both directions.
@Suite(.timeLimit(.minutes(1)))
struct AppendixA1VectorTests {
    static let mangled = hex("f4 a8 f0 ac 68 24 70 fe 89 64")

    static let vectors: [(String, RendezvousMessage, String)] = [
        ("RegisterPeerResponse{request_pk: true}", .registerPeerResponse(.init(requestPk: true)), "3a 02 10 01"),
        ("RegisterPeerResponse{}", .registerPeerResponse(.init()), "3a 00"),
        ("RegisterPkResponse{OK}", .registerPkResponse(.init(result: .ok)), "82 01 00"),
        ("RegisterPkResponse{UUID_MISMATCH}", .registerPkResponse(.init(result: .uuidMismatch)), "82 01 02 08 02"),
        ("RegisterPkResponse{TOO_FREQUENT}", .registerPkResponse(.init(result: .tooFrequent)), "82 01 02 08 04"),
        ("RegisterPkResponse{NOT_SUPPORT}", .registerPkResponse(.init(result: .notSupport)), "82 01 02 08 06"),
        ("PunchHoleResponse{} (ID_NOT_EXIST)", .punchHoleResponse(.init(failure: .idNotExist)), "5a 00"),
        ("PunchHoleResponse{failure: OFFLINE}", .punchHoleResponse(.init(failure: .offline)), "5a 02 18 02"),
        ("PunchHoleResponse{failure: LICENSE_MISMATCH}", .punchHoleResponse(.init(failure: .licenseMismatch)), "5a 02 18 03"),
        ("PunchHoleResponse{socket_addr, relay_server, nat_type: UNKNOWN_NAT}",
         .punchHoleResponse(.init(socketAddr: [1, 2], relayServer: "r", union: .natType(.unknownNat))),
         "5a 09 0a 02 01 02 22 01 72 28 00"),
        ("PunchHoleResponse{socket_addr, is_local: true}",
         .punchHoleResponse(.init(socketAddr: [1, 2], union: .isLocal(true))), "5a 06 0a 02 01 02 30 01"),
        ("RegisterPeer{id: 123456789, serial: 3}", .registerPeer(.init(id: "123456789", serial: 3)),
         "32 0d 0a 09 31 32 33 34 35 36 37 38 39 10 03"),
        ("RegisterPeer{id: (:test_hbbs:)}", .registerPeer(.init(id: "(:test_hbbs:)")),
         "32 0f 0a 0d 28 3a 74 65 73 74 5f 68 62 62 73 3a 29"),
        ("RegisterPk", .registerPk(.init(id: "123456789", uuid: [1, 2, 3, 4], pk: [0x11, 0x11])),
         "7a 15 0a 09 31 32 33 34 35 36 37 38 39 12 04 01 02 03 04 1a 02 11 11"),
        ("PunchHole", .punchHole(.init(socketAddr: mangled, relayServer: "r.example.com", natType: .asymmetric)),
         "4a 1d 0a 0a f4 a8 f0 ac 68 24 70 fe 89 64 12 0d 72 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d 18 01"),
        ("FetchLocalAddr", .fetchLocalAddr(.init(socketAddr: mangled, relayServer: "r.example.com")),
         "62 1b 0a 0a f4 a8 f0 ac 68 24 70 fe 89 64 12 0d 72 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d"),
        ("RequestRelay", .requestRelay(.init(id: "123456789", uuid: "u", licenceKey: "k")),
         "92 01 11 0a 09 31 32 33 34 35 36 37 38 39 12 01 75 32 01 6b"),
        ("RelayResponse{uuid, relay_server, pk: empty}", .relayResponse(.init(socketAddr: [], uuid: "u", relayServer: "r", union: .pk([]))),
         "9a 01 08 12 01 75 1a 01 72 2a 00"),
        ("TestNatRequest{serial: 3}", .testNatRequest(.init(serial: 3)), "a2 01 02 08 03"),
        ("TestNatResponse{port: 54321}", .testNatResponse(.init(port: 54321)), "aa 01 04 08 b1 a8 03"),
        ("OnlineRequest", .onlineRequest(.init(id: "111111111", peers: ["123456789", "987654321"])),
         "ba 01 21 0a 09 31 31 31 31 31 31 31 31 31 12 09 31 32 33 34 35 36 37 38 39 12 09 39 38 37 36 35 34 33 32 31"),
        ("OnlineResponse{states: a0 40}", .onlineResponse(.init(states: [0xA0, 0x40])), "c2 01 04 0a 02 a0 40"),
        ("ConfigUpdate", .configureUpdate(.init(serial: 5, rendezvousServers: ["a.example.com"])),
         "72 11 08 05 12 0d 61 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d"),
        ("HealthCheck{token: t}", .hc(.init(token: "t")), "d2 01 03 0a 01 74"),
    ]

    @Test(arguments: 0..<vectors.count)
    func vectorEncodesAndDecodesExactly(_ index: Int) throws {
        let (name, message, bytes) = Self.vectors[index]
        #expect(hexString(message.serializedBytes()) == hexString(hex(bytes)), "\(name)")
        #expect(message.serializedSize() == hex(bytes).count, "\(name)")
        #expect(try RendezvousMessage(serializedBytes: hex(bytes)) == message, "\(name)")
    }

    @Test func serializeIntoAPreallocatedBufferMatchesAndRejectsShortBuffers() throws {
        let m = RendezvousMessage.punchHole(.init(socketAddr: Self.mangled, relayServer: "r.example.com", natType: .asymmetric))
        var buf = [UInt8](repeating: 0, count: 64)
        let n = try buf.withUnsafeMutableBytes { p in try m.serialize(into: p) }
        #expect(Array(buf[..<n]) == m.serializedBytes())
        var short = [UInt8](repeating: 0, count: n - 1)
        #expect(throws: ProtocolError.bufferTooSmall) { try short.withUnsafeMutableBytes { p in _ = try m.serialize(into: p) } }
    }

    @Test func emptyInputIsTheEmptyEnvelope() throws {
        #expect(try RendezvousMessage(serializedBytes: []) == .none)
        #expect(RendezvousMessage.none.serializedBytes() == [])
    }

    @Test func idPkOfAppendixA3Is45Bytes() {
        let idpk = IdPk(id: "123456789", pk: [UInt8](repeating: 0x11, count: 32))
        #expect(idpk.serializedBytes() == hex("0a 09 31 32 33 34 35 36 37 38 39 12 20") + [UInt8](repeating: 0x11, count: 32))
    }

    @Test func onlineResponseBitsAreMostSignificantFirst() {
        #expect(OnlineResponse(online: [true, false, false]).states == [0x80])
        #expect(OnlineResponse(online: [true, false, true]).states == [0xA0])
        #expect(OnlineResponse(online: Array(repeating: false, count: 8) + [true]).states == [0x00, 0x80])
        #expect(OnlineResponse(online: []).states == [])
        #expect(RendezvousMessage.onlineResponse(.init(online: [])).serializedBytes() == hex("c2 01 00"))
    }
}
