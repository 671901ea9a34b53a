// The TCP length-prefix decoder (RustDeskProtocol Framing): what hbbs and hbbr run on every read
// of a framed connection. Frames lying whole in one read are handed out in place; only a frame
// split across reads is reassembled, in a buffer kept between frames up to 64 KiB.
import Benchmark
import BenchmarkSupport
import RustDeskProtocol

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = BenchmarkSupport.configuration()

    // 64 frames of 20 bytes (a RegisterPeer is 17) back to back in one read.
    let smallFrames = framedStream(frames: 64, payloadBytes: 20)
    Benchmark("FrameDecoder_64_small_frames_in_one_read") { benchmark in
        var decoder = FrameDecoder()
        var delivered = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            feed(&decoder, smallFrames, count: &delivered)
        }
        benchmark.stopMeasurement()
        precondition(delivered == 64 * benchmark.scaledIterations.count)
    }

    Benchmark("MessageStream_framed_64_small_frames_in_one_read") { benchmark in
        var stream = MessageStream(kind: .framed, maxMessageSize: FrameLimits.rendezvousMaxFrameLength)
        var delivered = 0
        let input = BenchmarkSupport.mutableCopy(smallFrames)
        defer { input.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try stream.feed(input) { event in
                if case .message(let payload) = event { delivered += payload.count > 0 ? 1 : 0 }
                return .continue
            }
        }
        benchmark.stopMeasurement()
        precondition(delivered == 64 * benchmark.scaledIterations.count)
    }

    // One 200-byte frame arriving in two reads of 100 and 102 bytes: the reassembly path.
    let splitFrame = framedStream(frames: 1, payloadBytes: 200)
    Benchmark("FrameDecoder_frame_split_across_two_reads") { benchmark in
        var decoder = FrameDecoder()
        var delivered = 0
        let cut = 100
        // The first split frame of a connection allocates the reassembly buffer; measure the
        // steady state after it.
        feed(&decoder, splitFrame[..<cut], count: &delivered)
        feed(&decoder, splitFrame[cut...], count: &delivered)
        delivered = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            feed(&decoder, splitFrame[..<cut], count: &delivered)
            feed(&decoder, splitFrame[cut...], count: &delivered)
        }
        benchmark.stopMeasurement()
        precondition(delivered == benchmark.scaledIterations.count && decoder.bufferedByteCount == 0)
    }

    // A 1 MiB frame (hbbr's framed mode carries video frames up to 16 MiB).
    let largeFrame = framedStream(frames: 1, payloadBytes: 1 << 20)
    Benchmark("FrameDecoder_1_MiB_frame_in_one_read",
              configuration: BenchmarkSupport.configuration(scalingFactor: .one)) { benchmark in
        var decoder = FrameDecoder(maxFrameLength: FrameLimits.relayMaxFrameLength)
        var delivered = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            feed(&decoder, largeFrame, count: &delivered)
        }
        benchmark.stopMeasurement()
        precondition(delivered == benchmark.scaledIterations.count)
    }

    // The same frame in 16 reads of 64 KiB: copied into the reassembly buffer, which is released
    // after the frame because it outgrew the 64 KiB a connection may keep (one malloc per frame).
    Benchmark("FrameDecoder_1_MiB_frame_in_64_KiB_reads",
              configuration: BenchmarkSupport.configuration(scalingFactor: .one)) { benchmark in
        var decoder = FrameDecoder(maxFrameLength: FrameLimits.relayMaxFrameLength)
        var delivered = 0
        let read = 64 << 10
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var start = 0
            while start < largeFrame.count {
                let end = min(start + read, largeFrame.count)
                feed(&decoder, largeFrame[start..<end], count: &delivered)
                start = end
            }
        }
        benchmark.stopMeasurement()
        precondition(delivered == benchmark.scaledIterations.count && decoder.bufferedByteCount == 0)
    }
}

/// `frames` frames of `payloadBytes` bytes each (payload bytes count up), as one byte stream.
private func framedStream(frames: Int, payloadBytes: Int) -> [UInt8] {
    let payload = (0..<payloadBytes).map { UInt8(truncatingIfNeeded: $0) }
    let frame = try! FrameCodec.frame(payload)
    return Array([[UInt8]](repeating: frame, count: frames).joined())
}

/// Feeds `input` to `decoder`, counting delivered frames.
@inline(__always)
private func feed(_ decoder: inout FrameDecoder, _ input: ArraySlice<UInt8>, count: inout Int) {
    input.withUnsafeBytes { bytes in
        try! decoder.feed(bytes) { payload in
            count += 1
            blackHole(payload.count)
            return .continue
        }
    }
}

private func feed(_ decoder: inout FrameDecoder, _ input: [UInt8], count: inout Int) {
    feed(&decoder, input[...], count: &count)
}
