import Glibc
import RustDeskProtocol
import Testing
import URing

/// Helpers for end-to-end tests: real server processes, real sockets on 127.0.0.x.

enum TestError: Error, CustomStringConvertible {
    case failed(String)
    var description: String { if case .failed(let m) = self { return m }; return "" }
}

/// The directory holding the built products (next to this test bundle).
let productsDirectory: String = {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    var path = String(decoding: buf[..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while !path.isEmpty {
        path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if access(path + "/hbbs", X_OK) == 0 { return path }
    }
    return ".build/debug"
}()

func makeTempDirectory() -> String {
    var template = Array("/tmp/ringdesk-it-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

func ipv4(_ text: String) -> UInt32 {
    guard case .v4(let a)? = IPAddress(text) else { fatalError(text) }
    return a.value
}

func sockaddrIn(_ ip: String, _ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = port.bigEndian
    a.sin_addr.s_addr = ipv4(ip).bigEndian
    return a
}

/// A UDP client bound to `ip` (any 127.x address).
final class UDPClient {
    let fd: Int32
    init(ip: String = "127.0.0.1", namespace: TestNetwork? = nil) throws {
        fd = try namespace.map { try $0.socket(type: Int32(SOCK_DGRAM.rawValue)) } ?? socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddrIn(ip, 0)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { throw TestError.failed("udp bind \(ip): errno \(errno)") }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    deinit { close(fd) }
    var port: UInt16 {
        var a = sockaddr_in(); var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: a.sin_port)
    }
    var server = "127.0.0.1"
    func send(_ bytes: [UInt8], to port: UInt16, ip: String? = nil) {
        let ip = ip ?? server
        var addr = sockaddrIn(ip, port)
        _ = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
    }
    func send(_ m: RendezvousMessage, to port: UInt16) { send(m.serializedBytes(), to: port) }
    /// The next datagram within `seconds`, or nil.
    func receive(within seconds: Double = 2) -> [UInt8]? {
        let deadline = now() + seconds
        var buf = [UInt8](repeating: 0, count: 70_000)
        while now() < deadline {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return Array(buf[..<n]) }
        }
        return nil
    }
    func receiveMessage(within seconds: Double = 2) -> RendezvousMessage? {
        receive(within: seconds).flatMap { try? RendezvousMessage(serializedBytes: $0) }
    }
    /// Sends and waits for a reply, retrying (the server may still be starting).
    func request(_ m: RendezvousMessage, to port: UInt16, attempts: Int = 3) -> RendezvousMessage? {
        for _ in 0..<attempts {
            send(m, to: port)
            if let r = receiveMessage(within: 1) { return r }
        }
        return nil
    }
}

/// The names in directory `path` without "." and ".." (nil if it cannot be opened), e.g. a
/// process's /proc/PID/fd or /proc/PID/task.
func directoryEntries(_ path: String) -> [String]? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

func now() -> Double {
    var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A blocking TCP client with timeouts, bound to `ip`.
final class TCPClient {
    let fd: Int32
    var pending: [UInt8] = []
    init(port: UInt16, ip: String = "127.0.0.1", server: String = "127.0.0.1", localPort: UInt16 = 0, namespace: TestNetwork? = nil) throws {
        fd = try namespace.map { try $0.socket(type: Int32(SOCK_STREAM.rawValue)) } ?? socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var local = sockaddrIn(ip, localPort)
        _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var addr = sockaddrIn(server, port)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { close(fd); throw TestError.failed("connect \(port): errno \(errno)") }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    deinit { close(fd) }
    var localPort: UInt16 {
        var a = sockaddr_in(); var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: a.sin_port)
    }
    func write(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    func send(_ m: RendezvousMessage) { write(try! FrameCodec.frame(m.serializedBytes())) }
    /// Reads until `count` bytes or EOF/timeout.
    func read(upTo count: Int = 65_536, within seconds: Double = 2) -> (bytes: [UInt8], eof: Bool) {
        let deadline = now() + seconds
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while now() < deadline && out.count < count {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - out.count), 0) }
            if n == 0 { return (out, true) }
            if n > 0 { out += buf[..<n] }
        }
        return (out, false)
    }
    /// Whether a leading KeyExchange (the §4.5 greeting) was already skipped, as clients do.
    var greetingSeen = false
    /// Set after the §4.5 handshake: frames are encrypted.
    var channel: SecureChannel?

    /// The next message, skipping one leading KeyExchange greeting as real clients do.
    func receiveMessage(within seconds: Double = 2) -> RendezvousMessage? {
        guard let m = receiveFrame(within: seconds) else { return nil }
        if !greetingSeen, case .keyExchange = m {
            greetingSeen = true
            return receiveFrame(within: seconds)
        }
        greetingSeen = true
        return m
    }

    /// Sends `m` framed, encrypted once a channel exists.
    func sendSecure(_ m: RendezvousMessage) {
        var payload = m.serializedBytes()
        if channel != nil { payload = channel!.seal(payload) }
        write(try! FrameCodec.frame(payload))
    }

    /// The next framed message within `seconds`, decrypted when a channel exists.
    func receiveFrame(within seconds: Double = 2) -> RendezvousMessage? {
        guard var payload = receivePayload(within: seconds) else { return nil }
        if channel != nil { guard let p = try? channel!.open(payload) else { return nil }; payload = p }
        return try? RendezvousMessage(serializedBytes: payload)
    }

    func receivePayload(within seconds: Double = 2) -> [UInt8]? {
        let deadline = now() + seconds
        var decoder = FrameDecoder()
        var result: [UInt8]?
        if !pending.isEmpty {
            try? decoder.feed(pending) { result = Array($0); return .stop }
            pending = decoder.takeBuffered()
            if let result { return result }
        }
        while now() < deadline {
            let (bytes, eof) = read(upTo: 65_536, within: 0.1)
            if !bytes.isEmpty {
                try? decoder.feed(bytes) { result = Array($0); return .stop }
                if let result {
                    pending = decoder.takeBuffered()
                    return result
                }
            }
            if eof { return nil }
        }
        return nil
    }
    /// True if the server closes the connection within `seconds`.
    func closedByServer(within seconds: Double = 2) -> Bool {
        let deadline = now() + seconds
        while now() < deadline {
            let (b, eof) = read(upTo: 65_536, within: 0.1)
            if eof { return true }
            _ = b
        }
        return false
    }
}

extension FrameDecoder {
    mutating func feed(_ bytes: [UInt8], onFrame: (UnsafeRawBufferPointer) throws(ProtocolError) -> Next) throws(ProtocolError) {
        let r = bytes.withUnsafeBytes { p in Result { () throws(ProtocolError) in try feed(p, onFrame: onFrame) } }
        try r.get()
    }
}

/// A real server process in its own temporary working directory.
final class ServerProcess {
    let pid: pid_t
    let directory: String
    let port: UInt16
    let logPath: String

    /// Starts `binary` (hbbs/hbbr) with `arguments`; `-p <port>` (unless `portFlag` is false: the
    /// port then comes from the environment) and `-b <bind>` are added. With a `network`, the
    /// server runs inside its server namespace and binds the server address there; `bind` replaces
    /// the default 127.0.0.1 otherwise.
    init(_ binary: String, arguments: [String] = [], environment: [String: String] = [:], directory: String? = nil,
         port: UInt16? = nil, portFlag: Bool = true, network: TestNetwork? = nil, bind: String? = nil) throws {
        self.directory = directory ?? makeTempDirectory()
        self.port = port ?? Self.freePortBase()
        logPath = self.directory + "/server.log"
        // DRAIN_TIME=0: hbbr stops at once, as tests that leave sessions open expect.
        var env = ["TEST_HBBS": "no", "RUST_LOG": "debug", "DRAIN_TIME": "0", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        for (k, v) in environment { env[k] = v }
        // env -C: start in the server's own directory without changing this process's cwd.
        let prefix = network.map { ["ip", "netns", "exec", $0.serverNamespace!] } ?? []
        let bind = network?.serverAddress ?? bind ?? "127.0.0.1"
        let args = ["/usr/bin/env", "-C", self.directory] + prefix + [productsDirectory + "/" + binary]
            + (portFlag ? ["-p", String(self.port)] : []) + ["-b", bind] + arguments
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        posix_spawn_file_actions_addopen(&fileActions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        let argv = args.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var p = pid_t()
        let r = posix_spawn(&p, "/usr/bin/env", &fileActions, nil, argv, envp)
        guard r == 0 else { throw TestError.failed("spawn \(binary): \(r)") }
        pid = p
    }

    /// Sends SIGTERM and waits (bounded); returns the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, within seconds: Double = 10) -> Int32? {
        kill(pid, signal)
        let deadline = now() + seconds
        var status: Int32 = 0
        while now() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return (status >> 8) & 0xFF }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return nil
    }

    /// The exit status if it has exited within `seconds`.
    func exitStatus(within seconds: Double) -> Int32? {
        let deadline = now() + seconds
        var status: Int32 = 0
        while now() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return (status >> 8) & 0xFF }
            usleep(20_000)
        }
        return nil
    }

    var log: String {
        guard let f = fopen(logPath, "r") else { return "" }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true { let n = fread(&buf, 1, 4096, f); if n == 0 { break }; out += buf[..<n] }
        return String(decoding: out, as: UTF8.self)
    }

    /// A base port P with P-1…P+3 free on 127.0.0.1 (TCP and UDP).
    static func freePortBase() -> UInt16 {
        while true {
            let p = UInt16.random(in: 20_000...60_000)
            if (p - 1...p + 3).allSatisfy({ isFree($0) }) { return p }
        }
    }

    static func isFree(_ port: UInt16) -> Bool {
        for type in [SOCK_STREAM, SOCK_DGRAM] {
            let fd = socket(AF_INET, Int32(type.rawValue), 0)
            defer { close(fd) }
            var a = sockaddrIn("127.0.0.1", port)
            let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if r != 0 { return false }
        }
        return true
    }

    func readFile(_ name: String) -> String? {
        guard let f = fopen(directory + "/" + name, "r") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true { let n = fread(&buf, 1, 4096, f); if n == 0 { break }; out += buf[..<n] }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Two namespaces joined by a veth pair (URing's VethNetwork): the server runs in one, clients
/// create their sockets in the other, so the server sees non-loopback source addresses.
typealias TestNetwork = VethNetwork

extension VethNetwork {
    /// nil when namespaces cannot be made here (not root, no `ip`): callers skip with the reason.
    static func make() -> (TestNetwork?, String) {
        do throws(NetworkSetupError) {
            return (try VethNetwork(clients: 5, separateServerNamespace: true), "")
        } catch {
            return (nil, error.description)
        }
    }
}

/// A WebSocket client for tests: upgrade on any path, masked binary/text messages out, binary
/// messages in (one decoder for the connection's life, so several messages per read are kept).
final class WebSocketTestClient {
    let tcp: TCPClient
    var decoder = WebSocketFrameDecoder(configuration: .init(role: .client, maxFrameSize: 16 << 20, maxMessageSize: 16 << 20))
    var received: [[UInt8]] = []

    init(port: UInt16, path: String = "/ws/relay", headers: [String] = []) throws {
        tcp = try TCPClient(port: port)
        let request = "GET \(path) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + headers.map { $0 + "\r\n" }.joined() + "\r\n"
        tcp.write(Array(request.utf8))
        let deadline = now() + 3
        var head: [UInt8] = []
        while now() < deadline, !head.ends(with: Array("\r\n\r\n".utf8)) {
            let (b, eof) = tcp.read(upTo: 1, within: 0.2)
            head += b
            if eof { break }
        }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
            throw TestError.failed("no 101: \(String(decoding: head, as: UTF8.self))")
        }
    }

    func send(opcode: UInt8, _ payload: [UInt8]) {
        var frame: [UInt8] = []
        try! WebSocketFrameEncoder.appendFrame(WebSocketOpcode(rawValue: opcode)!, fin: true, payload: payload, maskKey: WebSocketMaskKey(0x0102_0304), to: &frame)
        tcp.write(frame)
    }
    func sendBinary(_ p: [UInt8]) { send(opcode: 2, p) }
    func sendText(_ s: String) { send(opcode: 1, Array(s.utf8)) }

    /// The next binary message within `seconds`.
    func next(within seconds: Double = 2) -> [UInt8]? {
        let deadline = now() + seconds
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while received.isEmpty && now() < deadline {
            // One recv per readable wake-up, decoded at once (no waiting for more bytes).
            var p = pollfd(fd: tcp.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(tcp.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 { break }
            if n > 0, let messages = try? decoder.decode(buffer[..<n]) {
                for case .binary(let b) in messages { received.append(b) }
            }
        }
        return received.isEmpty ? nil : received.removeFirst()
    }

    /// `next(within:)`.
    func receiveBinary(within seconds: Double = 2) -> [UInt8]? { next(within: seconds) }

    func closedByServer(within seconds: Double) -> Bool { tcp.closedByServer(within: seconds) }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

/// Sends `command` to an admin console on a Unix socket and returns the whole reply. Waits up to
/// 5 s for the socket to appear (the server creates it on one worker while others may already
/// serve TCP).
func unixConsole(_ path: String, _ command: String) -> String {
    let deadline = now() + 5
    var reply = unixConsoleOnce(path, command)
    while reply.hasPrefix("<connect") && now() < deadline {
        usleep(50_000)
        reply = unixConsoleOnce(path, command)
    }
    return reply
}

private func unixConsoleOnce(_ path: String, _ command: String) -> String {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { p in
        let bytes = Array(path.utf8)
        p.copyBytes(from: bytes)
        p[bytes.count] = 0
    }
    let r = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard r == 0 else { return "<connect: errno \(errno)>" }
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = Array(command.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return String(decoding: out, as: UTF8.self) }
        if n < 0 { return "<not closed>" }
        out += buffer[..<n]
    }
}
