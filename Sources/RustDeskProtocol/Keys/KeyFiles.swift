import Glibc

/// The server key files `id_ed25519` / `id_ed25519.pub` and the load-or-generate procedure of
/// PROTOCOL.md §4.1, used by hbbs and hbbr for `-k -`, `-k _` and hbbs's empty key (§4.2).
///
/// The directory is always explicit; the servers pass their working directory, as upstream reads
/// the files from there.
///
/// File I/O goes straight to Glibc rather than through `URing`: this module must not depend on the
/// syscall layer (STYLE.md dependency direction), and these are a handful of blocking calls at
/// startup, never on a worker's ring.
public enum KeyFiles {
    public static let secretKeyFileName = "id_ed25519"
    public static let publicKeyFileName = "id_ed25519.pub"

    /// How long hbbr waits for a missing `id_ed25519` before generating one, so that an hbbs
    /// starting at the same moment in the same directory creates it first (§4.1 step 1).
    public static let relayWaitForMissingKey: Duration = .milliseconds(300)

    /// Extra generation attempts while the public key's base64 contains `/` or `:` (§4.1 step 3).
    public static let extraGenerationAttempts = 300

    /// A key file is 88 characters; anything beyond this is certainly not a key, and refusing to
    /// read further keeps a misplaced symlink to a device or a huge file from stalling startup.
    static let maximumKeyFileSize = 64 * 1024

    /// Loads the server key from `directory`, generating and writing one if `id_ed25519` is missing.
    ///
    /// Steps (§4.1): if `waitIfMissing` is positive and the secret file does not exist, sleep that
    /// long first (hbbr passes `relayWaitForMissingKey`). Then read `id_ed25519`; if it is UTF-8,
    /// trim surrounding whitespace and base64-decode; 64 bytes is the key, public half = last 32.
    /// If it does not exist, generate a pair (regenerating while the public key's base64 contains
    /// `/` or `:`), write `id_ed25519.pub` then `id_ed25519`, both without a trailing newline.
    ///
    /// The secret file is created with mode 0600 and `fchmod`ed to 0600 even if it appeared in the
    /// meantime. This is our decision and stricter than upstream, which leaves the mode to the
    /// umask (usually 0644, world-readable) and relies on its Docker helper to tighten it later.
    /// The public file keeps upstream's 0666-minus-umask.
    ///
    /// Deliberate difference: a secret file that exists but cannot be opened (EACCES, ...) yields
    /// `.noKey` here; upstream would generate a new pair and try to overwrite it.
    ///
    /// - Returns: `.loaded`, `.generated`, or `.noKey` with the reason (not UTF-8, unreadable,
    ///   a write failed); "no key" means an empty licence key and no signing (§4.1 step 4).
    /// - Throws: `KeyFileError.malformedPrivateKey` if the file is text but does not decode to
    ///   exactly 64 bytes. Servers print the error and exit with status 1 (§14 item 71).
    public static func loadOrGenerate(in directory: String, waitIfMissing: Duration = .zero) throws(KeyFileError) -> KeyFileOutcome {
        let secretPath = path(directory, secretKeyFileName)
        if waitIfMissing > .zero && !fileExists(secretPath) {
            sleep(for: waitIfMissing)
        }
        switch readFile(secretPath) {
        case .success(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else { return .noKey(.notUTF8) }
            guard let decoded = Base64.decode(text) else {
                throw .malformedPrivateKey(path: secretPath, decodedByteCount: nil)
            }
            guard let pair = try? Ed25519KeyPair(secretKey: decoded) else {
                throw .malformedPrivateKey(path: secretPath, decodedByteCount: decoded.count)
            }
            return .loaded(pair)
        case .failure(let code) where code == ENOENT:
            let pair = Ed25519KeyPair.generateAvoidingSlash()
            let publicPath = path(directory, publicKeyFileName)
            if let code = writeFile(publicPath, contents: pair.publicKeyBase64, mode: 0o666, enforceMode: false) {
                return .noKey(.writeFailed(path: publicPath, errno: code))
            }
            if let code = writeFile(secretPath, contents: pair.secretKeyBase64, mode: 0o600, enforceMode: true) {
                return .noKey(.writeFailed(path: secretPath, errno: code))
            }
            return .generated(pair)
        case .failure(let code) where code == EFBIG:
            throw .malformedPrivateKey(path: secretPath, decodedByteCount: nil)
        case .failure(let code):
            return .noKey(.readFailed(path: secretPath, errno: code))
        }
    }

    static func path(_ directory: String, _ name: String) -> String {
        if directory.isEmpty { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Follows symlinks, as the existence test before upstream's wait does.
    static func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func sleep(for duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        // A signal cuts nanosleep short; sleep the rest so the wait is never shorter than asked.
        while nanosleep(&request, &remaining) == -1 && errno == EINTR {
            request = remaining
        }
    }

    /// The whole file, or the errno that stopped us (EFBIG when larger than `maximumKeyFileSize`).
    static func readFile(_ path: String) -> ReadResult {
        let fd = retryingInterrupts { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return .failure(errno) }
        defer { close(fd) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = retryingInterrupts { read(fd, &chunk, chunk.count) }
            if count < 0 { return .failure(errno) }
            if count == 0 { return .success(contents) }
            contents += chunk[..<count]
            if contents.count > maximumKeyFileSize { return .failure(EFBIG) }
        }
    }

    enum ReadResult {
        case success([UInt8])
        case failure(Int32) // errno
    }

    /// Creates or truncates `path` and writes `contents`; returns the errno of the first failing
    /// call, or nil. `enforceMode` also `fchmod`s, because `open`'s mode only applies to a file it
    /// creates and is reduced by the umask.
    static func writeFile(_ path: String, contents: String, mode: mode_t, enforceMode: Bool) -> Int32? {
        let fd = retryingInterrupts { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        guard fd >= 0 else { return errno }
        if enforceMode && fchmod(fd, mode) != 0 {
            let failure = errno
            close(fd)
            return failure
        }
        var bytes = Array(contents.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { buffer in retryingInterrupts { write(fd, buffer.baseAddress, buffer.count) } }
            if written < 0 {
                let failure = errno
                close(fd)
                return failure
            }
            bytes = bytes.dropFirst(written)
        }
        // close reports delayed write errors on some filesystems (NFS); a key that may not be on
        // disk must not be used, or hbbs and hbbr would disagree after a restart.
        return close(fd) == 0 ? nil : errno
    }

    private static func retryingInterrupts<T: FixedWidthInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result != -1 || errno != EINTR { return result }
        }
    }
}

/// What load-or-generate produced.
public enum KeyFileOutcome: Sendable, Equatable {
    /// Read from an existing `id_ed25519`.
    case loaded(Ed25519KeyPair)
    /// Generated and written to both files.
    case generated(Ed25519KeyPair)
    /// "No key": the enforced licence key is empty and nothing is signed.
    case noKey(NoKeyReason)

    public var keyPair: Ed25519KeyPair? {
        switch self {
        case .loaded(let pair), .generated(let pair): return pair
        case .noKey: return nil
        }
    }

    /// The base64 public key, or the empty string for "no key" (§4.1 step 4).
    public var publicKeyBase64: String { keyPair?.publicKeyBase64 ?? "" }
}

/// Why load-or-generate yielded "no key"; for the startup log line.
public enum NoKeyReason: Sendable, Equatable, CustomStringConvertible {
    /// `id_ed25519` exists but is not UTF-8 text.
    case notUTF8
    /// `id_ed25519` exists but could not be opened or read.
    case readFailed(path: String, errno: Int32)
    /// Generating worked but a key file could not be written.
    case writeFailed(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .notUTF8: return "\(KeyFiles.secretKeyFileName) is not UTF-8 text"
        case .readFailed(let path, let errno): return "cannot read \(path): \(errorText(errno))"
        case .writeFailed(let path, let errno): return "cannot write \(path): \(errorText(errno))"
        }
    }
}

/// A key file that must stop the server (exit status 1).
public enum KeyFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `id_ed25519` is text but not the base64 of 64 bytes; `decodedByteCount` is nil when it is
    /// not base64 at all (or is too large to be read).
    case malformedPrivateKey(path: String, decodedByteCount: Int?)

