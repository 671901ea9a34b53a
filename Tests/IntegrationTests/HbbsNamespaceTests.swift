import Glibc
import RustDeskProtocol
import Testing

/// hbbs seen from non-loopback clients: flows whose outcome depends on the client address not
/// being loopback (§5.2.1 IP change, §5.4 console vs protocol on P-1), in namespaces the test makes.
@Suite(.timeLimit(.minutes(2)))
struct HbbsNamespaceTests {
    static let pk = [UInt8](repeating: 0x22, count: 32)

    func start(_ network: TestNetwork, _ arguments: [String]) throws -> ServerProcess {
        let server = try ServerProcess("hbbs", arguments: arguments, network: network)
        let probe = try UDPClient(ip: network.clientAddresses[4], namespace: network)
        probe.server = network.serverAddress
        let deadline = now() + 10
        while now() < deadline {
            if probe.request(.registerPeer(.init(id: "probe")), to: server.port, attempts: 1) != nil { return server }
            if server.exitStatus(within: 0.01) != nil { break }
        }
        let log = server.log
        server.stop()
        throw TestError.failed("hbbs did not answer in its namespace; log:\n\(log)")
    }

    @Test func ipChangeAsksForTheKeyAgain() throws {
        let (made, reason) = TestNetwork.make()
        guard let network = made else { print("skipped: \(reason)"); return }
        let server = try start(network, [])
        defer { server.stop() }
        let b = try UDPClient(ip: network.clientAddresses[0], namespace: network)
        b.server = network.serverAddress
        #expect(b.request(.registerPk(.init(id: "123456789", uuid: [1], pk: Self.pk)), to: server.port)?.serializedBytes() == hex("82 01 00"))
        #expect(b.request(.registerPeer(.init(id: "123456789")), to: server.port)?.serializedBytes() == hex("3a 00"))
        // 25: the same peer from another IP → request_pk, stored address unchanged.
        let moved = try UDPClient(ip: network.clientAddresses[1], namespace: network)
        moved.server = network.serverAddress
        #expect(moved.request(.registerPeer(.init(id: "123456789")), to: server.port)?.serializedBytes() == hex("3a 02 10 01"))
        // 19 and 20: new IP with a new key → mismatch; new IP, same key → OK.
        #expect(moved.request(.registerPk(.init(id: "123456789", uuid: [1], pk: [UInt8](repeating: 9, count: 32))), to: server.port)?.serializedBytes() == hex("82 01 02 08 02"))
        #expect(moved.request(.registerPk(.init(id: "123456789", uuid: [1], pk: Self.pk)), to: server.port)?.serializedBytes() == hex("82 01 00"))
        #expect(moved.request(.registerPeer(.init(id: "123456789")), to: server.port)?.serializedBytes() == hex("3a 00"))
    }

    @Test func natPortServesProtocolToRemoteClientsAndTheConsoleOnlyToLoopback() throws {
        let (made, reason) = TestNetwork.make()
        guard let network = made else { print("skipped: \(reason)"); return }
        let server = try start(network, ["--admin-console", "port"])
        defer { server.stop() }
        // 58: `h` from a non-loopback client is a (partial) frame header, not a command: no reply.
        let remote = try TCPClient(port: server.port - 1, ip: network.clientAddresses[0], server: network.serverAddress, namespace: network)
        remote.write(Array("h".utf8))
        #expect(remote.read(within: 1.5).bytes.isEmpty)
        // 52: the NAT test reports the client's real source port.
        let nat = try TCPClient(port: server.port - 1, ip: network.clientAddresses[0], server: network.serverAddress, namespace: network)
        nat.send(.testNatRequest(.init(serial: 0)))
        #expect(nat.receiveMessage() == .testNatResponse(.init(port: Int32(nat.localPort))))
    }
}
