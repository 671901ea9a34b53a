import Testing
@testable import RustDeskProtocol

private typealias T = WebSocketTestSupport

private func appended(_ opcode: WebSocketOpcode, fin: Bool = true, _ payload: [UInt8],
                      maskKey: WebSocketMaskKey? = nil) throws -> [UInt8] {
    var out: [UInt8] = []
    try WebSocketFrameEncoder.appendFrame(opcode, fin: fin, payload: payload, maskKey: maskKey, to: &out)
    return out
}

private let rfcKey = WebSocketMaskKey(0x37FA_213D)

@Suite("WebSocket frame encoding", .timeLimit(.minutes(1)))
struct WebSocketFrameEncoderTests {
    @Test func theRendezvousReplyFromAppendixA2IsFramedAsOneUnmaskedBinaryFrame() throws {
        #expect(try appended(.binary, [0x82, 0x01, 0x00]) == T.bytes("82 03 82 01 00"))
    }

    @Test func unmaskedHelloMatchesRFC6455() throws {
        #expect(try appended(.text, Array("Hello".utf8)) == T.bytes("81 05 48 65 6c 6c 6f"))
    }

    @Test func maskedHelloMatchesRFC6455() throws {
        #expect(try appended(.text, Array("Hello".utf8), maskKey: rfcKey) == T.bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
    }

    @Test func fragmentsMatchRFC6455() throws {
        #expect(try appended(.text, fin: false, Array("Hel".utf8)) == T.bytes("01 03 48 65 6c"))
        #expect(try appended(.continuation, Array("lo".utf8)) == T.bytes("80 02 6c 6f"))
    }

    @Test func pingAndMaskedPongMatchRFC6455() throws {
        #expect(try appended(.ping, Array("Hello".utf8)) == T.bytes("89 05 48 65 6c 6c 6f"))
        #expect(try appended(.pong, Array("Hello".utf8), maskKey: rfcKey) == T.bytes("8a 85 37 fa 21 3d 7f 9f 4d 51 58"))
    }

    @Test func lengthsUseTheMinimalEncoding() throws {
        func header(_ count: Int) throws -> [UInt8] {
            let frame = try appended(.binary, Array(repeating: 0, count: count))
            return Array(frame[..<(frame.count - count)])
        }
        #expect(try header(125) == T.bytes("82 7D"))
        #expect(try header(126) == T.bytes("82 7E 00 7E"))
        #expect(try header(256) == T.bytes("82 7E 01 00"))
        #expect(try header(65535) == T.bytes("82 7E FF FF"))
        #expect(try header(65536) == T.bytes("82 7F 00 00 00 00 00 01 00 00"))
    }

    @Test func headerSizeMatchesWhatIsWritten() throws {
        for count in [0, 1, 125, 126, 65535, 65536, 100_000] {
            for key in [nil, rfcKey] {
                let frame = try appended(.binary, Array(repeating: 1, count: count), maskKey: key)
                #expect(WebSocketFrameEncoder.headerSize(payloadCount: count, masked: key != nil) == frame.count - count)
            }
        }
        #expect(WebSocketFrameEncoder.headerSize(payloadCount: 1 << 40, masked: true) == WebSocketFrameEncoder.maxHeaderSize)
    }

    @Test func encodingIntoABufferMatchesAppending() throws {
        for count in [0, 5, 200, 70_000] {
            let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            for key in [nil, WebSocketMaskKey(0xDEAD_BEEF)] {
                var buffer = [UInt8](repeating: 0xEE, count: count + 20)
                let written = try buffer.withUnsafeMutableBytes { out in
                    try payload.withUnsafeBytes { p in
                        try WebSocketFrameEncoder.encodeFrame(.binary, payload: p, maskKey: key, into: out)
                    }
                }
                #expect(Array(buffer[..<written]) == (try appended(.binary, payload, maskKey: key)))
            }
        }
    }

