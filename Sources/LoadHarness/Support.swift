import Glibc
import RustDeskProtocol

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC).
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A failure the command line reports as `rdbench: <message>` with `exitCode`.
public struct HarnessError: Error, CustomStringConvertible {
    public var message: String
    public var exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 1) { self.message = message; self.exitCode = exitCode }
    public var description: String { message }
}

/// HOST:PORT with an IPv4 literal host (or "localhost").
public struct Endpoint: Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var address: in_addr_t  // network byte order

    public init(parsing text: String) throws(HarnessError) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            throw HarnessError("bad address \(text) (expected HOST:PORT)", exitCode: 64)
        }
        var host = String(text[..<colon])
        if host == "localhost" { host = "127.0.0.1" }
        var a = in_addr()
        guard inet_pton(AF_INET, host, &a) == 1 else { throw HarnessError("bad host \(host) (IPv4 literal expected)", exitCode: 64) }
        self.host = host; self.port = port; self.address = a.s_addr
    }

    public var description: String { "\(host):\(port)" }
    public var isLoopback: Bool { UInt32(bigEndian: address) >> 24 == 127 }

    public var sockaddr: sockaddr_in {
        var s = sockaddr_in()
        s.sin_family = sa_family_t(AF_INET)
        s.sin_port = port.bigEndian
        s.sin_addr.s_addr = address
        return s
    }
}

func withSockaddr<R>(_ a: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var a = a
    return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
}

func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) + " (errno \(e))" }

/// Parses sizes such as 4096, 64K, 4M, 1G (binary multiples).
public func parseByteCount(_ text: String) -> Int? {
    guard let last = text.last else { return nil }
    let multipliers: [Character: Int] = ["K": 1 << 10, "k": 1 << 10, "M": 1 << 20, "m": 1 << 20, "G": 1 << 30, "g": 1 << 30]
    if let m = multipliers[last] { return Int(text.dropLast()).map { $0 * m } }
    return Int(text)
}

/// Parses durations such as 15, 15s, 500ms, 2m (seconds).
public func parseSeconds(_ text: String) -> Double? {
    if text.hasSuffix("ms") { return Double(text.dropLast(2)).map { $0 / 1000 } }
    if text.hasSuffix("s") { return Double(text.dropLast()) }
    if text.hasSuffix("m") { return Double(text.dropLast()).map { $0 * 60 } }
    return Double(text)
}

/// Raises the soft open-file limit to the hard one (many sockets).
func raiseFileLimit() {
    var l = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    if getrlimit(resource, &l) == 0 && l.rlim_cur < l.rlim_max {
        l.rlim_cur = l.rlim_max
        setrlimit(resource, &l)
    }
}

/// Random bytes from the kernel.
func randomBytes(_ n: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: n)
    var g = SystemRandomNumberGenerator()
    for i in 0..<n { out[i] = UInt8.random(in: 0...255, using: &g) }
    return out
}

/// A first-in first-out queue (array with a moving head).
struct FIFO<T> {
    private var items: [T] = []
    private var head = 0
    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: T? { isEmpty ? nil : items[head] }
    mutating func push(_ x: T) { items.append(x) }
    mutating func pop() -> T? {
        guard !isEmpty else { return nil }
        let x = items[head]
        head += 1
        if head > 1024 && head * 2 > items.count { items.removeFirst(head); head = 0 }
        return x
    }
}

/// Writes `text` to standard error (unbuffered).
func writeError(_ text: String) {
    var t = text
    t.withUTF8 { p in _ = write(2, p.baseAddress, p.count) }
}

extension RendezvousMessage {
    /// The message's case name (e.g. `punchHoleResponse`), for error messages.
    var name: String {
        let text = String(describing: self)
        return String(text.prefix { $0 != "(" })
    }
}

/// Where simulated clients send from. hbbs limits RegisterPk per source IP (§5.2.5), and a load
/// test must measure the server rather than that blocker, so peers are spread over many addresses:
/// against a loopback server 127.R.x.y (R drawn per run), inside `--netns` the namespace's
/// addresses; otherwise the kernel's choice (one address).
public enum SourcePool: Sendable {
    case kernel
    case loopback(octet: UInt8)
    case addresses([in_addr_t])

    /// The default for `server`: distinct loopback sources when it is a loopback address.
    static func defaultFor(_ server: Endpoint) -> SourcePool {
        server.isLoopback ? .loopback(octet: UInt8.random(in: 16...200)) : .kernel
    }

    var isDistinct: Bool { if case .kernel = self { return false } else { return true } }

    /// How many distinct addresses there are (0: the kernel's one).
    var count: Int {
        switch self {
        case .kernel: return 0
        case .loopback: return 64_000
        case .addresses(let a): return a.count
        }
    }

    /// The i-th address of the first group (registering peers); nil: let the kernel choose.
    func address(_ i: Int) -> in_addr_t? {
        switch self {
        case .kernel: return nil
        case .loopback(let octet): return loopbackSource(octet: octet, index: i)
        case .addresses(let a): return a[i % a.count]
        }
    }

    /// The i-th address of a second group disjoint from the first's first `used` addresses (punch:
    /// A must not share B's address unless asked to).
    func otherAddress(_ i: Int, firstGroupUses used: Int) -> in_addr_t? {
        switch self {
        case .kernel: return nil
        case .loopback(let octet): return loopbackSource(octet: octet &+ 1, index: i % 1000)
        case .addresses(let a):
            let rest = a.count - min(used, a.count - 1)
            return a[a.count - 1 - i % max(1, rest)]
        }
    }
}

/// `--netns`: this run's clients live in a new network namespace (URing's VethNetwork) and reach
/// the server on the host end of a veth pair, from non-loopback addresses.
public struct NetnsTarget: Sendable {
    public var serverAddress: String
    public var sources: [in_addr_t]

    /// A loopback server address means "this host": inside the namespace that is the veth's host end.
    func rewrite(_ e: Endpoint) throws(HarnessError) -> Endpoint {
        e.isLoopback ? try Endpoint(parsing: "\(serverAddress):\(e.port)") : e
    }
}

/// Binds `fd` to `address` (network byte order), any port.
func bindSource(_ fd: Int32, _ address: in_addr_t) throws(HarnessError) {
    var local = sockaddr_in()
    local.sin_family = sa_family_t(AF_INET)
    local.sin_addr.s_addr = address
    guard withSockaddr(local, { bind(fd, $0, $1) }) == 0 else {
        let e = errno
        throw HarnessError("bind \(String(address: address)): \(errnoText(e))")
    }
}

extension String {
    /// Dotted IPv4 text of an address in network byte order.
    init(address: in_addr_t) {
        let v = UInt32(bigEndian: address)
        self = "\(v >> 24).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)"
    }
}
