import Testing
@testable import RustDeskProtocol

/// PROTOCOL.md §3 worked examples and properties.
@Suite(.timeLimit(.minutes(1)))
struct AddrMangleTests {
    static let examples: [(String, UInt64, String)] = [
        ("192.168.16.32:21116", 0x1234_5678, "f4 a8 f0 ac 68 24 70 fe 89 64"),
        ("1.2.3.4:21116", 0, "7c 52 00 00 00 00 02 04 06 08"),
        ("203.0.113.7:50000", 0x9ABC_DEF0, "40 a2 e1 bd 79 35 77 bf 5b 44 01"),
        ("0.0.0.0:0", 0, ""),
    ]

    @Test(arguments: examples)
    func ipv4WorkedExample(_ text: String, _ tm: UInt64, _ encoded: String) throws {
        let addr = try #require(SocketAddress(text))
        #expect(AddrMangle.encode(addr, timeMicros: tm) == hex(encoded))
        #expect(AddrMangle.decode(hex(encoded)) == addr)
    }

    @Test func ipv6IsOctetsThenLittleEndianPort() throws {
        let addr = try #require(SocketAddress("[2001:db8::1]:8080"))
        let expected = hex("20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 90 1f")
        #expect(AddrMangle.encode(addr, timeMicros: 123) == expected)
        #expect(AddrMangle.decode(expected) == addr)
    }

    @Test func ipv4MappedIsNormalisedBeforeEncoding() throws {
        let mapped = try #require(SocketAddress("[::ffff:192.168.16.32]:21116"))
        #expect(AddrMangle.encode(mapped, timeMicros: 0x1234_5678) == hex("f4 a8 f0 ac 68 24 70 fe 89 64"))
        // ::1 stays IPv6.
        let loop = try #require(SocketAddress("[::1]:5"))
        #expect(AddrMangle.encode(loop, timeMicros: 0).count == 18)
    }

    @Test func oddLengthsDecodeAsTheSpecSays() {
        #expect(AddrMangle.decode([UInt8](repeating: 1, count: 17)) == .unspecifiedV6)
        #expect(AddrMangle.decode([UInt8](repeating: 1, count: 19)) == .unspecifiedV6)
        #expect(AddrMangle.decode([UInt8](repeating: 0xFF, count: 16)).ip.isIPv4)
        #expect(AddrMangle.decode([]) == .unspecifiedV4)
    }

    @Test func roundTripsForManyAddressesAndTimes() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<5_000 {
            let ip = IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng))
            let addr = SocketAddress(ip, port: UInt16.random(in: 0...UInt16.max, using: &rng))
            let tm = UInt64.random(in: 0...UInt64.max, using: &rng)
            let enc = AddrMangle.encode(addr, timeMicros: tm)
            #expect(enc.count <= 11)
            #expect(AddrMangle.decode(enc) == addr)
        }
    }

    @Test func theSameAddressEncodesDifferentlyOverTime() throws {
        let addr = try #require(SocketAddress("10.1.2.3:4000"))
        #expect(AddrMangle.encode(addr, timeMicros: 1) != AddrMangle.encode(addr, timeMicros: 2))
        #expect(AddrMangle.decode(AddrMangle.encode(addr)) == addr)
    }
}

@Suite(.timeLimit(.minutes(1)))
struct SocketAddressTests {
    @Test func normalisationFollowsSection3_3() throws {
        #expect(IPAddress("::ffff:1.2.3.4")!.normalized == IPAddress("1.2.3.4"))
        #expect(IPAddress("::1.2.3.4")!.normalized == IPAddress("1.2.3.4"))
        #expect(IPAddress("::")!.normalized == IPAddress("0.0.0.0"))
        #expect(IPAddress("::1")!.normalized == IPAddress("::1"))
        #expect(IPAddress("2001:db8::1")!.normalized == IPAddress("2001:db8::1"))
        #expect(IPAddress("::ffff:127.0.0.1")!.isLoopback)
        #expect(IPAddress("127.9.9.9")!.isLoopback)
        #expect(!IPAddress("128.0.0.1")!.isLoopback)
    }

    @Test func parsingAndPrinting() throws {
        for text in ["1.2.3.4", "::", "::1", "2001:db8::1", "fe80::1:2", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8"] {
            #expect(IPAddress(text)?.description == text, "\(text)")
        }
        #expect(IPAddress("2001:DB8:0:0:0:0:0:1")?.description == "2001:db8::1")
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1:2:3:4:5:6:7:8:9", "1::2::3", "g::1", "1.2.3.4, 5.6.7.8", " 1.2.3.4"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(SocketAddress("1.2.3.4:80")?.description == "1.2.3.4:80")
        #expect(SocketAddress("[::1]:80")?.description == "[::1]:80")
        #expect(SocketAddress("1.2.3.4:99999") == nil)
        #expect(IPAddress("1.2.3.4")!.mappedToIPv6.description == "::ffff:1.2.3.4")
    }
}
