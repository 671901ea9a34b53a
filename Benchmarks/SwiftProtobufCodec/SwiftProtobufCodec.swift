// The ProtocolCodec operations, done by swift-protobuf 1.39.0's generated code for the same
// schema (proto/rendezvous.proto), as the reference point for RESULTS.md. Names match the
// ProtocolCodec suite one for one.
import Benchmark
import CodecInputs
#if canImport(FoundationEssentials)
import FoundationEssentials  // Data, which swift-protobuf uses for `bytes`
#else
import Foundation
#endif
import SwiftProtobuf
import SwiftProtobufComparison

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = CodecInputs.configuration

    let registerPeerBytes = CodecInputs.registerPeer
    let decoded = try! Hbb_RendezvousMessage(serializedBytes: registerPeerBytes)
    precondition(decoded.registerPeer.id == CodecInputs.peerID && decoded.registerPeer.serial == 3)
    Benchmark("Decode_RegisterPeer") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try Hbb_RendezvousMessage(serializedBytes: registerPeerBytes))
        }
    }

    var registerPeerResponse = Hbb_RendezvousMessage()
    registerPeerResponse.registerPeerResponse = .with { $0.requestPk = true }
    registerEncode("Encode_RegisterPeerResponse", registerPeerResponse, CodecInputs.registerPeerResponse)

    var punchHole = Hbb_RendezvousMessage()
    punchHole.punchHole = .with {
        $0.socketAddr = Data(CodecInputs.socketAddr)
        $0.relayServer = CodecInputs.relayServer
        $0.natType = .asymmetric
    }
    registerEncode("Encode_PunchHole", punchHole, CodecInputs.punchHole)

    var fetchLocalAddr = Hbb_RendezvousMessage()
    fetchLocalAddr.fetchLocalAddr = .with {
        $0.socketAddr = Data(CodecInputs.socketAddr)
        $0.relayServer = CodecInputs.relayServer
    }
    registerEncode("Encode_FetchLocalAddr", fetchLocalAddr, CodecInputs.fetchLocalAddr)

    var punchHoleResponse = Hbb_RendezvousMessage()
    punchHoleResponse.punchHoleResponse = .with {
        $0.socketAddr = Data(CodecInputs.socketAddr)
        $0.pk = Data(CodecInputs.signedPk)
        $0.relayServer = CodecInputs.relayServer
        $0.natType = .asymmetric
    }
    registerEncode("Encode_PunchHoleResponse", punchHoleResponse, CodecInputs.punchHoleResponse)
}

/// Registers a benchmark that serialises `message` to `[UInt8]`, after checking the bytes.
private func registerEncode(_ name: String, _ message: Hbb_RendezvousMessage, _ expected: [UInt8]) {
    CodecInputs.expect(try! message.serializedBytes(), expected, name)
    Benchmark(name) { benchmark in
        for _ in benchmark.scaledIterations {
            let bytes: [UInt8] = try message.serializedBytes()
            blackHole(bytes)
        }
    }
}
