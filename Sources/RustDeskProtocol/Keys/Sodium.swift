import CSodium

/// libsodium must be initialised once per process before any other call (it picks the fastest
/// implementations and opens the RNG). Every entry point of this folder calls
/// `Sodium.ensureInitialized()` first, so callers never have to remember it.
enum Sodium {
    /// Byte counts of libsodium's Ed25519, `crypto_box` and `crypto_secretbox`. They are fixed by
    /// the algorithms; `KeySizeTests` checks them against libsodium's `crypto_*_bytes()` functions.
    static let signSecretKeyByteCount = 64
    static let signPublicKeyByteCount = 32
    static let signSeedByteCount = 32
    static let signatureByteCount = 64

    static func ensureInitialized() { _ = sodiumInitialized }
}

/// A global `let` is initialised lazily and exactly once, even under concurrency, which is the
/// contract `sodium_init` wants. Failure means no usable RNG; no key can be made safely, so trap.
private let sodiumInitialized: Bool = {
    let result = sodium_init()
    precondition(result >= 0, "sodium_init failed: libsodium cannot be used in this process")
    return true
}()
