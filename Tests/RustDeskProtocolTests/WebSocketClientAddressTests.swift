import Testing
@testable import RustDeskProtocol

private let key = "dGhlIHNhbXBsZSBub25jZQ=="

private func upgrade(_ headers: [(String, String)]) -> WebSocketUpgradeRequest {
    WebSocketUpgradeRequest(target: "/ws/id", headers: headers.map { WebSocketUpgradeRequest.HeaderField(name: $0.0, value: $0.1) }, key: key)
}

private let directPeer = SocketAddress("198.51.100.7:40000")!
private let loopbackPeer = SocketAddress("127.0.0.1:51000")!

@Suite("WebSocket real client address", .timeLimit(.minutes(1)))
struct WebSocketClientAddressTests {
    @Test func xRealIPFromATrustedProxyBecomesTheAddressWithPortZero() {
        // Checklist item 50.
        let request = upgrade([("X-Real-IP", "203.0.113.9")])
        #expect(request.clientAddress(peer: loopbackPeer, trusting: .loopbackOnly) == SocketAddress("203.0.113.9:0")!)
    }

    @Test func aForwardedForListIsIgnored() {
        // Checklist item 50.
        let request = upgrade([("X-Forwarded-For", "1.1.1.1, 2.2.2.2")])
        #expect(request.clientAddress(peer: directPeer, trusting: .everyone) == directPeer)
    }

    @Test func xForwardedForIsUsedWhenXRealIPIsAbsent() {
        let request = upgrade([("x-forwarded-for", "192.0.2.33")])
        #expect(request.clientAddress(peer: directPeer, trusting: .everyone) == SocketAddress("192.0.2.33:0")!)
    }

    @Test func xRealIPWinsOverXForwardedFor() {
        let request = upgrade([("X-Forwarded-For", "192.0.2.33"), ("x-real-ip", "203.0.113.9")])
        #expect(request.clientAddress(peer: directPeer, trusting: .everyone) == SocketAddress("203.0.113.9:0")!)
    }

    @Test func anUnparsableXRealIPKeepsThePeerEvenWhenXForwardedForIsValid() {
        let request = upgrade([("X-Real-IP", "not-an-ip"), ("X-Forwarded-For", "192.0.2.33")])
        #expect(request.clientAddress(peer: directPeer, trusting: .everyone) == directPeer)
    }

    @Test func anIPv6ValueBecomesAnIPv6AddressWithPortZero() {
        let request = upgrade([("X-Real-IP", "2001:db8::1")])
        #expect(request.clientAddress(peer: directPeer, trusting: .everyone) == SocketAddress("[2001:db8::1]:0")!)
    }

    @Test(arguments: ["::ffff:1.2.3.4", "1.2.3.4:80", "[2001:db8::1]", "2001:db8::1%eth0", "01.2.3.4", "1.2.3", "", "1.1.1.1,2.2.2.2"])
    func aValueThatIsNotOnePlainIPKeepsThePeer(value: String) {
        let request = upgrade([("X-Real-IP", value)])
        #expect(request.clientAddress(peer: directPeer, trusting: .everyone) == directPeer)
    }

    @Test func theHexIPv4MappedFormIsAcceptedAsIPv6() {
        let request = upgrade([("X-Real-IP", "::ffff:102:304")])
        let address = request.clientAddress(peer: directPeer, trusting: .everyone)
        #expect(address == SocketAddress(IPv6Address(high: 0, low: 0xFFFF_0102_0304), port: 0))
    }

    @Test func aRequestWithoutForwardingHeadersKeepsThePeer() {
        #expect(upgrade([("Host", "example.com")]).clientAddress(peer: loopbackPeer, trusting: .everyone) == loopbackPeer)
    }

    @Test func anUntrustedPeerCannotClaimAnotherAddress() {
        let request = upgrade([("X-Real-IP", "203.0.113.9")])
        #expect(request.clientAddress(peer: directPeer, trusting: .loopbackOnly) == directPeer)
        #expect(request.clientAddress(peer: loopbackPeer, trusting: .only([])) == loopbackPeer)
    }

