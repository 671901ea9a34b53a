/// Why a server cannot start with the given command line, files and environment.
///
/// Every case names the offending text; `description` is the one-line message to print before
/// exiting with status 1.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A command-line word that starts with `-` but is not one of the server's flags.
    case unknownFlag(String)
    /// A flag that takes a value was last on the line, or followed by another flag.
    case missingValue(flag: String)
    /// A flag that takes no value was given one (`--help=x`).
    case unexpectedValue(flag: String)
    /// A command-line word that is not a flag (the servers take no operands).
    case unexpectedArgument(String)
    /// The same flag twice (as upstream's clap refuses it).
    case duplicateFlag(String)
    /// The port is not a number in the allowed range. Upstream's message is "Invalid port".
    case invalidPort(value: String, origin: SettingOrigin, allowed: ClosedRange<Int>)
    /// `-b`/`BIND` is not an IPv4 or IPv6 literal.
    case invalidBindAddress(value: String, origin: SettingOrigin)
    /// `--admin-console`/`ADMIN_CONSOLE` is not `port`, `off` or `unix:PATH`.
    case invalidAdminConsole(value: String, origin: SettingOrigin)
    /// Any other setting whose value cannot be used; `expected` says what would be accepted.
    case invalidValue(setting: String, value: String, origin: SettingOrigin, expected: String)
    /// The `.env` or `--config` file could not be read or parsed.
    case file(ConfigFileError)

    public var description: String {
        switch self {
        case .unknownFlag(let flag):
            return "unknown option '\(flag)' (see --help)"
        case .missingValue(let flag):
            return "option '\(flag)' needs a value (write '\(flag)=VALUE' for a value starting with '-')"
        case .unexpectedValue(let flag):
            return "option '\(flag)' takes no value"
        case .unexpectedArgument(let word):
            return "unexpected argument '\(word)' (see --help)"
        case .duplicateFlag(let flag):
            return "option '\(flag)' given more than once"
        case .invalidPort(let value, let origin, let allowed):
            return "Invalid port \(quoted(value)) from the \(origin): must be a number from \(allowed.lowerBound) to \(allowed.upperBound)"
        case .invalidBindAddress(let value, let origin):
            return "invalid bind address \(quoted(value)) from the \(origin): must be an IPv4 or IPv6 literal (no brackets, no host name)"
        case .invalidAdminConsole(let value, let origin):
            return "invalid admin console mode \(quoted(value)) from the \(origin): must be 'port', 'off' or 'unix:PATH'"
        case .invalidValue(let setting, let value, let origin, let expected):
            return "invalid \(setting) \(quoted(value)) from the \(origin): expected \(expected)"
        case .file(let error):
            return error.description
        }
    }

    private func quoted(_ s: String) -> String { "'\(s)'" }
}
