/// The canonical form of a setting name (PROTOCOL.md §11.3): upper case, `_` replaced by `-`.
/// `relay_servers`, `--relay-servers` and `RELAY_SERVERS` all become `RELAY-SERVERS`.
public func canonicalSettingName(_ name: some StringProtocol) -> String {
    String(name).uppercased().replacingUnderscoresWithHyphens()
}

/// Where the value of a setting came from, for logs and error messages.
public enum SettingOrigin: String, Sendable, Equatable, CustomStringConvertible {
    case commandLine = "command line"
    case configFile = "--config file"
    case dotEnv = ".env"
    case environment = "environment"

    public var description: String { rawValue }
}

/// Everything a server's settings are computed from, as plain values.
///
/// Upstream applies `.env`, then the `--config` file, then the command-line flags by writing each
/// entry into its own process environment under the canonical name (each overwriting), and then
/// reads settings back from that environment. `Settings` computes exactly the same answers
/// without `setenv`: the real process environment is never modified, so nothing depends on the
/// thread-unsafe `setenv`/`getenv` pair, and tests are plain values.
public struct ConfigSources: Sendable {
    /// The inherited process environment.
    public var environment: [String: String]
    /// The entries of `.env` in the working directory, in file order (empty if there is none).
    public var dotEnv: [(String, String)]
    /// The entries of the `--config` file, in file order; nil when none was given (always nil for
    /// hbbr, which has no `--config`).
    public var configFile: [(String, String)]?
    /// The given command-line flags as (long name without dashes, value), e.g. `("relay-servers", "a,b")`.
    public var flags: [(String, String)]

    public init(environment: [String: String], dotEnv: [(String, String)] = [],
                configFile: [(String, String)]? = nil, flags: [(String, String)] = []) {
        self.environment = environment
        self.dotEnv = dotEnv
        self.configFile = configFile
        self.flags = flags
    }
}

/// The settings visible to a server once all sources are combined (PROTOCOL.md §11.3).
///
/// Precedence, highest first: command-line flag > `--config` file > `.env` > inherited
/// environment. Lookup of a name `N` with canonical form `C`: the variable named `C`, then `C`
/// with `-` replaced by `_`, then those two in lower case, then any variable whose canonical form
/// is `C` (several: the byte-wise smallest name wins).
public struct Settings: Sendable {
    /// The environment as upstream would see it after writing every file entry and flag.
    public let effectiveEnvironment: [String: String]
    /// The inherited environment, untouched: for what upstream reads before any file is loaded
    /// (`RUST_LOG`).
    public let inheritedEnvironment: [String: String]
    /// Names written by files and flags, and by which source last.
    private let writtenBy: [String: SettingOrigin]
    /// Canonical form → the byte-wise smallest variable name with that canonical form.
    private let byCanonicalName: [String: String]

    public init(_ sources: ConfigSources) {
        var environment = sources.environment
        var writtenBy: [String: SettingOrigin] = [:]
        func write(_ entries: [(String, String)], _ origin: SettingOrigin) {
            for (key, value) in entries {
                let name = canonicalSettingName(key)
                environment[name] = value
                writtenBy[name] = origin
            }
        }
        write(sources.dotEnv, .dotEnv)
        if let configFile = sources.configFile { write(configFile, .configFile) }
        write(sources.flags, .commandLine)

        var byCanonicalName: [String: String] = [:]
        for name in environment.keys {
            let canonical = canonicalSettingName(name)
            if let existing = byCanonicalName[canonical], !name.utf8.lexicographicallyPrecedes(existing.utf8) {
                continue
            }
            byCanonicalName[canonical] = name
        }
        self.effectiveEnvironment = environment
        self.inheritedEnvironment = sources.environment
        self.writtenBy = writtenBy
        self.byCanonicalName = byCanonicalName
    }

    /// The value of setting `name` (any spelling: `RELAY_SERVERS`, `relay-servers`, …), or nil
    /// when no source sets it. An empty string is a value ("set to empty"), distinct from nil.
    public func value(_ name: String) -> String? {
        variableName(for: name).flatMap { effectiveEnvironment[$0] }
    }

    /// Which source supplied `value(name)`; nil when the setting is unset.
    public func origin(_ name: String) -> SettingOrigin? {
        guard let variable = variableName(for: name) else { return nil }
        return writtenBy[variable] ?? .environment
    }

    /// The environment variable `value(name)` reads, following the §11.3 lookup order.
    public func variableName(for name: String) -> String? {
        let canonical = canonicalSettingName(name)
        let underscored = canonical.replacingHyphensWithUnderscores()
        for candidate in [canonical, underscored, canonical.lowercased(), underscored.lowercased()]
        where effectiveEnvironment[candidate] != nil {
            return candidate
        }
        return byCanonicalName[canonical]
    }
}

extension String {
    func replacingUnderscoresWithHyphens() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "_" ? "-" : $0 }))
    }

    func replacingHyphensWithUnderscores() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "-" ? "_" : $0 }))
    }
}
