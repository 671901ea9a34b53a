import Testing
@testable import RustDeskProtocol

/// The strict base64 used for every key text (PROTOCOL.md §4.1).
@Suite(.timeLimit(.minutes(1)))
struct KeyBase64Tests {
    /// RFC 4648 §10.
    static let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    @Test func encodesTheRFCVectors() {
        for (plain, encoded) in Self.vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
        }
    }

    @Test func decodesTheRFCVectors() {
        for (plain, encoded) in Self.vectors {
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
    }

    @Test func usesTheStandardAlphabet() {
        #expect(Base64.encode([0xfb, 0xff]) == "+/8=")
        #expect(Base64.decode("+/8=") == [0xfb, 0xff])
        #expect(Base64.decode("-_8=") == nil)
    }

    @Test func trimsSurroundingWhitespaceOnly() {
        #expect(Base64.decode(" \t\r\nZm9v\n") == Array("foo".utf8))
        #expect(Base64.decode("\u{00A0}Zm9v\u{2003}") == Array("foo".utf8))
        #expect(Base64.decode("Zm 9v") == nil)
        #expect(Base64.decode("  \n") == [])
    }

    @Test(arguments: ["Zg", "Zm8", "Zg=", "Zm9v!", "Zg==Zg==", "Zm9v=", "Zg===", "====", "Z"])
    func rejectsMalformedText(text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test func roundTripsEveryLength() {
        for length in 0..<100 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64.encode(bytes)
            #expect(text.utf8.count == (length + 2) / 3 * 4)
            #expect(Base64.decode(text) == bytes)
        }
    }
}
