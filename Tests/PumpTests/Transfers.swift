import Crypto
import Glibc
import Synchronization
import Testing
import URing
import Workers

/// One pair's worth of traffic: `a` and `b` connect to the relay, each sends its header with the
/// first `early` bytes of its stream in the same segment (so the relay reads them with the header
/// and must forward them as pending bytes), then streams the rest and shuts down for writing
/// while reading the other side's bytes until EOF.
struct TransferPlan: Sendable {
    var pairID: UInt32
    var mode: PumpMode
    var bytesAToB: Int
    var bytesBToA: Int
    /// Bytes the relay holds for a→b before anything it reads from a (pending, configured).
    var prefixA: [UInt8] = []
    var prefixB: [UInt8] = []
    var earlyA = 1000
    var earlyB = 700
    var worker = 0
}

struct DirectionOutcome: Sendable {
    var receivedPrefix: [UInt8]
    var receivedCount: Int
    var receivedDigest: [UInt8]
    var sentDigest: [UInt8]
}

struct TransferOutcome: Sendable {
    var aToB: DirectionOutcome
    var bToA: DirectionOutcome
    var seconds: Double
}

/// Runs `plan` against `relay` on client threads and returns what each side saw.
func runTransfer(_ relay: Relay, _ plan: TransferPlan) throws -> TransferOutcome {
    relay.board.setPrefixes(plan.pairID, a: plan.prefixA, b: plan.prefixB)
    let streamA = PatternStream(seed: UInt64(plan.pairID) &* 0x9E37_79B9 &+ 1)
    let streamB = PatternStream(seed: UInt64(plan.pairID) &* 0x85EB_CA6B &+ 7)
    let port = relay.port(plan.worker)
    let started = monotonicSeconds()

    let fdA = try connectClient(port: port)
    defer { close(fdA) }
    let earlyA = min(plan.earlyA, plan.bytesAToB)
    try sendAll(fdA, makeHeader(pairID: plan.pairID, role: 0, mode: plan.mode) + streamA.bytes(from: 0, count: earlyA))
    let fdB = try connectClient(port: port)
    defer { close(fdB) }
    let earlyB = min(plan.earlyB, plan.bytesBToA)
    try sendAll(fdB, makeHeader(pairID: plan.pairID, role: 1, mode: plan.mode) + streamB.bytes(from: 0, count: earlyB))

    let failures = Shared<[String]>([])
    let sentA = Shared<[UInt8]?>(nil), sentB = Shared<[UInt8]?>(nil)
    let gotAtB = Shared<([UInt8], Int, [UInt8])?>(nil), gotAtA = Shared<([UInt8], Int, [UInt8])?>(nil)

    func sender(_ fd: Int32, _ stream: PatternStream, _ early: Int, _ total: Int, _ out: Shared<[UInt8]?>) -> TestThread {
        TestThread {
            do {
                var h = SHA256()
                stream.forEachPiece(from: 0, count: early) { h.update(bufferPointer: $0) }
                try stream.forEachPiece(from: early, count: total - early) { piece in
                    try sendAll(fd, piece)
                    h.update(bufferPointer: piece)
                }
                shutdown(fd, Int32(SHUT_WR))
                out.set(Array(h.finalize()))
            } catch {
                failures.value.withLock { $0.append("send: \(error)") }
            }
        }
    }
    func receiver(_ fd: Int32, _ prefixLength: Int, _ out: Shared<([UInt8], Int, [UInt8])?>) -> TestThread {
        TestThread {
            do {
                let r = try receiveToEOF(fd, prefixLength: prefixLength)
                out.set((r.prefix, r.restCount, r.restDigest))
            } catch {
                failures.value.withLock { $0.append("receive: \(error)") }
            }
        }
    }
    let threads = [
        sender(fdA, streamA, earlyA, plan.bytesAToB, sentA),
        sender(fdB, streamB, earlyB, plan.bytesBToA, sentB),
        receiver(fdB, plan.prefixA.count, gotAtB),
        receiver(fdA, plan.prefixB.count, gotAtA),
    ]
    for t in threads { t.join() }
    let problems = failures.get()
    guard problems.isEmpty, let sa = sentA.get(), let sb = sentB.get(), let ab = gotAtB.get(), let ba = gotAtA.get() else {
        throw ClientError("pair \(plan.pairID): \(problems)")
    }
    return TransferOutcome(
        aToB: DirectionOutcome(receivedPrefix: ab.0, receivedCount: ab.1, receivedDigest: ab.2, sentDigest: sa),
        bToA: DirectionOutcome(receivedPrefix: ba.0, receivedCount: ba.1, receivedDigest: ba.2, sentDigest: sb),
        seconds: monotonicSeconds() - started)
}

/// Runs every plan at once (one client thread set each) and returns their outcomes by pair ID.
func runTransfersConcurrently(_ relay: Relay, _ plans: [TransferPlan]) throws -> [UInt32: TransferOutcome] {
    let outcomes = Shared<[UInt32: Result<TransferOutcome, ClientError>]>([:])
    let threads = plans.map { plan in
        TestThread {
            let r: Result<TransferOutcome, ClientError>
            do { r = .success(try runTransfer(relay, plan)) } catch { r = .failure(ClientError("\(error)")) }
            outcomes.value.withLock { $0[plan.pairID] = r }
        }
    }
    for t in threads { t.join() }
    return try outcomes.get().mapValues { try $0.get() }
}

/// Both sides got the other's pending bytes first, then exactly what it sent.
func expectIntact(_ outcome: TransferOutcome?, _ plan: TransferPlan, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let o = outcome else {
        Issue.record("pair \(plan.pairID): no outcome", sourceLocation: sourceLocation)
        return
    }
    #expect(o.aToB.receivedPrefix == plan.prefixA, "a→b pending bytes must arrive first", sourceLocation: sourceLocation)
    #expect(o.bToA.receivedPrefix == plan.prefixB, "b→a pending bytes must arrive first", sourceLocation: sourceLocation)
    #expect(o.aToB.receivedCount == plan.bytesAToB && o.bToA.receivedCount == plan.bytesBToA, sourceLocation: sourceLocation)
    #expect(o.aToB.receivedDigest == o.aToB.sentDigest, "a→b SHA-256", sourceLocation: sourceLocation)
    #expect(o.bToA.receivedDigest == o.bToA.sentDigest, "b→a SHA-256", sourceLocation: sourceLocation)
}

/// Random bytes for pending prefixes.
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    PatternStream(seed: seed, blockLength: max(8, (count + 7) & ~7)).bytes(from: 0, count: count)
}

/// A connected pair whose pump has started (both headers read), without stream bytes.
struct ClientPair {
    let a: Int32
    let b: Int32
    let pairID: UInt32

    static func open(_ relay: Relay, pairID: UInt32, mode: PumpMode, worker: Int = 0) throws -> ClientPair {
        let a = try connectClient(port: relay.port(worker))
        try sendAll(a, makeHeader(pairID: pairID, role: 0, mode: mode))
        let b = try connectClient(port: relay.port(worker))
        try sendAll(b, makeHeader(pairID: pairID, role: 1, mode: mode))
        guard waitUntil({ relay.board.pair(pairID) != nil }) else {
            close(a); close(b)
            throw ClientError("pair \(pairID) never started")
        }
        return ClientPair(a: a, b: b, pairID: pairID)
    }

    func closeBoth() {
        close(a)
        close(b)
    }
}
