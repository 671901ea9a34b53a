/// One command-line option of a server, and the single source of truth for its help line.
public struct OptionSpec: Sendable, Equatable {
    /// The long name without dashes (`relay-servers`). Its canonical form is the setting it
    /// writes (§11.3), so `--relay-servers` and `RELAY_SERVERS` are the same setting.
    public let long: String
    public let short: Character?
    /// The placeholder shown in help (`<NUMBER>`); nil for switches (`--help`).
    public let valueName: String?
    /// Whether an environment/file entry can set it too (false for `--config`, `--help`, `--version`).
    public let hasSetting: Bool
    /// The default, as shown in help.
    public let defaultText: String?
    public let summary: String

    public init(long: String, short: Character? = nil, valueName: String?, hasSetting: Bool = true,
                defaultText: String?, summary: String) {
        self.long = long
        self.short = short
        self.valueName = valueName
        self.hasSetting = hasSetting
        self.defaultText = defaultText
        self.summary = summary
    }

    /// The environment name shown in help: the canonical name with `_`, the spelling a shell
    /// can export (every spelling of §11.3 works).
    public var environmentName: String? {
        hasSetting ? canonicalSettingName(long).replacingHyphensWithUnderscores() : nil
    }

    static let help = OptionSpec(long: "help", short: "h", valueName: nil, hasSetting: false,
                                 defaultText: nil, summary: "Print help and exit")
    static let version = OptionSpec(long: "version", short: "V", valueName: nil, hasSetting: false,
                                    defaultText: nil, summary: "Print version and exit")
}

/// A setting that only the environment, `.env` or `--config` can give (no flag), for help.
public struct EnvironmentSpec: Sendable, Equatable {
    public let name: String
    public let defaultText: String
    public let summary: String
}

/// What the command line asks for.
public enum ParsedCommandLine: Sendable {
    case run(flags: [(String, String)])
    case help
    case version

    /// The flags as (long name, value) in command-line order; empty for help/version.
    public var flags: [(String, String)] {
        if case .run(let flags) = self { return flags }
        return []
    }

    /// The value of flag `long`, if given.
    public func flag(_ long: String) -> String? {
        flags.first { $0.0 == long }?.1
    }
}

/// What a server should do after reading its configuration.
public enum Invocation<Options: Sendable>: Sendable {
    case run(Options)
    /// Print this text to stdout and exit 0.
    case showHelp(String)
    /// Print this text to stdout and exit 0.
    case showVersion(String)
}

/// What `HbbsOptions` and `HbbrOptions` declare so they share command-line parsing and help.
public protocol ServerOptions: Sendable {
    static var program: String { get }
    static var about: String { get }
    /// The flags, in help order (`--help` and `--version` are added).
    static var optionSpecs: [OptionSpec] { get }
    /// Settings without a flag, for help.
    static var environmentOnly: [EnvironmentSpec] { get }
    /// The heading of the environment-only list in help (which files apply).
    static var environmentHeading: String { get }
    /// Closing help lines.
    static var helpNotes: [String] { get }
}

extension ServerOptions {
    /// Splits the command line; see `CommandLineParser` for the accepted forms.
    public static func parseCommandLine(_ arguments: [String]) throws(ConfigError) -> ParsedCommandLine {
        try CommandLineParser(options: optionSpecs).parse(arguments)
    }

    /// The help text: every option with its environment name and default, then the
    /// environment-only settings.
    public static func helpText(version: String) -> String {
        CommandLineParser(options: optionSpecs).helpText(
            program: program, version: version, about: about, environmentHeading: environmentHeading,
            environmentOnly: environmentOnly, notes: helpNotes)
    }

    /// The `--version` text.
    public static func versionText(version: String) -> String { "\(program) \(version)\n" }

    /// The shared first step of `load`: help and version stop here; otherwise `run` reads the
    /// files and resolves the options from the flags.
    static func invocation(_ commandLine: ParsedCommandLine, version: String,
                           run: ([(String, String)]) throws(ConfigError) -> Self) throws(ConfigError) -> Invocation<Self> {
        switch commandLine {
        case .help: return .showHelp(helpText(version: version))
        case .version: return .showVersion(versionText(version: version))
        case .run(let flags): return .run(try run(flags))
        }
    }
}

