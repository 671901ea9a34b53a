import Testing
@testable import RustDeskProtocol

/// Helpers shared by the WebSocket test files, written independently of the code under test.
enum WebSocketTestSupport {
    /// `"81 05 48"` → `[0x81, 0x05, 0x48]`.
    static func bytes(_ hex: String) -> [UInt8] {
        hex.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    /// The masked client form of an unmasked frame: sets the MASK bit, inserts `key` after the
    /// length, XORs the payload (RFC 6455 §5.3).
    static func masked(_ frame: [UInt8], key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]) -> [UInt8] {
        let lengthCode = frame[1] & 0x7F
        let headerEnd = lengthCode == 126 ? 4 : lengthCode == 127 ? 10 : 2
        var out = Array(frame[..<headerEnd])
        out[1] |= 0x80
        out += key
        for (i, byte) in frame[headerEnd...].enumerated() { out.append(byte ^ key[i % 4]) }
        return out
    }

    /// An unmasked frame with the minimal length encoding.
    static func frame(_ byte0: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var out = [byte0]
        switch payload.count {
        case ..<126: out.append(UInt8(payload.count))
        case ..<65536: out += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: out.append(127); out += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        return out + payload
    }

    /// SplitMix64: a fixed seed gives the same stream on every run and platform.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

private typealias T = WebSocketTestSupport

private func serverDecoder(maxFrame: Int = WebSocketFrameDecoder.defaultMaxFrameSize,
                           maxMessage: Int = WebSocketFrameDecoder.defaultMaxMessageSize) -> WebSocketFrameDecoder {
    WebSocketFrameDecoder(configuration: .init(role: .server, maxFrameSize: maxFrame, maxMessageSize: maxMessage))
}

private func decodeAll(_ chunks: [[UInt8]], role: WebSocketFrameDecoder.Role = .server) throws -> [WebSocketMessage] {
    var decoder = WebSocketFrameDecoder(configuration: .init(role: role))
    var out: [WebSocketMessage] = []
    for chunk in chunks { out += try decoder.decode(chunk) }
    return out
}

private let hello = Array("Hello".utf8)

@Suite("WebSocket frame decoding: RFC 6455 §5.7 examples", .timeLimit(.minutes(1)))
struct WebSocketFrameDecoderRFCExampleTests {
    @Test func unmaskedHelloIsReadByAClient() throws {
        #expect(try decodeAll([T.bytes("81 05 48 65 6c 6c 6f")], role: .client) == [.text("Hello")])
    }

    @Test func maskedHelloIsReadByTheServer() throws {
        #expect(try decodeAll([T.bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58")]) == [.text("Hello")])
    }

    @Test func fragmentedUnmaskedHelloIsReassembledByAClient() throws {
        let messages = try decodeAll([T.bytes("01 03 48 65 6c"), T.bytes("80 02 6c 6f")], role: .client)
        #expect(messages == [.text("Hello")])
    }

    @Test func fragmentedMaskedHelloIsReassembledByTheServer() throws {
        let first = T.masked(T.bytes("01 03 48 65 6c")), second = T.masked(T.bytes("80 02 6c 6f"))
        #expect(try decodeAll([first, second]) == [.text("Hello")])
        #expect(try decodeAll([first + second]) == [.text("Hello")])
    }

    @Test func unmaskedPingIsReadByAClient() throws {
        #expect(try decodeAll([T.bytes("89 05 48 65 6c 6c 6f")], role: .client) == [.ping(hello)])
    }

    @Test func maskedPongFromTheRFCIsReadByTheServer() throws {
        #expect(try decodeAll([T.bytes("8a 85 37 fa 21 3d 7f 9f 4d 51 58")]) == [.pong(hello)])
    }

    @Test func maskedPingIsReadByTheServer() throws {
        #expect(try decodeAll([T.masked(T.bytes("89 05 48 65 6c 6c 6f"))]) == [.ping(hello)])
    }

    @Test func binaryOf256BytesUsesTheSixteenBitLength() throws {
        let payload = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let frame = T.bytes("82 7E 01 00") + payload
        #expect(try decodeAll([frame], role: .client) == [.binary(payload)])
        #expect(try decodeAll([T.masked(frame)]) == [.binary(payload)])
    }

    @Test func binaryOf65536BytesUsesTheSixtyFourBitLength() throws {
        let payload = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let frame = T.bytes("82 7F 00 00 00 00 00 01 00 00") + payload
        #expect(try decodeAll([frame], role: .client) == [.binary(payload)])
        #expect(try decodeAll([T.masked(frame, key: [1, 2, 3, 4])]) == [.binary(payload)])
    }

    @Test func theRendezvousReplyFromAppendixA2IsOneBinaryMessage() throws {
        #expect(try decodeAll([T.bytes("82 03 82 01 00")], role: .client) == [.binary([0x82, 0x01, 0x00])])
    }
}

@Suite("WebSocket frame decoding: streaming", .timeLimit(.minutes(1)))
struct WebSocketFrameDecoderStreamingTests {
    /// Text, a fragmented binary message with a ping and a pong inside it, an empty binary
    /// message, 300 bytes (16-bit length), then a close: every kind of boundary.
    static let stream: [UInt8] =
        T.masked(T.bytes("81 05 48 65 6c 6c 6f"))
        + T.masked(T.frame(0x02, [1, 2, 3]), key: [9, 8, 7, 6])
        + T.masked(T.bytes("89 02 aa bb"))
        + T.masked(T.frame(0x00, [4, 5, 6, 7, 8, 9, 10]), key: [0xFF, 0, 0xFF, 0])
        + T.masked(T.bytes("8a 00"))
        + T.masked(T.frame(0x80, [11]))
        + T.masked(T.frame(0x82, []))
        + T.masked(T.frame(0x82, (0..<300).map { UInt8(truncatingIfNeeded: $0) }), key: [0x10, 0x20, 0x30, 0x40])
        + T.masked(T.bytes("88 05 03 e8 62 79 65"))

    static let expected: [WebSocketMessage] = [
        .text("Hello"),
        .ping([0xAA, 0xBB]),
        .pong([]),
        .binary([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        .binary([]),
        .binary((0..<300).map { UInt8(truncatingIfNeeded: $0) }),
        .close(code: 1000, reason: "bye"),
    ]

    @Test func wholeStreamDecodesInOneCall() throws {
        #expect(try decodeAll([Self.stream]) == Self.expected)
    }

    @Test func everySplitPointGivesTheSameMessages() throws {
        for split in 0...Self.stream.count {
            let messages = try decodeAll([Array(Self.stream[..<split]), Array(Self.stream[split...])])
            #expect(messages == Self.expected, "split at \(split)")
        }
    }

    @Test func everyPairOfSplitPointsInTheFragmentedPartGivesTheSameMessages() throws {
        // The first 60 bytes hold the text frame and the whole interleaved fragmented message.
        for first in 0...60 {
            for second in first...60 {
                let chunks = [Array(Self.stream[..<first]), Array(Self.stream[first..<second]), Array(Self.stream[second...])]
                #expect(try decodeAll(chunks) == Self.expected, "splits at \(first), \(second)")
            }
        }
    }

    @Test func feedingOneByteAtATimeGivesTheSameMessages() throws {
        #expect(try decodeAll(Self.stream.map { [$0] }) == Self.expected)
    }

    @Test func controlFramesInsideAFragmentedMessageArriveBeforeIt() throws {
        let stream = T.masked(T.bytes("01 03 48 65 6c")) + T.masked(T.bytes("89 01 21"))
            + T.masked(T.bytes("8a 00")) + T.masked(T.bytes("80 02 6c 6f"))
        #expect(try decodeAll([stream]) == [.ping([0x21]), .pong([]), .text("Hello")])
    }

    @Test func aWholeFrameIsDeliveredInPlaceWithoutBuffering() throws {
        var decoder = serverDecoder()
        var input = T.masked(T.frame(0x82, [1, 2, 3, 4, 5]))
        var delivered: [UInt8] = []
        var pointsIntoInput = false
        try input.withUnsafeMutableBytes { buffer in
            let range = UInt(bitPattern: buffer.baseAddress!) ..< UInt(bitPattern: buffer.baseAddress! + buffer.count)
            try decoder.decode(buffer) { event in
                guard case .binaryMessageArrived(let payload) = event else { return }
                delivered = Array(payload)
                pointsIntoInput = range.contains(UInt(bitPattern: payload.baseAddress!))
            }
        }
        #expect(delivered == [1, 2, 3, 4, 5])
        #expect(pointsIntoInput)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func aSplitFrameIsBufferedOnlyUntilItCompletes() throws {
        var decoder = serverDecoder()
        let frame = T.masked(T.frame(0x82, Array(repeating: 7, count: 200)))
        #expect(try decoder.decode(frame[..<3]).isEmpty)
        #expect(decoder.bufferedByteCount == 3)
        #expect(try decoder.decode(frame[3..<100]).isEmpty)
        #expect(decoder.bufferedByteCount == 100 - 8)
        #expect(try decoder.decode(frame[100...]) == [.binary(Array(repeating: 7, count: 200))])
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func bytesAfterACloseFrameAreIgnored() throws {
        var decoder = serverDecoder()
        let close = T.masked(T.bytes("88 02 03 e9"))
        #expect(try decoder.decode(close + [0xFF, 0xFF, 0xFF]) == [.close(code: 1001, reason: "")])
        #expect(decoder.isClosed)
        #expect(try decoder.decode(T.masked(T.frame(0x82, [1]))).isEmpty)
    }

    @Test func aCloseWithoutBodyHasNoCode() throws {
        #expect(try decodeAll([T.masked(T.bytes("88 00"))]) == [.close(code: nil, reason: "")])
    }

    @Test func emptyTextAndBinaryMessagesAreDelivered() throws {
        #expect(try decodeAll([T.masked(T.frame(0x81, [])) + T.masked(T.frame(0x82, []))]) == [.text(""), .binary([])])
    }
}

@Suite("WebSocket frame decoding: violations and limits", .timeLimit(.minutes(1)))
struct WebSocketFrameDecoderLimitTests {
    private func expectFailure(_ error: ProtocolError, _ input: [UInt8], role: WebSocketFrameDecoder.Role = .server,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        var decoder = WebSocketFrameDecoder(configuration: .init(role: role))
        #expect(throws: error, sourceLocation: sourceLocation) { _ = try decoder.decode(input) }
    }

    @Test func anUnmaskedClientFrameIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.bytes("82 01 00"))
    }

    @Test func aMaskedServerFrameIsAViolationForAClient() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.bytes("82 01 00")), role: .client)
    }

