import CSodium

/// An Ed25519 signing key in libsodium's layout: a 64-byte secret key = 32-byte seed ‖ 32-byte
/// public key, the exact bytes of `id_ed25519` (PROTOCOL.md §4.1).
///
/// The public key is the stored second half, never re-derived from the seed: upstream signs with
/// the stored half, and a file whose halves disagree must behave the same here (§4.1 note).
/// Signing is deterministic RFC 8032 (`crypto_sign`), so signatures are byte-identical to upstream's.
///
/// `description` shows only the public key so the secret never ends up in a log by accident.
public struct Ed25519KeyPair: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The 64 secret-key bytes (seed ‖ public key).
    public let secretKey: [UInt8]

    /// Adopts a 64-byte libsodium secret key.
    /// - Throws: `ProtocolError.malformedKey` unless `secretKey` has exactly 64 bytes.
    public init(secretKey: some Collection<UInt8>) throws(ProtocolError) {
        guard secretKey.count == Sodium.signSecretKeyByteCount else { throw .malformedKey }
        self.secretKey = Array(secretKey)
    }

    /// Decodes the base64 text of a 64-byte secret key (the content of `id_ed25519`, or `-k`).
    /// - Throws: `ProtocolError.malformedKey` if the text is not base64 or not 64 bytes.
    public init(base64SecretKey text: some StringProtocol) throws(ProtocolError) {
        guard let bytes = Base64.decode(text) else { throw .malformedKey }
        try self.init(secretKey: bytes)
    }

    /// The deterministic key pair of a 32-byte seed (libsodium `crypto_sign_seed_keypair`).
    /// - Throws: `ProtocolError.malformedKey` unless `seed` has exactly 32 bytes.
    public init(seed: some Collection<UInt8>) throws(ProtocolError) {
        guard seed.count == Sodium.signSeedByteCount else { throw .malformedKey }
        Sodium.ensureInitialized()
        let seedBytes = Array(seed)
        var publicKey = [UInt8](repeating: 0, count: Sodium.signPublicKeyByteCount)
        var secretKey = [UInt8](repeating: 0, count: Sodium.signSecretKeyByteCount)
        let status = crypto_sign_seed_keypair(&publicKey, &secretKey, seedBytes)
        precondition(status == 0, "crypto_sign_seed_keypair cannot fail")
        self.secretKey = secretKey
    }

    /// A fresh random key pair (libsodium `crypto_sign_keypair`).
    public static func generate() -> Ed25519KeyPair {
        Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: Sodium.signPublicKeyByteCount)
        var secretKey = [UInt8](repeating: 0, count: Sodium.signSecretKeyByteCount)
        let status = crypto_sign_keypair(&publicKey, &secretKey)
        precondition(status == 0, "crypto_sign_keypair cannot fail")
        return Ed25519KeyPair(trustedSecretKey: secretKey)
    }

    private init(trustedSecretKey: [UInt8]) { secretKey = trustedSecretKey }

    /// The public half: the last 32 bytes of the secret key.
    public var publicKey: Ed25519PublicKey { Ed25519PublicKey(trustedBytes: Array(secretKey[Sodium.signSeedByteCount...])) }

    /// Base64 of the 64-byte secret key: 88 characters, the exact content of `id_ed25519`.
    public var secretKeyBase64: String { Base64.encode(secretKey) }

    /// Base64 of the public key: 44 characters, the content of `id_ed25519.pub` and the licence key.
    public var publicKeyBase64: String { publicKey.base64 }

    /// libsodium's "combined" signed message: the 64-byte signature followed by `message`
    /// (`crypto_sign`). This is what hbbs puts in `pk` fields (§4.4) and what the §4.5 greeting
    /// carries.
    public func sign(message: some Collection<UInt8>) -> [UInt8] {
        Sodium.ensureInitialized()
        let messageBytes = Array(message)
        var signed = [UInt8](repeating: 0, count: Sodium.signatureByteCount + messageBytes.count)
        var signedLength: UInt64 = 0
        let status = crypto_sign(&signed, &signedLength, messageBytes, UInt64(messageBytes.count), secretKey)
        precondition(status == 0 && Int(signedLength) == signed.count, "crypto_sign cannot fail")
        return signed
    }

    /// Constant-time comparison, since one side may be attacker-influenced key material.
    public static func == (a: Ed25519KeyPair, b: Ed25519KeyPair) -> Bool {
        a.secretKey.count == b.secretKey.count && sodium_memcmp(a.secretKey, b.secretKey, a.secretKey.count) == 0
    }

    public var description: String { "Ed25519KeyPair(public: \(publicKeyBase64))" }
    public var debugDescription: String { description }
}

/// A 32-byte Ed25519 public key: what clients configure as the server "key" and what verifies
/// hbbs's signatures.
public struct Ed25519PublicKey: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// - Throws: `ProtocolError.malformedKey` unless `bytes` has exactly 32 bytes.
    public init(bytes: some Collection<UInt8>) throws(ProtocolError) {
        guard bytes.count == Sodium.signPublicKeyByteCount else { throw .malformedKey }
        self.bytes = Array(bytes)
    }

    /// Decodes the 44-character base64 text of a public key.
    /// - Throws: `ProtocolError.malformedKey` if the text is not base64 or not 32 bytes.
    public init(base64 text: some StringProtocol) throws(ProtocolError) {
        guard let decoded = Base64.decode(text) else { throw .malformedKey }
        try self.init(bytes: decoded)
    }

    fileprivate init(trustedBytes: [UInt8]) { bytes = trustedBytes }

    public var base64: String { Base64.encode(bytes) }

    /// Checks a combined signed message (signature ‖ message) and returns the message
    /// (`crypto_sign_open`).
    /// - Throws: `ProtocolError.invalidSignature` if it is shorter than a signature or does not
    ///   verify under this key.
    public func open(signedMessage: some Collection<UInt8>) throws(ProtocolError) -> [UInt8] {
        Sodium.ensureInitialized()
        let signed = Array(signedMessage)
        guard signed.count >= Sodium.signatureByteCount else { throw .invalidSignature }
        var message = [UInt8](repeating: 0, count: signed.count - Sodium.signatureByteCount)
        var messageLength: UInt64 = 0
        let status = crypto_sign_open(&message, &messageLength, signed, UInt64(signed.count), bytes)
        guard status == 0 else { throw .invalidSignature }
        return message
    }

    /// Whether `signature` (64 bytes, detached) is valid for `message` under this key
    /// (`crypto_sign_verify_detached`). A signature of any other length is invalid.
    public func isValidSignature(_ signature: some Collection<UInt8>, for message: some Collection<UInt8>) -> Bool {
        Sodium.ensureInitialized()
        let signatureBytes = Array(signature)
        guard signatureBytes.count == Sodium.signatureByteCount else { return false }
        let messageBytes = Array(message)
        return crypto_sign_verify_detached(signatureBytes, messageBytes, UInt64(messageBytes.count), bytes) == 0
    }

    public var description: String { base64 }
}
