import Testing
@testable import ServerConfig

@Suite(.timeLimit(.minutes(1)))
struct AddressLiteralTests {
    @Test(arguments: [
        ("0.0.0.0", [0, 0, 0, 0]), ("192.0.2.255", [192, 0, 2, 255]), ("127.0.0.1", [127, 0, 0, 1]),
    ] as [(String, [UInt8])])
    func ipv4(text: String, octets: [UInt8]) {
        #expect(IPLiteral(text)?.octets == octets)
        #expect(IPLiteral(text)?.isIPv4 == true)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.-4", "1..2.3", "a.b.c.d", " 1.2.3.4", "1.2.3.4 "])
    func invalidIPv4(text: String) {
        #expect(IPLiteral(text) == nil)
    }

    @Test func ipv6() {
        #expect(IPLiteral("::")?.octets == [UInt8](repeating: 0, count: 16))
        #expect(IPLiteral("::1")?.octets == [UInt8](repeating: 0, count: 15) + [1])
        #expect(IPLiteral("2001:db8::8:800:200c:417a")?.octets ==
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0x08, 0x08, 0, 0x20, 0x0c, 0x41, 0x7a])
        #expect(IPLiteral("::ffff:1.2.3.4")?.octets == [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 1, 2, 3, 4])
        #expect(IPLiteral("1:2:3:4:5:6:7:8")?.octets == [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8])
        #expect(IPLiteral("1:2:3:4:5:6:7::")?.octets == [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0])
        #expect(IPLiteral("FE80::ABCD")?.isIPv4 == false)
    }

    @Test(arguments: [":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "::g", "1.2.3.4::",
                      "::1%eth0", "[::1]", "1:2:3:4:5:6:7:8::", "::1.2.3"])
    func invalidIPv6(text: String) {
        #expect(IPLiteral(text) == nil)
    }

    @Test func socketAddresses() {
        #expect(SocketAddressLiteral("1.2.3.4:80") == SocketAddressLiteral(ip: IPLiteral("1.2.3.4")!, port: 80))
        #expect(SocketAddressLiteral("[::1]:65535")?.port == 65535)
        #expect(SocketAddressLiteral("[::1]:65535")?.description == "[::1]:65535")
        #expect(SocketAddressLiteral("1.2.3.4:80")?.description == "1.2.3.4:80")
        for bad in ["1.2.3.4", "::1:80", "[1.2.3.4]:80", "1.2.3.4:65536", "1.2.3.4:", "host:80", "[::1]:+80", "1.2.3.4:-1"] {
            #expect(SocketAddressLiteral(bad) == nil, "\(bad)")
        }
    }

    @Test func prefixes() {
        #expect(IPPrefix("10.0.0.0/8")?.length == 8)
        #expect(IPPrefix("10.0.0.1")?.length == 32)
        #expect(IPPrefix("::1")?.length == 128)
        #expect(IPPrefix("fd00::/0")?.length == 0)
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/-1", "/8", "x/8"] {
            #expect(IPPrefix(bad) == nil, "\(bad)")
        }
    }
}
