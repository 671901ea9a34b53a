import Testing
@testable import Rendezvous
import RustDeskProtocol

/// PROTOCOL.md §5.2 and checklist items 12–26, at the rules level (no sockets).
@Suite(.timeLimit(.minutes(1)))
struct RegistrationTests {
    let a = SocketAddress("[::ffff:198.51.100.2]:40000")!
    let aOtherPort = SocketAddress("[::ffff:198.51.100.2]:40001")!
    let b = SocketAddress("[::ffff:203.0.113.5]:50000")!
    let uuid: [UInt8] = Array("machine-uid-1".utf8)
    let pk1 = [UInt8](repeating: 1, count: 32)
    let pk2 = [UInt8](repeating: 2, count: 32)

    func register(_ core: RendezvousCore, id: String = "100000001", uuid: [UInt8]? = nil, pk: [UInt8]? = nil, from: SocketAddress, now: Millis) -> RegisterPkResponse.Result? {
        let m = RegisterPk(id: id, uuid: uuid ?? self.uuid, pk: pk ?? pk1)
        switch core.handleRegisterPk(m, from: from, now: now) {
        case .drop: return nil
        case .reply(let r): return r
        case .decided(let r, _): return r
        case .needsDatabaseLookup: return core.completeRegisterPk(m, from: from, loaded: nil, now: now).0
        }
    }

