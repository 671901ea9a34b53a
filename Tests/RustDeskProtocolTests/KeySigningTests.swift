import CSodium
import Testing
@testable import RustDeskProtocol

/// PROTOCOL.md Appendix A.3 and the signing / verification contract of `Ed25519KeyPair`.
@Suite(.timeLimit(.minutes(1)))
struct KeySigningTests {
    static let zeroSeed = [UInt8](repeating: 0, count: 32)
    static let vectorPublicKey = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="
    static let vectorSecretKeyFile = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA7aie8zrakLWKjqNAqbw1zZTIVdx3iQ6Y6wEihi1naKQ=="
    /// IdPk{id: "123456789", pk: 32 × 0x11}, 45 bytes.
    static let idPk: [UInt8] = [0x0a, 0x09] + Array("123456789".utf8) + [0x12, 0x20] + [UInt8](repeating: 0x11, count: 32)
    static let vectorSignature = Self.bytes(hex: "3d9df4bdc9637bbff65cba73d20801ae1314a60557d8f32bab4cba3a42caa0c7fdf8d08c25d5d39fd56dada7a912f6de42dfdefc8f411d062ea7fa8ed93b6505")

    @Test func zeroSeedGivesTheAppendixKeyFiles() throws {
        let pair = try Ed25519KeyPair(seed: Self.zeroSeed)
        #expect(pair.publicKeyBase64 == Self.vectorPublicKey)
        #expect(pair.secretKeyBase64 == Self.vectorSecretKeyFile)
        #expect(pair.secretKey.prefix(32) == Self.zeroSeed[...])
        #expect(pair.publicKey.bytes == Array(pair.secretKey.suffix(32)))
    }

    @Test func signingTheAppendixIdPkGivesTheAppendixSignatureByteForByte() throws {
        #expect(Self.idPk.count == 45)
        let pair = try Ed25519KeyPair(base64SecretKey: Self.vectorSecretKeyFile)
        let signed = pair.sign(message: Self.idPk)
        #expect(signed.count == 109)
        #expect(Array(signed.prefix(64)) == Self.vectorSignature)
        #expect(Array(signed.suffix(45)) == Self.idPk)
    }

    @Test func theConfiguredPublicKeyOpensTheSignedIdPk() throws {
        let pair = try Ed25519KeyPair(seed: Self.zeroSeed)
        let verifier = try Ed25519PublicKey(base64: Self.vectorPublicKey)
        #expect(try verifier.open(signedMessage: pair.sign(message: Self.idPk)) == Self.idPk)
        #expect(verifier.isValidSignature(Self.vectorSignature, for: Self.idPk))
    }

    @Test func aTamperedSignedMessageDoesNotOpen() throws {
        let pair = try Ed25519KeyPair(seed: Self.zeroSeed)
        var signed = pair.sign(message: Self.idPk)
        signed[70] ^= 1
        #expect(throws: ProtocolError.invalidSignature) { try pair.publicKey.open(signedMessage: signed) }
        #expect(!pair.publicKey.isValidSignature(Self.vectorSignature, for: Self.idPk.dropLast()))
        #expect(!pair.publicKey.isValidSignature(Self.vectorSignature.dropLast(), for: Self.idPk))
    }