    public var description: String {
        switch self {
        case .malformedPrivateKey(let path, let count?):
            return "malformed private key in \(path): it decodes to \(count) bytes, a key has 64"
        case .malformedPrivateKey(let path, nil):
            return "malformed private key in \(path): it is not base64 text of a key"
        }
    }
}

private func errorText(_ errno: Int32) -> String {
    guard let text = strerror(errno) else { return "errno \(errno)" }
    return "\(String(cString: text)) (errno \(errno))"
}

extension Ed25519KeyPair {
    /// A random pair whose public key's base64 contains neither `/` nor `:`, trying at most
    /// `KeyFiles.extraGenerationAttempts` more times before accepting whatever came last (§4.1
    /// step 3). Base64 never contains `:`; the test is kept because upstream has it. Upstream does
    /// not say why it avoids `/`; presumably so the key survives being pasted where `/` separates
    /// things (paths, URLs). `generator` is replaceable so tests can exercise the retry bound.
    public static func generateAvoidingSlash(using generator: () -> Ed25519KeyPair = Ed25519KeyPair.generate) -> Ed25519KeyPair {
        func acceptable(_ pair: Ed25519KeyPair) -> Bool {
            let text = pair.publicKeyBase64
            return !text.contains("/") && !text.contains(":")
        }
        var pair = generator()
        var attempts = 0
        while !acceptable(pair) && attempts < KeyFiles.extraGenerationAttempts {
            pair = generator()
            attempts += 1
        }
        return pair
    }
}