    @Test func aHeaderWrittenInFrontOfAPayloadFormsTheFrame() throws {
        let payload: [UInt8] = [0x82, 0x01, 0x00]
        var buffer = [UInt8](repeating: 0, count: WebSocketFrameEncoder.maxHeaderSize)
        let size = try buffer.withUnsafeMutableBytes {
            try WebSocketFrameEncoder.writeHeader(.binary, payloadCount: payload.count, into: $0)
        }
        #expect(Array(buffer[..<size]) + payload == T.bytes("82 03 82 01 00"))
    }

    @Test func aBufferTooSmallIsReportedNotOverrun() {
        var buffer = [UInt8](repeating: 0, count: 5)
        #expect(throws: ProtocolError.bufferTooSmall) {
            try buffer.withUnsafeMutableBytes { out in
                try [UInt8](repeating: 0, count: 4).withUnsafeBytes { p in
                    try WebSocketFrameEncoder.encodeFrame(.binary, payload: p, into: out)
                }
            }
        }
        #expect(throws: ProtocolError.bufferTooSmall) {
            try buffer.withUnsafeMutableBytes { try WebSocketFrameEncoder.writeHeader(.binary, payloadCount: 70_000, into: $0) }
        }
    }

    @Test func invalidControlFramesAreRefused() {
        var out: [UInt8] = []
        #expect(throws: ProtocolError.webSocketProtocolViolation) {
            try WebSocketFrameEncoder.appendFrame(.ping, payload: [UInt8](repeating: 0, count: 126), to: &out)
        }
        #expect(throws: ProtocolError.webSocketProtocolViolation) {
            try WebSocketFrameEncoder.appendFrame(.close, fin: false, payload: [UInt8](), to: &out)
        }
        #expect(out.isEmpty)
    }

    @Test func clientFramesRoundTripThroughTheServerDecoder() throws {
        var rng = T.SeededGenerator(seed: 42)
        for count in [0, 1, 3, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70_001] {
            let payload = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let key = WebSocketMaskKey(UInt32.random(in: 0...UInt32.max, using: &rng))
            var decoder = WebSocketFrameDecoder(configuration: .init(role: .server))
            #expect(try decoder.decode(try appended(.binary, payload, maskKey: key)) == [.binary(payload)])
            // The independent reference masking in the tests agrees with the encoder.
            let keyBytes = [UInt8(key.value >> 24), UInt8(key.value >> 16 & 0xFF), UInt8(key.value >> 8 & 0xFF), UInt8(key.value & 0xFF)]
            #expect(try appended(.binary, payload, maskKey: key) == T.masked(T.frame(0x82, payload), key: keyBytes))
        }
    }

    @Test func serverFramesRoundTripThroughTheClientDecoder() throws {
        var stream: [UInt8] = []
        try WebSocketFrameEncoder.appendFrame(.binary, payload: [1, 2, 3], to: &stream)
        try WebSocketFrameEncoder.appendFrame(.text, payload: Array("héllo".utf8), to: &stream)
        try WebSocketFrameEncoder.appendFrame(.ping, payload: [9], to: &stream)
        try WebSocketFrameEncoder.appendFrame(.close, payload: [0x03, 0xE8], to: &stream)
        var decoder = WebSocketFrameDecoder(configuration: .init(role: .client))
        #expect(try decoder.decode(stream) == [.binary([1, 2, 3]), .text("héllo"), .ping([9]), .close(code: 1000, reason: "")])
    }

    @Test func maskingFromAnyPayloadOffsetMatchesByteWiseXor() {
        let key = WebSocketMaskKey(0x0102_0304)
        let keyBytes: [UInt8] = [1, 2, 3, 4]
        for offset in 0..<8 {
            for count in 0..<40 {
                let original = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 5) }
                var bytes = original
                bytes.withUnsafeMutableBytes { key.apply(to: $0, payloadOffset: offset) }
                #expect(bytes == original.enumerated().map { $1 ^ keyBytes[($0 + offset) % 4] })
            }
        }
    }
}
