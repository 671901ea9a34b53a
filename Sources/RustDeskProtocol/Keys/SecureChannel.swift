/// The "secure TCP" extension of PROTOCOL.md §4.5 (what Pro servers do and clients expect on
/// plain-TCP rendezvous connections): a signed ephemeral Curve25519 key from the server, a
/// secretbox key sealed to it by the client, then every frame encrypted with per-direction
/// counters.

/// One side's symmetric state after the handshake.
public struct SecureChannel: Sendable {
    let key: [UInt8]
    public private(set) var sent: UInt64 = 0
    public private(set) var received: UInt64 = 0

    public init(key: [UInt8]) { self.key = key }

    /// Nonce: the counter as u64 little-endian, then 16 zero bytes.
    static func nonce(_ counter: UInt64) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: 24)
        for i in 0..<8 { n[i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(i))) }
        return n
    }

    /// Encrypts one outgoing frame payload (counter incremented before use).
    public mutating func seal(_ plaintext: some Collection<UInt8>) -> [UInt8] {
        sent += 1
        // The key is always 32 bytes here (checked when the channel was made), so this cannot throw.
        return (try? SecretBox.seal(plaintext, nonce: Self.nonce(sent), key: key)) ?? []
    }

    /// Decrypts one incoming frame payload. Payloads of at most one byte (empty keep-alives) are
    /// passed through without decryption and do not advance the counter.
    /// - Throws: `.decryptionFailed` (the connection must close).
    public mutating func open(_ payload: some Collection<UInt8>) throws(ProtocolError) -> [UInt8] {
        guard payload.count > 1 else { return Array(payload) }
        received += 1
        return try SecretBox.open(payload, nonce: Self.nonce(received), key: key)
    }
}

/// The server's side of the handshake.
public struct SecureHandshake: Sendable {
    public let ephemeral: CryptoBoxKeyPair

    public init() { ephemeral = CryptoBoxKeyPair.generate() }

    /// `KeyExchange{keys: [sign(Spk)]}` (one 96-byte key: signature ‖ Spk).
    public func greeting(signedBy serverKey: Ed25519KeyPair) -> KeyExchange {
        KeyExchange(keys: [serverKey.sign(message: ephemeral.publicKey)])
    }

    /// The client's first message, if it is a valid reply: `KeyExchange` with 2 keys, `keys[0]` a
    /// 32-byte Curve25519 key, `keys[1]` the sealed 32-byte secretbox key.
    /// - Returns: nil when `message` is not a KeyExchange (process it as plaintext and stay plain).
    /// - Throws: `.decryptionFailed` / `.malformedKey` for a KeyExchange that does not open to a
    ///   32-byte key (the connection must close).
    public func accept(_ message: RendezvousMessage) throws(ProtocolError) -> SecureChannel? {
        guard case .keyExchange(let kx) = message else { return nil }
        guard kx.keys.count == 2, kx.keys[0].count == 32 else { throw .malformedKey }
        let key = try CryptoBox.open(kx.keys[1], nonce: [UInt8](repeating: 0, count: 24),
                                     senderPublicKey: kx.keys[0], recipientSecretKey: ephemeral.secretKey)
        guard key.count == 32 else { throw .malformedKey }
        return SecureChannel(key: key)
    }

    /// The client's side (tests, the load harness): verifies the greeting with the server's public
    /// key and returns the reply to send unencrypted and the channel.
    public static func clientReply(to greeting: KeyExchange, serverKey: Ed25519PublicKey) throws(ProtocolError) -> (KeyExchange, SecureChannel) {
        guard greeting.keys.count == 1 else { throw .malformedKey }
        let spk = try serverKey.open(signedMessage: greeting.keys[0])
        guard spk.count == 32 else { throw .malformedKey }
        let mine = CryptoBoxKeyPair.generate()
        let key = SecretBox.generateKey()
        let sealed = try CryptoBox.seal(key, nonce: [UInt8](repeating: 0, count: 24), recipientPublicKey: spk, senderSecretKey: mine.secretKey)
        return (KeyExchange(keys: [mine.publicKey, sealed]), SecureChannel(key: key))
    }
}
