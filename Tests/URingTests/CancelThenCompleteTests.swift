import Glibc
import Testing
@testable import URing

/// STYLE.md habit 3: for every op type, an op that would not complete by itself is cancelled,
/// and its final completion (no `hasMore`) arrives with the documented result before anything it
/// points at is released (the resources here are freed only after the assertions, at scope end).
@Suite(.timeLimit(.minutes(1)))
struct CancelThenCompleteTests {
    static let target = UserData(op: 1, slot: 7, generation: 3)
    static let canceller = UserData(op: 2)

    /// Shows `target` is parked (nothing for it within 30 ms), cancels it, and returns its
    /// completions once the final one arrived, plus the cancel request's own result.
    func cancelParked(_ target: UserData, _ ring: inout Ring, _ reaper: inout Reaper) throws -> (completions: [Completion], cancelResult: Int32) {
        try reaper.settle(&ring, milliseconds: 30)
        let early = reaper.seen.filter { $0.userData == target }
        #expect(early.isEmpty, "the op completed by itself: \(early)")
        try ring.cancel(target, userData: Self.canceller)
        let completions = try reaper.final(target, &ring)
        let seen = reaper.seen
        try #require(completions.last.map { !$0.hasMore } == true, "no final completion for \(target): \(seen)")
        try reaper.pump(&ring, milliseconds: 1000) { $0.contains { $0.userData == Self.canceller } }
        let cancel = try #require(reaper.seen.first(where: { $0.userData == Self.canceller }))
        return (completions, cancel.result)
    }

    @Test func multishotAcceptEndsWithCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let listener = try Socket.tcpListener(.loopbackV4(port: 0))
        defer { Socket.close(listener) }
        try ring.multishotAccept(fd: listener, userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
    }

    @Test func multishotRecvEndsWithCanceledAndReturnsNoBuffer() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair()
        let buffers = try ProvidedBufferRing(ring: &ring, group: 1, count: 4, bufferSize: 4096)
        defer { buffers.unregister(from: &ring) }
        try ring.multishotRecv(fd: pair.server, group: 1, userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(completions.allSatisfy { $0.bufferID == nil })
        #expect(cancelResult == 0)
    }

    @Test func multishotRecvMsgEndsWithCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let udp = try Socket.udp(.loopbackV4(port: 0), options: .notReusingPort)
        defer { Socket.close(udp) }
        let buffers = try ProvidedBufferRing(ring: &ring, group: 2, count: 4, bufferSize: 2048)
        defer { buffers.unregister(from: &ring) }
        let header = recvMsgHeader()
        defer { header.deallocate() }
        try ring.multishotRecvMsg(fd: udp, msghdr: header, group: 2, userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
    }

    @Test func recvEndsWithCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        defer { buffer.deallocate() }
        try ring.recv(fd: pair.server, into: buffer, userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
    }