    @Test func aDualStackLoopbackPeerIsTrustedByDefault() {
        let request = upgrade([("X-Real-IP", "203.0.113.9")])
        let mapped = SocketAddress("[::ffff:127.0.0.1]:51000")!
        let v6 = SocketAddress("[::1]:51000")!
        #expect(request.clientAddress(peer: mapped, trusting: .loopbackOnly) == SocketAddress("203.0.113.9:0")!)
        #expect(request.clientAddress(peer: v6, trusting: .loopbackOnly) == SocketAddress("203.0.113.9:0")!)
    }

    @Test func aListedProxyPrefixIsTrustedAfterNormalisation() throws {
        let proxies = TrustedProxies.only([try #require(TrustedProxies.Prefix("10.1.0.0/16"))])
        let request = upgrade([("X-Real-IP", "203.0.113.9")])
        #expect(request.clientAddress(peer: SocketAddress("[::ffff:10.1.200.3]:1")!, trusting: proxies) == SocketAddress("203.0.113.9:0")!)
        #expect(request.clientAddress(peer: SocketAddress("10.2.0.1:1")!, trusting: proxies) == SocketAddress("10.2.0.1:1")!)
    }
}

@Suite("Trusted proxy prefixes", .timeLimit(.minutes(1)))
struct TrustedProxiesPrefixTests {
    @Test func prefixesParseAndClearHostBits() throws {
        let v4 = try #require(TrustedProxies.Prefix("192.168.77.9/20"))
        #expect(v4.address == IPAddress("192.168.64.0") && v4.length == 20)
        let v6 = try #require(TrustedProxies.Prefix("2001:db8:abcd::1/33"))
        #expect(v6.address == IPAddress("2001:db8:8000::") && v6.length == 33)
        #expect(TrustedProxies.Prefix("203.0.113.5")?.length == 32)
        #expect(TrustedProxies.Prefix("fd00::5")?.length == 128)
    }

    @Test func anIPv4MappedPrefixIsStoredAsIPv4() {
        #expect(TrustedProxies.Prefix("::ffff:10.0.0.0/104") == TrustedProxies.Prefix("10.0.0.0/8"))
    }

    @Test(arguments: ["10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/", "10.0.0.0/8/8", "host/8", ""])
    func malformedPrefixesAreRejected(text: String) {
        #expect(TrustedProxies.Prefix(text) == nil)
    }

    @Test func containmentFollowsThePrefixLength() throws {
        let v4 = try #require(TrustedProxies.Prefix("172.16.0.0/12"))
        #expect(v4.contains(IPAddress("172.31.255.255")!))
        #expect(!v4.contains(IPAddress("172.32.0.0")!))
        let v6 = try #require(TrustedProxies.Prefix("2001:db8::/96"))
        #expect(v6.contains(IPAddress("2001:db8::ffff:ffff")!))
        #expect(!v6.contains(IPAddress("2001:db8::1:0:0")!))
        let all4 = try #require(TrustedProxies.Prefix("0.0.0.0/0"))
        #expect(all4.contains(IPAddress("255.1.2.3")!) && !all4.contains(IPAddress("2001:db8::1")!))
        let all6 = try #require(TrustedProxies.Prefix("::/0"))
        #expect(all6.contains(IPAddress("2001:db8::1")!) && !all6.contains(IPAddress("10.0.0.1")!))
    }

    @Test func everyoneTrustsAnyPeerAndLoopbackOnlyTrustsOnlyLoopback() {
        #expect(TrustedProxies.everyone.trusts(IPAddress("8.8.8.8")!))
        #expect(TrustedProxies.loopbackOnly.trusts(IPAddress("127.45.6.7")!))
        #expect(!TrustedProxies.loopbackOnly.trusts(IPAddress("8.8.8.8")!))
        #expect(!TrustedProxies.loopbackOnly.trusts(IPAddress("::2")!))
    }
}
