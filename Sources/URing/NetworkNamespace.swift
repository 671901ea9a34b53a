import CURing
import Glibc

/// Sockets in another network namespace (tests and the load harness give clients non-loopback
/// source addresses this way). A socket keeps the namespace it was created in, so only the
/// `socket(2)` call runs on a short-lived thread moved into the namespace; the descriptor is then
/// used from any thread.
public enum NetworkNamespace {
    /// Creates a socket inside the namespace at `path` (e.g. `/var/run/netns/NAME`).
    /// The corresponding C functions are `setns` and `socket`.
    public static func socket(inNamespaceAt path: String, domain: Int32, type: Int32) throws(Errno) -> Int32 {
        final class Job: @unchecked Sendable {
            let path: String, domain: Int32, type: Int32
            var result: Int32 = -EINVAL
            init(_ p: String, _ d: Int32, _ t: Int32) { path = p; domain = d; type = t }
        }
        let job = Job(path, domain, type)
        let raw = Unmanaged.passRetained(job).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(&thread, nil, { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeUnretainedValue()
            let ns = open(job.path, O_RDONLY | O_CLOEXEC)
            guard ns >= 0 else { job.result = -errno; return nil }
            defer { close(ns) }
            let s = CURing_setns_net(ns)
            guard s == 0 else { job.result = s; return nil }
            let fd = Glibc.socket(job.domain, job.type | Int32(SOCK_CLOEXEC.rawValue), 0)
            job.result = fd >= 0 ? fd : -errno
            return nil
        }, raw)
        guard r == 0 else { Unmanaged<Job>.fromOpaque(raw).release(); throw Errno(rawValue: r) }
        pthread_join(thread, nil)
        Unmanaged<Job>.fromOpaque(raw).release()
        return try Errno.check(job.result)
    }
}

/// Why a namespace network could not be set up (not root, no `ip`, a failing `ip` command).
public struct NetworkSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A client network namespace joined by a veth pair to the server's side — the namespace of this
/// process, or a second new namespace — so that clients reach a server from non-loopback source
/// addresses (hbbs and hbbr treat loopback clients on some ports as the admin console, and hbbs
/// limits RegisterPk per source IP). Used by the integration tests and by `rdbench --netns`.
///
/// Addresses: up to 250 clients share 10.213.Y.0/24 (Y drawn per network), the server end is .1
/// and the clients .2, .3, …; more clients take 10.X.0.0/16 (X drawn) with the server at 10.X.0.1
/// and clients from 10.X.1.1. Set up with `ip` (iproute2), the addresses in one `ip -batch` run, so
/// thousands of source addresses take well under a second. `deinit` deletes the namespaces (and
/// with them the veth pair).
public final class VethNetwork: @unchecked Sendable {
    public let clientNamespace: String
    /// The namespace of the server end, or nil: this process's namespace.
    public let serverNamespace: String?
    public let serverAddress: String
    public let clientAddresses: [String]
    private var savedNamespace: Int32 = -1

    /// Needs root and iproute2; throws saying which is missing or which command failed.
    public init(clients: Int, separateServerNamespace: Bool) throws(NetworkSetupError) {
        guard getuid() == 0 else { throw NetworkSetupError("network namespaces need root (CAP_NET_ADMIN)") }
        guard access("/usr/sbin/ip", X_OK) == 0 || access("/sbin/ip", X_OK) == 0 || access("/usr/bin/ip", X_OK) == 0 else {
            throw NetworkSetupError("iproute2 (`ip`) is not installed")
        }
        guard clients >= 1 && clients <= 60_000 else { throw NetworkSetupError("between 1 and 60000 client addresses") }
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        clientNamespace = "rdc-" + tag
        serverNamespace = separateServerNamespace ? "rds-" + tag : nil
        let length: Int
        if clients <= 250 {
            let prefix = "10.213.\(Int.random(in: 0...255))."
            serverAddress = prefix + "1"
            clientAddresses = (0..<clients).map { prefix + String($0 + 2) }
            length = 24
        } else {
            let prefix = "10.\(Int.random(in: 214...250))."
            serverAddress = prefix + "0.1"
            clientAddresses = (0..<clients).map { prefix + "\(1 + $0 / 250).\($0 % 250 + 1)" }
            length = 16
        }
        let serverEnd = "vs" + tag, clientEnd = "vc" + tag
        var commands = ["ip netns add \(clientNamespace)", "ip -n \(clientNamespace) link set lo up"]
        if let s = serverNamespace { commands += ["ip netns add \(s)", "ip -n \(s) link set lo up"] }
        commands.append("ip link add \(serverEnd) type veth peer name \(clientEnd)")
        if let s = serverNamespace { commands.append("ip link set \(serverEnd) netns \(s)") }
        commands.append("ip link set \(clientEnd) netns \(clientNamespace)")
        let inServer = serverNamespace.map { "ip -n \($0) " } ?? "ip "
        commands += ["\(inServer)addr add \(serverAddress)/\(length) dev \(serverEnd)", "\(inServer)link set \(serverEnd) up"]
        let batch = "/tmp/\(clientNamespace).ip"
        let lines = clientAddresses.map { "addr add \($0)/\(length) dev \(clientEnd)\n" }.joined() + "link set \(clientEnd) up\n"
        let fd = open(batch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw NetworkSetupError("cannot write \(batch)") }
        var bytes = Array(lines.utf8)
        let written = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { unlink(batch) }
        guard written == bytes.count else { throw NetworkSetupError("cannot write \(batch)") }
        commands.append("ip -n \(clientNamespace) -batch \(batch)")
        for c in commands where system(c + " >/dev/null 2>&1") != 0 {
            remove()
            throw NetworkSetupError("`\(c)` failed")
        }
    }

    deinit { remove() }

    private func remove() {
        if savedNamespace >= 0 { close(savedNamespace) }
        _ = system("ip netns del \(clientNamespace) >/dev/null 2>&1" + (serverNamespace.map { "; ip netns del \($0) >/dev/null 2>&1" } ?? ""))
    }

    /// A socket created inside the client namespace (from any thread).
    public func socket(type: Int32) throws(Errno) -> Int32 {
        try NetworkNamespace.socket(inNamespaceAt: "/var/run/netns/" + clientNamespace, domain: AF_INET, type: type)
    }

    /// Moves the calling thread into the client namespace; threads it starts afterwards are born
    /// there. `leave()` moves it back. The corresponding C function is `setns`.
    public func enter() throws(Errno) {
        if savedNamespace < 0 {
            savedNamespace = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
            guard savedNamespace >= 0 else { throw Errno(rawValue: errno) }
        }
        let ns = open("/var/run/netns/" + clientNamespace, O_RDONLY | O_CLOEXEC)
        guard ns >= 0 else { throw Errno(rawValue: errno) }
        defer { close(ns) }
        _ = try Errno.check(CURing_setns_net(ns))
    }

    /// Moves the calling thread back to the namespace it had before `enter()`.
    public func leave() {
        if savedNamespace >= 0 { _ = CURing_setns_net(savedNamespace) }
    }
}
