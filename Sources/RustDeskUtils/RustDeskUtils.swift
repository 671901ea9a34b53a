import Glibc

/// `rustdesk-utils`: the key and diagnostics helper of PROTOCOL.md §11.4, as a library so tests can
/// run it without a process. The executable only forwards its arguments and exits with the result.
public enum RustDeskUtils {
    /// Runs one command line.
    ///
    /// - Parameters:
    ///   - arguments: the words after the program name; the first is the command, matched
    ///     case-insensitively (`genkeypair`, `validatekeypair`, `doctor`). Extra operands are ignored.
    ///   - environment: looks up environment variables; only the doctor's test-only
    ///     `Doctor.portBaseVariable` is read.
    ///   - output: receives each output line, without its newline. Everything goes to this one
    ///     stream (stdout in the tool), errors included, as upstream prints them.
    /// - Returns: the exit status: 0 on success, 1 for usage errors, invalid keys and failed lookups.
    public static func run(arguments: [String], environment: (String) -> String? = processEnvironment,
                           output: (String) -> Void) -> Int32 {
        guard let command = arguments.first else {
            return usageError(nil, output: output)
        }
        let operands = Array(arguments.dropFirst())
        switch command.lowercased() {
        case "genkeypair":
            return KeyPairCommands.generate(output: output)
        case "validatekeypair":
            guard operands.count >= 2 else {
                return usageError("You must supply both the public and the secret key", output: output)
            }
            return KeyPairCommands.validate(publicKey: operands[0], secretKey: operands[1], output: output)
        case "doctor":
            guard let host = operands.first else {
                return usageError("You must supply the rustdesk-server address", output: output)
            }
            return Doctor(portBase: Doctor.portBase(environment: environment)).run(host: host, output: output)
        default:
            return usageError(nil, output: output)
        }
    }

    /// The usage text, one element per line.
    public static let usage: [String] = [
        "Usage:",
        "    rustdesk-utils <command> [arguments]",
        "",
        "Commands:",
        "    genkeypair                                   Generate a new Ed25519 key pair",
        "    validatekeypair [public key] [secret key]    Check that a public and a secret key belong together",
        "    doctor [rustdesk-server]                     Check a server's addresses, reverse DNS and TCP ports",
    ]

    /// The real process environment (`getenv`).
    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Prints `ERROR: <message>` (when given) and the usage, and returns exit status 1.
    static func usageError(_ message: String?, output: (String) -> Void) -> Int32 {
        if let message { output("ERROR: \(message)") }
        usage.forEach(output)
        return 1
    }
}
