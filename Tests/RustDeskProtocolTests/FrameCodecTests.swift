import Testing
@testable import RustDeskProtocol

/// PROTOCOL.md §2.1 and §14 items 1–6.
@Suite(.timeLimit(.minutes(1)))
struct FrameCodecTests {
    static let workedExamples: [(Int, String)] = [
        (0, "00"), (5, "14"), (63, "fc"), (64, "01 01"), (100, "91 01"), (16_383, "fd ff"), (16_384, "02 00 01"),
        (20_000, "82 38 01"), (4_194_303, "fe ff ff"), (4_194_304, "03 00 00 01"), (5_000_000, "03 2d 31 01"),
        (1_073_741_823, "ff ff ff ff"),
    ]

    @Test(arguments: workedExamples)
    func headerMatchesTheWorkedExample(_ length: Int, _ header: String) throws {
        #expect(try FrameCodec.header(forLength: length) == hex(header))
        let parsed = try #require(hex(header).withUnsafeBytes { FrameCodec.parseHeader($0) })
        #expect(parsed.headerSize == hex(header).count)
        #expect(parsed.length == length)
    }

    @Test func encodingBeyondThirtyBitsIsAnOverflow() {
        #expect(throws: ProtocolError.frameEncodeOverflow) { try FrameCodec.header(forLength: 1_073_741_824) }
    }

    @Test func nonMinimalHeadersAreAccepted() throws {
        // Length 5 in a 2-byte header: (5 << 2) | 1 = 0x15.
        var d = FrameDecoder()
        var got: [[UInt8]] = []
        try d.feed(hex("15 00 01 02 03 04 05")) { got.append(Array($0)); return .continue }
        #expect(got == [[1, 2, 3, 4, 5]])
    }

    @Test func registerPkResponseFrameMatchesAppendix() throws {
        #expect(try FrameCodec.frame(hex("82 01 00")) == hex("0c 82 01 00"))
        var buf = [UInt8](repeating: 0, count: 16)
        let n = try buf.withUnsafeMutableBytes { try FrameCodec.writeFrame(RendezvousMessage.registerPkResponse(.init(result: .ok)), into: $0) }
        #expect(Array(buf[..<n]) == hex("0c 82 01 00"))
    }

    /// Lengths around every header-size boundary, each stream split at every point (for the large
    /// ones, at every point within the header and near the boundaries, which exercises the same
    /// code paths without quadratic time).
    @Test(arguments: [0, 63, 64, 16_383, 16_384, 4_194_303, 4_194_304])
    func framesSurviveEverySplitPoint(_ length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let stream = try FrameCodec.frame(payload) + FrameCodec.frame([0xAB]) + FrameCodec.frame([])
        let maxLen = max(length, 1)
        var splits: [Int] = length <= 16_384 ? Array(0...stream.count) : Array(0...8) + [stream.count / 2, stream.count - 6, stream.count - 3, stream.count - 1, stream.count]
        splits = splits.filter { $0 >= 0 && $0 <= stream.count }
        for split in splits {
            var d = FrameDecoder(maxFrameLength: maxLen)
            var got: [[UInt8]] = []
            for part in [Array(stream[..<split]), Array(stream[split...])] {
                try d.feed(part) { got.append(Array($0)); return .continue }
            }
            #expect(got.count == 3, "split \(split)")
            #expect(got.first == payload, "split \(split)")
            #expect(got.dropFirst().first == [0xAB])
            #expect(got.last == [])
            #expect(d.bufferedByteCount == 0)
        }
    }

    @Test func everySplitOfManySmallFramesAndByteByByteFeeding() throws {
        let payloads: [[UInt8]] = [[], [1], Array(repeating: 2, count: 63), Array(repeating: 3, count: 64), Array(repeating: 4, count: 300)]
        let stream = try payloads.flatMap { try FrameCodec.frame($0) }
        for a in stride(from: 0, through: stream.count, by: 7) {
            for b in stride(from: a, through: stream.count, by: 13) {
                var d = FrameDecoder()
                var got: [[UInt8]] = []
                for part in [stream[..<a], stream[a..<b], stream[b...]] {
                    try Array(part).withUnsafeBytes { p in try d.feed(p) { got.append(Array($0)); return .continue } }
                }
                #expect(got == payloads, "splits \(a), \(b)")
            }
        }
        var d = FrameDecoder()
        var got: [[UInt8]] = []
        for byte in stream { try d.feed([byte]) { got.append(Array($0)); return .continue } }
        #expect(got == payloads)
    }

    @Test func oversizedHeaderIsRejectedBeforeBuffering() {
        var d = FrameDecoder(maxFrameLength: 64 * 1024)
        #expect(throws: ProtocolError.frameTooLarge) { try d.feed(hex("ff ff ff ff")) { _ in .continue } }
        var split = FrameDecoder(maxFrameLength: 1000)
        #expect(throws: ProtocolError.frameTooLarge) {
            try split.feed(hex("03")) { _ in .continue }
            #expect(split.bufferedByteCount == 1)
            try split.feed(hex("2d 31 01")) { _ in .continue }
        }
        #expect(split.bufferedByteCount <= 4)
    }

    @Test func truncatedFrameProducesNothing() throws {
        var d = FrameDecoder()
        var count = 0
        try d.feed(hex("14 a2 01 02")) { _ in count += 1; return .continue }
        #expect(count == 0)
        #expect(d.bufferedByteCount == 4)
    }

    @Test func twoFramesInOneReadAreBothDelivered() throws {
        let f = try FrameCodec.frame(hex("a2 01 02 08 03"))
        var d = FrameDecoder()
        var got = 0
        try d.feed(f + f) { _ in got += 1; return .continue }
        #expect(got == 2)
    }

    @Test func stoppingKeepsTheFollowingBytesInOrder() throws {
        // hbbr: after the first RequestRelay frame, the rest is raw and must be forwarded first.
        let first = try FrameCodec.frame(hex("92 01 03 12 01 55"))
        let early: [UInt8] = [9, 8, 7, 6]
        var d = FrameDecoder()
        var frames = 0
        try d.feed(Array(first.prefix(3))) { _ in frames += 1; return .stop }
        try d.feed(Array(first.dropFirst(3)) + early[..<2]) { _ in frames += 1; return .stop }
        try d.feed(Array(early[2...])) { _ in frames += 1; return .stop }
        #expect(frames == 1)
        #expect(d.isStopped)
        #expect(d.takeBuffered() == early)
        #expect(d.bufferedByteCount == 0)
    }

    @Test func handlerErrorsPropagate() {
        var d = FrameDecoder()
        #expect(throws: ProtocolError.invalidUTF8) {
            try d.feed(hex("04 00")) { _ throws(ProtocolError) in throw .invalidUTF8 }
        }
    }
}

extension FrameDecoder {
    /// Test convenience: feed an array.
    mutating func feed(_ bytes: [UInt8], onFrame: (UnsafeRawBufferPointer) throws(ProtocolError) -> Next) throws(ProtocolError) {
        let r = bytes.withUnsafeBytes { p in Result { () throws(ProtocolError) in try feed(p, onFrame: onFrame) } }
        try r.get()
    }
}
