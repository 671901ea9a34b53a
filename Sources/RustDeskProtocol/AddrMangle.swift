import FoundationEssentials

/// Socket addresses inside messages (`socket_addr`, `local_addr`, …), PROTOCOL.md §3.
///
/// IPv4 is obfuscated with the current time so that NAT devices rewriting addresses found in
/// payloads do not recognise it: encodings of one address differ over time, so compare decoded
/// addresses, never encoded bytes. IPv6 is 16 octets plus the port little-endian.
public enum AddrMangle {
    /// Longest encoding (IPv6).
    public static let maxEncodedLength = 18

    /// Encodes `address` (normalised first, §3.3) with `timeMicros`, the Unix time in microseconds
    /// (only its low 32 bits are used), into `buffer`; returns the length written. No allocation.
    /// `buffer` must hold `maxEncodedLength` bytes.
    @inlinable
    public static func encode(_ address: SocketAddress, timeMicros: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= maxEncodedLength, "AddrMangle needs an 18-byte buffer")
        switch address.ip.normalized {
        case .v4(let ip):
            let tm = UInt128(UInt32(truncatingIfNeeded: timeMicros))
            let ipLE = UInt128(ip.value.byteSwapped)
            let v = ((ipLE + tm) << 49) | (tm << 17) | (UInt128(address.port) + (tm & 0xFFFF))
            var length = 0
            for i in 0..<16 {
                let b = UInt8(truncatingIfNeeded: v >> (8 * UInt128(i)))
                buffer[i] = b
                if b != 0 { length = i + 1 }
            }
            return length
        case .v6(let ip):
            ip.withOctets { octets in
                for i in 0..<16 { buffer[i] = octets[i] }
            }
            buffer[16] = UInt8(truncatingIfNeeded: address.port)
            buffer[17] = UInt8(truncatingIfNeeded: address.port >> 8)
            return 18
        }
    }

    /// Encodes into a new array.
    public static func encode(_ address: SocketAddress, timeMicros: UInt64) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: maxEncodedLength) { buf, n in
            n = encode(address, timeMicros: timeMicros, into: UnsafeMutableRawBufferPointer(buf))
        }
    }

    /// Encodes with the current wall-clock time.
    public static func encode(_ address: SocketAddress) -> [UInt8] {
        encode(address, timeMicros: currentTimeMicros())
    }

    /// The Unix time in microseconds.
    public static func currentTimeMicros() -> UInt64 {
        UInt64((Date().timeIntervalSince1970 * 1_000_000).rounded(.down))
    }

    /// Decodes any input without failing: 18 bytes → IPv6; other lengths above 16 → `[::]:0`;
    /// up to 16 → IPv4 (empty → `0.0.0.0:0`).
    @inlinable
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> SocketAddress {
        if bytes.count == 18 {
            var high: UInt64 = 0, low: UInt64 = 0
            for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
            for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
            return SocketAddress(IPv6Address(high: high, low: low), port: UInt16(bytes[16]) | UInt16(bytes[17]) << 8)
        }
        if bytes.count > 16 { return .unspecifiedV6 }
        var n: UInt128 = 0
        for i in 0..<bytes.count { n |= UInt128(bytes[i]) << (8 * UInt128(i)) }
        let tm = (n >> 17) & 0xFFFF_FFFF
        let ipLE = UInt32(truncatingIfNeeded: (n >> 49) &- tm)
        let port = UInt16(truncatingIfNeeded: (n & 0xFF_FFFF) &- (tm & 0xFFFF))
        return SocketAddress(IPv4Address(ipLE.byteSwapped), port: port)
    }

    public static func decode(_ bytes: [UInt8]) -> SocketAddress {
        bytes.withUnsafeBytes { decode($0) }
    }
}
