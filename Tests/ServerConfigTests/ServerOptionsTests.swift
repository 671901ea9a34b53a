import Testing
import TestSupport
@testable import ServerConfig

@Suite(.timeLimit(.minutes(1)))
struct HbbsOptionsTests {
    @Test func defaultsFollowTheSpecification() throws {
        let o = try HbbsOptions.resolve(settings())
        #expect(o.port == 21116)
        #expect(o.bindAddress == nil)
        #expect(o.serial == 0)
        #expect(o.rendezvousServers.isEmpty)
        #expect(o.softwareURL == "")
        #expect(o.relayServers.isEmpty)
        #expect(o.receiveBufferSize == 0)
        #expect(o.lanMask == nil)
        #expect(o.localIP == nil)
        #expect(o.key == "-")
        #expect(!o.alwaysUseRelay)
        #expect(o.selfTest == .mainListener)
        #expect(o.databasePath == "./db_v2.sqlite3")
        #expect(o.maxDatabaseConnections == 1)
        #expect(o.adminConsole == .port)
        #expect(o.trustedProxies == .loopback)
        #expect(o.registerPkPerIPLimit == 30)
        #expect(o.registerPkNewIDsPerIPPerDay == 300)
        #expect(o.workers == nil)
        #expect(o.pinWorkers)
        #expect(o.batchWaitMicros == 250)
        #expect(o.metricsAddress == nil)
        #expect(o.logFilter == "info")
        #expect(o.notices.isEmpty)
    }

    @Test func batchWaitFromFlagDotEnvOrEnvironmentIsStrictlyChecked() throws {
        #expect(try HbbsOptions.resolve(settings(flags: [("batch-wait", "0")])).batchWaitMicros == 0)
        #expect(try HbbsOptions.resolve(settings(dotEnv: [("BATCH_WAIT", "250")])).batchWaitMicros == 250)
        #expect(try HbbsOptions.resolve(settings(environment: ["BATCH_WAIT": "10000"])).batchWaitMicros == 10_000)
        for bad in ["-1", "10001", "500us", "fast", ""] {
            #expect(throws: ConfigError.self, "\(bad)") { try HbbsOptions.resolve(settings(environment: ["BATCH_WAIT": bad])) }
        }
    }

    @Test func everyFlaggedOptionComesFromTheEnvironmentToo() throws {
        let o = try HbbsOptions.resolve(settings(environment: [
            "BIND": "10.0.0.1", "PORT": "3000", "SERIAL": "7", "RENDEZVOUS_SERVERS": "a,b", "SOFTWARE_URL": "http://u",
            "RELAY_SERVERS": "r1, r2,,r3", "RMEM": "4194304", "MASK": "192.168.0.0/16", "KEY": "K",
            "ADMIN_CONSOLE": "off", "TRUSTED_PROXIES": "*", "REGISTER_PK_IP_RATE": "0", "REGISTER_PK_IP_NEW_IDS": "5",
            "WORKERS": "3", "METRICS": "127.0.0.1:9100",
        ]))
        #expect(o.bindAddress?.text == "10.0.0.1")
        #expect(o.port == 3000)
        #expect(o.serial == 7)
        #expect(o.rendezvousServers == ["a", "b"])
        #expect(o.softwareURL == "http://u")
        #expect(o.relayServers == ["r1", " r2", "r3"], "split on ',', not trimmed, empty entries dropped")
        #expect(o.receiveBufferSize == 4_194_304)
        #expect(o.lanMask == IPPrefix("192.168.0.0/16"))
        #expect(o.key == "K")
        #expect(o.adminConsole == .off)
        #expect(o.trustedProxies == .everyone)
        #expect(o.registerPkPerIPLimit == 0)
        #expect(o.registerPkNewIDsPerIPPerDay == 5)
        #expect(o.workers == 3)
        #expect(o.metricsAddress == SocketAddressLiteral("127.0.0.1:9100"))
    }

    @Test func keyCanBeSetEmpty() throws {
        #expect(try HbbsOptions.resolve(settings(flags: [("key", "")])).key == "")
        #expect(try HbbsOptions.resolve(settings(environment: ["KEY": ""])).key == "")
        #expect(try HbbsOptions.resolve(settings(environment: ["KEY": "_"])).key == "_")
    }