    @Test func anotherKeyDoesNotOpenTheSignedMessage() throws {
        let signed = try Ed25519KeyPair(seed: Self.zeroSeed).sign(message: Self.idPk)
        #expect(throws: ProtocolError.invalidSignature) {
            try Ed25519KeyPair.generate().publicKey.open(signedMessage: signed)
        }
    }

    @Test func aSignedMessageShorterThanASignatureIsRejected() throws {
        let verifier = try Ed25519PublicKey(base64: Self.vectorPublicKey)
        #expect(throws: ProtocolError.invalidSignature) { try verifier.open(signedMessage: [UInt8](repeating: 0, count: 63)) }
    }

    @Test func anEmptyMessageSignsToABareSignature() throws {
        let pair = Ed25519KeyPair.generate()
        let signed = pair.sign(message: [])
        #expect(signed.count == 64)
        #expect(try pair.publicKey.open(signedMessage: signed) == [])
    }

    @Test func theKeyExchangeGreetingIsNinetySixBytes() throws {
        // §4.5 / A.4: crypto_sign(Spk) = 64-byte signature ‖ 32-byte Curve25519 key.
        let greeting = Ed25519KeyPair.generate().sign(message: CryptoBoxKeyPair.generate().publicKey)
        #expect(greeting.count == 96)
    }

    @Test(arguments: [0, 31, 33, 63, 65, 128])
    func secretKeysOfTheWrongLengthAreMalformed(length: Int) {
        #expect(throws: ProtocolError.malformedKey) { try Ed25519KeyPair(secretKey: [UInt8](repeating: 7, count: length)) }
    }

    @Test(arguments: ["", "not base64!", "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=", "AAAA"])
    func secretKeyTextThatIsNotSixtyFourBytesIsMalformed(text: String) {
        #expect(throws: ProtocolError.malformedKey) { try Ed25519KeyPair(base64SecretKey: text) }
    }

    @Test(arguments: [0, 31, 33, 64])
    func publicKeysOfTheWrongLengthAreMalformed(length: Int) {
        #expect(throws: ProtocolError.malformedKey) { try Ed25519PublicKey(bytes: [UInt8](repeating: 7, count: length)) }
    }

    @Test func seedsOfTheWrongLengthAreMalformed() {
        #expect(throws: ProtocolError.malformedKey) { try Ed25519KeyPair(seed: [UInt8](repeating: 0, count: 31)) }
    }

    @Test func theStoredPublicHalfIsUsedEvenWhenItDisagreesWithTheSeed() throws {
        // §4.1 note: upstream signs with the public half stored in the file.
        let stored = Ed25519KeyPair.generate().publicKey.bytes
        let pair = try Ed25519KeyPair(secretKey: Self.zeroSeed + stored)
        #expect(pair.publicKey.bytes == stored)
        #expect(pair.publicKeyBase64 != Self.vectorPublicKey)
    }

    @Test func generatedPairsAreDistinctAndSelfConsistent() throws {
        let a = Ed25519KeyPair.generate(), b = Ed25519KeyPair.generate()
        #expect(a != b)
        #expect(try Ed25519KeyPair(base64SecretKey: a.secretKeyBase64) == a)
        #expect(try a.publicKey.open(signedMessage: a.sign(message: [1, 2, 3])) == [1, 2, 3])
    }

    @Test func descriptionsNeverContainTheSecretKey() throws {
        let pair = try Ed25519KeyPair(seed: Self.zeroSeed)
        for text in [pair.description, String(reflecting: pair), "\(pair)"] {
            #expect(!text.contains(Self.vectorSecretKeyFile))
            #expect(text.contains(Self.vectorPublicKey))
        }
    }

    @Test func slashAvoidanceRetriesAndThenGivesUp() throws {
        let withSlash = try (0...UInt8.max).lazy
            .map { try Ed25519KeyPair(seed: [UInt8](repeating: $0, count: 32)) }
            .first { $0.publicKeyBase64.contains("/") }
        let slashy = try #require(withSlash)
        let clean = try Ed25519KeyPair(seed: Self.zeroSeed)

        var calls = 0
        let picked = Ed25519KeyPair.generateAvoidingSlash {
            calls += 1
            return calls < 5 ? slashy : clean
        }
        #expect(picked == clean)
        #expect(calls == 5)

        calls = 0
        let gaveUp = Ed25519KeyPair.generateAvoidingSlash { calls += 1; return slashy }
        #expect(gaveUp == slashy)
        #expect(calls == 1 + KeyFiles.extraGenerationAttempts)
    }

    @Test func sizeConstantsMatchLibsodium() {
        #expect(Sodium.signSecretKeyByteCount == Int(crypto_sign_secretkeybytes()))
        #expect(Sodium.signPublicKeyByteCount == Int(crypto_sign_publickeybytes()))
        #expect(Sodium.signSeedByteCount == Int(crypto_sign_seedbytes()))
        #expect(Sodium.signatureByteCount == Int(crypto_sign_bytes()))
        #expect(CryptoBox.publicKeyByteCount == Int(crypto_box_publickeybytes()))
        #expect(CryptoBox.secretKeyByteCount == Int(crypto_box_secretkeybytes()))
        #expect(CryptoBox.nonceByteCount == Int(crypto_box_noncebytes()))
        #expect(CryptoBox.macByteCount == Int(crypto_box_macbytes()))
        #expect(SecretBox.keyByteCount == Int(crypto_secretbox_keybytes()))
        #expect(SecretBox.nonceByteCount == Int(crypto_secretbox_noncebytes()))
        #expect(SecretBox.macByteCount == Int(crypto_secretbox_macbytes()))
    }

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}