    @Test func unknownPeerIsAskedForItsKeyAndNothingIsStored() {
        let core = RendezvousCore(settings: .init())
        #expect(core.handleRegisterPeer(RegisterPeer(id: "999999999"), from: a, now: 1000)
                == .reply(requestPk: true, configUpdate: nil, ipChanged: false))
        #expect(core.registry.peer("999999999") == nil)
        #expect(core.handleRegisterPeer(RegisterPeer(id: ""), from: a, now: 1000) == .drop)
    }

    @Test func shortIDsAndEmptyFieldsAreRefused() {
        let core = RendezvousCore(settings: .init())
        #expect(register(core, id: "12345", from: a, now: 0) == .uuidMismatch)
        #expect(core.handleRegisterPk(RegisterPk(id: "100000001", uuid: [], pk: pk1), from: a, now: 0) == .drop)
        #expect(core.handleRegisterPk(RegisterPk(id: "100000001", uuid: uuid, pk: []), from: a, now: 0) == .drop)
    }

    @Test func newRegistrationIsPersistedAndOnlineImmediately() {
        let core = RendezvousCore(settings: .init())
        let m = RegisterPk(id: "100000001", uuid: uuid, pk: pk1)
        #expect(core.handleRegisterPk(m, from: a, now: 5_000) == .needsDatabaseLookup)
        let (result, persist) = core.completeRegisterPk(m, from: a, loaded: nil, now: 5_000)
        #expect(result == .ok)
        guard case .insert(let guid, "100000001", let u, let p, "::ffff:198.51.100.2")? = persist else {
            Issue.record("expected an insert, got \(String(describing: persist))"); return
        }
        #expect(guid.count == 16 && guid[6] >> 4 == 4)
        #expect(u == uuid && p == pk1)
        #expect(core.registry.isOnline("100000001", now: 5_000))
        #expect(core.handleRegisterPeer(RegisterPeer(id: "100000001"), from: a, now: 6_000)
                == .reply(requestPk: false, configUpdate: nil, ipChanged: false))
    }

    @Test func identityChecksFollowStepFive() {
        let core = RendezvousCore(settings: .init())
        #expect(register(core, from: a, now: 0) == .ok)
        // Different uuid → mismatch; nothing changes.
        #expect(register(core, uuid: Array("other".utf8), from: a, now: 10_000) == .uuidMismatch)
        // Same uuid, same IP, new pk → OK, update (uuid column not touched).
        let m = RegisterPk(id: "100000001", uuid: uuid, pk: pk2)
        guard case .decided(.ok, .update(_, "100000001", let p, _)?) = core.handleRegisterPk(m, from: a, now: 20_000) else {
            Issue.record("expected an update"); return
        }
        #expect(p == pk2)
        // Different IP and different pk → mismatch.
        #expect(register(core, pk: pk1, from: b, now: 30_000) == .uuidMismatch)
        // Different IP, same pk → OK, info.ip updated.
        guard case .decided(.ok, .update(_, _, _, "::ffff:203.0.113.5")?) = core.handleRegisterPk(RegisterPk(id: "100000001", uuid: uuid, pk: pk2), from: b, now: 40_000) else {
            Issue.record("expected an ip update"); return
        }
        #expect(core.ipChanges.entry("100000001")?.ips["::ffff:203.0.113.5"] == 1)
    }

    @Test func perPeerRateLimitAllowsThreeInABurst() {
        let core = RendezvousCore(settings: .init())
        #expect(register(core, from: a, now: 0) == .ok)
        #expect(register(core, from: a, now: 1_000) == .ok)
        #expect(register(core, from: a, now: 2_000) == .ok)
        #expect(register(core, from: a, now: 3_000) == .tooFrequent)
        // ≥ 7 s after the last accepted one: accepted again.
        #expect(register(core, from: a, now: 9_000) == .ok)
    }

    @Test func perIPBlockerRefusesTheThirtyThirdInABurstThenTheThirtySecond() {
        let core = RendezvousCore(settings: .init())
        var now: Millis = 0
        for i in 0..<32 {
            #expect(register(core, id: "2000000\(String(format: "%02d", i))", from: a, now: now) == .ok, "request \(i + 1)")
            now += 100
        }
        #expect(register(core, id: "200000099", from: a, now: now) == .tooFrequent)
        now += 62_000
        for i in 0..<31 {
            #expect(register(core, id: "3000000\(String(format: "%02d", i))", from: a, now: now) == .ok, "second burst \(i + 1)")
            now += 100
        }
        #expect(register(core, id: "300000099", from: a, now: now) == .tooFrequent)
    }

    @Test func perIPBlockerCapsNewIDsPerDayButKeepsKnownOnes() {
        let blocker = IPBlocker()
        var now: Millis = 0
        #expect(blocker.allow(ip: "1.2.3.4", id: "first", now: now)) // creates the entry, not recorded
        var accepted = 0
        for i in 0..<400 {
            // Stay under the 60-s limit: bursts of 25, then more than 60 quiet seconds.
            now += i % 25 == 0 ? 62_000 : 100
            if blocker.allow(ip: "1.2.3.4", id: "id\(i)", now: now) { accepted += 1 }
        }
        #expect(accepted == 301)
        now += 62_000
        #expect(blocker.allow(ip: "1.2.3.4", id: "id5", now: now))
        now += 100
        #expect(!blocker.allow(ip: "1.2.3.4", id: "brand-new", now: now))
    }

    @Test func blockerLimitsCanBeSwitchedOff() {
        let blocker = IPBlocker(limits: .init(perWindow: 0, newIDsPerDay: 0))
        for i in 0..<1_000 { #expect(blocker.allow(ip: "1.2.3.4", id: "id\(i)", now: Millis(i))) }
        #expect(blocker.entry("1.2.3.4")?.ids.isEmpty == true, "no ID set kept when the daily limit is off")
    }

    @Test func blockerTableIsBounded() {
        let blocker = IPBlocker(limits: .init(maxTrackedIPs: 10))
        for i in 0..<10 { #expect(blocker.allow(ip: "10.0.0.\(i)", id: "x", now: 0)) }
        #expect(!blocker.allow(ip: "10.0.1.1", id: "x", now: 1_000))
        #expect(blocker.refusedBecauseFull == 1)
        // After both windows expire, old entries make room.
        #expect(blocker.allow(ip: "10.0.1.1", id: "x", now: 86_402_000))
    }

    @Test func portChangeIsAcceptedSilentlyButIPChangeAsksForTheKey() {
        let core = RendezvousCore(settings: .init())
        #expect(register(core, from: a, now: 0) == .ok)
        #expect(core.handleRegisterPeer(RegisterPeer(id: "100000001"), from: aOtherPort, now: 1_000)
                == .reply(requestPk: false, configUpdate: nil, ipChanged: false))
        #expect(core.registry.peer("100000001")?.socketAddr == aOtherPort)
        #expect(core.handleRegisterPeer(RegisterPeer(id: "100000001"), from: b, now: 2_000)
                == .reply(requestPk: true, configUpdate: nil, ipChanged: true))
        #expect(core.registry.peer("100000001")?.socketAddr == aOtherPort, "not updated until RegisterPk")
    }

    @Test func loopbackSourcesAreExemptFromIPChangeAfterNormalisation() {
        let core = RendezvousCore(settings: .init())
        #expect(register(core, from: a, now: 0) == .ok)
        let loop = SocketAddress("[::ffff:127.0.0.1]:999")!
        #expect(core.handleRegisterPeer(RegisterPeer(id: "100000001"), from: loop, now: 1_000)
                == .reply(requestPk: false, configUpdate: nil, ipChanged: false))
    }

    @Test func peersGoOfflineAfterThirtySeconds() {
        let core = RendezvousCore(settings: .init())
        #expect(register(core, from: a, now: 100_000) == .ok)
        #expect(core.registry.isOnline("100000001", now: 129_999))
        #expect(!core.registry.isOnline("100000001", now: 130_000))
        // 64-bit arithmetic: a month later is still offline.
        #expect(!core.registry.isOnline("100000001", now: 100_000 + 30 * 86_400_000))
    }

    @Test func configUpdateFollowsWhenServerSerialIsNewer() {
        let core = RendezvousCore(settings: .init(), serial: 5, rendezvousServers: ["a.example.com"])
        #expect(core.handleRegisterPeer(RegisterPeer(id: "1", serial: 3), from: a, now: 0)
                == .reply(requestPk: true, configUpdate: ConfigUpdate(serial: 5, rendezvousServers: ["a.example.com"]), ipChanged: false))
        #expect(core.handleRegisterPeer(RegisterPeer(id: "1", serial: 5), from: a, now: 0)
                == .reply(requestPk: true, configUpdate: nil, ipChanged: false))
    }

    @Test func configUpdateIsAcceptedOnlyFromLoopbackWithANewerSerial() {
        let core = RendezvousCore(settings: .init())
        core.handleConfigUpdate(ConfigUpdate(serial: 9, rendezvousServers: ["x"]), from: a, resolves: { _ in true })
        #expect(core.serial == 0)
        core.handleConfigUpdate(ConfigUpdate(serial: 9, rendezvousServers: ["x", "", "bad"]), from: SocketAddress("127.0.0.1:5")!, resolves: { $0 != "bad" })
        #expect(core.serial == 9)
        #expect(core.configUpdate(forClientSerial: 3) == ConfigUpdate(serial: 9, rendezvousServers: ["x"]))
        core.handleConfigUpdate(ConfigUpdate(serial: 4), from: SocketAddress("127.0.0.1:5")!, resolves: { _ in true })
        #expect(core.serial == 9)
    }

    @Test func restartedServerLoadsFromDatabaseAndAcceptsTheSameKey() {
        let core = RendezvousCore(settings: .init())
        let row = PeerRecord(guid: [UInt8](repeating: 7, count: 16), uuid: uuid, pk: pk1, ip: "::ffff:198.51.100.2")
        #expect(core.handleRegisterPeer(RegisterPeer(id: "100000001"), from: a, now: 0) == .reply(requestPk: true, configUpdate: nil, ipChanged: false))
        let m = RegisterPk(id: "100000001", uuid: uuid, pk: pk1)
        #expect(core.handleRegisterPk(m, from: a, now: 1_000) == .needsDatabaseLookup)
        let (r, persist) = core.completeRegisterPk(m, from: a, loaded: row, now: 1_000)
        #expect(r == .ok && persist == nil)
        #expect(core.registry.isOnline("100000001", now: 1_500), "accepted RegisterPk refreshes online state (decision 8)")
    }

    @Test func onlineStatesAreExactLengthMSBFirst() {
        let core = RendezvousCore(settings: .init())
        #expect(register(core, id: "111111111", from: a, now: 0) == .ok)
        #expect(register(core, id: "333333333", from: b, now: 0) == .ok)
        #expect(core.onlineStates(["111111111", "999999999", "333333333"], now: 1).states == [0xA0])
        #expect(core.onlineStates(["111111111", "2", "3"], now: 1).states == [0x80])
        #expect(core.onlineStates([], now: 1).states == [])
        #expect(core.onlineStates(Array(repeating: "x", count: 9), now: 1).states.count == 2)
    }
}