    @Test(arguments: [UInt8(0x40), 0x20, 0x10])
    func anyReservedBitIsAViolation(bit: UInt8) {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x82 | bit, [1])))
    }

    @Test(arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func aReservedOpcodeIsAViolation(opcode: UInt8) {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x80 | opcode, [1])))
    }

    @Test func aSixtyFourBitLengthWithItsTopBitSetIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.bytes("82 FF 80 00 00 00 00 00 00 01 37 fa 21 3d"))
    }

    @Test func aControlFrameOver125BytesIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x89, Array(repeating: 0, count: 126))))
        // Even when the 125 bytes are written with the 16-bit form, 126 is too many.
        expectFailure(.webSocketProtocolViolation, T.bytes("8a FE 00 7E 00 00 00 00"))
    }

    @Test func aControlFrameOf125BytesIsAccepted() throws {
        let payload = Array(repeating: UInt8(0x5A), count: 125)
        #expect(try decodeAll([T.masked(T.frame(0x89, payload))]) == [.ping(payload)])
    }

    @Test func aFragmentedControlFrameIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x09, [1])))
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x08, [])))
    }

    @Test func aContinuationWithoutAMessageIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x80, [1])))
    }

    @Test func aNewMessageInsideAFragmentedOneIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x01, [0x41])) + T.masked(T.frame(0x82, [1])))
    }

    @Test func invalidUTF8TextIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x81, [0xC3, 0x28])))
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x81, [0xED, 0xA0, 0x80])))  // a surrogate
    }

    @Test func aCodePointSplitAcrossFragmentsIsValidText() throws {
        let stream = T.masked(T.frame(0x01, [0xC3])) + T.masked(T.frame(0x80, [0xA9]))
        #expect(try decodeAll([stream]) == [.text("é")])
    }

    @Test func aOneByteCloseBodyIsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.bytes("88 01 03")))
    }

    @Test(arguments: [UInt16(0), 999, 1004, 1005, 1006, 1015, 2999, 5000])
    func aCloseCodeNotAllowedOnTheWireIsAViolation(code: UInt16) {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x88, [UInt8(code >> 8), UInt8(code & 0xFF)])))
    }

    @Test func aCloseReasonThatIsNotUTF8IsAViolation() {
        expectFailure(.webSocketProtocolViolation, T.masked(T.frame(0x88, [0x03, 0xE8, 0xFF])))
    }

    @Test func aFrameOverTheLimitIsRejectedFromItsHeaderAlone() {
        var decoder = serverDecoder(maxFrame: 1000)
        // Header only: the payload never arrives, yet the announcement is enough.
        #expect(throws: ProtocolError.frameTooLarge) { _ = try decoder.decode(T.bytes("82 FE 03 E9 01 02 03 04")) }
        var huge = serverDecoder()
        #expect(throws: ProtocolError.frameTooLarge) {
            _ = try huge.decode(T.bytes("82 FF 00 00 01 00 00 00 00 00 01 02 03 04"))
        }
    }

    @Test func aFrameOverTheLimitIsRejectedWhenItsSplitHeaderCompletes() throws {
        var decoder = serverDecoder(maxFrame: 1000)
        #expect(try decoder.decode(T.bytes("82 FE 03")).isEmpty)
        #expect(decoder.bufferedByteCount == 3)
        #expect(throws: ProtocolError.frameTooLarge) { _ = try decoder.decode(T.bytes("E9 01 02 03 04")) }
    }

    @Test func aFrameAtTheLimitIsAccepted() throws {
        var decoder = serverDecoder(maxFrame: 1000)
        let payload = Array(repeating: UInt8(1), count: 1000)
        #expect(try decoder.decode(T.masked(T.frame(0x82, payload))) == [.binary(payload)])
    }

    @Test func aMessageOverTheLimitIsRejectedAtTheHeaderOfTheFragmentThatWouldCrossIt() throws {
        var decoder = serverDecoder(maxFrame: 100, maxMessage: 10)
        #expect(try decoder.decode(T.masked(T.frame(0x02, Array(repeating: 1, count: 6)))).isEmpty)
        #expect(decoder.bufferedByteCount == 6)
        #expect(throws: ProtocolError.webSocketMessageTooLarge) { _ = try decoder.decode(T.bytes("80 85 01 02 03 04")) }
    }

    @Test func anUnfragmentedMessageOverTheMessageLimitIsRejected() {
        var decoder = serverDecoder(maxFrame: 100, maxMessage: 10)
        #expect(throws: ProtocolError.webSocketMessageTooLarge) { _ = try decoder.decode(T.bytes("82 8B 01 02 03 04")) }
    }

    @Test func aMessageExactlyAtTheLimitIsAccepted() throws {
        var decoder = serverDecoder(maxFrame: 100, maxMessage: 10)
        let stream = T.masked(T.frame(0x02, [1, 2, 3, 4])) + T.masked(T.frame(0x80, [5, 6, 7, 8, 9, 10]))
        #expect(try decoder.decode(stream) == [.binary([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])])
    }

    @Test func eventsBeforeTheViolationAreDelivered() {
        var decoder = serverDecoder()
        var seen: [WebSocketMessage] = []
        var input = T.masked(T.frame(0x82, [1])) + T.bytes("82 01 00")
        #expect(throws: ProtocolError.webSocketProtocolViolation) {
            try input.withUnsafeMutableBytes { buffer in
                try decoder.decode(buffer) { seen.append(WebSocketMessage($0)) }
            }
        }
        #expect(seen == [.binary([1])])
    }

    @Test func theRendezvousPresetUsesSixtyFourKiBLimits() {
        #expect(WebSocketFrameDecoder.Configuration.rendezvous.maxFrameSize == 65536)
        #expect(WebSocketFrameDecoder.Configuration.rendezvous.maxMessageSize == 65536)
        #expect(WebSocketFrameDecoder.Configuration.upstreamCompatible.maxFrameSize == 16 << 20)
        #expect(WebSocketFrameDecoder.Configuration.upstreamCompatible.maxMessageSize == 64 << 20)
    }
}

