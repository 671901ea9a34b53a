import Testing
@testable import Rendezvous
import RustDeskProtocol

/// PROTOCOL.md §9.1 and checklist items 55–57.
@Suite(.timeLimit(.minutes(1)))
struct AdminConsoleTests {
    func console(relays: [String] = []) -> RendezvousConsole {
        RendezvousConsole(core: RendezvousCore(settings: .init(), relays: RelaySelector(configured: relays)),
                          resolves: { !$0.contains("unresolvable") })
    }

    @Test func helpHasSevenLines() {
        let out = console().execute("h", now: 0)
        #expect(out.split(separator: "\n").count == 7)
        #expect(out.hasPrefix("relay-servers(rs) <separated by ,>\n"))
        #expect(out.hasSuffix("test-geo(tg) <ip1> <ip2>\n"))
        #expect(console().execute("  h \n", now: 0) == out)
        #expect(console().execute("H", now: 0) == "", "commands are case-sensitive")
    }

    @Test func alwaysUseRelayTogglesOnlyTheFlag() {
        let c = console(relays: ["r.example.com:21117"])
        #expect(c.execute("aur", now: 0) == "ALWAYS_USE_RELAY: false\n")
        #expect(c.execute("aur Y", now: 0) == "")
        #expect(c.execute("aur", now: 0) == "ALWAYS_USE_RELAY: true\n")
        #expect(c.execute("rs", now: 0) == "r.example.com:21117\n", "relay list unchanged")
        #expect(c.execute("always-use-relay y", now: 0) == "")
        #expect(c.execute("aur", now: 0) == "ALWAYS_USE_RELAY: true\n")
        _ = c.execute("aur N", now: 0)
        #expect(c.execute("aur", now: 0) == "ALWAYS_USE_RELAY: false\n")
    }

    @Test func relayServersAreReparsed() {
        let c = console()
        #expect(c.execute("rs a.example.com:21117,unresolvable,,b", now: 0) == "")
        #expect(c.execute("relay-servers", now: 0) == "a.example.com:21117\nb\n")
        #expect(c.execute("tg 1.2.3.4 5.6.7.8", now: 0) == "\"a.example.com:21117\"")
        #expect(c.execute("tg 1.2.3.4", now: 0) == "\"b\"")
        #expect(c.execute("tg nonsense", now: 0) == "")
        #expect(c.execute("rg", now: 0) == "")
    }

    @Test func ipBlockerListsShowsAndDeletes() {
        let c = console()
        _ = c.core.ipBlocker.allow(ip: "1.2.3.4", id: "a", now: 0)
        _ = c.core.ipBlocker.allow(ip: "1.2.3.4", id: "b", now: 1_000)
        _ = c.core.ipBlocker.allow(ip: "5.6.7.8", id: "a", now: 0)
        #expect(c.execute("ib", now: 5_000) == "2\n1.2.3.4: 1/4s 1/4s\n5.6.7.8: 0/5s 0/5s\n")
        #expect(c.execute("ib 1", now: 5_000) == "2\n5.6.7.8: 0/5s 0/5s\n")
        #expect(c.execute("ib 1.2.3.4", now: 5_000) == "2\n1/4s 1/4s\n")
        #expect(c.execute("ib 1.2.3.4 -", now: 5_000) == "2\n1/4s 1/4s\n")
        #expect(c.execute("ib", now: 5_000) == "1\n5.6.7.8: 0/5s 0/5s\n")
        // Both windows expired → pruned first.
        #expect(c.execute("ib", now: 86_402_000) == "0\n")
    }

    @Test func ipChangesShowsMaps() {
        let c = console()
        c.core.ipChanges.record(id: "123456789", ip: "1.1.1.1", now: 0)
        c.core.ipChanges.record(id: "123456789", ip: "2.2.2.2", now: 1_000)
        c.core.ipChanges.record(id: "123456789", ip: "2.2.2.2", now: 2_000)
        c.core.ipChanges.record(id: "987654321", ip: "3.3.3.3", now: 0)
        #expect(c.execute("ic", now: 10_000) == "1\n123456789: 10s {\"1.1.1.1\": 1, \"2.2.2.2\": 2}\n")
        #expect(c.execute("ic 123456789", now: 10_000) == "1\n10s {\"1.1.1.1\": 1, \"2.2.2.2\": 2}\n")
        #expect(c.execute("ic 123456789 -", now: 10_000).hasPrefix("1\n"))
        #expect(c.execute("ic", now: 10_000) == "0\n")
    }

    @Test func punchRequestsListAndClear() {
        let c = console()
        c.core.punchLog.append(.init(unixSeconds: 1_767_323_045, at: 0, from: "203.0.113.7", id: "123456789", to: "198.51.100.2"))
        c.core.punchLog.append(.init(unixSeconds: 1_767_323_046, at: 0, from: "203.0.113.8", id: "123456789", to: "198.51.100.2"))
        #expect(c.execute("pr", now: 0) == "2026-01-02T03:04:05Z 203.0.113.7 -> 123456789@198.51.100.2\n2026-01-02T03:04:06Z 203.0.113.8 -> 123456789@198.51.100.2\n")
        #expect(c.execute("pr 1", now: 0) == "2026-01-02T03:04:06Z 203.0.113.8 -> 123456789@198.51.100.2\n")
        #expect(c.execute("pr 0 1", now: 0).split(separator: "\n").count == 1)
        #expect(c.execute("pr 0 0", now: 0).split(separator: "\n").count == 2)
        #expect(c.execute("pr -", now: 0) == "")
        #expect(c.execute("pr", now: 0) == "")
    }

    @Test func rfc3339Formatting() {
        #expect(RFC3339.format(unixSeconds: 0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.format(unixSeconds: 951_782_400) == "2000-02-29T00:00:00Z")
        #expect(RFC3339.format(unixSeconds: 1_767_323_045) == "2026-01-02T03:04:05Z")
    }

    @Test func unknownCommandsAnswerNothing() {
        #expect(console().execute("nope", now: 0) == "")
        #expect(console().execute("", now: 0) == "")
    }
}
