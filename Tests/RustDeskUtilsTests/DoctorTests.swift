import Glibc
import Testing
import URing
@testable import RustDeskUtils

/// `doctor` in process against loopback listeners, and the bounded connect behind it.
@Suite(.timeLimit(.minutes(1)))
struct DoctorTests {
    @Test func reportsOpenAndClosedPortsOnAnIPLiteral() throws {
        let ports = try LoopbackPorts(listeningAt: [0, 2, 5])
        var lines: [String] = []
        let status = Doctor(portBase: ports.base).run(host: "  127.0.0.1 ", output: { lines.append($0) })
        #expect(status == 0)
        #expect(lines.first == "Checking server:  127.0.0.1")
        #expect(lines.contains("Checking IP address: 127.0.0.1"))
        #expect(lines.contains("Is IPv4: true"))
        #expect(lines.contains("Is IPv6: false"))
        #expect(lines.contains { $0.hasPrefix("Reverse DNS lookup") })
        #expect(!lines.contains { $0.hasPrefix("Found ") })
        ports.expectReport(lines)
    }

    @Test func resolvesANameAndComparesReverseDNS() throws {
        let ports = try LoopbackPorts(listeningAt: [1])
        var lines: [String] = []
        let status = Doctor(portBase: ports.base).run(host: "LocalHost", output: { lines.append($0) })
        #expect(status == 0)
        #expect(lines.first == "Checking server:  localhost")
        #expect(lines.contains { $0.hasPrefix("Found ") && $0.hasSuffix(" IP addresses:") })
        #expect(lines.contains(" - 127.0.0.1"))
        // Whatever the hosts file says, the reverse lookup is reported, never fatal.
        #expect(lines.contains { $0.hasPrefix("Reverse DNS lookup") })
        #expect(lines.contains { $0.hasPrefix("TCP Port \(ports.base + 1) (hbbs NAT test): OK in ") })
        #expect(lines.contains("TCP Port \(ports.base) (API): ERROR"))
    }

    @Test func anUnresolvableNameFails() {
        var lines: [String] = []
        let status = Doctor().run(host: "no-such-host.invalid", output: { lines.append($0) })
        #expect(status == 1)
        #expect(lines.last?.hasPrefix("ERROR: cannot resolve no-such-host.invalid") == true)
    }

    @Test func aConnectThatNeverCompletesTimesOut() throws {
        // A listener whose one-slot accept queue is full drops further SYNs, so connect hangs.
        let listener = try TCPListener(port: 0, backlog: 0)
        let loopback = ResolvedAddress(octets: [127, 0, 0, 1])
        let clock = ContinuousClock()
        var timedOut = false
        for _ in 0..<4 where !timedOut {
            let started = clock.now
            do {
                try BlockingConnect.connectAndClose(to: loopback, port: listener.port, timeout: .milliseconds(300))
                // connectAndClose closed its socket, but the kernel keeps the accepted connection queued.
            } catch {
                #expect(error == Errno(rawValue: ETIMEDOUT))
                let elapsed = started.duration(to: clock.now)
                #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(5))
                timedOut = true
            }
        }
        #expect(timedOut)
    }

    @Test func aRefusedConnectFailsWithConnectionRefused() throws {
        let port = try LoopbackPorts(listeningAt: []).base
        #expect(throws: Errno.connectionRefused) {
            try BlockingConnect.connectAndClose(to: ResolvedAddress(octets: [127, 0, 0, 1]), port: port, timeout: .seconds(3))
        }
    }

    @Test func resolverReturnsLoopbackForLocalhostAndNamesIt() throws {
        let addresses = try Resolver.addresses(forHost: "localhost")
        #expect(addresses.contains(ResolvedAddress(octets: [127, 0, 0, 1])))
        #expect(throws: AddressLookupError.self) { try Resolver.addresses(forHost: "no-such-host.invalid") }
        #expect(try Resolver.hostName(for: ResolvedAddress(octets: [127, 0, 0, 1])).isEmpty == false)
    }
}

/// A listening IPv4 TCP socket on 127.0.0.1, closed on deinit. Nothing is ever accepted: the kernel
/// completes handshakes into the accept queue, which is all a connect test needs.
final class TCPListener {
    let fd: Int32
    let port: UInt16

    init(port requested: UInt16, backlog: Int32 = 16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = requested.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let error = Errno.current
            close(fd)
            throw error
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = UInt16(bigEndian: actual.sin_port)
    }

    deinit { close(fd) }
}

/// Six consecutive loopback ports starting at `base`, the doctor's port window, of which the ones
/// at `listeningAt` offsets have listeners and the others are closed.
///
/// Found by binding all six (so they were free a moment ago), then closing the ones meant to be
/// closed; another process grabbing one of those in between is the only, unlikely, way to flake.
struct LoopbackPorts {
    let base: UInt16
    let listening: Set<Int>
    private let listeners: [TCPListener]

    init(listeningAt offsets: Set<Int>) throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let base = UInt16.random(in: 20000...60000, using: &generator)
            guard let all = try? (0..<6).map({ try TCPListener(port: base + UInt16($0)) }) else { continue }
            self.base = base
            self.listening = offsets
            self.listeners = offsets.sorted().map { all[$0] }   // the rest close when `all` goes away
            return
        }
        throw Errno(rawValue: EADDRINUSE)
    }

    /// Checks the six `TCP Port` lines of a doctor report for one address.
    func expectReport(_ lines: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let portLines = lines.filter { $0.hasPrefix("TCP Port ") }
        #expect(portLines.count == 6, sourceLocation: sourceLocation)
        for (index, description) in Doctor.portDescriptions.enumerated() {
            let prefix = "TCP Port \(base + UInt16(index)) (\(description)): "
            guard let line = portLines.first(where: { $0.hasPrefix(prefix) }) else {
                Issue.record("no line for \(prefix)", sourceLocation: sourceLocation)
                continue
            }
            let verdict = line.dropFirst(prefix.count)
            if listening.contains(index) {
                let okPattern = verdict.hasPrefix("OK in ") && verdict.hasSuffix(" ms")
                    && Int(verdict.dropFirst("OK in ".count).dropLast(" ms".count)) != nil
                #expect(okPattern, "\(line)", sourceLocation: sourceLocation)
            } else {
                #expect(verdict == "ERROR", "\(line)", sourceLocation: sourceLocation)
            }
        }
    }
}
