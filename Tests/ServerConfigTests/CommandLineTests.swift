import Testing
import TestSupport
@testable import ServerConfig

@Suite(.timeLimit(.minutes(1)))
struct CommandLineTests {
    /// Every value flag of both servers in every accepted form.
    static let valueFlags: [(server: String, spec: OptionSpec)] =
        HbbsOptions.optionSpecs.map { ("hbbs", $0) } + HbbrOptions.optionSpecs.map { ("hbbr", $0) }

    func parse(_ server: String, _ arguments: [String]) throws(ConfigError) -> ParsedCommandLine {
        server == "hbbs" ? try HbbsOptions.parseCommandLine(arguments) : try HbbrOptions.parseCommandLine(arguments)
    }

    @Test func everyFlagAcceptsEveryForm() throws {
        for (server, spec) in Self.valueFlags {
            var forms = [["--\(spec.long)", "v1"], ["--\(spec.long)=v1"]]
            if let short = spec.short {
                forms += [["-\(short)", "v1"], ["-\(short)v1"], ["-\(short)=v1"]]
            }
            for form in forms {
                let parsed = try parse(server, form)
                #expect(pairs(parsed.flags) == ["\(spec.long)=v1"], "\(server) \(form)")
            }
        }
    }

    @Test func portForms() throws {
        for form in [["-p", "21116"], ["-p21116"], ["--port", "21116"], ["--port=21116"]] {
            #expect(try HbbsOptions.parseCommandLine(form).flag("port") == "21116")
        }
    }

    @Test func flagsKeepCommandLineOrder() throws {
        let parsed = try HbbsOptions.parseCommandLine(["-r", "a,b", "--key=K", "-p", "3000", "--mask", "10.0.0.0/8"])
        #expect(pairs(parsed.flags) == ["relay-servers=a,b", "key=K", "port=3000", "mask=10.0.0.0/8"])
    }

    @Test func keyValuesDashUnderscoreAndEmptyAreValues() throws {
        #expect(try HbbsOptions.parseCommandLine(["-k", "-"]).flag("key") == "-")
        #expect(try HbbsOptions.parseCommandLine(["-k", "_"]).flag("key") == "_")
        #expect(try HbbsOptions.parseCommandLine(["-k", ""]).flag("key") == "")
        #expect(try HbbsOptions.parseCommandLine(["--key="]).flag("key") == "")
        #expect(try HbbsOptions.parseCommandLine(["-k="]).flag("key") == "")
        #expect(try HbbsOptions.parseCommandLine(["--key=-abc"]).flag("key") == "-abc")
        #expect(try HbbsOptions.parseCommandLine(["--key=a=b"]).flag("key") == "a=b")
    }

    @Test func helpAndVersion() throws {
        for args in [["-h"], ["--help"], ["-p", "3000", "--help"], ["-h", "--bogus"]] {
            guard case .help = try HbbsOptions.parseCommandLine(args) else { Issue.record("\(args)"); continue }
        }
        for args in [["-V"], ["--version"]] {
            guard case .version = try HbbrOptions.parseCommandLine(args) else { Issue.record("\(args)"); continue }
        }
        let dir = TemporaryDirectory()
        guard case .showVersion(let text) = try HbbsOptions.load(arguments: ["-V"], environment: [:],
                                                                 workingDirectory: dir.path, version: "1.2.3")
        else { Issue.record("no version"); return }
        #expect(text == "hbbs 1.2.3\n")
        guard case .showHelp(let help) = try HbbrOptions.load(arguments: ["--help"], environment: [:],
                                                             workingDirectory: dir.path, version: "1.2.3")
        else { Issue.record("no help"); return }
        #expect(help.hasPrefix("hbbr 1.2.3\n"))
    }

