import Testing
@testable import RustDeskProtocol

/// Hostile and malformed input (PROTOCOL.md §2.4, §14 items 7–9): typed errors, never a trap.
@Suite(.timeLimit(.minutes(1)))
struct ProtobufRobustnessTests {
    @Test func deeplyNestedGroupsAreRejectedWithoutCrashing() {
        let input = [UInt8](repeating: 0x0B, count: 300_000) + [UInt8](repeating: 0x0C, count: 300_000)
        #expect(throws: ProtocolError.nestingTooDeep) { try RendezvousMessage(serializedBytes: input) }
    }

    @Test func groupsWithinTheLimitAreSkipped() throws {
        // Field 1 start group, field 2 varint inside, field 1 end group, then a real member.
        let input = hex("0b 10 05 0c") + hex("a2 01 02 08 03")
        #expect(try RendezvousMessage(serializedBytes: input) == .testNatRequest(.init(serial: 3)))
        let nested = [UInt8](repeating: 0x0B, count: 50) + [UInt8](repeating: 0x0C, count: 50)
        #expect(try RendezvousMessage(serializedBytes: nested) == .none)
    }

    @Test func mismatchedEndGroupIsRejected() {
        #expect(throws: ProtocolError.invalidWireType) { try RendezvousMessage(serializedBytes: hex("0b 14")) }
        #expect(throws: ProtocolError.invalidWireType) { try RendezvousMessage(serializedBytes: hex("0c")) }
    }

    @Test func deeplyNestedEmbeddedMessagesAreRejected() {
        // TestNatResponse.cu is an embedded ConfigUpdate; unknown length-delimited fields are not
        // descended into, so build depth through known nesting: the envelope limit applies per level.
        var m: [UInt8] = []
        for _ in 0..<10 { m = hex("aa 01") + [UInt8(m.count + 2)] + hex("12") + [UInt8(m.count)] + m }
        // Depth 2 at most is legal here; a garbage tail must not crash either way.
        _ = try? RendezvousMessage(serializedBytes: m)
    }

    @Test func truncationAnywhereIsATypedError() {
        let full = hex("7a 15 0a 09 31 32 33 34 35 36 37 38 39 12 04 01 02 03 04 1a 02 11 11")
        for cut in 1..<full.count {
            #expect(throws: ProtocolError.self) { try RendezvousMessage(serializedBytes: Array(full[..<cut])) }
        }
    }

    @Test func invalidUTF8InAStringFieldFailsTheWholeMessage() {
        // RegisterPeer{id: ff fe}
        #expect(throws: ProtocolError.invalidUTF8) { try RendezvousMessage(serializedBytes: hex("32 04 0a 02 ff fe")) }
    }

    @Test func invalidWireTypesAndFieldNumbersAreRejected() {
        #expect(throws: ProtocolError.invalidWireType) { try RendezvousMessage(serializedBytes: hex("0e")) }
        #expect(throws: ProtocolError.invalidWireType) { try RendezvousMessage(serializedBytes: hex("0f")) }
        #expect(throws: ProtocolError.invalidFieldNumber) { try RendezvousMessage(serializedBytes: hex("02 00")) }
    }

    @Test func overlongVarintsAreRejected() {
        let eleven = [UInt8](repeating: 0xFF, count: 10) + [0x01]
        #expect(throws: ProtocolError.malformedVarint) { try RendezvousMessage(serializedBytes: hex("08") + eleven) }
        // 10th byte may only contribute one bit.
        #expect(throws: ProtocolError.malformedVarint) {
            try RendezvousMessage(serializedBytes: hex("08") + [UInt8](repeating: 0xFF, count: 9) + [0x02])
        }
    }

    @Test func lengthBeyondInputIsRejected() {
        #expect(throws: ProtocolError.lengthTooLarge) { try RendezvousMessage(serializedBytes: hex("32 7f 0a")) }
        #expect(throws: ProtocolError.lengthTooLarge) {
            try RendezvousMessage(serializedBytes: hex("32 ff ff ff ff 0f"))
        }
    }

    @Test func unknownFieldsOfEveryWireTypeAreSkipped() throws {
        // RegisterPeer{id:"a"} with unknown varint (f9), fixed64 (f10), bytes (f11), fixed32 (f12), group (f13).
        let inner = hex("0a 01 61") + hex("48 96 01") + hex("51 01 02 03 04 05 06 07 08") + hex("5a 02 aa bb")
            + hex("65 01 02 03 04") + hex("6b 08 01 6c")
        let input = hex("32") + [UInt8(inner.count)] + inner + hex("f8 07 01") // unknown envelope field 127 too
        #expect(try RendezvousMessage(serializedBytes: input) == .registerPeer(.init(id: "a")))
    }

    @Test func negativeInt32UsesTenByteVarintsAndRoundTrips() throws {
        let m = RendezvousMessage.registerPeer(.init(id: "x", serial: -1))
        let bytes = m.serializedBytes()
        #expect(bytes.count == 2 + 3 + 11)
        #expect(try RendezvousMessage(serializedBytes: bytes) == m)
    }

    @Test func unknownEnumNumbersArePreserved() throws {
        let m = RendezvousMessage.punchHoleRequest(.init(id: "1", natType: NatType(rawValue: 7), connType: ConnType(rawValue: 99)))
        #expect(try RendezvousMessage(serializedBytes: m.serializedBytes()) == m)
        #expect(NatType(rawValue: 7).description == "7")
        #expect(NatType.symmetric.description == "SYMMETRIC")
    }

    @Test func randomInputNeverTraps() {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<20_000 {
            let n = Int.random(in: 0..<64, using: &rng)
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? RendezvousMessage(serializedBytes: bytes)
            // Mutations of a valid message reach deeper paths.
            var valid = RendezvousMessage.punchHoleRequest(.init(id: "123456789", natType: .asymmetric, licenceKey: "k")).serializedBytes()
            valid[Int.random(in: 0..<valid.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            _ = try? RendezvousMessage(serializedBytes: valid)
        }
    }

    @Test func lastOneofMemberWins() throws {
        let input = hex("a2 01 02 08 03") + hex("3a 02 10 01")
        #expect(try RendezvousMessage(serializedBytes: input) == .registerPeerResponse(.init(requestPk: true)))
    }
}
