import Glibc
import Testing
import TestSupport
@testable import ServerConfig

/// PROTOCOL.md §11.3, rule by rule.
@Suite(.timeLimit(.minutes(1)))
struct SettingsTests {
    // MARK: Canonical names

    @Test(arguments: [
        ("relay_servers", "RELAY-SERVERS"), ("relay-servers", "RELAY-SERVERS"), ("RELAY_SERVERS", "RELAY-SERVERS"),
        ("db_url", "DB-URL"), ("Local_Ip", "LOCAL-IP"), ("PORT", "PORT"), ("test_hbbs", "TEST-HBBS"),
    ])
    func canonicalNameIsUpperCaseWithHyphens(name: String, canonical: String) {
        #expect(canonicalSettingName(name) == canonical)
    }

    // MARK: Precedence

    @Test func hbbsPrecedenceIsFlagThenConfigThenDotEnvThenEnvironment() {
        let env = ["RELAY_SERVERS": "env"]
        let dotEnv = [("relay_servers", "dotenv")]
        let config = [("RELAY_SERVERS", "config")]
        let flags = [("relay-servers", "flag")]
        #expect(settings(environment: env, dotEnv: dotEnv, configFile: config, flags: flags).value("RELAY_SERVERS") == "flag")
        #expect(settings(environment: env, dotEnv: dotEnv, configFile: config).value("RELAY_SERVERS") == "config")
        #expect(settings(environment: env, dotEnv: dotEnv).value("RELAY_SERVERS") == "dotenv")
        #expect(settings(environment: env).value("RELAY_SERVERS") == "env")
        #expect(settings().value("RELAY_SERVERS") == nil)
    }

    @Test func eachLayerWinsOverEveryLowerOneOnItsOwn() {
        #expect(settings(environment: ["KEY": "env"], configFile: [("key", "config")]).value("KEY") == "config")
        #expect(settings(environment: ["KEY": "env"], flags: [("key", "flag")]).value("KEY") == "flag")
        #expect(settings(dotEnv: [("key", "dotenv")], flags: [("key", "flag")]).value("KEY") == "flag")
        #expect(settings(dotEnv: [("key", "dotenv")], configFile: [("KEY", "config")]).value("KEY") == "config")
    }

    @Test func originNamesTheWinningSource() {
        let s = settings(environment: ["A": "1", "B": "1", "C": "1", "D": "1"],
                         dotEnv: [("b", "2"), ("c", "2"), ("d", "2")],
                         configFile: [("c", "3"), ("d", "3")], flags: [("d", "4")])
        #expect(s.origin("A") == .environment)
        #expect(s.origin("B") == .dotEnv)
        #expect(s.origin("C") == .configFile)
        #expect(s.origin("D") == .commandLine)
        #expect(s.origin("E") == nil)
    }

    @Test func laterEntriesOfOneFileOverwriteEarlierOnes() {
        // Both spellings write RELAY-SERVERS; the file is applied in order.
        #expect(settings(dotEnv: [("relay_servers", "first"), ("RELAY-SERVERS", "second")]).value("relay-servers") == "second")
        #expect(settings(configFile: [("KEY", "a"), ("key", "b")]).value("KEY") == "b")
    }

    @Test func anEmptyValueIsSetNotAbsent() {
        let s = settings(environment: ["KEY": "env"], flags: [("key", "")])
        #expect(s.value("KEY") == "")
        #expect(s.origin("KEY") == .commandLine)
    }

