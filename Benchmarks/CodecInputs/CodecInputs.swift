// The operations both codec suites measure, as field values plus the exact bytes each must
// produce or consume, and the one configuration both run under. Each suite checks its codec
// against these before measuring, so a figure can never come from a codec that does different
// (or wrong) work.
import Benchmark
import BenchmarkSupport

/// Field values and canonical `RendezvousMessage` bytes for the compared operations.
public enum CodecInputs {
    /// AddrMangle of a 10-byte IPv4 endpoint (PROTOCOL.md Appendix A.1).
    public static let socketAddr: [UInt8] = [0xF4, 0xA8, 0xF0, 0xAC, 0x68, 0x24, 0x70, 0xFE, 0x89, 0x64]
    public static let relayServer = "r.example.com"
    /// Shaped like a signed IdPk (64-byte signature ‖ 45-byte IdPk).
    public static let signedPk: [UInt8] = (0..<109).map { UInt8($0) }
    public static let peerID = "123456789"
    public static let serial: Int32 = 3

    /// RendezvousMessage{register_peer: {id: "123456789", serial: 3}}: the decode input.
    public static let registerPeer: [UInt8] =
        [0x32, 0x0D, 0x0A, 0x09] + Array(peerID.utf8) + [0x10, 0x03]

    /// RendezvousMessage{register_peer_response: {request_pk: true}}.
    public static let registerPeerResponse: [UInt8] = [0x3A, 0x02, 0x10, 0x01]

    /// RendezvousMessage{punch_hole: {socket_addr, relay_server, nat_type: ASYMMETRIC}}.
    public static let punchHole: [UInt8] =
        [0x4A, 0x1D, 0x0A, 0x0A] + socketAddr + [0x12, 0x0D] + Array(relayServer.utf8) + [0x18, 0x01]

    /// RendezvousMessage{fetch_local_addr: {socket_addr, relay_server}}.
    public static let fetchLocalAddr: [UInt8] =
        [0x62, 0x1B, 0x0A, 0x0A] + socketAddr + [0x12, 0x0D] + Array(relayServer.utf8)

    /// RendezvousMessage{punch_hole_response: {socket_addr, pk (109 bytes), relay_server,
    /// nat_type: ASYMMETRIC}}: 143 bytes.
    public static let punchHoleResponse: [UInt8] =
        [0x5A, 0x8C, 0x01, 0x0A, 0x0A] + socketAddr + [0x12, 0x6D] + signedPk
        + [0x22, 0x0D] + Array(relayServer.utf8) + [0x28, 0x01]

    /// Both suites' configuration: every suite's (`BenchmarkSupport`), 1000 operations per
    /// iteration.
    public static var configuration: Benchmark.Configuration { BenchmarkSupport.configuration() }

    /// Stops the benchmark run when a codec's output differs from the expected bytes.
    public static func expect(_ actual: [UInt8], _ expected: [UInt8], _ operation: String) {
        precondition(actual == expected, "\(operation): codec produced \(actual), expected \(expected)")
    }
}
