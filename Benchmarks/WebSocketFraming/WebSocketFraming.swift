// WebSocket framing (RustDeskProtocol WebSocket): the frames web clients send to hbbs (port 21118)
// and hbbr (21119), which are always masked, the masked frames the load harness writes, and the
// upgrade request every WebSocket connection starts with.
//
// Decoding unmasks in place. Decoding the same bytes a second time masks them again (XOR with the
// same key), so the decode loops feed one buffer over and over without refilling it: every pass
// parses the header and unmasks the whole payload, exactly the work of a fresh frame. The
// payloads are binary, so the alternately masked and unmasked bytes are never validated.
import Benchmark
import BenchmarkSupport
import RustDeskProtocol

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = BenchmarkSupport.configuration()

    let key = WebSocketMaskKey(0x37FA_213D)
    let small = (0..<32).map { UInt8($0) }            // a rendezvous message
    let large = (0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }  // a relayed video chunk

    Benchmark("Encode_masked_client_frame_32_B_into_buffer") { benchmark in
        try encodeLoop(benchmark, payload: small, key: key)
    }
    Benchmark("Encode_masked_client_frame_64_KiB_into_buffer",
              configuration: BenchmarkSupport.configuration(scalingFactor: .one)) { benchmark in
        try encodeLoop(benchmark, payload: large, key: key)
    }

    let smallFrame = clientFrame(small, key: key)
    Benchmark("Decode_masked_client_frame_32_B") { benchmark in
        try decodeLoop(benchmark, frame: smallFrame, cut: nil, configuration: .rendezvous)
    }
    // A 2 KiB message arriving in two reads: copied into the decoder's message buffer, which it
    // keeps between messages (up to 256 KiB), so no allocation once warm.
    let mediumFrame = clientFrame((0..<2048).map { UInt8(truncatingIfNeeded: $0) }, key: key)
    Benchmark("Decode_masked_client_frame_2_KiB_split_across_two_reads") { benchmark in
        try decodeLoop(benchmark, frame: mediumFrame, cut: 1000, configuration: .upstreamCompatible)
    }
    let largeFrame = clientFrame(large, key: key)
    Benchmark("Decode_masked_client_frame_64_KiB",
              configuration: BenchmarkSupport.configuration(scalingFactor: .one)) { benchmark in
        try decodeLoop(benchmark, frame: largeFrame, cut: nil, configuration: .upstreamCompatible)
    }

    // hbbs's WebSocket path after the upgrade: MessageStream over the frame decoder.
    Benchmark("MessageStream_webSocket_32_B_message") { benchmark in
        var stream = MessageStream(kind: .webSocket, maxMessageSize: WebSocketFrameDecoder.rendezvousMaxMessageSize)
        var head = upgradeRequest
        try head.withUnsafeMutableBytes { try stream.feed($0) { _ in .continue } }
        precondition(!stream.awaitingUpgrade)
        var delivered = 0
        let input = BenchmarkSupport.mutableCopy(smallFrame)
        defer { input.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try stream.feed(input) { event in
                if case .message(let payload) = event { delivered += 1; blackHole(payload.count) }
                return .continue
            }
        }
        benchmark.stopMeasurement()
        precondition(delivered == benchmark.scaledIterations.count)
    }

    // Once per connection: the parser keeps the head and returns the request's fields as Strings.
    // Called from this module, the generic `feed` runs unspecialised (it is not inlinable), which
    // costs ~270 more mallocs than the same parse inside MessageStream below (RESULTS.md).
    Benchmark("Parse_upgrade_request") { benchmark in
        try upgradeRequest.withUnsafeBytes { bytes in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var parser = WebSocketUpgradeParser()
                guard case .complete(let request, _) = try parser.feed(bytes) else { fatalError("incomplete") }
                blackHole(request)
            }
            benchmark.stopMeasurement()
        }
    }
    // The whole upgrade as the servers run it: parse, Sec-WebSocket-Accept (SHA-1, base64), the
    // 101 response.
    Benchmark("MessageStream_upgrade_to_101_response") { benchmark in
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: upgradeRequest.count, alignment: 8)
        defer { input.deallocate() }
        var replies = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            upgradeRequest.withUnsafeBytes { input.copyMemory(from: $0) }
            var stream = MessageStream(kind: .webSocket, maxMessageSize: WebSocketFrameDecoder.rendezvousMaxMessageSize)
            try stream.feed(input) { event in
                if case .reply(let bytes) = event { replies += 1; blackHole(bytes.count) }
                return .continue
            }
        }
        benchmark.stopMeasurement()
        precondition(replies == benchmark.scaledIterations.count)
    }
}

/// A browser's upgrade request to hbbs (244 bytes).
private let upgradeRequest = Array((
    "GET / HTTP/1.1\r\n" +
    "Host: rs.example.com:21118\r\n" +
    "Connection: Upgrade\r\n" +
    "Pragma: no-cache\r\n" +
    "Upgrade: websocket\r\n" +
    "Origin: https://web.example.com\r\n" +
    "Sec-WebSocket-Version: 13\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
    "\r\n"
).utf8)

/// One masked binary frame carrying `payload`.
private func clientFrame(_ payload: [UInt8], key: WebSocketMaskKey) -> [UInt8] {
    var frame: [UInt8] = []
    try! WebSocketFrameEncoder.appendFrame(.binary, payload: payload, maskKey: key, to: &frame)
    return frame
}

private func encodeLoop(_ benchmark: Benchmark, payload: [UInt8], key: WebSocketMaskKey) throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: payload.count + WebSocketFrameEncoder.maxHeaderSize, alignment: 8)
    defer { buffer.deallocate() }
    try payload.withUnsafeBytes { payload in
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try WebSocketFrameEncoder.encodeFrame(.binary, payload: payload, maskKey: key, into: buffer))
        }
        benchmark.stopMeasurement()
    }
}

/// Decodes `frame` once per operation, in one read or (with `cut`) in two.
private func decodeLoop(_ benchmark: Benchmark, frame: [UInt8], cut: Int?,
                        configuration: WebSocketFrameDecoder.Configuration) throws {
    var decoder = WebSocketFrameDecoder(configuration: configuration)
    let input = BenchmarkSupport.mutableCopy(frame)
    defer { input.deallocate() }
    let parts = cut.map { [UnsafeMutableRawBufferPointer(rebasing: input[..<$0]), UnsafeMutableRawBufferPointer(rebasing: input[$0...])] }
        ?? [input]
    var delivered = 0
    // Warm up: the first split message of a connection grows the decoder's message buffer.
    for _ in 0..<2 {
        for part in parts { try decoder.decode(part) { _ in } }
    }
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        for part in parts {
            try decoder.decode(part) { event in
                if case .binaryMessageArrived(let payload) = event { delivered += 1; blackHole(payload.count) }
            }
        }
    }
    benchmark.stopMeasurement()
    precondition(delivered == benchmark.scaledIterations.count && decoder.bufferedByteCount == 0)
}
