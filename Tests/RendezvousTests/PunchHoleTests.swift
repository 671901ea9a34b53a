import Testing
@testable import Rendezvous
import RustDeskProtocol

/// PROTOCOL.md §5.3 and checklist items 31–47 at the rules level.
@Suite(.timeLimit(.minutes(1)))
struct PunchHoleTests {
    static let key = try! Ed25519KeyPair(seed: [UInt8](repeating: 0, count: 32))
    let bAddr = SocketAddress("[::ffff:203.0.113.5]:50000")!
    let aAddr = SocketAddress("[::ffff:198.51.100.7]:41000")!
    let pk = [UInt8](repeating: 0x11, count: 32)

    func core(relays: [String] = [], alwaysUseRelay: Bool = false, licence: String = "K", mask: LANMask? = nil) -> RendezvousCore {
        let c = RendezvousCore(settings: .init(licenceKey: licence, signingKey: Self.key, mask: mask, localIP: "10.0.0.1"),
                               relays: RelaySelector(configured: relays), alwaysUseRelay: alwaysUseRelay)
        let m = RegisterPk(id: "123456789", uuid: [1, 2, 3], pk: pk)
        _ = c.completeRegisterPk(m, from: bAddr, loaded: nil, now: 1_000)
        _ = c.completeRegisterPk(RegisterPk(id: "222222222", uuid: [4], pk: pk), from: bAddr, loaded: nil, now: 0)
        return c
    }

    func punch(_ c: RendezvousCore, id: String = "123456789", key: String = "K", from: SocketAddress? = nil, ws: Bool = false, nat: NatType = .asymmetric, now: Millis = 2_000) -> RendezvousCore.PunchHoleDecision {
        c.handlePunchHoleRequest(PunchHoleRequest(id: id, natType: nat, licenceKey: key), from: from ?? aAddr, ws: ws, now: now, unixSeconds: 0, loaded: .some(nil), timeMicros: 12345)
    }

    @Test func wrongLicenceKeyIsRefusedBeforeTheLookup() {
        let c = core()
        #expect(punch(c, key: "wrong") == .fail(.licenseMismatch))
        #expect(punch(c, id: "999999999", key: "wrong") == .fail(.licenseMismatch))
        #expect(punch(core(licence: ""), key: "anything") != .fail(.licenseMismatch))
    }

    @Test func unknownAndOfflineIDsFail() {
        let c = core()
        #expect(punch(c, id: "999999999") == .fail(.idNotExist))
        #expect(punch(c, id: "222222222", now: 40_000) == .fail(.offline))
        #expect(c.handlePunchHoleRequest(PunchHoleRequest(id: "555555555", licenceKey: "K"), from: aAddr, ws: false, now: 0, unixSeconds: 0, timeMicros: 0) == .needsDatabaseLookup)
    }

    @Test func onlinePeerGetsAPunchHoleCarryingAsExactAddress() throws {
        let c = core(relays: ["r.example.com"])
        guard case .sendToPeer(let to, .punchHole(let ph)) = punch(c) else { Issue.record("expected PunchHole"); return }
        #expect(to == bAddr)
        #expect(AddrMangle.decode(ph.socketAddr) == aAddr.normalized)
        #expect(ph.natType == .asymmetric)
        #expect(ph.relayServer == "r.example.com")
        #expect(c.punchLog.entries(start: 0, count: 10).map(\.to) == ["203.0.113.5"])
    }

    @Test func samePublicIPGetsFetchLocalAddrExceptOverWebSocket() {
        let c = core()
        let sameIP = SocketAddress("203.0.113.5:41000")!
        guard case .sendToPeer(_, .fetchLocalAddr) = punch(c, from: sameIP) else { Issue.record("expected FetchLocalAddr"); return }
        guard case .sendToPeer(_, .punchHole) = punch(c, from: sameIP, ws: true) else { Issue.record("expected PunchHole over WS"); return }
        // ALWAYS_USE_RELAY does not change the same-intranet branch.
        guard case .sendToPeer(_, .fetchLocalAddr) = punch(core(alwaysUseRelay: true), from: sameIP) else { Issue.record("expected FetchLocalAddr"); return }
    }

    @Test func alwaysUseRelayForcesSymmetric() {
        guard case .sendToPeer(_, .punchHole(let ph)) = punch(core(alwaysUseRelay: true)) else { Issue.record("expected PunchHole"); return }
        #expect(ph.natType == .symmetric)
    }

    @Test func relaysRotateRoundRobin() {
        let c = core(relays: ["r1", "r2"])
        var seen: [String] = []
        for _ in 0..<4 {
            if case .sendToPeer(_, .punchHole(let ph)) = punch(c) { seen.append(ph.relayServer) }
        }
        #expect(seen == ["r1", "r2", "r1", "r2"])
    }

