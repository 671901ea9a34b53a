import Testing
@testable import RustDeskProtocol

/// `CryptoBox` and `SecretBox`, the primitives of the §4.5 KeyExchange (sizes from Appendix A.4).
@Suite(.timeLimit(.minutes(1)))
struct KeyBoxTests {
    static let zeroNonce = [UInt8](repeating: 0, count: 24)

    @Test func aSealedThirtyTwoByteKeyIsFortyEightBytesAndOpensOnTheOtherSide() throws {
        let server = CryptoBoxKeyPair.generate(), client = CryptoBoxKeyPair.generate()
        #expect(server.publicKey.count == 32 && server.secretKey.count == 32)
        let key = SecretBox.generateKey()
        let sealed = try CryptoBox.seal(key, nonce: Self.zeroNonce, recipientPublicKey: server.publicKey, senderSecretKey: client.secretKey)
        #expect(sealed.count == 48)
        let opened = try CryptoBox.open(sealed, nonce: Self.zeroNonce, senderPublicKey: client.publicKey, recipientSecretKey: server.secretKey)
        #expect(opened == key)
    }

    @Test func aTamperedOrMisaddressedBoxDoesNotOpen() throws {
        let server = CryptoBoxKeyPair.generate(), client = CryptoBoxKeyPair.generate(), stranger = CryptoBoxKeyPair.generate()
        var sealed = try CryptoBox.seal([1, 2, 3], nonce: Self.zeroNonce, recipientPublicKey: server.publicKey, senderSecretKey: client.secretKey)
        #expect(throws: ProtocolError.decryptionFailed) {
            try CryptoBox.open(sealed, nonce: Self.zeroNonce, senderPublicKey: stranger.publicKey, recipientSecretKey: server.secretKey)
        }
        sealed[sealed.count - 1] ^= 0x80
        #expect(throws: ProtocolError.decryptionFailed) {
            try CryptoBox.open(sealed, nonce: Self.zeroNonce, senderPublicKey: client.publicKey, recipientSecretKey: server.secretKey)
        }
        #expect(throws: ProtocolError.decryptionFailed) {
            try CryptoBox.open([UInt8](repeating: 0, count: 15), nonce: Self.zeroNonce, senderPublicKey: client.publicKey, recipientSecretKey: server.secretKey)
        }
    }

    @Test func boxKeysOfTheWrongLengthAreMalformed() {
        let pair = CryptoBoxKeyPair.generate()
        #expect(throws: ProtocolError.malformedKey) {
            try CryptoBox.seal([1], nonce: Self.zeroNonce, recipientPublicKey: Array(pair.publicKey.prefix(31)), senderSecretKey: pair.secretKey)
        }
        #expect(throws: ProtocolError.malformedKey) {
            try CryptoBox.open([UInt8](repeating: 0, count: 48), nonce: Self.zeroNonce, senderPublicKey: pair.publicKey, recipientSecretKey: [])
        }
    }

    @Test func secretBoxRoundTripsWithACounterNonce() throws {
        // A.4: the first encrypted frame uses nonce 01 00 00 00 00 00 00 00 + 16 zero bytes.
        var nonce = [UInt8](repeating: 0, count: 24)
        nonce[0] = 1
        let key = SecretBox.generateKey()
        #expect(key.count == 32)
        let plain = Array("RendezvousMessage bytes".utf8)
        let sealed = try SecretBox.seal(plain, nonce: nonce, key: key)
        #expect(sealed.count == 16 + plain.count)
        #expect(try SecretBox.open(sealed, nonce: nonce, key: key) == plain)
        #expect(throws: ProtocolError.decryptionFailed) { try SecretBox.open(sealed, nonce: Self.zeroNonce, key: key) }
        #expect(throws: ProtocolError.decryptionFailed) { try SecretBox.open(sealed, nonce: nonce, key: SecretBox.generateKey()) }
        #expect(throws: ProtocolError.decryptionFailed) { try SecretBox.open([1, 2], nonce: nonce, key: key) }
        #expect(throws: ProtocolError.malformedKey) { try SecretBox.seal(plain, nonce: nonce, key: [1]) }
    }

    @Test func anEmptyPlaintextSealsToABareMac() throws {
        let key = SecretBox.generateKey()
        let sealed = try SecretBox.seal([], nonce: Self.zeroNonce, key: key)
        #expect(sealed.count == 16)
        #expect(try SecretBox.open(sealed, nonce: Self.zeroNonce, key: key) == [])
    }
}
