import CSodium

/// Thin wrappers over NaCl's `crypto_box` (Curve25519 + XSalsa20-Poly1305) and `crypto_secretbox`
/// (XSalsa20-Poly1305), the primitives of the optional KeyExchange extension (PROTOCOL.md §4.5).
/// swift-crypto has neither; its ChaChaPoly is a different construction (§16).
///
/// Keys arrive from the network there, so a wrong key length throws instead of trapping; nonces
/// are always made locally, so a wrong nonce length is a programming error and traps.

/// A Curve25519 key pair for `CryptoBox` (`crypto_box_keypair`): 32-byte public and secret keys.
public struct CryptoBoxKeyPair: Sendable, CustomStringConvertible {
    public let publicKey: [UInt8]
    public let secretKey: [UInt8]

    /// A fresh random key pair, e.g. the ephemeral `Spk`/`Ssk` of one §4.5 greeting.
    public static func generate() -> CryptoBoxKeyPair {
        Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: CryptoBox.publicKeyByteCount)
        var secretKey = [UInt8](repeating: 0, count: CryptoBox.secretKeyByteCount)
        let status = crypto_box_keypair(&publicKey, &secretKey)
        precondition(status == 0, "crypto_box_keypair cannot fail")
        return CryptoBoxKeyPair(publicKey: publicKey, secretKey: secretKey)
    }

    /// Only the public key, so the secret never reaches a log.
    public var description: String { "CryptoBoxKeyPair(public: \(Base64.encode(publicKey)))" }
}

/// Public-key authenticated encryption, "easy" layout: output = 16-byte MAC ‖ ciphertext.
public enum CryptoBox {
    public static let publicKeyByteCount = 32
    public static let secretKeyByteCount = 32
    public static let nonceByteCount = 24
    public static let macByteCount = 16

    /// Encrypts `message` for `recipientPublicKey` from `senderSecretKey` (`crypto_box_easy`).
    /// The result is `macByteCount` bytes longer than `message` (a 32-byte key seals to 48 bytes).
    /// - Precondition: `nonce` has 24 bytes.
    /// - Throws: `ProtocolError.malformedKey` if a key is not 32 bytes.
    public static func seal(_ message: some Collection<UInt8>, nonce: [UInt8],
                            recipientPublicKey: [UInt8], senderSecretKey: [UInt8]) throws(ProtocolError) -> [UInt8] {
        precondition(nonce.count == nonceByteCount, "crypto_box nonce must be 24 bytes")
        guard recipientPublicKey.count == publicKeyByteCount, senderSecretKey.count == secretKeyByteCount else {
            throw .malformedKey
        }
        Sodium.ensureInitialized()
        let plain = Array(message)
        var sealed = [UInt8](repeating: 0, count: plain.count + macByteCount)
        // Fails only for a public key of small order, which an attacker can send.
        guard crypto_box_easy(&sealed, plain, UInt64(plain.count), nonce, recipientPublicKey, senderSecretKey) == 0 else {
            throw .malformedKey
        }
        return sealed
    }

    /// Authenticates and decrypts `sealed` (MAC ‖ ciphertext) from `senderPublicKey` to
    /// `recipientSecretKey` (`crypto_box_open_easy`).
    /// - Precondition: `nonce` has 24 bytes.
    /// - Throws: `ProtocolError.malformedKey` if a key is not 32 bytes;
    ///   `ProtocolError.decryptionFailed` if `sealed` is shorter than a MAC or does not authenticate.
    public static func open(_ sealed: some Collection<UInt8>, nonce: [UInt8],
                            senderPublicKey: [UInt8], recipientSecretKey: [UInt8]) throws(ProtocolError) -> [UInt8] {
        precondition(nonce.count == nonceByteCount, "crypto_box nonce must be 24 bytes")
        guard senderPublicKey.count == publicKeyByteCount, recipientSecretKey.count == secretKeyByteCount else {
            throw .malformedKey
        }
        let input = Array(sealed)
        guard input.count >= macByteCount else { throw .decryptionFailed }
        Sodium.ensureInitialized()
        var plain = [UInt8](repeating: 0, count: input.count - macByteCount)
        guard crypto_box_open_easy(&plain, input, UInt64(input.count), nonce, senderPublicKey, recipientSecretKey) == 0 else {
            throw .decryptionFailed
        }
        return plain
    }
}

/// Secret-key authenticated encryption, "easy" layout: output = 16-byte MAC ‖ ciphertext.
/// This is the per-frame cipher of an encrypted §4.5 connection.
public enum SecretBox {
    public static let keyByteCount = 32
    public static let nonceByteCount = 24
    public static let macByteCount = 16

    /// A fresh random 32-byte key (`crypto_secretbox_keygen`).
    public static func generateKey() -> [UInt8] {
        Sodium.ensureInitialized()
        var key = [UInt8](repeating: 0, count: keyByteCount)
        crypto_secretbox_keygen(&key)
        return key
    }

    /// Encrypts `message` under `key` (`crypto_secretbox_easy`); the result is 16 bytes longer.
    /// - Precondition: `nonce` has 24 bytes.
    /// - Throws: `ProtocolError.malformedKey` unless `key` has 32 bytes.
    public static func seal(_ message: some Collection<UInt8>, nonce: [UInt8], key: [UInt8]) throws(ProtocolError) -> [UInt8] {
        precondition(nonce.count == nonceByteCount, "crypto_secretbox nonce must be 24 bytes")
        guard key.count == keyByteCount else { throw .malformedKey }
        Sodium.ensureInitialized()
        let plain = Array(message)
        var sealed = [UInt8](repeating: 0, count: plain.count + macByteCount)
        let status = crypto_secretbox_easy(&sealed, plain, UInt64(plain.count), nonce, key)
        precondition(status == 0, "crypto_secretbox_easy cannot fail for valid sizes")
        return sealed
    }

    /// Authenticates and decrypts `sealed` under `key` (`crypto_secretbox_open_easy`).
    /// - Precondition: `nonce` has 24 bytes.
    /// - Throws: `ProtocolError.malformedKey` unless `key` has 32 bytes;
    ///   `ProtocolError.decryptionFailed` if `sealed` is shorter than a MAC or does not authenticate.
    public static func open(_ sealed: some Collection<UInt8>, nonce: [UInt8], key: [UInt8]) throws(ProtocolError) -> [UInt8] {
        precondition(nonce.count == nonceByteCount, "crypto_secretbox nonce must be 24 bytes")
        guard key.count == keyByteCount else { throw .malformedKey }
        let input = Array(sealed)
        guard input.count >= macByteCount else { throw .decryptionFailed }
        Sodium.ensureInitialized()
        var plain = [UInt8](repeating: 0, count: input.count - macByteCount)
        guard crypto_secretbox_open_easy(&plain, input, UInt64(input.count), nonce, key) == 0 else {
            throw .decryptionFailed
        }
        return plain
    }
}