    @Test func lanMaskSendsLocalIPAndForcesRelayWhenOnlyOneSideIsInside() {
        let mask = LANMask("203.0.113.0/24")
        let c = core(relays: ["r"], mask: mask)
        guard case .sendToPeer(_, .punchHole(let ph)) = punch(c) else { Issue.record("expected PunchHole"); return }
        #expect(ph.relayServer == "10.0.0.1")
        #expect(ph.natType == .symmetric)
    }

    @Test func punchHoleSentBecomesASignedResponseForA() throws {
        let c = core()
        let sent = PunchHoleSent(socketAddr: AddrMangle.encode(aAddr, timeMicros: 99), id: "123456789", relayServer: "x",
                                 natType: .asymmetric, version: "1.4.0")
        let bTCP = SocketAddress("[::ffff:203.0.113.5]:50123")!
        let (target, message) = c.handlePunchHoleSent(sent, from: bTCP, record: c.registry.peer("123456789"), timeMicros: 5)
        #expect(target == aAddr.normalized)
        guard case .punchHoleResponse(let r) = message else { Issue.record("expected PunchHoleResponse"); return }
        #expect(AddrMangle.decode(r.socketAddr) == bTCP.normalized)
        #expect(r.relayServer == "x" && r.union == .natType(.asymmetric))
        #expect(r.pk.count == 109)
        let opened = try Self.key.publicKey.open(signedMessage: r.pk)
        #expect(try IdPk(serializedBytes: opened) == IdPk(id: "123456789", pk: pk))
        // Empty version → no pk.
        var noVersion = sent
        noVersion.version = ""
        guard case .punchHoleResponse(let r2) = c.handlePunchHoleSent(noVersion, from: bTCP, record: c.registry.peer("123456789"), timeMicros: 5).message else { return }
        #expect(r2.pk.isEmpty)
    }

    @Test func localAddrCopiesTheLANAddressUnchanged() {
        let c = core()
        let lan = AddrMangle.encode(SocketAddress("192.168.1.20:21118")!, timeMicros: 777)
        let m = LocalAddr(socketAddr: AddrMangle.encode(aAddr, timeMicros: 1), localAddr: lan, relayServer: "x", id: "123456789", version: "1.4.0")
        let (target, message) = c.handleLocalAddr(m, record: c.registry.peer("123456789"))
        #expect(target == aAddr.normalized)
        guard case .punchHoleResponse(let r) = message else { Issue.record("expected response"); return }
        #expect(r.socketAddr == lan && r.union == .isLocal(true) && r.pk.count == 109 && r.relayServer == "x")
    }

    @Test func requestRelayIsForwardedWithAsAddress() {
        let c = core()
        let fwd = c.handleRequestRelay(RequestRelay(id: "123456789", uuid: "U"), from: aAddr, timeMicros: 3)
        guard case (let to, .requestRelay(let rr))? = fwd else { Issue.record("expected forward"); return }
        #expect(to == bAddr && rr.uuid == "U" && rr.id == "123456789")
        #expect(AddrMangle.decode(rr.socketAddr) == aAddr.normalized)
        #expect(c.handleRequestRelay(RequestRelay(id: "999999999", uuid: "U"), from: aAddr, timeMicros: 3) == nil)
    }

    @Test func relayResponseIsRewrittenForA() {
        let c = core(relays: ["rr"])
        let m = RelayResponse(socketAddr: AddrMangle.encode(aAddr, timeMicros: 9), uuid: "U", relayServer: "r", union: .id("123456789"), version: "1.4.0")
        let (target, message) = c.handleRelayResponse(m, record: c.registry.peer("123456789"))
        #expect(target == aAddr.normalized)
        guard case .relayResponse(let r) = message else { Issue.record("expected RelayResponse"); return }
        #expect(r.socketAddr.isEmpty && r.uuid == "U" && r.relayServer == "r" && r.version == "1.4.0")
        guard case .pk(let signed)? = r.union else { Issue.record("expected pk"); return }
        #expect(signed.count == 109)
        var local = m
        local.relayServer = "LOCAL-IP"
        guard case .relayResponse(let r2) = c.handleRelayResponse(local, record: nil).message else { return }
        #expect(r2.relayServer == "rr")
    }

    @Test func punchLogSuppressesRepeatsWithinAMinuteAndIsCapped() {
        let log = PunchRequestLog()
        log.append(.init(unixSeconds: 0, at: 0, from: "1.1.1.1", id: "x", to: "2.2.2.2"))
        log.append(.init(unixSeconds: 0, at: 30_000, from: "1.1.1.1", id: "x", to: "2.2.2.2"))
        #expect(log.count == 1)
        log.append(.init(unixSeconds: 0, at: 61_000, from: "1.1.1.1", id: "x", to: "2.2.2.2"))
        #expect(log.count == 2)
        for i in 0..<(PunchRequestLog.capacity + 5) { log.append(.init(unixSeconds: 0, at: 0, from: "s\(i)", id: "y", to: "")) }
        #expect(log.count == PunchRequestLog.capacity)
        #expect(log.entries(start: 0, count: 1).first?.from == "s5")
    }
}
