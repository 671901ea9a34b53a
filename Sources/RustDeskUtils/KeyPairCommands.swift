import RustDeskProtocol

/// `genkeypair` and `validatekeypair` (PROTOCOL.md §11.4).
enum KeyPairCommands {
    /// Prints a new pair as `Public Key:  <base64>` / `Secret Key:  <base64>` (two spaces after the
    /// colon, as upstream, so scripts that cut at the double space keep working).
    ///
    /// Decision: the pair comes from the same generator as the servers' key files, so its public
    /// key never contains `/` (§4.1). Upstream's tool does not filter; the filtered pairs are an
    /// equally random subset, and a key made here behaves like one hbbs made itself.
    static func generate(output: (String) -> Void) -> Int32 {
        let pair = Ed25519KeyPair.generateAvoidingSlash()
        output("Public Key:  \(pair.publicKeyBase64)")
        output("Secret Key:  \(pair.secretKeyBase64)")
        return 0
    }

    /// Prints `Key pair is VALID` (exit 0) or the first problem found (exit 1).
    static func validate(publicKey: String, secretKey: String, output: (String) -> Void) -> Int32 {
        let result = KeyPairValidation(publicKey: publicKey, secretKey: secretKey)
        output(result.rawValue)
        return result == .valid ? 0 : 1
    }
}

/// The verdict of `validatekeypair`; the raw value is the line printed.
///
/// Checks run in upstream's order and stop at the first failure: the secret key, then the public
/// key, then a signature. Of the four "invalid key" messages, the lower-case ones mean the text is
/// not base64 and the capitalised ones mean it decoded to the wrong number of bytes (64 for the
/// secret, 32 for the public key). Surrounding whitespace is trimmed, as for key files.
public enum KeyPairValidation: String, Sendable, Equatable, CaseIterable {
    case valid = "Key pair is VALID"
    case secretKeyNotBase64 = "Invalid secret key"
    case secretKeyWrongLength = "Invalid Secret key"
    case publicKeyNotBase64 = "Invalid public key"
    case publicKeyWrongLength = "Invalid Public key"
    /// Both keys are well-formed but a signature by the secret key does not verify with the public key.
    case mismatched = "Key pair is INVALID"

    /// The fixed message signed with the secret key and verified with the public key.
    static let testMessage = Array("RingDesk key pair check".utf8)

    public init(publicKey: String, secretKey: String) {
        guard let secretBytes = Base64.decode(secretKey) else { self = .secretKeyNotBase64; return }
        guard let secret = try? Ed25519KeyPair(secretKey: secretBytes) else { self = .secretKeyWrongLength; return }
        guard let publicBytes = Base64.decode(publicKey) else { self = .publicKeyNotBase64; return }
        guard let verifier = try? Ed25519PublicKey(bytes: publicBytes) else { self = .publicKeyWrongLength; return }
        let signed = secret.sign(message: Self.testMessage)
        self = (try? verifier.open(signedMessage: signed)) == Self.testMessage ? .valid : .mismatched
    }
}
