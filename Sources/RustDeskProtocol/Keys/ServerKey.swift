/// Which server is resolving its `-k` / `KEY` value; the two tables of PROTOCOL.md §4.2 differ.
public enum ServerRole: Sendable, Equatable {
    /// hbbs, the ID / rendezvous server: enforces a licence key and signs peer keys (§4.4).
    case rendezvousServer
    /// hbbr, the relay: enforces a licence key only, never signs.
    case relayServer

    /// The key value used when nothing is configured: `-` for hbbs, empty for hbbr (since
    /// 2024-05, §15 item 16).
    public var defaultKeyOption: String {
        switch self {
        case .rendezvousServer: return "-"
        case .relayServer: return ""
        }
    }

    /// hbbr waits for a concurrently starting hbbs to write the key file (§4.1 step 1).
    public var waitForMissingKeyFile: Duration {
        switch self {
        case .rendezvousServer: return .zero
        case .relayServer: return KeyFiles.relayWaitForMissingKey
        }
    }
}

/// A server's key configuration after §4.2: the licence key clients must present and, for hbbs,
/// the secret that signs peer keys.
public struct ServerKey: Sendable, Equatable {
    /// The licence key compared with clients' `licence_key` (§4.3); empty means no check.
    public var enforcedLicenceKey: String
    /// The secret that signs IdPk (§4.4) and the §4.5 greeting; nil means hbbs sends empty `pk`
    /// fields. Always nil for hbbr.
    public var signingKey: Ed25519KeyPair?
    /// What the key files gave, when they were consulted; nil when the value alone decided. For
    /// the startup log ("key loaded from", "key generated", "no key because").
    public var keyFileOutcome: KeyFileOutcome?

    public init(enforcedLicenceKey: String, signingKey: Ed25519KeyPair?, keyFileOutcome: KeyFileOutcome? = nil) {
        self.enforcedLicenceKey = enforcedLicenceKey
        self.signingKey = signingKey
        self.keyFileOutcome = keyFileOutcome
    }

    /// Resolves a `-k` / `KEY` value exactly as the tables of §4.2.
    ///
    /// | value | hbbs licence / signing | hbbr licence |
    /// | --- | --- | --- |
    /// | base64 of 64 bytes | its public half / that secret (no files touched) | its public half |
    /// | `-` or `_` | files' public key / files' secret | files' public key |
    /// | empty | none / files' secret (created if missing) | none (files untouched) |
    /// | anything else | the value as given / none | the value as given |
    ///
    /// "Files" means one call of `loadOrGenerate`; when it yields "no key" the licence key is empty.
    /// The value is not trimmed, except that surrounding whitespace around a 64-byte secret is
    /// tolerated (the base64 decoder trims).
    ///
    /// - Parameter loadOrGenerate: the §4.1 procedure; servers pass
    ///   `{ try KeyFiles.loadOrGenerate(in: cwd, waitIfMissing: role.waitForMissingKeyFile) }`
    ///   (or use `resolve(option:role:directory:)`), tests pass a stub.
    /// - Throws: whatever `loadOrGenerate` throws (a malformed key file stops the server).
    public static func resolve(option value: String, role: ServerRole,
                               loadOrGenerate: () throws(KeyFileError) -> KeyFileOutcome) throws(KeyFileError) -> ServerKey {
        if let secret = try? Ed25519KeyPair(base64SecretKey: value) {
            return ServerKey(enforcedLicenceKey: secret.publicKeyBase64,
                             signingKey: role == .rendezvousServer ? secret : nil)
        }
        switch (value, role) {
        case ("-", _), ("_", _):
            let outcome = try loadOrGenerate()
            return ServerKey(enforcedLicenceKey: outcome.publicKeyBase64,
                             signingKey: role == .rendezvousServer ? outcome.keyPair : nil,
                             keyFileOutcome: outcome)
        case ("", .rendezvousServer):
            let outcome = try loadOrGenerate()
            return ServerKey(enforcedLicenceKey: "", signingKey: outcome.keyPair, keyFileOutcome: outcome)
        case ("", .relayServer):
            return ServerKey(enforcedLicenceKey: "", signingKey: nil)
        default:
            return ServerKey(enforcedLicenceKey: value, signingKey: nil)
        }
    }

    /// `resolve(option:role:loadOrGenerate:)` with the key files in `directory` (servers pass their
    /// working directory) and the role's wait for a missing file.
    public static func resolve(option value: String, role: ServerRole, directory: String) throws(KeyFileError) -> ServerKey {
        try resolve(option: value, role: role) { () throws(KeyFileError) -> KeyFileOutcome in
            try KeyFiles.loadOrGenerate(in: directory, waitIfMissing: role.waitForMissingKeyFile)
        }
    }
}
