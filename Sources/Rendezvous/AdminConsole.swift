import RustDeskProtocol

/// The hbbs admin console (PROTOCOL.md §9.1): one command in, one reply out. Pure: the server
/// does the single bounded read, the loopback (or Unix-socket) check, and the write.
public struct RendezvousConsole: Sendable {
    public let core: RendezvousCore
    /// Resolves a relay entry (`host` or `host:port`) when `rs <list>` re-parses the list.
    public let resolves: @Sendable (String) -> Bool

    public init(core: RendezvousCore, resolves: @escaping @Sendable (String) -> Bool) {
        self.core = core
        self.resolves = resolves
    }

    public static let help = """
        relay-servers(rs) <separated by ,>
        reload-geo(rg)
        ip-blocker(ib) [<ip>|<number>] [-]
        ip-changes(ic) [<id>|<number>] [-]
        punch-requests(pr) [<number>] [-]
        always-use-relay(aur)
        test-geo(tg) <ip1> <ip2>

        """

    /// Executes `input` (already known to be UTF-8) and returns the reply, possibly empty.
    /// - Parameters:
    ///   - now: monotonic milliseconds (ages in `ib`/`ic`); `unixSeconds` is unused here but the
    ///     punch log carries wall-clock times of its own.
    public func execute(_ input: String, now: Millis) -> String {
        let trimmed = input.trimmingASCIIWhitespace()
        let tokens = trimmed.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard let command = tokens.first else { return "" }
        let args = Array(tokens.dropFirst())
        switch command {
        case "h": return Self.help
        case "relay-servers", "rs":
            if let list = args.first {
                core.relays.setConfigured(RelaySelector.parse(list, resolves: resolves).accepted)
                return ""
            }
            return core.relays.active.map { $0 + "\n" }.joined()
        case "reload-geo", "rg": return ""
        case "ip-blocker", "ib": return ipBlocker(args, now: now)
        case "ip-changes", "ic": return ipChanges(args, now: now)
        case "punch-requests", "pr": return punchRequests(args)
        case "always-use-relay", "aur":
            guard let v = args.first else { return "ALWAYS_USE_RELAY: \(core.alwaysUseRelay)\n" }
            // Only the flag changes (upstream also wiped the relay list: §9.1, not replicated).
            core.alwaysUseRelay = v.uppercased() == "Y"
            return ""
        case "test-geo", "tg":
            guard let first = args.first, IPAddress(first) != nil else { return "" }
            if args.count > 1, IPAddress(args[1]) == nil { return "" }
            return "\"\(core.relays.next())\""
        default: return ""
        }
    }

    func ipBlocker(_ args: [String], now: Millis) -> String {
        core.ipBlocker.prune(now: now)
        let entries = core.ipBlocker.entries.sorted { $0.ip < $1.ip }
        var out = "\(entries.count)\n"
        func line(_ e: IPBlocker.Entry) -> String {
            "\(e.count)/\(wholeSeconds(since: e.t1, now: now))s \(e.ids.count)/\(wholeSeconds(since: e.t2, now: now))s"
        }
        if let first = args.first, !first.isEmpty, Int(first) == nil {
            if let e = core.ipBlocker.entry(first) {
                out += line(e) + "\n"
                if args.count > 1 && args[1] == "-" { core.ipBlocker.remove(first) }
            }
            return out
        }
        let start = args.first.flatMap { Int($0) }.map { max(0, $0) } ?? 0
        for (ip, e) in entries.dropFirst(start).prefix(10) { out += "\(ip): \(line(e))\n" }
        return out
    }

    func ipChanges(_ args: [String], now: Millis) -> String {
        core.ipChanges.prune(now: now)
        let entries = core.ipChanges.entries.sorted { $0.id < $1.id }
        var out = "\(entries.count)\n"
        func line(_ e: IPChangeTable.Entry) -> String {
            let map = e.ips.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
            return "\(wholeSeconds(since: e.t, now: now))s {\(map)}"
        }
        if let first = args.first, !first.isEmpty, !(Int(first).map { (0...10_000_000).contains($0) } ?? false) {
            if let e = core.ipChanges.entry(first) {
                out += line(e) + "\n"
                if args.count > 1 && args[1] == "-" { core.ipChanges.remove(first) }
            }
            return out
        }
        let start = args.first.flatMap { Int($0) } ?? 0
        for (id, e) in entries.dropFirst(start).prefix(10) { out += "\(id): \(line(e))\n" }
        return out
    }

    func punchRequests(_ args: [String]) -> String {
        if args.first == "-" { core.punchLog.clear(); return "" }
        let start = args.first.flatMap { Int($0) }.map { max(0, $0) } ?? 0
        var count = args.count > 1 ? (Int(args[1]).map { max(0, $0) } ?? 10) : 10
        if count == 0 { count = 10 }
        return core.punchLog.entries(start: start, count: count)
            .map { "\(RFC3339.format(unixSeconds: $0.unixSeconds)) \($0.from) -> \($0.id)@\($0.to)\n" }
            .joined()
    }
}

/// UTC timestamps as `2026-01-02T03:04:05Z` without Foundation.
public enum RFC3339 {
    public static func format(unixSeconds: Int64) -> String {
        let days = unixSeconds >= 0 ? unixSeconds / 86_400 : (unixSeconds - 86_399) / 86_400
        let secs = unixSeconds - days * 86_400
        // Civil-from-days (proleptic Gregorian), Howard Hinnant's algorithm.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))Z"
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
