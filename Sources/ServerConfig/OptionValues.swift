/// Where a server's admin console listens (RingDesk extra; PROTOCOL.md §9).
public enum AdminConsoleMode: Hashable, Sendable, CustomStringConvertible {
    /// Upstream behaviour: plain-TCP connections from loopback to hbbs P-1 / hbbr Q are the console.
    case port
    /// No console; loopback connections are served like any other.
    case off
    /// The console moves to a Unix stream socket at this path (file permissions then decide
    /// who may use it); the TCP ports treat loopback like any other source.
    case unixSocket(path: String)

    /// Parses `port`, `off` (both case-insensitive) or `unix:PATH` with a non-empty PATH.
    public init?(_ text: String) {
        switch text.lowercased() {
        case "port": self = .port
        case "off": self = .off
        default:
            guard text.hasPrefix("unix:"), text.count > 5 else { return nil }
            self = .unixSocket(path: String(text.dropFirst(5)))
        }
    }

    public var description: String {
        switch self {
        case .port: return "port"
        case .off: return "off"
        case .unixSocket(let path): return "unix:\(path)"
        }
    }
}

/// Which TCP peers may name the real client in `X-Real-IP`/`X-Forwarded-For` (PROTOCOL.md §2.3).
public enum TrustedProxyList: Hashable, Sendable, CustomStringConvertible {
    /// `*`: every peer is believed (upstream behaviour).
    case everyone
    /// Only peers inside these prefixes; an empty list believes nobody.
    case only([IPPrefix])

    /// The default: a reverse proxy on the same host (`127.0.0.0/8`, `::1`).
    public static let loopback = TrustedProxyList.only([IPPrefix("127.0.0.0/8")!, IPPrefix("::1/128")!])

    /// Parses a comma-separated list of addresses and CIDR prefixes (spaces around entries are
    /// ignored, empty entries skipped), or `*` as one entry for everyone. Nil if an entry is
    /// neither.
    public init?(_ text: String) {
        var prefixes: [IPPrefix] = []
        for entry in text.split(separator: ",") {
            let entry = entry.trimmingASCIIBlanks()
            if entry.isEmpty { continue }
            if entry == "*" { self = .everyone; return }
            guard let prefix = IPPrefix(entry) else { return nil }
            prefixes.append(prefix)
        }
        self = .only(prefixes)
    }

    public var description: String {
        switch self {
        case .everyone: return "*"
        case .only(let prefixes): return prefixes.map(\.description).joined(separator: ",")
        }
    }
}

/// How hbbr forwards raw-mode (TCP ↔ TCP) sessions (RingDesk extra).
public enum RelayMode: String, Hashable, Sendable, CaseIterable {
    /// splice(2) through a pipe when the kernel supports it, else copying.
    case auto
    /// splice(2) only; startup fails if unsupported. After each POLLIN the worker calls
    /// splice(2) itself (measured cheaper per GB than handing splices to io-wq).
    case splice
    /// splice(2) submitted to the ring, run by the kernel's io-wq threads.
    case spliceRing = "splice-ring"
    /// Copy through user-space buffers.
    case copy
}

/// The hbbs UDP self-test watchdog target (`TEST_HBBS`, PROTOCOL.md §1.4).
public enum SelfTestTarget: Hashable, Sendable {
    /// `TEST_HBBS=no` (any case): no self-test.
    case disabled
    /// Unset (or empty): the main TCP listener's local address.
    case mainListener
    /// `TEST_HBBS=ip:port`. An unspecified IP is replaced by the server (loopback of its family).
    case address(SocketAddressLiteral)
}

/// Reading typed values out of `Settings`, with the error and leniency rules every option shares.
extension Settings {
    /// The value and its origin, or nil when unset.
    func entry(_ name: String) -> (value: String, origin: SettingOrigin)? {
        guard let value = value(name), let origin = origin(name) else { return nil }
        return (value, origin)
    }

    /// `-b`/`BIND`: unset or empty means all interfaces.
    func bindAddress() throws(ConfigError) -> IPLiteral? {
        guard let (text, origin) = entry("BIND"), !text.isEmpty else { return nil }
        guard let ip = IPLiteral(text) else { throw .invalidBindAddress(value: text, origin: origin) }
        return ip
    }

    func adminConsole() throws(ConfigError) -> AdminConsoleMode {
        guard let (text, origin) = entry("ADMIN-CONSOLE") else { return .port }
        guard let mode = AdminConsoleMode(text) else { throw .invalidAdminConsole(value: text, origin: origin) }
        return mode
    }

