import Testing
@testable import RustDeskProtocol

/// The transport-independent message stream: framed TCP and WebSocket (§2.1, §2.3, checklist 10).
@Suite(.timeLimit(.minutes(1)))
struct MessageStreamTests {
    enum Seen: Equatable { case message([UInt8]), reply([UInt8]), upgraded(String), nonBinary, closed }

    func feed(_ s: inout MessageStream, _ bytes: [UInt8], stopAfterFirst: Bool = false) throws -> [Seen] {
        var seen: [Seen] = []
        var copy = bytes
        try copy.withUnsafeMutableBytes { p in
            try s.feed(p) { e in
                switch e {
                case .message(let b): seen.append(.message(Array(b))); return stopAfterFirst ? .stop : .continue
                case .reply(let b): seen.append(.reply(Array(b)))
                case .upgraded(let r): seen.append(.upgraded(r.target))
                case .nonBinary: seen.append(.nonBinary)
                case .closed: seen.append(.closed)
                }
                return .continue
            }
        }
        return seen
    }

    static let request = Array("GET /ws/id HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8)

    static func masked(_ opcode: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let key: [UInt8] = [1, 2, 3, 4]
        precondition(payload.count < 126)
        return [0x80 | opcode, 0x80 | UInt8(payload.count)] + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    }

    @Test func framedMessagesAreDelivered() throws {
        var s = MessageStream(kind: .framed, maxMessageSize: 65_536)
        let seen = try feed(&s, hex("14 a2 01 02 08 03 00"))
        #expect(seen == [.message(hex("a2 01 02 08 03")), .message([])])
    }

    @Test func webSocketUpgradeThenBinaryMessagesThenTextIgnored() throws {
        var s = MessageStream(kind: .webSocket, maxMessageSize: 65_536)
        var seen = try feed(&s, Self.request + Self.masked(0x2, hex("a2 01 02 08 03")))
        guard case .reply(let response) = seen.first else { Issue.record("expected the 101 first"); return }
        let text = String(decoding: response, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 101"))
        #expect(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        #expect(seen.dropFirst() == [.upgraded("/ws/id"), .message(hex("a2 01 02 08 03"))])
        seen = try feed(&s, Self.masked(0x1, Array("hi".utf8)) + Self.masked(0x9, [7]))
        #expect(seen.first == .nonBinary)
        #expect(seen.count == 2)
        if case .reply(let pong) = seen.last { #expect(pong == [0x8A, 0x01, 0x07]) } else { Issue.record("expected a pong") }
    }

    @Test func badUpgradeThrows() {
        var s = MessageStream(kind: .webSocket, maxMessageSize: 65_536)
        #expect(throws: ProtocolError.self) { _ = try feed(&s, Array("POST / HTTP/1.1\r\n\r\n".utf8)) }
    }

    @Test func stopKeepsRawBytesOnTCPAndMessagesOnWebSocket() throws {
        var tcp = MessageStream(kind: .framed, maxMessageSize: 65_536)
        _ = try feed(&tcp, hex("0c 82 01 00") + [9, 9, 9], stopAfterFirst: true)
        #expect(tcp.takeRawBytes() == [9, 9, 9])
        var ws = MessageStream(kind: .webSocket, maxMessageSize: 65_536)
        let seen = try feed(&ws, Self.request + Self.masked(0x2, [1]) + Self.masked(0x2, [2]) + Self.masked(0x2, [3]), stopAfterFirst: true)
        #expect(seen.last == .message([1]))
        #expect(ws.takeHeldMessages() == [[2], [3]])
    }

    @Test func outgoingEncodingMatchesAppendixA2() throws {
        let m = RendezvousMessage.registerPkResponse(.init(result: .ok))
        #expect(MessageStream.encode(m, kind: .framed) == hex("0c 82 01 00"))
        #expect(MessageStream.encode(m, kind: .webSocket) == hex("82 03 82 01 00"))
    }

    @Test func oversizedFramesAreRejected() {
        var s = MessageStream(kind: .framed, maxMessageSize: 1000)
        #expect(throws: ProtocolError.frameTooLarge) { _ = try feed(&s, hex("ff ff ff ff")) }
    }
}