    /// §14 item 76.
    @Test func item76FlagBeatsDotEnvAndDotEnvBeatsInheritedUnderscoreName() {
        let dotEnv = [("relay_servers", "from-dotenv")]
        let inherited = ["RELAY_SERVERS": "from-environment"]
        #expect(settings(environment: inherited, dotEnv: dotEnv, flags: [("relay-servers", "from-flag")])
            .value("RELAY-SERVERS") == "from-flag")
        // .env is written as RELAY-SERVERS, which the lookup tries before RELAY_SERVERS.
        #expect(settings(environment: inherited, dotEnv: dotEnv).value("RELAY-SERVERS") == "from-dotenv")
        #expect(settings(environment: inherited, dotEnv: dotEnv).value("RELAY_SERVERS") == "from-dotenv")
    }

    @Test func item76EndToEndThroughHbbsOptions() throws {
        let dir = TemporaryDirectory()
        dir.write(".env", "relay_servers=dotenv-relay\n")
        let inherited = ["RELAY_SERVERS": "env-relay"]
        let withFlag = try HbbsOptions.load(arguments: ["-r", "flag-relay"], environment: inherited,
                                            workingDirectory: dir.path, version: "t").options
        #expect(withFlag?.relayServers == ["flag-relay"])
        let withoutFlag = try HbbsOptions.load(arguments: [], environment: inherited,
                                               workingDirectory: dir.path, version: "t").options
        #expect(withoutFlag?.relayServers == ["dotenv-relay"])
    }

    // MARK: Lookup order

    @Test func lookupTriesCanonicalThenUnderscoreThenLowerCaseThenAnySpelling() {
        var env = [
            "RELAY-SERVERS": "1 canonical", "RELAY_SERVERS": "2 underscore",
            "relay-servers": "3 lower canonical", "relay_servers": "4 lower underscore", "Relay_Servers": "5 any",
        ]
        for expected in ["1 canonical", "2 underscore", "3 lower canonical", "4 lower underscore", "5 any"] {
            let s = settings(environment: env)
            #expect(s.value("RELAY_SERVERS") == expected)
            #expect(s.value("relay-servers") == expected, "the asked spelling does not matter")
            let name = env.first { $0.value == expected }!.key
            #expect(s.variableName(for: "Relay-Servers") == name)
            env[name] = nil
        }
        #expect(settings(environment: env).value("RELAY_SERVERS") == nil)
    }

    @Test func anySpellingTieGoesToTheBytewiseSmallestName() {
        // '-' (0x2D) < 'S' (0x53) < '_' (0x5F) < 's' (0x73)
        let env = ["Relay_Servers": "underscore", "Relay-Servers": "hyphen", "relay_Servers": "lower r"]
        #expect(settings(environment: env).value("RELAY_SERVERS") == "hyphen")
        #expect(settings(environment: ["Relay_Servers": "a", "relay_Servers": "b"]).value("RELAY_SERVERS") == "a")
        #expect(settings(environment: ["rELAY_SERVERS": "a", "Relay_servers": "b"]).value("RELAY_SERVERS") == "b")
    }

    @Test func everyDocumentedSpellingWorks() {
        for name in ["RELAY_SERVERS", "relay-servers", "Relay_Servers", "RELAY-SERVERS", "relay_servers", "rElAy-SeRvErS"] {
            #expect(settings(environment: [name: "x"]).value("RELAY_SERVERS") == "x", "\(name)")
        }
    }

    @Test func dbURLWrittenInDotEnvIsFoundAsDBHyphenURL() {
        let s = settings(dotEnv: [("DB_URL", "/data/db.sqlite3")])
        #expect(s.effectiveEnvironment["DB-URL"] == "/data/db.sqlite3")
        #expect(s.effectiveEnvironment["DB_URL"] == nil)
        #expect(s.value("DB_URL") == "/data/db.sqlite3")
    }

    @Test func aFileEntryOverwritesTheInheritedCanonicalSpellingOnly() {
        // The inherited lower-case spelling stays in the environment but is shadowed.
        let s = settings(environment: ["local-ip": "old", "LOCAL-IP": "older"], dotEnv: [("LOCAL_IP", "new")])
        #expect(s.value("LOCAL-IP") == "new")
        #expect(s.effectiveEnvironment["local-ip"] == "old")
    }

    @Test func inheritedEnvironmentIsKeptApartForRustLog() throws {
        let s = settings(environment: ["RUST_LOG": "debug"], dotEnv: [("RUST_LOG", "trace")])
        #expect(s.inheritedEnvironment["RUST_LOG"] == "debug")
        #expect(try HbbsOptions.resolve(s).logFilter == "debug")
        #expect(try HbbrOptions.resolve(s, portFlag: nil).logFilter == "debug")
        #expect(try HbbsOptions.resolve(settings(dotEnv: [("RUST_LOG", "trace")])).logFilter == "info")
    }

    @Test func theProcessEnvironmentIsNeverModified() throws {
        let dir = TemporaryDirectory()
        let name = "RINGDESK_SETTINGS_TEST_\(getpid())"
        dir.write(".env", "\(name)=1\n")
        dir.write("c.ini", "\(name)_CONFIG=1\n")
        _ = try HbbsOptions.load(arguments: ["-c", "c.ini", "-p", "3000"], environment: [:],
                                 workingDirectory: dir.path, version: "t")
        for variable in [name, canonicalSettingName(name), canonicalSettingName(name + "_CONFIG")] {
            #expect(getenv(variable) == nil, "\(variable) leaked into the process environment")
        }
        // The flags are not written either (CONFIG would hold our unique path).
        #expect(getenv("CONFIG").map { String(cString: $0) } != "c.ini")
    }

    // MARK: hbbr

    @Test func hbbrPrecedenceIsFlagThenDotEnvThenEnvironment() throws {
        let dir = TemporaryDirectory()
        dir.write(".env", "key=dotenv\n")
        let env = ["KEY": "env"]
        #expect(try HbbrOptions.load(arguments: ["-k", "flag"], environment: env, workingDirectory: dir.path, version: "t")
            .options?.key == "flag")
        #expect(try HbbrOptions.load(arguments: [], environment: env, workingDirectory: dir.path, version: "t")
            .options?.key == "dotenv")
        let empty = TemporaryDirectory()
        #expect(try HbbrOptions.load(arguments: [], environment: env, workingDirectory: empty.path, version: "t")
            .options?.key == "env")
    }

    @Test func hbbrHasNoConfigFile() {
        #expect(throws: ConfigError.unknownFlag("-c")) { try HbbrOptions.parseCommandLine(["-c", "x.ini"]) }
        #expect(throws: ConfigError.unknownFlag("--config")) { try HbbrOptions.parseCommandLine(["--config=x.ini"]) }
    }

    /// §14 item 75 (the WebSocket listener is `port + 2`: 22119).
    @Test func item75PortFromTheEnvironmentMeansPortPlusOne() throws {
        let options = try HbbrOptions.resolve(settings(environment: ["PORT": "22116"]), portFlag: nil)
        #expect(options.port == 22117)
        #expect(Int(options.port) + 2 == 22119)
    }

    @Test func hbbrPortRules() throws {
        func port(_ env: [String: String] = [:], dotEnv: [(String, String)] = [], flag: String? = nil) throws -> UInt16 {
            var flags: [(String, String)] = []
            if let flag { flags.append(("port", flag)) }
            return try HbbrOptions.resolve(settings(environment: env, dotEnv: dotEnv, flags: flags), portFlag: flag).port
        }
        #expect(try port() == 21117)
        #expect(try port(["PORT": "22116"], flag: "30000") == 30000, "-p is taken as is")
        #expect(try port(flag: "22116") == 22116)
        #expect(try port(dotEnv: [("PORT", "21116")]) == 21117, "a shared .env PORT serves hbbs P and hbbr P+1")
        #expect(try port(["port": "40000"]) == 40001, "any spelling of PORT")
        #expect(try port(["PORT": "0"]) == 21117, "PORT must be > 0")
        #expect(try port(["PORT": "-5"]) == 21117)
        #expect(try port(["PORT": "abc"]) == 21117, "unparseable PORT is ignored like upstream")
        #expect(try port(["PORT": "65532"]) == 65533)
        #expect(throws: ConfigError.invalidPort(value: "65534", origin: .environment, allowed: 1...65533)) {
            try port(["PORT": "65533"])
        }
    }

    @Test func hbbsTakesPortAsIs() throws {
        #expect(try HbbsOptions.resolve(settings(environment: ["PORT": "22116"])).port == 22116)
        #expect(try HbbsOptions.resolve(settings(dotEnv: [("port", "22000")])).port == 22000)
        #expect(try HbbsOptions.resolve(settings()).port == 21116)
    }
}
