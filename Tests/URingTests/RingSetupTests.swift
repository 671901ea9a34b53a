import Glibc
import Testing
@testable import URing

@Suite(.timeLimit(.minutes(1)))
struct RingSetupTests {
    @Test func aRingReportsWhetherItTookDeferredTaskRun() throws {
        guard case .available(let missing) = IOURingSupport.probe() else {
            Issue.record("io_uring is unavailable here: \(IOURingSupport.probe().message)")
            return
        }
        var ring = try Ring(entries: 8)
        let kernelHasDeferredTaskRun = !missing.contains("SINGLE_ISSUER|DEFER_TASKRUN")
        let deferred = ring.usesDeferredTaskRun, singleIssuer = ring.usesSingleIssuer
        #expect(deferred == kernelHasDeferredTaskRun)
        // DEFER_TASKRUN is only accepted together with SINGLE_ISSUER.
        if deferred { #expect(singleIssuer) }
        // The ring works whatever was taken: a nop goes round.
        var reaper = Reaper()
        try ring.nop(userData: UserData(op: 9, slot: 1, generation: 2, aux: 3))
        let done = try reaper.final(UserData(op: 9, slot: 1, generation: 2, aux: 3), &ring)
        #expect(done.map(\.result) == [0])
    }

    @Test func ioWorkerCapsAreSetAndReadBack() throws {
        let ring = try Ring(entries: 8)
        let defaults = try ring.limitIOWorkers(bounded: 3, unbounded: 5)
        #expect(defaults.bounded > 0 && defaults.unbounded > 0, "the kernel reports its defaults")
        // 0 changes nothing and reads the caps in effect.
        let now = try ring.limitIOWorkers(bounded: 0, unbounded: 0)
        #expect(now.bounded == 3 && now.unbounded == 5)
    }

    @Test func withoutSingleIssuerTheRingFallsBackToCooperativeTaskRun() throws {
        let ring = try Ring(entries: 8, preferSingleIssuer: false)
        let deferred = ring.usesDeferredTaskRun, singleIssuer = ring.usesSingleIssuer, flags = ring.setupFlags
        #expect(!deferred)
        #expect(!singleIssuer)
        #expect(flags == Ring.setupCandidates(preferSingleIssuer: false, sizedCompletionQueue: false)[0] || flags == 0)
    }

    @Test func aFlagSetTheKernelRejectsFallsThroughToTheNext() throws {
        // Bit 31 is no setup flag any kernel knows: io_uring_setup answers EINVAL.
        let unknown: UInt32 = 1 << 31
        var ring = try Ring(entries: 8, completionEntries: nil, candidates: [unknown, unknown | 1 << 30, 0])
        let flags = ring.setupFlags
        #expect(flags == 0)
        var reaper = Reaper()
        try ring.nop(userData: UserData(op: 1))
        let ended1 = try reaper.final(UserData(op: 1), &ring).map(\.result)
        #expect(ended1 == [0])
    }

    @Test func whenEveryFlagSetIsRejectedTheLastErrorIsThrown() {
        #expect(throws: Errno.invalidArgument) {
            _ = try Ring(entries: 8, completionEntries: nil, candidates: [1 << 31])
        }
    }

    @Test func candidatesGoFromStrongestToPlainAndCarryTheCompletionQueueSize() {
        let sized = Ring.setupCandidates(preferSingleIssuer: true, sizedCompletionQueue: true)
        #expect(sized.count == 4)
        #expect(Ring.setupCandidates(preferSingleIssuer: false, sizedCompletionQueue: true).count == 2)
        let plain = Ring.setupCandidates(preferSingleIssuer: true, sizedCompletionQueue: false)
        #expect(plain.last == 0)
        // Every sized candidate is its plain twin plus the one CQSIZE bit.
        let cqsize = sized.last!
        #expect(cqsize != 0 && cqsize & (cqsize - 1) == 0)
        #expect(zip(sized, plain).allSatisfy { $0 == $1 | cqsize })
    }

    @Test func aSizedCompletionQueueHoldsMoreThanTwiceTheSubmissionQueue() throws {
        // 4 SQEs, 64 CQEs: 40 nops complete without any being lost or overflowing.
        var ring = try Ring(entries: 4, completionEntries: 64)
        for i in 0..<40 {
            try ring.nop(userData: UserData(op: 1, slot: UInt32(i)))
        }
        try ring.submit()
        var reaper = Reaper()
        try reaper.pump(&ring) { $0.count == 40 }
        let slots = reaper.seen.map(\.userData.slot)
        #expect(slots == (0..<40).map(UInt32.init))
    }

    @Test func messageRingPostsACompletionOnAnotherRing() throws {
        var sender = try Ring(entries: 8)
        var receiver = try Ring(entries: 8)
        let tag = UserData(op: 0x42, slot: 99, generation: 7)
        try sender.messageRing(targetRingFD: receiver.fileDescriptor, result: 1234, data: tag)
        try sender.submit()
        var reaper = Reaper()
        let posted = try reaper.final(tag, &receiver)
        #expect(posted.map(\.result) == [1234])
        // The sender's own completion is skipped on success.
        var senderReaper = Reaper()
        try senderReaper.settle(&sender, milliseconds: 20)
        #expect(senderReaper.seen.isEmpty)
    }

    @Test func closeAndShutdownGoThroughTheRing() throws {
        var ring = try Ring(entries: 8)
        var reaper = Reaper()
        let pair = try TCPPair()
        try ring.shutdown(fd: pair.server, how: Int32(SHUT_WR), userData: UserData(op: 1))
        let ended2 = try reaper.final(UserData(op: 1), &ring).map(\.result)
        #expect(ended2 == [0])
        var byte: UInt8 = 0
        #expect(read(pair.client, &byte, 1) == 0, "the client sees the half-close as EOF")

        // (Whether the number is free afterwards cannot be checked race-free while other tests
        // open descriptors; the result is the kernel's close(2) answer.)
        let extra = dup(pair.server)
        try #require(extra >= 0)
        try ring.close(fd: extra, userData: UserData(op: 2))
        let ended3 = try reaper.final(UserData(op: 2), &ring).map(\.result)
        #expect(ended3 == [0])
    }
}