/// Splits `argv` (without the program name) into flags, clap style.
///
/// Accepted forms: `--flag value`, `--flag=value`, `-f value`, `-fvalue`, `-f=value`. A separate
/// value word may be `-` (the key value of §4.2) or empty, but not any other word starting with
/// `-`: that is taken as a forgotten value and reported, and `--flag=-x` passes such a value.
/// `-h`/`--help` and `-V`/`--version` win as soon as they are reached (left to right).
/// Long names are case-sensitive. Each flag may be given once.
public struct CommandLineParser: Sendable {
    public let options: [OptionSpec]

    public init(options: [OptionSpec]) {
        self.options = options + [OptionSpec.help, OptionSpec.version]
    }

    public func parse(_ arguments: [String]) throws(ConfigError) -> ParsedCommandLine {
        var flags: [(String, String)] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            i += 1
            if word == "--" {
                if i < arguments.count { throw .unexpectedArgument(arguments[i]) }
                break
            }
            let spec: OptionSpec
            let shown: String
            var inlineValue: String?
            if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                let name: Substring
                if let equals = body.firstIndex(of: "=") {
                    name = body[..<equals]
                    inlineValue = String(body[body.index(after: equals)...])
                } else {
                    name = body
                }
                shown = "--" + name
                guard let match = options.first(where: { $0.long == name }) else { throw .unknownFlag(shown) }
                spec = match
            } else if word.hasPrefix("-") && word.count > 1 {
                let letter = word[word.index(after: word.startIndex)]
                shown = "-" + String(letter)
                guard let match = options.first(where: { $0.short == letter }) else { throw .unknownFlag(shown) }
                spec = match
                let rest = word.dropFirst(2)
                if !rest.isEmpty {
                    // Switches do not combine (-hV): only value flags take attached text.
                    guard spec.valueName != nil else { throw .unknownFlag(word) }
                    inlineValue = String(rest.first == "=" ? rest.dropFirst() : rest)
                }
            } else {
                throw .unexpectedArgument(word)
            }

            guard spec.valueName != nil else {
                if inlineValue != nil { throw .unexpectedValue(flag: shown) }
                if spec == .help { return .help }
                if spec == .version { return .version }
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else if i < arguments.count, !arguments[i].hasPrefix("-") || arguments[i] == "-" {
                value = arguments[i]
                i += 1
            } else {
                throw .missingValue(flag: shown)
            }
            if flags.contains(where: { $0.0 == spec.long }) { throw .duplicateFlag("--" + spec.long) }
            flags.append((spec.long, value))
        }
        return .run(flags: flags)
    }

    /// The help text: usage, every option with its environment name and default, then the
    /// environment-only settings and free-form notes.
    ///
    ///   - environmentHeading: the heading of the environment-only list (which files apply).
    public func helpText(program: String, version: String, about: String, environmentHeading: String,
                         environmentOnly: [EnvironmentSpec], notes: [String]) -> String {
        var lines = ["\(program) \(version)", about, "", "Usage: \(program) [OPTIONS]", "", "Options:"]
        let heads = options.map { spec -> String in
            var head = spec.short.map { "-\($0), " } ?? "    "
            head += "--" + spec.long
            if let valueName = spec.valueName { head += " <\(valueName)>" }
            return head
        }
        let width = (heads.map(\.count).max() ?? 0) + 2
        for (spec, head) in zip(options, heads) {
            var line = "  " + head + String(repeating: " ", count: width - head.count) + spec.summary
            var tags: [String] = []
            if let env = spec.environmentName { tags.append("env: \(env)") }
            if let defaultText = spec.defaultText { tags.append("default: \(defaultText)") }
            if !tags.isEmpty { line += " [" + tags.joined(separator: "] [") + "]" }
            lines.append(line)
        }
        if !environmentOnly.isEmpty {
            lines += ["", environmentHeading]
            let width = (environmentOnly.map(\.name.count).max() ?? 0) + 2
            for spec in environmentOnly {
                lines.append("  " + spec.name + String(repeating: " ", count: width - spec.name.count)
                             + spec.summary + " [default: \(spec.defaultText)]")
            }
        }
        if !notes.isEmpty { lines += [""] + notes }
        return lines.joined(separator: "\n") + "\n"
    }
}
