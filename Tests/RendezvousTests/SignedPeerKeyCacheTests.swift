import Testing
@testable import Rendezvous
import RustDeskProtocol

/// §4.4: the signed IdPk blob, made once per (ID, key) and reused.
@Suite(.timeLimit(.minutes(1)))
struct SignedPeerKeyCacheTests {
    static let key = try! Ed25519KeyPair(seed: [UInt8](repeating: 0, count: 32))

    func blob(_ id: String, _ pk: [UInt8]) -> [UInt8] { Self.key.sign(message: IdPk(id: id, pk: pk).serializedBytes()) }

    @Test func aCachedBlobIsTheSignatureAndIsNotMadeTwice() {
        let cache = SignedPeerKeyCache()
        let pk = [UInt8](repeating: 0x11, count: 32)
        var signings = 0
        for _ in 0..<3 {
            let b = cache.signed(id: "123456789", pk: pk) { signings += 1; return blob("123456789", pk) }
            #expect(b == blob("123456789", pk))
        }
        #expect(signings == 1)
        // A new key for the same ID is signed anew, and that blob replaces the old one.
        let pk2 = [UInt8](repeating: 0x22, count: 32)
        #expect(cache.signed(id: "123456789", pk: pk2) { signings += 1; return blob("123456789", pk2) } == blob("123456789", pk2))
        #expect(signings == 2)
        #expect(cache.count == 1)
    }

    @Test func theCacheStaysWithinItsCapacity() {
        let cache = SignedPeerKeyCache()
        let pk = [UInt8](repeating: 0x11, count: 32)
        for i in 0..<(SignedPeerKeyCache.capacity * 3) {
            _ = cache.signed(id: "peer\(i)", pk: pk) { [UInt8(truncatingIfNeeded: i)] }
        }
        #expect(cache.count <= SignedPeerKeyCache.capacity)
        #expect(cache.count > 0)
    }

    @Test func theCoreAnswersWithTheSameBlobFromTheCache() {
        let c = RendezvousCore(settings: .init(licenceKey: "", signingKey: Self.key, mask: nil, localIP: ""))
        let pk = [UInt8](repeating: 0x33, count: 32)
        let source = SocketAddress("[::ffff:203.0.113.5]:50000")!
        _ = c.completeRegisterPk(RegisterPk(id: "123456789", uuid: [1], pk: pk), from: source, loaded: nil, now: 1_000)
        let record = c.registry.peer("123456789")
        let first = c.signedPeerKey(version: "1.3.0", id: "123456789", record: record)
        let second = c.signedPeerKey(version: "1.3.0", id: "123456789", record: record)
        #expect(first == blob("123456789", pk))
        #expect(second == first)
        #expect(c.signedKeys.count == 1)
        // No version: empty, and nothing signed (§4.4).
        #expect(c.signedPeerKey(version: "", id: "123456789", record: record).isEmpty)
    }
}
