import CSodium

/// Standard base64 (RFC 4648 alphabet, `=` padding), the text form of every RustDesk key.
///
/// Decoding is strict, as the current upstream decoder is: padding is required, no characters
/// outside the alphabet, no trailing data, unused trailing bits must be zero. The one leniency is
/// that surrounding whitespace is trimmed first (PROTOCOL.md §4.1: key files may end in a newline).
/// Built on libsodium's constant-time codec, which the key code links anyway.
public enum Base64 {
    /// The base64 text of `bytes`, with padding.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        Sodium.ensureInitialized()
        let input = Array(bytes)
        let capacity = sodium_base64_encoded_len(input.count, sodium_base64_VARIANT_ORIGINAL) // includes the NUL
        return String(unsafeUninitializedCapacity: capacity) { out in
            out.withMemoryRebound(to: CChar.self) { chars in
                input.withUnsafeBufferPointer { bin in
                    _ = sodium_bin2base64(chars.baseAddress!, capacity, bin.baseAddress, bin.count,
                                          sodium_base64_VARIANT_ORIGINAL)
                }
            }
            return capacity - 1
        }
    }

    /// The bytes `text` encodes after trimming surrounding Unicode whitespace, or `nil` if it is not
    /// valid padded standard base64. The empty string decodes to no bytes.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        Sodium.ensureInitialized()
        var trimmed = String(trimmingWhitespace(Substring(text)))
        if trimmed.isEmpty { return [] }
        let capacity = trimmed.utf8.count / 4 * 3 + 3
        var output = [UInt8](repeating: 0, count: capacity)
        var written = 0
        let status = trimmed.withUTF8 { b64 in
            b64.withMemoryRebound(to: CChar.self) { chars in
                output.withUnsafeMutableBufferPointer { bin in
                    // b64_end = NULL makes libsodium reject anything left after the padding.
                    sodium_base642bin(bin.baseAddress!, bin.count, chars.baseAddress, chars.count,
                                      nil, &written, nil, sodium_base64_VARIANT_ORIGINAL)
                }
            }
        }
        guard status == 0 else { return nil }
        output.removeLast(capacity - written)
        return output
    }

    /// Trims what Rust's `str::trim` trims (the Unicode White_Space property), so a key file is
    /// accepted exactly when upstream accepts it.
    static func trimmingWhitespace(_ text: Substring) -> Substring {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return Substring(scalars[first...last])
    }
}