    @Test func sendBlockedByAFullPeerEndsWithCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair(clientReceiveBuffer: 4096, serverSendBuffer: 4096)
        // Fill the path until the kernel refuses: the client never reads, so a send parks.
        let filler = [UInt8](repeating: 0xAB, count: 65536)
        var filled = 0
        while true {
            let n = filler.withUnsafeBytes { Glibc.send(pair.server, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { #expect(errno == EAGAIN); break }
            filled += n
            try #require(filled < 64 << 20, "the socket never filled")
        }
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        payload.initializeMemory(as: UInt8.self, repeating: 0xCD)
        defer { payload.deallocate() }
        try ring.send(fd: pair.server, from: UnsafeRawBufferPointer(payload), userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
    }

    @Test func spliceParkedInTheWorkerPoolEndsInterruptedOrCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        // Blocking pipes and no SPLICE_F_NONBLOCK: io_uring always runs splice in its worker
        // pool, where it sleeps until input arrives; cancelling interrupts the sleep.
        let input = try Pipe()
        let output = try Pipe()
        try ring.splice(from: input.readFD, to: output.writeFD, length: 4096, spliceFlags: 0, userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        // Outcomes: -ECANCELED if it had not started; once it sleeps, the interrupted splice's own
        // result, which on 6.18 is the kernel-internal -ERESTARTSYS (512) rather than -EINTR (the
        // cancel itself then answers -EALREADY: found, but running). Pumps must treat all three
        // as "cancelled".
        let final = try #require(completions.last)
        let restartSys: Int32 = 512
        #expect([-ECANCELED, -EINTR, -restartSys].contains(final.result), "splice ended with \(final.result)")
        #expect(cancelResult == 0 || cancelResult == -EALREADY, "cancel answered \(cancelResult)")
        #expect(completions.count == 1)
    }

    @Test func pollEndsWithCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair()
        try ring.pollAdd(fd: pair.server, events: Int16(POLLIN), userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
    }

    @Test func timeoutEndsWithCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let spec = UnsafeMutablePointer<KernelTimespec>.allocate(capacity: 1)
        spec.pointee = KernelTimespec(tv_sec: 60, tv_nsec: 0)
        defer { spec.deallocate() }
        try ring.timeout(spec, userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
    }

    @Test func cancellingTheHeadOfALinkedTimeoutCancelsBoth() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        let spec = UnsafeMutablePointer<KernelTimespec>.allocate(capacity: 1)
        spec.pointee = KernelTimespec(tv_sec: 60, tv_nsec: 0)
        defer { buffer.deallocate(); spec.deallocate() }
        let timer = UserData(op: 3, slot: 7, generation: 3)
        try ring.recv(fd: pair.server, into: buffer, userData: Self.target, flags: .link)
        try ring.linkTimeout(spec, userData: timer)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
        let timerCompletions = try reaper.final(timer, &ring)
        #expect(timerCompletions.map(\.result) == [-ECANCELED])
    }

    @Test func anExpiringLinkedTimeoutCancelsItsHead() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        let spec = UnsafeMutablePointer<KernelTimespec>.allocate(capacity: 1)
        spec.pointee = KernelTimespec(tv_sec: 0, tv_nsec: 20_000_000)
        defer { buffer.deallocate(); spec.deallocate() }
        let timer = UserData(op: 3)
        try ring.recv(fd: pair.server, into: buffer, userData: Self.target, flags: .link)
        try ring.linkTimeout(spec, userData: timer)
        let ended1 = try reaper.final(Self.target, &ring).map(\.result)
        #expect(ended1 == [-ECANCELED])
        let ended2 = try reaper.final(timer, &ring).map(\.result)
        #expect(ended2 == [-ETIME])
    }

    @Test func readEndsWithCanceled() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pipe = try Pipe()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        try ring.read(fd: pipe.readFD, into: buffer, userData: Self.target)
        let (completions, cancelResult) = try cancelParked(Self.target, &ring, &reaper)
        #expect(completions.map(\.result) == [-ECANCELED])
        #expect(cancelResult == 0)
    }

    @Test func aNopLinkedBehindAParkedOpEndsWithCanceled() throws {
        // A nop completes at once on its own; it parks only behind a link. The kernel cannot
        // find a linked, not yet started op by its tag (the cancel answers -ENOENT); cancelling
        // the head fails the chain, and the nop's completion is -ECANCELED.
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let head = UserData(op: 4)
        try ring.recv(fd: pair.server, into: buffer, userData: head, flags: .link)
        try ring.nop(userData: Self.target)
        try reaper.settle(&ring, milliseconds: 30)
        let early = reaper.seen
        #expect(early.isEmpty)
        try ring.cancel(Self.target, userData: UserData(op: 5))
        try reaper.pump(&ring) { $0.contains { $0.userData.op == 5 } }
        let notFound = reaper.seen.first(where: { $0.userData.op == 5 })?.result
        #expect(notFound == -ENOENT)
        try ring.cancel(head, userData: Self.canceller)
        let ended3 = try reaper.final(head, &ring).map(\.result)
        #expect(ended3 == [-ECANCELED])
        let ended4 = try reaper.final(Self.target, &ring).map(\.result)
        #expect(ended4 == [-ECANCELED])
    }

    @Test func cancellingByDescriptorEndsEveryOpOnIt() throws {
        var ring = try Ring(entries: 16)
        var reaper = Reaper()
        let pair = try TCPPair()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let recv = UserData(op: 6), poll = UserData(op: 7)
        try ring.recv(fd: pair.server, into: buffer, userData: recv)
        try ring.pollAdd(fd: pair.server, events: Int16(POLLIN), userData: poll)
        try reaper.settle(&ring, milliseconds: 30)
        try ring.cancel(fd: pair.server, userData: Self.canceller)
        let ended5 = try reaper.final(recv, &ring).map(\.result)
        #expect(ended5 == [-ECANCELED])
        let ended6 = try reaper.final(poll, &ring).map(\.result)
        #expect(ended6 == [-ECANCELED])
        try reaper.pump(&ring) { $0.contains { $0.userData == Self.canceller } }
        let cancelled = reaper.seen.first(where: { $0.userData == Self.canceller })?.result
        #expect(cancelled == 2, "cancel by fd reports how many it ended")
    }
}