    @Test func unparseableRmemAndSerialFallBackToDefaultsWithANotice() throws {
        let o = try HbbsOptions.resolve(settings(flags: [("rmem", "lots"), ("serial", "99999999999")]))
        #expect(o.receiveBufferSize == 0)
        #expect(o.serial == 0)
        #expect(o.notices.count == 2)
        #expect(o.notices.contains { $0.contains("RMEM") && $0.contains("lots") })
        #expect(try HbbsOptions.resolve(settings(flags: [("rmem", "-1")])).receiveBufferSize == 0)
        #expect(try HbbsOptions.resolve(settings(flags: [("serial", "-3")])).serial == -3)
    }

    @Test func maskAndLocalIP() throws {
        #expect(try HbbsOptions.resolve(settings(flags: [("mask", "10.1.2.3")])).lanMask == IPPrefix("10.1.2.3/32"))
        for bad in ["10.0.0.0/33", "fd00::/8", "lan", "10.0.0.0/"] {
            let o = try HbbsOptions.resolve(settings(flags: [("mask", bad)]))
            #expect(o.lanMask == nil, "\(bad)")
            #expect(o.notices.count == 1)
        }
        // LOCAL-IP is read only with a mask.
        #expect(try HbbsOptions.resolve(settings(environment: ["LOCAL_IP": "10.0.0.5"])).localIP == nil)
        let masked = try HbbsOptions.resolve(settings(environment: ["LOCAL-IP": "10.0.0.5", "MASK": "10.0.0.0/8"]))
        #expect(masked.localIP == "10.0.0.5")
        #expect(try HbbsOptions.resolve(settings(flags: [("mask", "10.0.0.0/8")])).localIP == nil)
        #expect(try HbbsOptions.resolve(settings(dotEnv: [("local_ip", "")], flags: [("mask", "10.0.0.0/8")])).localIP == nil)
    }

    @Test func alwaysUseRelayIsYInAnyCase() throws {
        for (value, expected) in [("Y", true), ("y", true), ("yes", false), ("N", false), ("1", false), ("", false)] {
            #expect(try HbbsOptions.resolve(settings(environment: ["ALWAYS_USE_RELAY": value])).alwaysUseRelay == expected, "\(value)")
        }
        #expect(try HbbsOptions.resolve(settings(dotEnv: [("always_use_relay", "y")])).alwaysUseRelay)
    }