@Suite("WebSocket frame decoding: seeded fuzzing", .timeLimit(.minutes(1)))
struct WebSocketFrameDecoderFuzzTests {
    static let configuration = WebSocketFrameDecoder.Configuration(role: .server, maxFrameSize: 300, maxMessageSize: 700)

    /// Feeds `stream` in random chunks; checks the buffering bound after every chunk.
    private func feed(_ stream: [UInt8], using rng: inout T.SeededGenerator) -> Bool {
        var decoder = WebSocketFrameDecoder(configuration: Self.configuration)
        var index = 0
        while index < stream.count {
            let end = min(stream.count, index + Int.random(in: 1...64, using: &rng))
            do {
                _ = try decoder.decode(stream[index..<end])
            } catch {
                return true
            }
            guard decoder.bufferedByteCount <= decoder.maxBufferedByteCount,
                  decoder.bufferedByteCount <= 700 + 125 + 14 else { return false }
            index = end
        }
        return true
    }

    @Test func randomBytesNeverCrashAndStayWithinTheBufferingBound() {
        var rng = T.SeededGenerator(seed: 0x5EED_0001)
        for _ in 0..<2000 {
            let stream = (0..<Int.random(in: 0...512, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(feed(stream, using: &rng))
        }
    }

    @Test func mutatedValidStreamsNeverCrashAndStayWithinTheBufferingBound() {
        var rng = T.SeededGenerator(seed: 0x5EED_0002)
        let opcodes: [UInt8] = [0x00, 0x01, 0x02, 0x08, 0x09, 0x0A]
        for _ in 0..<1000 {
            var stream: [UInt8] = []
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                let fin: UInt8 = Bool.random(using: &rng) ? 0x80 : 0
                let opcode = opcodes.randomElement(using: &rng)!
                let length = [0, 1, 125, 126, 299, 300, 301, 700].randomElement(using: &rng)!
                let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let key = (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) }
                stream += T.masked(T.frame(fin | opcode, payload), key: key)
            }
            for _ in 0..<Int.random(in: 0...3, using: &rng) where !stream.isEmpty {
                stream[Int.random(in: 0..<stream.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            #expect(feed(stream, using: &rng))
        }
    }

    @Test func validStreamsInRandomChunksDecodeLikeOneChunk() throws {
        var rng = T.SeededGenerator(seed: 0x5EED_0003)
        for _ in 0..<300 {
            var stream: [UInt8] = []
            var expected: [WebSocketMessage] = []
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let fragments = Int.random(in: 1...3, using: &rng)
                var message: [UInt8] = []
                var pingAfterMessage: WebSocketMessage?
                for f in 0..<fragments {
                    let piece = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    message += piece
                    let isLast = f == fragments - 1
                    let byte0: UInt8 = (isLast ? 0x80 : 0) | (f == 0 ? 0x02 : 0x00)
                    stream += T.masked(T.frame(byte0, piece), key: (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) })
                    if Bool.random(using: &rng) {
                        stream += T.masked(T.frame(0x89, [UInt8(f)]))
                        // A ping inside the message arrives before it, one after its last fragment after it.
                        if isLast { pingAfterMessage = .ping([UInt8(f)]) } else { expected.append(.ping([UInt8(f)])) }
                    }
                }
                expected.append(.binary(message))
                if let pingAfterMessage { expected.append(pingAfterMessage) }
            }
            var decoder = WebSocketFrameDecoder(configuration: .init(role: .server, maxFrameSize: 300, maxMessageSize: 700))
            var messages: [WebSocketMessage] = []
            var index = 0
            while index < stream.count {
                let end = min(stream.count, index + Int.random(in: 1...97, using: &rng))
                messages += try decoder.decode(stream[index..<end])
                index = end
            }
            #expect(messages == expected)
            #expect(decoder.bufferedByteCount == 0)
        }
    }
}
