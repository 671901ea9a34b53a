import Glibc
import Testing
@testable import URing

/// Multishot recvmsg on provided buffers, parsed with `RecvMsgOut`: source address, payload,
/// truncation, over IPv4 and IPv6 loopback.
@Suite(.timeLimit(.minutes(1)))
struct RecvMsgOutTests {
    static let recv = UserData(op: 1)

    static func loopback(_ v6: Bool) -> SocketEndpoint {
        v6 ? SocketEndpoint(ipv6: Array(repeating: 0, count: 15) + [1], port: 0) : .loopbackV4(port: 0)
    }

    /// A UDP socket on loopback; nil when the host has no IPv6 loopback.
    static func udpSocket(ipv6: Bool, options: SocketOptions) throws -> Int32? {
        // (Written without `catch … where`: with a typed-throws callee that form crashes the
        // Swift 6.3.1 compiler in MandatoryAllocBoxToStack.)
        do {
            return try Socket.udp(loopback(ipv6), options: options)
        } catch {
            if ipv6 && (error.rawValue == EAFNOSUPPORT || error.rawValue == EADDRNOTAVAIL) { return nil }
            throw error
        }
    }

    @Test(arguments: [false, true])
    func datagramsArriveWithTheirSenderAndPayload(ipv6: Bool) throws {
        guard let server = try Self.udpSocket(ipv6: ipv6, options: .notReusingPort) else {
            print("skipped: no IPv6 loopback here")
            return
        }
        defer { Socket.close(server) }
        let serverEndpoint = try Socket.localEndpoint(server)
        let client = try Socket.udp(Self.loopback(ipv6), options: .notReusingPort)
        defer { Socket.close(client) }
        let clientEndpoint = try Socket.localEndpoint(client)

        var ring = try Ring(entries: 16)
        // 256-byte buffers: 16 header + 128 name area (sockaddr_storage) leave 112 payload bytes.
        let buffers = try ProvidedBufferRing(ring: &ring, group: 5, count: 4, bufferSize: 256)
        defer { buffers.unregister(from: &ring) }
        let header = recvMsgHeader()
        defer { header.deallocate() }
        // MSG_TRUNC: a truncated datagram reports its full length.
        try ring.multishotRecvMsg(fd: server, msghdr: header, group: 5, messageFlags: Int32(MSG_TRUNC), userData: Self.recv)

        let small = Array("hello, rendezvous".utf8)
        let large = patternBytes(400, seed: 3)
        for datagram in [small, large] {
            let sent = try serverEndpoint.withSockaddr { (sa, len) throws(Errno) in
                datagram.withUnsafeBytes { sendto(client, $0.baseAddress, $0.count, 0, sa, len) }
            }
            try #require(sent == datagram.count)
        }
        var reaper = Reaper()
        try reaper.pump(&ring) { $0.filter { $0.bufferID != nil }.count == 2 }
        let arrivals = reaper.seen.filter { $0.bufferID != nil }
        let seen = reaper.seen
        try #require(arrivals.count == 2, "\(seen)")
        #expect(arrivals.allSatisfy { $0.hasMore })

        let first = try #require(RecvMsgOut(buffer: buffers.buffer(arrivals[0].bufferID!), received: arrivals[0].result, msghdr: header))
        #expect(first.source == clientEndpoint)
        #expect(Array(first.payload) == small)
        #expect(!first.isTruncated)
        #expect(first.datagramLength == small.count)

        let second = try #require(RecvMsgOut(buffer: buffers.buffer(arrivals[1].bufferID!), received: arrivals[1].result, msghdr: header))
        #expect(second.source == clientEndpoint)
        #expect(second.isTruncated)
        #expect(second.datagramLength == 400)
        #expect(second.payload.count == 256 - 16 - MemoryLayout<sockaddr_storage>.size)
        #expect(Array(second.payload) == Array(large.prefix(second.payload.count)))

        // Fewer bytes than header + name area cannot be a datagram.
        let tooShort = RecvMsgOut(buffer: buffers.buffer(0), received: 20, msghdr: header)
        let tooLong = RecvMsgOut(buffer: buffers.buffer(0), received: 1000, msghdr: header)
        #expect(tooShort == nil)
        #expect(tooLong == nil, "more than the buffer holds")

        for c in arrivals { buffers.taken(c.bufferID!); buffers.recycle(c.bufferID!) }
        try ring.cancel(Self.recv)
        let ended1 = try reaper.final(Self.recv, &ring).last?.result
        #expect(ended1 == -ECANCELED)
    }
}
