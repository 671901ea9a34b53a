import RustDeskProtocol
import Synchronization

/// `blacklist.txt` / `blocklist.txt` (PROTOCOL.md §8.6): sets of IPs, changed at run time by the
/// console and reloaded on SIGHUP. Entries are compared after §3.3 normalisation (a plain
/// `1.2.3.4` entry matches an IPv4 client on a dual-stack listener, which upstream misses); an
/// entry that is not an IP literal is kept as text and matches only identical text.
public final class IPList: Sendable {
    let entries = Mutex<Set<String>>([])

    public init(_ items: [String] = []) { for i in items { add(i) } }

    /// Parses file text: per line, trim, take the text before the first space.
    public static func parse(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let t = line.trimmingCharacters()
            return String(t.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        }
    }

    static func key(_ text: String) -> String {
        IPAddress(text).map { $0.normalized.description } ?? text
    }

    public func add(_ ip: String) { _ = entries.withLock { $0.insert(Self.key(ip)) } }
    public func remove(_ ip: String) { _ = entries.withLock { $0.remove(Self.key(ip)) } }
    public func removeAll() { entries.withLock { $0.removeAll() } }
    public func replace(with items: [String]) { entries.withLock { $0 = Set(items.map(Self.key)) } }
    public func contains(_ ip: String) -> Bool { entries.withLock { $0.contains(Self.key(ip)) } }
    public func contains(_ ip: IPAddress) -> Bool { entries.withLock { $0.contains(ip.normalized.description) } }
    /// Entries in a stable order, for the console.
    public var all: [String] { entries.withLock { $0.sorted() } }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return s
    }
}