    @Test func selfTestTarget() throws {
        func target(_ value: String) throws -> SelfTestTarget {
            try HbbsOptions.resolve(settings(environment: ["TEST_HBBS": value])).selfTest
        }
        #expect(try target("no") == .disabled)
        #expect(try target("NO") == .disabled)
        #expect(try target("") == .mainListener)
        #expect(try target("127.0.0.1:21116") == .address(SocketAddressLiteral("127.0.0.1:21116")!))
        #expect(try target("[::]:21116") == .address(SocketAddressLiteral("[::]:21116")!))
        #expect(try HbbsOptions.resolve(settings(dotEnv: [("test_hbbs", "no")])).selfTest == .disabled)
        for bad in ["yes", "localhost:21116", "1.2.3.4", "::1:80"] {
            #expect(throws: ConfigError.invalidValue(setting: "TEST_HBBS", value: bad, origin: .environment,
                                                     expected: "'no' or ip:port (IPv6 as [ip]:port)")) {
                try target(bad)
            }
        }
    }

    @Test func databasePath() throws {
        func path(_ value: String?) throws -> String {
            try HbbsOptions.resolve(settings(environment: value.map { ["DB_URL": $0] } ?? [:])).databasePath
        }
        #expect(try path(nil) == "./db_v2.sqlite3")
        #expect(try path("") == "./db_v2.sqlite3")
        #expect(try path("/data/db_v2.sqlite3") == "/data/db_v2.sqlite3")
        #expect(try path("sqlite:///data/db.sqlite3") == "/data/db.sqlite3")
        #expect(try path("sqlite://db.sqlite3") == "db.sqlite3")
        #expect(try path("sqlite:db.sqlite3") == "db.sqlite3")
        #expect(try HbbsOptions.resolve(settings(dotEnv: [("db_url", "x.db")])).databasePath == "x.db")
    }

    @Test func maxDatabaseConnections() throws {
        #expect(try HbbsOptions.resolve(settings(environment: ["MAX_DATABASE_CONNECTIONS": "4"])).maxDatabaseConnections == 4)
        for bad in ["0", "x", "-2"] {
            let o = try HbbsOptions.resolve(settings(environment: ["MAX_DATABASE_CONNECTIONS": bad]))
            #expect(o.maxDatabaseConnections == 1)
            #expect(o.notices.count == 1)
        }
    }

    @Test func trustedProxies() throws {
        func proxies(_ value: String) throws -> TrustedProxyList {
            try HbbsOptions.resolve(settings(flags: [("trusted-proxies", value)])).trustedProxies
        }
        #expect(try proxies("*") == .everyone)
        #expect(try proxies("10.0.0.0/8, *") == .everyone)
        #expect(try proxies("") == .only([]), "an empty list believes nobody")
        #expect(try proxies(" 10.0.0.0/8 , fd00::/8,192.0.2.7 ") ==
            .only([IPPrefix("10.0.0.0/8")!, IPPrefix("fd00::/8")!, IPPrefix("192.0.2.7/32")!]))
        #expect(throws: ConfigError.self) { try proxies("10.0.0.0/8,proxy.local") }
        #expect(throws: ConfigError.self) { try proxies("10.0.0.0/40") }
    }

    @Test func countsAndWorkersAreStrict() throws {
        #expect(throws: ConfigError.invalidValue(setting: "REGISTER_PK_IP_RATE", value: "-1", origin: .commandLine,
                                                 expected: "a whole number ≥ 0 (0 turns the limit off)")) {
            try HbbsOptions.resolve(settings(flags: [("register-pk-ip-rate", "-1")]))
        }
        #expect(throws: ConfigError.self) { try HbbsOptions.resolve(settings(flags: [("register-pk-ip-new-ids", "many")])) }
        #expect(throws: ConfigError.self) { try HbbsOptions.resolve(settings(flags: [("workers", "0")])) }
        #expect(throws: ConfigError.self) { try HbbsOptions.resolve(settings(flags: [("workers", "two")])) }
        #expect(try HbbsOptions.resolve(settings(flags: [("workers", "auto")])).workers == nil)
        #expect(try HbbsOptions.resolve(settings(environment: ["workers": "8"])).workers == 8)
    }

    @Test func metricsAddress() throws {
        #expect(try HbbsOptions.resolve(settings(flags: [("metrics", "[::1]:9100")])).metricsAddress?.port == 9100)
        #expect(try HbbsOptions.resolve(settings(flags: [("metrics", "off")])).metricsAddress == nil)
        #expect(throws: ConfigError.self) { try HbbsOptions.resolve(settings(flags: [("metrics", "9100")])) }
        #expect(throws: ConfigError.self) { try HbbsOptions.resolve(settings(flags: [("metrics", "localhost:9100")])) }
    }

    // MARK: Files

    @Test func loadCombinesDotEnvConfigFileAndFlags() throws {
        let dir = TemporaryDirectory()
        dir.write(".env", "PORT=4000\nkey=from-dotenv\nrelay_servers=dotenv\nDB_URL=sqlite://dotenv.db\n")
        dir.write("hbbs.ini", "# config\nkey = \"from config\"\nrelay-servers=config\n")
        let o = try #require(HbbsOptions.load(arguments: ["-c", "hbbs.ini", "-r", "flag"],
                                              environment: ["PORT": "5000", "KEY": "env"],
                                              workingDirectory: dir.path, version: "t").options)
        #expect(o.port == 4000)
        #expect(o.key == "from config")
        #expect(o.relayServers == ["flag"])
        #expect(o.databasePath == "dotenv.db")
    }

    @Test func configPathMayBeAbsolute() throws {
        let dir = TemporaryDirectory()
        let other = TemporaryDirectory()
        let path = other.write("c.ini", "serial=9\n")
        #expect(try HbbsOptions.load(arguments: ["--config", path], environment: [:], workingDirectory: dir.path,
                                     version: "t").options?.serial == 9)
    }

    @Test func missingFilesAreIgnored() throws {
        let dir = TemporaryDirectory()
        let o = try HbbsOptions.load(arguments: ["-c", "absent.ini"], environment: ["SERIAL": "4"],
                                     workingDirectory: dir.path, version: "t").options
        #expect(o?.serial == 4)
    }

    @Test func brokenFilesStopStartup() {
        let dir = TemporaryDirectory()
        dir.write(".env", "PORT=4000\nthis line is wrong\n")
        #expect(throws: ConfigError.file(.syntax(path: dir.path + "/.env", line: 2, reason: "expected `key=value`"))) {
            try HbbsOptions.load(arguments: [], environment: [:], workingDirectory: dir.path, version: "t")
        }
        #expect(throws: ConfigError.self) {
            try HbbrOptions.load(arguments: [], environment: [:], workingDirectory: dir.path, version: "t")
        }
        let ok = TemporaryDirectory()
        ok.write("big.ini", String(repeating: "#", count: ConfigFile.maximumSize + 1))
        #expect(throws: ConfigError.file(.tooLarge(path: ok.path + "/big.ini", limit: ConfigFile.maximumSize))) {
            try HbbsOptions.load(arguments: ["-c", "big.ini"], environment: [:], workingDirectory: ok.path, version: "t")
        }
        #expect(throws: ConfigError.self) {
            try HbbsOptions.load(arguments: ["-c", ""], environment: [:], workingDirectory: ok.path, version: "t")
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct HbbrOptionsTests {
    @Test func defaultsFollowTheSpecification() throws {
        let o = try HbbrOptions.resolve(settings(), portFlag: nil)
        #expect(o.port == 21117)
        #expect(o.bindAddress == nil)
        #expect(o.key == "")
        #expect(o.totalBandwidth == 1024 << 20)
        #expect(o.singleBandwidth == 128 << 20)
        #expect(o.limitSpeed == 32 << 20)
        #expect(o.downgradeThresholdHundredths == 66)
        #expect(o.downgradeStartCheckSeconds == 1800)
        #expect(o.adminConsole == .port)
        #expect(o.relayMode == .auto)
        #expect(o.trustedProxies == .loopback)
        #expect(o.workers == nil)
        #expect(o.metricsAddress == nil)
        #expect(o.drainSeconds == HbbrOptions.defaultDrainSeconds)
        #expect(o.batchWaitMicros == 200)
        #expect(o.pinWorkers)
        #expect(o.notices.isEmpty)
    }

    @Test func pinWorkersFromFlagDotEnvOrEnvironmentIsStrictlyChecked() throws {
        #expect(try HbbrOptions.resolve(settings(flags: [("pin-workers", "no")]), portFlag: nil).pinWorkers == false)
        #expect(try HbbrOptions.resolve(settings(dotEnv: [("PIN_WORKERS", "off")]), portFlag: nil).pinWorkers == false)
        #expect(try HbbrOptions.resolve(settings(environment: ["PIN_WORKERS": "YES"]), portFlag: nil).pinWorkers == true)
        #expect(try HbbsOptions.resolve(settings(flags: [("pin-workers", "0")])).pinWorkers == false)
        #expect(try HbbsOptions.resolve(settings(environment: ["PIN_WORKERS": "true"])).pinWorkers == true)
        for bad in ["", "maybe", "2", "nope"] {
            #expect(throws: ConfigError.self, "\(bad)") { try HbbrOptions.resolve(settings(environment: ["PIN_WORKERS": bad]), portFlag: nil) }
            #expect(throws: ConfigError.self, "\(bad)") { try HbbsOptions.resolve(settings(environment: ["PIN_WORKERS": bad])) }
        }
    }

    @Test func hbbrBatchWaitIsStrictlyChecked() throws {
        #expect(try HbbrOptions.resolve(settings(flags: [("batch-wait", "0")]), portFlag: nil).batchWaitMicros == 0)
        #expect(try HbbrOptions.resolve(settings(dotEnv: [("BATCH_WAIT", "1000")]), portFlag: nil).batchWaitMicros == 1000)
        for bad in ["-5", "10001", "1ms"] {
            #expect(throws: ConfigError.self, "\(bad)") { try HbbrOptions.resolve(settings(environment: ["BATCH_WAIT": bad]), portFlag: nil) }
        }
    }

    @Test func drainTimeFromFlagDotEnvOrEnvironmentIsStrictlyChecked() throws {
        #expect(try HbbrOptions.resolve(settings(flags: [("drain-time", "0")]), portFlag: nil).drainSeconds == 0)
        #expect(try HbbrOptions.resolve(settings(dotEnv: [("DRAIN_TIME", "120")]), portFlag: nil).drainSeconds == 120)
        #expect(try HbbrOptions.resolve(settings(environment: ["DRAIN_TIME": "3600"]), portFlag: nil).drainSeconds == 3600)
        for bad in ["-1", "3601", "10s", "soon", ""] {
            #expect(throws: ConfigError.self, "\(bad)") {
                try HbbrOptions.resolve(settings(environment: ["DRAIN_TIME": bad]), portFlag: nil)
            }
        }
    }

    @Test func bandwidthSettingsInMegabitsOfTwoToTheTwenty() throws {
        let o = try HbbrOptions.resolve(settings(
            environment: ["TOTAL_BANDWIDTH": "2048", "SINGLE_BANDWIDTH": "0.5"],
            dotEnv: [("limit_speed", "1e1"), ("downgrade_threshold", "0.5"), ("DOWNGRADE_START_CHECK", "60")]),
            portFlag: nil)
        #expect(o.totalBandwidth == 2048 * 1_048_576)
        #expect(o.singleBandwidth == 524_288)
        #expect(o.limitSpeed == 10 * 1_048_576)
        #expect(o.downgradeThresholdHundredths == 50)
        #expect(o.downgradeStartCheckSeconds == 60)
        #expect(try HbbrOptions.resolve(settings(environment: ["DOWNGRADE_THRESHOLD": "0.666"]), portFlag: nil)
            .downgradeThresholdHundredths == 66, "floor(value × 100)")
    }

    @Test(arguments: ["0", "-1", "abc", "inf", "nan", "", " 5", "1e-9"])
    func unusableBandwidthKeepsTheDefault(value: String) throws {
        let o = try HbbrOptions.resolve(settings(environment: [
            "TOTAL_BANDWIDTH": value, "SINGLE_BANDWIDTH": value, "LIMIT_SPEED": value,
            "DOWNGRADE_THRESHOLD": value, "DOWNGRADE_START_CHECK": value,
        ]), portFlag: nil)
        #expect(o.totalBandwidth == 1024 << 20)
        #expect(o.singleBandwidth == 128 << 20)
        #expect(o.limitSpeed == 32 << 20)
        #expect(o.downgradeStartCheckSeconds == 1800)
        if value != "1e-9" {
            #expect(o.downgradeThresholdHundredths == 66)
            #expect(o.notices.count == 5)
        }
    }

    @Test func downgradeStartCheckIsWholeSeconds() throws {
        let o = try HbbrOptions.resolve(settings(environment: ["DOWNGRADE_START_CHECK": "1.5"]), portFlag: nil)
        #expect(o.downgradeStartCheckSeconds == 1800)
        #expect(o.notices.count == 1)
    }

    @Test func relayModeAndExtras() throws {
        #expect(try HbbrOptions.resolve(settings(flags: [("relay-mode", "SPLICE")]), portFlag: nil).relayMode == .splice)
        #expect(try HbbrOptions.resolve(settings(environment: ["RELAY_MODE": "copy"]), portFlag: nil).relayMode == .copy)
        #expect(try HbbrOptions.resolve(settings(dotEnv: [("RELAY_MODE", "Splice-Ring")]), portFlag: nil).relayMode == .spliceRing)
        #expect(throws: ConfigError.invalidValue(setting: "RELAY_MODE", value: "fast", origin: .commandLine,
                                                 expected: "'auto', 'splice', 'splice-ring' or 'copy'")) {
            try HbbrOptions.resolve(settings(flags: [("relay-mode", "fast")]), portFlag: nil)
        }
        let o = try HbbrOptions.resolve(settings(flags: [("workers", "2"), ("trusted-proxies", "*"), ("key", "_")]), portFlag: nil)
        #expect(o.workers == 2)
        #expect(o.trustedProxies == .everyone)
        #expect(o.key == "_")
    }

    @Test func loadReadsDotEnvForPortAndBandwidth() throws {
        let dir = TemporaryDirectory()
        dir.write(".env", "PORT=21116\nsingle_bandwidth=64\n")
        let o = try #require(HbbrOptions.load(arguments: [], environment: [:], workingDirectory: dir.path, version: "t").options)
        #expect(o.port == 21117)
        #expect(o.singleBandwidth == 64 << 20)
        let flagged = try HbbrOptions.load(arguments: ["-p", "30000"], environment: [:], workingDirectory: dir.path, version: "t")
        #expect(flagged.options?.port == 30000)
    }
}
