import RustDeskProtocol

/// The bodies of RingDesk's libFuzzer targets, one per decoder (Fuzz/README.md).
///
/// They live in a library so that the same code runs under libFuzzer (the `Fuzz/` package wraps
/// each in `LLVMFuzzerTestOneInput`) and in the ordinary test suite, which replays the committed
/// seed corpus (`Fuzz/Corpus/<target>/`). Each target checks a property beyond "does not crash";
/// a violated property traps, which libFuzzer reports as a crash with the input saved.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case rendezvousMessage = "rendezvous_message"
    case frameDecoder = "frame_decoder"
    case addrMangle = "addr_mangle"
    case webSocketUpgrade = "websocket_upgrade"
    case webSocketFrames = "websocket_frames"

    public func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .rendezvousMessage: Self.rendezvousMessage(data)
        case .frameDecoder: Self.frameDecoder(data)
        case .addrMangle: Self.addrMangle(data)
        case .webSocketUpgrade: Self.webSocketUpgrade(data)
        case .webSocketFrames: Self.webSocketFrames(data)
        }
    }

    /// Any input decodes or throws; whatever decodes re-encodes to bytes that decode to the same value.
    static func rendezvousMessage(_ data: UnsafeRawBufferPointer) {
        guard let message = try? RendezvousMessage(serializedBytes: data) else { return }
        let again = message.serializedBytes()
        precondition(again.count == message.serializedSize(), "size disagrees with encoding")
        guard let decoded = try? RendezvousMessage(serializedBytes: again) else { preconditionFailure("re-encoding does not decode") }
        precondition(decoded == message, "round trip changed the message")
    }

    /// Feeding all at once and feeding in two pieces (split point from the first byte) yield the
    /// same frames, and the decoder never buffers more than one maximal frame.
    static func frameDecoder(_ data: UnsafeRawBufferPointer) {
        let maxLength = 4096
        func frames(split: Int) -> ([[UInt8]], ProtocolError?) {
            var d = FrameDecoder(maxFrameLength: maxLength)
            var out: [[UInt8]] = []
            do {
                for piece in [UnsafeRawBufferPointer(rebasing: data[..<split]), UnsafeRawBufferPointer(rebasing: data[split...])] {
                    try d.feed(piece) { out.append(Array($0)); return .continue }
                    precondition(d.bufferedByteCount <= maxLength + 4, "decoder buffered beyond its bound")
                }
            } catch { return (out, error) }
            return (out, nil)
        }
        let whole = frames(split: data.count)
        let split = data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)
        let pieces = frames(split: split)
        precondition(whole.0 == pieces.0 && whole.1 == pieces.1, "framing depends on how input is split")
    }

    /// Decoding never fails; IPv4 results re-encode to an equal address.
    static func addrMangle(_ data: UnsafeRawBufferPointer) {
        let addr = AddrMangle.decode(data)
        let tm: UInt64 = data.count >= 4 ? UInt64(data.loadUnaligned(as: UInt32.self)) : 0
        precondition(AddrMangle.decode(AddrMangle.encode(addr, timeMicros: tm)) == addr.normalized, "round trip failed")
    }

    /// The upgrade parser never buffers past its limit, and whole-input and byte-by-byte feeding
    /// agree on the outcome.
    static func webSocketUpgrade(_ data: UnsafeRawBufferPointer) {
        func outcome(chunked: Bool) -> String {
            var parser = WebSocketUpgradeParser()
            do {
                if chunked {
                    for b in data {
                        if case .complete(let r, _) = try parser.feed(CollectionOfOne(b)) { return "ok \(r.target) \(r.key)" }
                        precondition(parser.bufferedByteCount <= WebSocketUpgradeParser.maxHeadBytes, "upgrade parser buffered beyond its bound")
                    }
                    return "more"
                }
                if case .complete(let r, _) = try parser.feed(data) { return "ok \(r.target) \(r.key)" }
                return "more"
            } catch { return "error" }
        }
        let whole = outcome(chunked: false)
        let bytewise = outcome(chunked: true)
        precondition(whole == bytewise, "upgrade parsing depends on how input is split: \(whole) vs \(bytewise)")
    }

    /// Server-role frame decoding: whole input and two pieces give the same messages, and the
    /// decoder never buffers beyond its configured bound.
    static func webSocketFrames(_ data: UnsafeRawBufferPointer) {
        let config = WebSocketFrameDecoder.Configuration(role: .server, maxFrameSize: 4096, maxMessageSize: 8192)
        func messages(split: Int) -> ([WebSocketMessage], Bool) {
            var d = WebSocketFrameDecoder(configuration: config)
            var out: [WebSocketMessage] = []
            do {
                out += try d.decode(data[..<split])
                precondition(d.bufferedByteCount <= d.maxBufferedByteCount, "frame decoder buffered beyond its bound")
                out += try d.decode(data[split...])
                precondition(d.bufferedByteCount <= d.maxBufferedByteCount, "frame decoder buffered beyond its bound")
            } catch { return (out, true) }
            return (out, false)
        }
        let whole = messages(split: data.count)
        let split = data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)
        let pieces = messages(split: split)
        precondition(whole.0 == pieces.0 && whole.1 == pieces.1, "frame decoding depends on how input is split")
    }
}