    @Test func helpListsEveryOptionWithItsEnvironmentNameAndDefault() {
        for (help, specs, environmentOnly) in [
            (HbbsOptions.helpText(version: "t"), HbbsOptions.optionSpecs, HbbsOptions.environmentOnly),
            (HbbrOptions.helpText(version: "t"), HbbrOptions.optionSpecs, HbbrOptions.environmentOnly),
        ] {
            let lines = help.split(separator: "\n").map(String.init)
            for spec in specs {
                let line = lines.first { $0.contains("--\(spec.long)") }
                #expect(line != nil, "--\(spec.long) missing from help")
                if let short = spec.short { #expect(line?.contains("-\(short), ") == true) }
                if let env = spec.environmentName { #expect(line?.contains("[env: \(env)]") == true, "\(spec.long)") }
                if let def = spec.defaultText { #expect(line?.contains("[default: \(def)]") == true, "\(spec.long)") }
            }
            for spec in environmentOnly {
                #expect(lines.contains { $0.hasPrefix("  \(spec.name) ") && $0.contains("[default: \(spec.defaultText)]") },
                        "\(spec.name) missing from help")
            }
            #expect(help.contains("--help"))
            #expect(help.contains("--version"))
        }
        let hbbs = HbbsOptions.helpText(version: "t")
        for env in ["PORT", "BIND", "SERIAL", "RENDEZVOUS_SERVERS", "SOFTWARE_URL", "RELAY_SERVERS", "RMEM", "MASK", "KEY",
                    "ADMIN_CONSOLE", "TRUSTED_PROXIES", "REGISTER_PK_IP_RATE", "REGISTER_PK_IP_NEW_IDS", "WORKERS",
                    "METRICS", "DB_URL", "MAX_DATABASE_CONNECTIONS", "ALWAYS_USE_RELAY", "LOCAL_IP", "TEST_HBBS",
                    "RUST_LOG"] {
            #expect(hbbs.contains(env), "\(env)")
        }
        let hbbr = HbbrOptions.helpText(version: "t")
        for env in ["PORT", "BIND", "KEY", "ADMIN_CONSOLE", "RELAY_MODE", "WORKERS", "TOTAL_BANDWIDTH", "SINGLE_BANDWIDTH",
                    "LIMIT_SPEED", "DOWNGRADE_THRESHOLD", "DOWNGRADE_START_CHECK", "RUST_LOG"] {
            #expect(hbbr.contains(env), "\(env)")
        }
    }

    // MARK: Errors

    @Test func unknownFlags() {
        #expect(throws: ConfigError.unknownFlag("--bogus")) { try HbbsOptions.parseCommandLine(["--bogus"]) }
        #expect(throws: ConfigError.unknownFlag("--bogus")) { try HbbsOptions.parseCommandLine(["--bogus=1"]) }
        #expect(throws: ConfigError.unknownFlag("-x")) { try HbbsOptions.parseCommandLine(["-x"]) }
        #expect(throws: ConfigError.unknownFlag("--PORT")) { try HbbsOptions.parseCommandLine(["--PORT", "1"]) }
        #expect(throws: ConfigError.unknownFlag("-hV")) { try HbbsOptions.parseCommandLine(["-hV"]) }
        #expect(throws: ConfigError.unknownFlag("--relay-mode")) { try HbbsOptions.parseCommandLine(["--relay-mode", "copy"]) }
        #expect(throws: ConfigError.unknownFlag("-r")) { try HbbrOptions.parseCommandLine(["-r", "x"]) }
        #expect(ConfigError.unknownFlag("--bogus").description.contains("--bogus"))
    }

    @Test func missingValues() {
        #expect(throws: ConfigError.missingValue(flag: "-p")) { try HbbsOptions.parseCommandLine(["-p"]) }
        #expect(throws: ConfigError.missingValue(flag: "--port")) { try HbbsOptions.parseCommandLine(["--port"]) }
        #expect(throws: ConfigError.missingValue(flag: "-k")) { try HbbsOptions.parseCommandLine(["-k", "-p", "3"]) }
        #expect(throws: ConfigError.missingValue(flag: "--relay-servers")) {
            try HbbsOptions.parseCommandLine(["--relay-servers", "--key", "x"])
        }
        #expect(ConfigError.missingValue(flag: "-k").description.contains("-k=VALUE"))
    }

    @Test func otherCommandLineErrors() {
        #expect(throws: ConfigError.unexpectedValue(flag: "--help")) { try HbbsOptions.parseCommandLine(["--help=1"]) }
        #expect(throws: ConfigError.unexpectedArgument("21116")) { try HbbsOptions.parseCommandLine(["21116"]) }
        #expect(throws: ConfigError.unexpectedArgument("-")) { try HbbsOptions.parseCommandLine(["-"]) }
        #expect(throws: ConfigError.unexpectedArgument("x")) { try HbbsOptions.parseCommandLine(["--", "x"]) }
        #expect(throws: ConfigError.duplicateFlag("--port")) { try HbbsOptions.parseCommandLine(["-p", "1", "--port=2"]) }
        #expect((try? HbbsOptions.parseCommandLine(["--"]))?.flags.isEmpty == true)
    }

    @Test(arguments: ["abc", "2", "0", "-1", "", "65534", "99999999999", " 21116", "21116 "])
    func hbbsInvalidPort(value: String) {
        do {
            _ = try HbbsOptions.load(arguments: ["--port=\(value)"], environment: [:],
                                     workingDirectory: TemporaryDirectory().path, version: "t")
            Issue.record("port \(value) accepted")
        } catch {
            #expect(error == .invalidPort(value: value, origin: .commandLine, allowed: 3...65533))
            #expect(error.description.hasPrefix("Invalid port"))
        }
    }

    @Test func hbbsPortLimits() throws {
        #expect(try HbbsOptions.resolve(settings(flags: [("port", "3")])).port == 3)
        #expect(try HbbsOptions.resolve(settings(flags: [("port", "65533")])).port == 65533)
        #expect(try HbbsOptions.resolve(settings(flags: [("port", "+21116")])).port == 21116, "Rust's i32 parse takes '+'")
        #expect(throws: ConfigError.invalidPort(value: "x", origin: .environment, allowed: 3...65533)) {
            try HbbsOptions.resolve(settings(environment: ["PORT": "x"]))
        }
    }

