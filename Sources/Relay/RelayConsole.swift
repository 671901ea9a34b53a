import RustDeskProtocol
import Synchronization

/// Relay settings that the console changes at run time (PROTOCOL.md §9.2).
public final class RelayRuntime: Sendable {
    public let blacklist: IPList
    public let blocklist: IPList
    public let usage = UsageTable()
    public let total: SharedTokenBucket
    let bandwidth: Mutex<BandwidthSettings>

    public init(settings: BandwidthSettings, blacklist: IPList = IPList(), blocklist: IPList = IPList(), now: UInt64) {
        bandwidth = Mutex(settings)
        self.blacklist = blacklist
        self.blocklist = blocklist
        total = SharedTokenBucket(bitsPerSecond: settings.totalMbps * BandwidthSettings.bitsPerMb, now: now)
    }

    /// The settings new sessions start with.
    public var settings: BandwidthSettings { bandwidth.withLock { $0 } }

    func update(_ body: (inout BandwidthSettings) -> Void) { bandwidth.withLock { body(&$0) } }
}

/// The hbbr admin console: one command in, one reply out (§9.2). Pure apart from `RelayRuntime`.
public struct RelayConsole: Sendable {
    public let runtime: RelayRuntime
    public init(runtime: RelayRuntime) { self.runtime = runtime }

    public static let help = """
        blacklist-add(ba) <ip>
        blacklist-remove(br) <ip>
        blacklist(b) <ip>
        blocklist-add(Ba) <ip>
        blocklist-remove(Br) <ip>
        blocklist(B) <ip>
        downgrade-threshold(dt) [value]
        downgrade-start-check(t) [value(second)]
        limit-speed(ls) [value(Mb/s)]
        total-bandwidth(tb) [value(Mb/s)]
        single-bandwidth(sb) [value(Mb/s)]
        usage(u)

        """

    public func execute(_ input: String) -> String {
        var s = Substring(input)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        let tokens = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard let command = tokens.first else { return "" }
        let arg = tokens.count > 1 ? tokens[1] : nil
        switch command {
        case "h": return Self.help
        case "blacklist-add", "ba": return add(arg, to: runtime.blacklist)
        case "blacklist-remove", "br": return remove(arg, from: runtime.blacklist)
        case "blacklist", "b": return show(arg, runtime.blacklist)
        case "blocklist-add", "Ba": return add(arg, to: runtime.blocklist)
        case "blocklist-remove", "Br": return remove(arg, from: runtime.blocklist)
        case "blocklist", "B": return show(arg, runtime.blocklist)
        case "downgrade-threshold", "dt":
            guard let arg else { return BandwidthSettings.format(runtime.settings.downgradeThreshold) + "\n" }
            if let v = Double(arg), v > 0, v.isFinite { runtime.update { $0.downgradeThresholdHundredths = Int((v * 100).rounded(.down)) } }
            return ""
        case "downgrade-start-check", "t":
            guard let arg else { return "\(runtime.settings.downgradeStartCheckSeconds)s\n" }
            if let v = Int(arg), v > 0 { runtime.update { $0.downgradeStartCheckSeconds = v } }
            return ""
        case "limit-speed", "ls":
            guard let arg else { return BandwidthSettings.format(runtime.settings.limitMbps) + "Mb/s\n" }
            if let v = Double(arg), v > 0, v.isFinite { runtime.update { $0.limitMbps = v } }
            return ""
        case "total-bandwidth", "tb":
            guard let arg else { return BandwidthSettings.format(runtime.settings.totalMbps) + "Mb/s\n" }
            if let v = Double(arg), v > 0, v.isFinite {
                runtime.update { $0.totalMbps = v }
                runtime.total.setRate(bitsPerSecond: v * BandwidthSettings.bitsPerMb)
            }
            return ""
        case "single-bandwidth", "sb":
            guard let arg else { return BandwidthSettings.format(runtime.settings.singleMbps) + "Mb/s\n" }
            if let v = Double(arg), v > 0, v.isFinite { runtime.update { $0.singleMbps = v } }
            return ""
        case "usage", "u": return runtime.usage.report()
        default: return ""
        }
    }

    func add(_ arg: String?, to list: IPList) -> String {
        guard let arg else { return "" }
        for ip in arg.split(separator: "|") { list.add(String(ip)) }
        return ""
    }

    func remove(_ arg: String?, from list: IPList) -> String {
        guard let arg else { return "" }
        if arg == "all" { list.removeAll(); return "" }
        for ip in arg.split(separator: "|") { list.remove(String(ip)) }
        return ""
    }

    func show(_ arg: String?, _ list: IPList) -> String {
        guard let arg else { return list.all.map { $0 + "\n" }.joined() }
        return list.contains(arg) ? "true\n" : "false\n"
    }
}
