import RustDeskProtocol
import Synchronization

/// Relay servers handed to peers (PROTOCOL.md §7): a configured list, the active (reachable)
/// subset, and one process-wide round-robin counter shared by every selection.
public final class RelaySelector: Sendable {
    let lists = Mutex<(configured: [String], active: [String])>(([], []))
    let counter = Atomic<UInt64>(0)

    public init(configured: [String] = []) { setConfigured(configured) }

    /// Replaces both lists (startup, console `rs <list>`).
    public func setConfigured(_ list: [String]) { lists.withLock { $0 = (list, list) } }

    /// Replaces the active list after a health check (order of successful probes).
    public func setActive(_ list: [String]) { lists.withLock { $0.active = list } }

    public var configured: [String] { lists.withLock { $0.configured } }
    public var active: [String] { lists.withLock { $0.active } }

    /// The next relay: empty when none is active, the only one, or round robin.
    public func next() -> String {
        let active = self.active
        switch active.count {
        case 0: return ""
        case 1: return active[0]
        default:
            let n = counter.wrappingAdd(1, ordering: .relaxed).oldValue
            return active[Int(n % UInt64(active.count))]
        }
    }

    /// Parses a comma-separated list as §7.1: entries are not trimmed; empty entries and entries
    /// for which `resolves` is false are dropped and returned as rejected.
    public static func parse(_ text: String, resolves: (String) -> Bool) -> (accepted: [String], rejected: [String]) {
        var accepted: [String] = [], rejected: [String] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: true).map(String.init) {
            if resolves(part) { accepted.append(part) } else { rejected.append(part) }
        }
        return (accepted, rejected)
    }

    /// The probe target of §7.3: the entry, or `entry:21117` if it has no `:`.
    public static func probeTarget(_ entry: String) -> String { entry.contains(":") ? entry : entry + ":21117" }
}

/// The deprecated LAN mask (§7.4): IPv4 CIDR; `LOCAL-IP` is handed to peers inside it.
public struct LANMask: Sendable, Equatable {
    public let network: UInt32
    public let prefixLength: Int

    /// Parses `a.b.c.d/len` or a bare address (= /32); nil when unparseable (no mask).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard case .v4(let ip)? = IPAddress(parts[0]) else { return nil }
        var len = 32
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...32).contains(l) else { return nil }
            len = l
        }
        prefixLength = len
        network = ip.value & Self.maskBits(len)
    }

    static func maskBits(_ len: Int) -> UInt32 { len == 0 ? 0 : UInt32.max << UInt32(32 - len) }

    /// `is_lan`: the address, normalised to IPv4 where possible, lies inside the mask.
    public func contains(_ ip: IPAddress) -> Bool {
        guard case .v4(let v4) = ip.normalized else { return false }
        return v4.value & Self.maskBits(prefixLength) == network
    }
}
