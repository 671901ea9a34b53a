import Glibc
import Logging
import ServerKit
import Testing

/// RUST_LOG directives as upstream's logger reads them, and the line format.
@Suite(.timeLimit(.minutes(1)))
struct RustLogFilterTests {
    @Test func emptyMeansInfo() {
        let f = RustLogFilter("")
        #expect(f.level(for: "hbbs") == .info)
        #expect(f.allows(.info, for: "hbbs") && !f.allows(.debug, for: "hbbs"))
        #expect(f.ignored.isEmpty)
    }

    @Test(arguments: [("error", Log.Level.error), ("warn", .warn), ("WARN", .warn), ("info", .info), ("debug", .debug), ("trace", .trace)])
    func bareLevelIsTheDefault(text: String, level: Log.Level) {
        let f = RustLogFilter(text)
        #expect(f.level(for: "hbbs") == level)
        #expect(f.level(for: "anything") == level)
    }

    @Test func offSilencesEverything() {
        let f = RustLogFilter("off")
        #expect(f.level(for: "hbbs") == .some(nil))
        #expect(!f.allows(.error, for: "hbbs"))
    }

    @Test func targetDirectivesOverrideTheDefaultForTheirTarget() {
        let f = RustLogFilter("hbbs=debug,hbbr=warn")
        #expect(f.level(for: "hbbs") == .debug)
        #expect(f.level(for: "hbbr") == .warn)
        #expect(f.level(for: "rdbench") == .info)
        #expect(f.allows(.debug, for: "hbbs") && !f.allows(.info, for: "hbbr") && f.allows(.warn, for: "hbbr"))
    }

    @Test func longestMatchingTargetWinsAndPathsInherit() {
        let f = RustLogFilter("warn,hbbs=debug,hbbs::db=error")
        #expect(f.level(for: "hbbs::peers") == .debug)
        #expect(f.level(for: "hbbs::db") == .error)
        #expect(f.level(for: "hbbsx") == .warn) // a prefix only counts at a `::` boundary
        #expect(f.level(for: "hbbr") == .warn)
    }

    @Test func laterDirectivesReplaceEarlierOnes() {
        #expect(RustLogFilter("debug,error").level(for: "x") == .error)
        #expect(RustLogFilter("hbbs=trace,hbbs=warn").level(for: "hbbs") == .warn)
        #expect(RustLogFilter("hbbs=off").level(for: "hbbs") == .some(nil))
    }

    @Test func bareTargetOrEmptyLevelEnablesEverythingForIt() {
        #expect(RustLogFilter("hbbs").level(for: "hbbs") == .trace)
        #expect(RustLogFilter("hbbs=").level(for: "hbbs") == .trace)
        #expect(RustLogFilter("hbbs").level(for: "hbbr") == .info)
    }

    @Test func unknownDirectivesAreIgnoredAndListed() {
        let f = RustLogFilter("hbbs=loud, debug ,a=b=c,x y,,hbbr=warn,/regex")
        #expect(f.ignored == ["hbbs=loud", "a=b=c", "x y", "/regex"])
        #expect(f.level(for: "hbbs") == .debug)
        #expect(f.level(for: "hbbr") == .warn)
    }

    @Test func lineHasUpstreamShape() {
        // 2026-01-31 12:34:56 UTC.
        let line = RustLogHandler.line(level: .warn, target: "hbbr", message: "hello", time: (1_769_862_896, 7_123))
        #expect(line == "[2026-01-31 12:34:56.007123 +00:00] WARN [hbbr] hello\n")
    }

    @Test func handlerFiltersAndWritesWholeLines() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let filter = RustLogFilter("warn,hbbs=debug")
        let logger = Logger(label: "hbbs") { RustLogHandler(target: $0, filter: filter, fd: fds[1]) }
        let quiet = Logger(label: "hbbr") { RustLogHandler(target: $0, filter: filter, fd: fds[1]) }
        var built = 0
        func expensive() -> String { built += 1; return "built" }
        logger.debug("shown \(expensive())", metadata: ["peer": "1.2.3.4"])
        logger.trace("hidden \(expensive())")
        quiet.info("hidden \(expensive())")
        quiet.error("shown too")
        close(fds[1])
        #expect(built == 1) // disabled levels never build their message
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true { let n = read(fds[0], &buf, buf.count); if n <= 0 { break }; out += buf[..<n] }
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.hasSuffix("] DEBUG [hbbs] shown built peer=1.2.3.4") == true)
        #expect(lines.last?.hasSuffix("] ERROR [hbbr] shown too") == true)
    }
}
