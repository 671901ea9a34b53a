import Testing
@testable import Rendezvous
import RustDeskProtocol

/// The compact record (issue #5) must give back exactly what was stored.
@Suite(.timeLimit(.minutes(1)))
struct PeerRecordTests {
    @Test func everyFieldReadsBackAsStored() {
        let v6 = SocketAddress("[2001:db8::7]:21116")!
        let v4 = SocketAddress("198.51.100.2:40000")!
        let mapped = SocketAddress("[::ffff:198.51.100.2]:40000")!
        var r = PeerRecord(socketAddr: v6, lastRegTime: 0, guid: [1, 2], uuid: Array("machine-uid".utf8),
                           pk: [UInt8](repeating: 9, count: 32), ip: "::ffff:198.51.100.2", regPkCount: 3, regPkTime: 7)
        #expect(r.socketAddr == v6)
        #expect(r.lastRegTime == 0, "0 is a time, not 'never'")
        #expect(r.regPkTime == 7 && r.regPkCount == 3)
        #expect(r.guid == [1, 2] && r.uuid == Array("machine-uid".utf8) && r.pk == [UInt8](repeating: 9, count: 32))
        #expect(r.ip == "::ffff:198.51.100.2")
        #expect(r.tcpRoute == nil)
        r.socketAddr = v4
        #expect(r.socketAddr == v4 && r.socketAddr != mapped, "the family is kept: 1.2.3.4 is not ::ffff:1.2.3.4")
        r.socketAddr = mapped
        #expect(r.socketAddr == mapped)
        r.lastRegTime = nil
        r.regPkTime = nil
        #expect(r.lastRegTime == nil && r.regPkTime == nil && !r.isOnline(now: 0))
        r.tcpRoute = TCPRoute(worker: 3, slot: 70_000, generation: 65_535)
        #expect(r.tcpRoute == TCPRoute(worker: 3, slot: 70_000, generation: 65_535))
        r.tcpRoute = nil
        #expect(r.tcpRoute == nil)
    }

    @Test func emptyFieldsNeedNoStorageAndCompareByContent() {
        let empty = PeerRecord()
        #expect(empty.bytes == nil && !empty.hasGUID && !empty.hasUUID && !empty.hasPk)
        #expect(empty.guid.isEmpty && empty.ip.isEmpty && empty.uuidEquals([]) && !empty.pkEquals([1]))
        #expect(empty.socketAddr == .unspecifiedV4 && empty.lastRegTime == nil)

        var a = PeerRecord(uuid: [1], pk: [2, 3])
        var b = a
        #expect(a == b)
        b.setKeys(guid: [], uuid: [1], pk: [2, 3], ip: "")
        #expect(a == b, "equal contents in different objects")
        b.setKeys(guid: [], uuid: [1, 2], pk: [3], ip: "")
        #expect(a != b, "same bytes split differently are different fields")
        #expect(a.uuidEquals([1]) && a.pkEquals([2, 3]) && !a.pkEquals([2]))
        a.setKeys(guid: [], uuid: [], pk: [], ip: "")
        #expect(a == PeerRecord())
    }
}