    @Test func hbbrInvalidPortFlag() {
        for value in ["0", "abc", "65534", ""] {
            #expect(throws: ConfigError.invalidPort(value: value, origin: .commandLine, allowed: 1...65533)) {
                try HbbrOptions.resolve(settings(flags: [("port", value)]), portFlag: value)
            }
        }
    }

    @Test(arguments: ["localhost", "[::1]", "1.2.3.256", "01.2.3.4", "1.2.3", "::1%lo", "1.2.3.4:80", "fe80::1::2"])
    func invalidBindAddress(value: String) {
        #expect(throws: ConfigError.invalidBindAddress(value: value, origin: .commandLine)) {
            try HbbsOptions.resolve(settings(flags: [("bind", value)]))
        }
        #expect(throws: ConfigError.invalidBindAddress(value: value, origin: .dotEnv)) {
            try HbbrOptions.resolve(settings(dotEnv: [("BIND", value)]), portFlag: nil)
        }
    }

    @Test func bindAddresses() throws {
        #expect(try HbbsOptions.resolve(settings(flags: [("bind", "192.0.2.1")])).bindAddress?.octets == [192, 0, 2, 1])
        #expect(try HbbsOptions.resolve(settings(flags: [("bind", "::")])).bindAddress?.octets == [UInt8](repeating: 0, count: 16))
        #expect(try HbbrOptions.resolve(settings(environment: ["BIND": "::1"]), portFlag: nil).bindAddress?.text == "::1")
        #expect(try HbbsOptions.resolve(settings(environment: ["BIND": ""])).bindAddress == nil, "empty = all interfaces")
        #expect(try HbbsOptions.resolve(settings()).bindAddress == nil)
    }

    @Test(arguments: ["", "tcp", "unix:", "UNIX", "ports"])
    func invalidAdminConsole(value: String) {
        #expect(throws: ConfigError.invalidAdminConsole(value: value, origin: .commandLine)) {
            try HbbsOptions.resolve(settings(flags: [("admin-console", value)]))
        }
        #expect(throws: ConfigError.invalidAdminConsole(value: value, origin: .environment)) {
            try HbbrOptions.resolve(settings(environment: ["ADMIN_CONSOLE": value]), portFlag: nil)
        }
    }

    @Test func adminConsoleModes() throws {
        #expect(try HbbsOptions.resolve(settings()).adminConsole == .port)
        #expect(try HbbsOptions.resolve(settings(flags: [("admin-console", "OFF")])).adminConsole == .off)
        #expect(try HbbsOptions.resolve(settings(flags: [("admin-console", "Port")])).adminConsole == .port)
        #expect(try HbbrOptions.resolve(settings(dotEnv: [("admin_console", "unix:/run/hbbr.sock")]), portFlag: nil)
            .adminConsole == .unixSocket(path: "/run/hbbr.sock"))
    }

    @Test func errorsNameTheirSource() {
        let e = ConfigError.invalidValue(setting: "WORKERS", value: "x", origin: .configFile, expected: "a number")
        #expect(e.description == "invalid WORKERS 'x' from the --config file: expected a number")
        #expect(ConfigError.invalidBindAddress(value: "h", origin: .dotEnv).description.contains("from the .env"))
        #expect(ConfigError.file(.syntax(path: ".env", line: 3, reason: "r")).description == ".env:3: r")
    }
}
