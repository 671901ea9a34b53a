import Glibc
import RustDeskProtocol

/// What every server executable reads about its process before parsing options.
public enum ProcessStartup {
    /// The inherited environment as a dictionary (no `getenv` later: configuration is computed
    /// from this value, never written back).
    public static func environment() -> [String: String] {
        var variables: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let eq = text.firstIndex(of: "=") { variables[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            entry += 1
        }
        return variables
    }

    /// The working directory (key files, `.env`, `blacklist.txt`/`blocklist.txt` live there).
    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        return getcwd(&buffer, buffer.count).map { String(cString: $0) } ?? "."
    }
}

extension ServerKey {
    /// Resolves `-k`/`KEY` for `role` with the key files in `directory` (§4.2) and logs what is
    /// enforced. The error's text is what an operator needs.
    public static func resolveAndLog(option: String, role: ServerRole, directory: String) throws(KeyFileError) -> ServerKey {
        let key = try resolve(option: option, role: role, directory: directory)
        if key.enforcedLicenceKey.isEmpty {
            Log.info("Key: none (any licence key is accepted)")
        } else {
            Log.info("Key: \(key.enforcedLicenceKey)")
        }
        if role == .rendezvousServer && key.signingKey == nil {
            Log.warn("no signing key: peers' public keys will not be vouched for (pk fields empty)")
        }
        return key
    }
}
