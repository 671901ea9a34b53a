import Testing
@testable import RustDeskProtocol

/// PROTOCOL.md §4.5 and Appendix A.4.
@Suite(.timeLimit(.minutes(1)))
struct SecureChannelTests {
    static let server = try! Ed25519KeyPair(seed: [UInt8](repeating: 0, count: 32))

    @Test func handshakeSizesAndRoundTrip() throws {
        let hs = SecureHandshake()
        let greeting = hs.greeting(signedBy: Self.server)
        #expect(greeting.keys.count == 1 && greeting.keys[0].count == 96)
        let (reply, client) = try SecureHandshake.clientReply(to: greeting, serverKey: Self.server.publicKey)
        #expect(reply.keys[0].count == 32 && reply.keys[1].count == 48)
        var serverChannel = try #require(try hs.accept(.keyExchange(reply)))
        var clientChannel = client
        let c1 = clientChannel.seal([1, 2, 3])
        #expect(c1.count == 16 + 3)
        #expect(try serverChannel.open(c1) == [1, 2, 3])
        let s1 = serverChannel.seal([9])
        #expect(try clientChannel.open(s1) == [9])
        // Empty keep-alives pass in clear and do not advance the counter.
        #expect(try serverChannel.open([]) == [])
        #expect(try serverChannel.open(clientChannel.seal([4, 5])) == [4, 5])
        #expect(serverChannel.received == 2)
    }

    @Test func firstEncryptedFrameUsesNonceOne() throws {
        var a = SecureChannel(key: [UInt8](repeating: 7, count: 32))
        let sealed = a.seal([0x42])
        #expect(try SecretBox.open(sealed, nonce: [1] + [UInt8](repeating: 0, count: 23), key: [UInt8](repeating: 7, count: 32)) == [0x42])
    }

    @Test func plaintextFirstMessagesStayPlain() throws {
        #expect(try SecureHandshake().accept(.testNatRequest(.init(serial: 1))) == nil)
    }

    @Test func badRepliesAreRejected() {
        let hs = SecureHandshake()
        #expect(throws: ProtocolError.self) { _ = try hs.accept(.keyExchange(.init(keys: [[1]]))) }
        #expect(throws: ProtocolError.self) { _ = try hs.accept(.keyExchange(.init(keys: [[UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 48)]))) }
        var c = SecureChannel(key: [UInt8](repeating: 7, count: 32))
        #expect(throws: ProtocolError.self) { _ = try c.open([1, 2, 3, 4]) }
    }
}
