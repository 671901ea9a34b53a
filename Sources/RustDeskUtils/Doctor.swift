import RustDeskProtocol
import URing

/// `rustdesk-utils doctor HOST` (PROTOCOL.md §11.4): resolves a server, and for each address prints
/// its family, its reverse-DNS name and whether each server TCP port accepts connections.
///
/// Deliberate differences from upstream, which is a best-effort diagnostic anyway:
/// * every connect is bounded by `connectTimeout` (upstream waits for the kernel's SYN retries,
///   about two minutes per filtered port);
/// * a failed reverse lookup is printed and the checks go on (upstream aborts the whole tool,
///   which hides the port results exactly when DNS is the thing being debugged);
/// * a host that does not resolve prints an error and exits 1 (upstream panics).
/// Closed ports do not change the exit status: the report is the result.
public struct Doctor: Sendable {
    /// How long one TCP connect may take before the port is reported as ERROR. Long enough for an
    /// intercontinental handshake with a retransmitted SYN (the first retry is at 1 s), short
    /// enough that a fully filtered host is reported within 20 s.
    public static let connectTimeout: Duration = .seconds(3)

    /// TEST-ONLY. When set to a port number, the checked ports are that number and the five after
    /// it instead of 21114…21119, so tests can point the doctor at listeners on free loopback ports.
    /// Not a user feature: it is not in the usage text, and values outside 1…65530 are ignored.
    public static let portBaseVariable = "RINGDESK_DOCTOR_PORT_BASE"

    /// The ports checked, in order, with their descriptions (§1.2); `defaultPortBase` + index.
    public static let portDescriptions = [
        "API",              // 21114, Pro web console; OSS does not listen here
        "hbbs NAT test",    // 21115, P-1
        "hbbs",             // 21116, P (TCP rendezvous)
        "hbbr relay",       // 21117, Q
        "hbbs WebSocket",   // 21118, P+2
        "hbbr WebSocket",   // 21119, Q+2
    ]
    public static let defaultPortBase: UInt16 = 21114

    /// The first port checked; the others follow it.
    public var portBase: UInt16
    public var connectTimeout: Duration

    public init(portBase: UInt16 = Doctor.defaultPortBase, connectTimeout: Duration = Doctor.connectTimeout) {
        self.portBase = portBase
        self.connectTimeout = connectTimeout
    }

    /// The port base from `portBaseVariable`, or `defaultPortBase`.
    public static func portBase(environment: (String) -> String?) -> UInt16 {
        let limit = UInt16.max - UInt16(portDescriptions.count - 1)
        guard let text = environment(portBaseVariable), let base = UInt16(text), base >= 1, base <= limit else {
            return defaultPortBase
        }
        return base
    }

    /// Runs the checks for `host` (trimmed and lower-cased first) and prints the report.
    /// - Returns: 0 once the report is printed, 1 if the host name does not resolve.
    public func run(host rawHost: String, output: (String) -> Void) -> Int32 {
        var trimmed = Substring(rawHost)
        while trimmed.first?.isWhitespace == true { trimmed.removeFirst() }
        while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
        let host = trimmed.lowercased()
        output("Checking server:  \(host)")
        if let literal = IPAddress(host) {
            check(literal, hostName: nil, output: output)
            return 0
        }
        let addresses: [ResolvedAddress]
        do {
            addresses = try Resolver.addresses(forHost: host)
        } catch {
            output("ERROR: cannot resolve \(host): \(error)")
            return 1
        }
        output("")
        output("Found \(addresses.count) IP addresses:")
        for address in addresses { output(" - \(IPAddress(address))") }
        for address in addresses { check(IPAddress(address), hostName: host, output: output) }
        return 0
    }

    /// The per-address part of the report. `hostName` is the name the user gave, nil for an IP literal.
    func check(_ ip: IPAddress, hostName: String?, output: (String) -> Void) {
        let address = ResolvedAddress(ip)
        output("")
        output("Checking IP address: \(ip)")
        output("Is IPv4: \(address.isIPv4)")
        output("Is IPv6: \(address.isIPv6)")
        do {
            let reverse = try Resolver.hostName(for: address)
            if let hostName {
                if reverse.lowercased() == hostName {
                    output("Reverse DNS lookup: '\(reverse)' MATCHES server address")
                } else {
                    output("Reverse DNS lookup: '\(reverse)' DOESN'T MATCH server address '\(hostName)'")
                }
            } else {
                output("Reverse DNS lookup: '\(reverse)'")
            }
        } catch {
            output("Reverse DNS lookup failed: \(error)")
        }
        let clock = ContinuousClock()
        for (index, description) in Self.portDescriptions.enumerated() {
            let port = portBase + UInt16(index)
            let started = clock.now
            do {
                try BlockingConnect.connectAndClose(to: address, port: port, timeout: connectTimeout)
                let elapsed = started.duration(to: clock.now)
                output("TCP Port \(port) (\(description)): OK in \(Self.wholeMilliseconds(elapsed)) ms")
            } catch {
                output("TCP Port \(port) (\(description)): ERROR")
            }
        }
    }

    static func wholeMilliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension IPAddress {
    /// The protocol module's address value for a resolver result.
    init(_ address: ResolvedAddress) {
        if address.isIPv4 {
            let o = address.octets
            self = .v4(IPv4Address(o[0], o[1], o[2], o[3]))
        } else {
            self = .v6(IPv6Address(octets: address.octets))
        }
    }
}

extension ResolvedAddress {
    /// The resolver's address value for a parsed IP literal (no scope: literals with `%zone` are
    /// not accepted by `IPAddress`).
    init(_ ip: IPAddress) {
        switch ip {
        case .v4(let a):
            let o = a.octets
            self.init(octets: [o.0, o.1, o.2, o.3])
        case .v6(let a):
            self.init(octets: a.octets)
        }
    }
}
