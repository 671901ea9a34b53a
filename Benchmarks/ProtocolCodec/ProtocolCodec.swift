// RustDeskProtocol's hand-written codec on the hbbs hot-path operations. The suite
// SwiftProtobufCodec does the same operations with swift-protobuf; RESULTS.md compares them.
//
// "Encode_X" returns a fresh [UInt8] (what swift-protobuf does); "Encode_X_into_buffer" writes
// into a caller-owned buffer, which is how the server sends and should allocate nothing.
import Benchmark
import CodecInputs
import RustDeskProtocol

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = CodecInputs.configuration

    let registerPeerBytes = CodecInputs.registerPeer
    let expectedPeer = RendezvousMessage.registerPeer(RegisterPeer(id: CodecInputs.peerID, serial: CodecInputs.serial))
    precondition(try! RendezvousMessage(serializedBytes: registerPeerBytes) == expectedPeer)
    Benchmark("Decode_RegisterPeer") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try RendezvousMessage(serializedBytes: registerPeerBytes))
        }
    }

    registerEncode(
        "Encode_RegisterPeerResponse",
        .registerPeerResponse(RegisterPeerResponse(requestPk: true)),
        CodecInputs.registerPeerResponse
    )
    registerEncode(
        "Encode_PunchHole",
        .punchHole(PunchHole(
            socketAddr: CodecInputs.socketAddr, relayServer: CodecInputs.relayServer, natType: .asymmetric
        )),
        CodecInputs.punchHole
    )
    registerEncode(
        "Encode_FetchLocalAddr",
        .fetchLocalAddr(FetchLocalAddr(socketAddr: CodecInputs.socketAddr, relayServer: CodecInputs.relayServer)),
        CodecInputs.fetchLocalAddr
    )
    registerEncode(
        "Encode_PunchHoleResponse",
        .punchHoleResponse(PunchHoleResponse(
            socketAddr: CodecInputs.socketAddr, pk: CodecInputs.signedPk,
            relayServer: CodecInputs.relayServer, union: .natType(.asymmetric)
        )),
        CodecInputs.punchHoleResponse
    )
}

/// Registers "<name>" (to a new [UInt8]) and "<name>_into_buffer" (into a reused buffer),
/// after checking that both produce `expected`.
private func registerEncode(_ name: String, _ message: RendezvousMessage, _ expected: [UInt8]) {
    CodecInputs.expect(message.serializedBytes(), expected, name)
    var check = [UInt8](repeating: 0, count: 512)
    let written = try! check.withUnsafeMutableBytes { try message.serialize(into: $0) }
    CodecInputs.expect(Array(check[..<written]), expected, name + "_into_buffer")

    Benchmark(name) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(message.serializedBytes())
        }
    }
    Benchmark(name + "_into_buffer") { benchmark in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        defer { buffer.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try message.serialize(into: buffer))
        }
        benchmark.stopMeasurement()
    }
}