    func trustedProxies() throws(ConfigError) -> TrustedProxyList {
        guard let (text, origin) = entry("TRUSTED-PROXIES") else { return .loopback }
        guard let list = TrustedProxyList(text) else {
            throw .invalidValue(setting: "TRUSTED_PROXIES", value: text, origin: origin,
                                expected: "'*' or a comma-separated list of IP addresses and CIDR prefixes")
        }
        return list
    }

    /// `--workers`: unset, empty or `auto` → nil (one per CPU of the affinity mask).
    func workers() throws(ConfigError) -> Int? {
        guard let (text, origin) = entry("WORKERS"), !text.isEmpty, text.lowercased() != "auto" else { return nil }
        guard let n = Int(text), (1...1024).contains(n) else {
            throw .invalidValue(setting: "WORKERS", value: text, origin: origin, expected: "'auto' or a number from 1 to 1024")
        }
        return n
    }

    /// `--pin-workers`/`PIN_WORKERS` (both servers): `yes` (default) pins each worker thread to one
    /// CPU of the affinity mask; `no` leaves them to the scheduler.
    func pinWorkers() throws(ConfigError) -> Bool {
        guard let (text, origin) = entry("PIN-WORKERS") else { return true }
        switch text.lowercased() {
        case "yes", "true", "on", "1": return true
        case "no", "false", "off", "0": return false
        default: throw .invalidValue(setting: "PIN_WORKERS", value: text, origin: origin, expected: "'yes' or 'no'")
        }
    }

    /// `--metrics`/`METRICS`: unset, empty or `off` → nil (no metrics endpoint).
    func metricsAddress() throws(ConfigError) -> SocketAddressLiteral? {
        guard let (text, origin) = entry("METRICS"), !text.isEmpty, text.lowercased() != "off" else { return nil }
        guard let address = SocketAddressLiteral(text) else {
            throw .invalidValue(setting: "METRICS", value: text, origin: origin,
                                expected: "'off' or ip:port (IPv6 as [ip]:port)")
        }
        return address
    }

    /// A RingDesk count option: a non-negative integer, strictly checked (these are new options,
    /// so there is no upstream leniency to preserve).
    func count(_ name: String, default defaultValue: Int) throws(ConfigError) -> Int {
        try integer(name, default: defaultValue, in: 0...Int.max, expected: "a whole number ≥ 0 (0 turns the limit off)")
    }

    /// A RingDesk integer option within `range`, strictly checked; `expected` says what fits.
    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>, expected: String) throws(ConfigError) -> Int {
        guard let (text, origin) = entry(name) else { return defaultValue }
        guard let n = Int(text), range.contains(n) else {
            throw .invalidValue(setting: name.replacingHyphensWithUnderscores(), value: text, origin: origin, expected: expected)
        }
        return n
    }

    /// `--batch-wait`/`BATCH_WAIT` (both servers): microseconds, 0 (off) to
    /// `HbbsOptions.maxBatchWaitMicros`.
    func batchWait(default defaultValue: Int) throws(ConfigError) -> Int {
        try integer("BATCH-WAIT", default: defaultValue, in: 0...HbbsOptions.maxBatchWaitMicros,
                    expected: "microseconds from 0 (off) to \(HbbsOptions.maxBatchWaitMicros)")
    }

    /// An upstream setting whose unusable value silently means the default there: here the default
    /// too, with a line in `notices` so the operator learns about it.
    func lenient<T>(_ name: String, default value: T, notices: inout [String], _ parse: (String) -> T?) -> T {
        guard let (text, origin) = entry(name) else { return value }
        if let parsed = parse(text) { return parsed }
        notices.append("ignoring unusable \(name) '\(text)' from the \(origin); using \(value)")
        return value
    }

    /// The listening port, validated like upstream (`Invalid port`) plus the room for `port + 2`.
    static func validPort(_ text: String, origin: SettingOrigin, allowed: ClosedRange<Int>) throws(ConfigError) -> UInt16 {
        // Int32 like upstream's i32 parse (accepts a leading '+'), then the range check.
        guard let n = Int32(text), allowed.contains(Int(n)) else {
            throw .invalidPort(value: text, origin: origin, allowed: allowed)
        }
        return UInt16(n)
    }
}

extension Substring {
    func trimmingASCIIBlanks() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
