import Foundation
import Glibc
import Testing
@testable import RustDeskProtocol

/// Load-or-generate (PROTOCOL.md §4.1, §14 items 70–71) against real files in a fresh directory.
@Suite(.timeLimit(.minutes(1)))
struct KeyFilesTests {
    @Test func generatesBothFilesWhenMissing() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let outcome = try KeyFiles.loadOrGenerate(in: dir)
            guard case .generated(let pair) = outcome else { Issue.record("expected .generated, got \(outcome)"); return }

            let secretText = try String(contentsOfFile: dir + "/id_ed25519", encoding: .utf8)
            let publicText = try String(contentsOfFile: dir + "/id_ed25519.pub", encoding: .utf8)
            #expect(secretText.utf8.count == 88)
            #expect(publicText.utf8.count == 44)
            #expect(!secretText.contains("\n") && !publicText.contains("\n"))
            #expect(!publicText.contains("/"))
            #expect(publicText.hasSuffix("=") && !publicText.hasSuffix("=="))

            let secret = try #require(Base64.decode(secretText))
            #expect(secret.count == 64)
            #expect(Array(secret.suffix(32)) == Base64.decode(publicText))
            #expect(secretText == pair.secretKeyBase64 && publicText == pair.publicKeyBase64)
            #expect(outcome.publicKeyBase64 == publicText)
        }
    }

    @Test func theSecretFileIsCreatedWithModeSixHundred() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            _ = try KeyFiles.loadOrGenerate(in: dir)
            #expect(try KeyTestFiles.fileMode(dir + "/id_ed25519") == 0o600)
        }
    }

    @Test func loadsAnExistingSecretAndIgnoresThePublicFile() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            try KeyTestFiles.write(KeySigningTests.vectorSecretKeyFile + "\n", to: dir + "/id_ed25519")
            try KeyTestFiles.write("not the public key", to: dir + "/id_ed25519.pub")
            let outcome = try KeyFiles.loadOrGenerate(in: dir)
            #expect(outcome == .loaded(try Ed25519KeyPair(seed: KeySigningTests.zeroSeed)))
            #expect(outcome.publicKeyBase64 == KeySigningTests.vectorPublicKey)
            #expect(try String(contentsOfFile: dir + "/id_ed25519.pub", encoding: .utf8) == "not the public key")
        }
    }

    @Test func aSecondRunLoadsWhatTheFirstGenerated() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let first = try KeyFiles.loadOrGenerate(in: dir)
            let second = try KeyFiles.loadOrGenerate(in: dir)
            #expect(second == .loaded(try #require(first.keyPair)))
        }
    }

    @Test(arguments: [32, 63, 65, 0])
    func aSecretThatDecodesToTheWrongLengthIsMalformed(length: Int) throws {
        try KeyTestFiles.withKeyDirectory { dir in
            try KeyTestFiles.write(Base64.encode([UInt8](repeating: 1, count: length)), to: dir + "/id_ed25519")
            #expect(throws: KeyFileError.malformedPrivateKey(path: dir + "/id_ed25519", decodedByteCount: length)) {
                try KeyFiles.loadOrGenerate(in: dir)
            }
        }
    }

    @Test func aSecretThatIsNotBase64IsMalformed() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            try KeyTestFiles.write("this is not a key", to: dir + "/id_ed25519")
            let error = #expect(throws: KeyFileError.self) { try KeyFiles.loadOrGenerate(in: dir) }
            #expect(error == .malformedPrivateKey(path: dir + "/id_ed25519", decodedByteCount: nil))
            #expect(error?.description.contains("malformed private key") == true)
        }
    }

    @Test func aSecretThatIsNotUTF8GivesNoKey() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            try Data([0xff, 0xfe, 0x41, 0x80]).write(to: URL(fileURLWithPath: dir + "/id_ed25519"))
            let outcome = try KeyFiles.loadOrGenerate(in: dir)
            #expect(outcome == .noKey(.notUTF8))
            #expect(outcome.publicKeyBase64 == "")
            #expect(outcome.keyPair == nil)
        }
    }

    @Test func aSecretThatCannotBeReadGivesNoKeyAndIsNotOverwritten() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            // A directory opens but fails to read (EISDIR); root ignores permission bits, so this
            // is the portable way to make an existing file unreadable.
            try FileManager.default.createDirectory(atPath: dir + "/id_ed25519", withIntermediateDirectories: false)
            let outcome = try KeyFiles.loadOrGenerate(in: dir)
            #expect(outcome == .noKey(.readFailed(path: dir + "/id_ed25519", errno: EISDIR)))
            #expect(!FileManager.default.fileExists(atPath: dir + "/id_ed25519.pub"))
        }
    }

    @Test func aDirectoryThatDoesNotExistGivesNoKey() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let missing = dir + "/missing"
            let outcome = try KeyFiles.loadOrGenerate(in: missing)
            #expect(outcome == .noKey(.writeFailed(path: missing + "/id_ed25519.pub", errno: ENOENT)))
        }
    }

    @Test func anUnwritablePublicFileGivesNoKeyAndWritesNoSecret() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/id_ed25519.pub", withIntermediateDirectories: false)
            #expect(try KeyFiles.loadOrGenerate(in: dir) == .noKey(.writeFailed(path: dir + "/id_ed25519.pub", errno: EISDIR)))
            #expect(!FileManager.default.fileExists(atPath: dir + "/id_ed25519"))
        }
    }

    @Test func anUnwritableSecretFileGivesNoKey() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            // A dangling symlink reads as missing, and creating through it fails.
            #expect(symlink(dir + "/nowhere/key", dir + "/id_ed25519") == 0)
            let outcome = try KeyFiles.loadOrGenerate(in: dir)
            #expect(outcome == .noKey(.writeFailed(path: dir + "/id_ed25519", errno: ENOENT)))
        }
    }

    @Test func waitsBeforeGeneratingOnlyWhenAskedAndTheFileIsMissing() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let clock = ContinuousClock()
            let generating = try clock.measure { _ = try KeyFiles.loadOrGenerate(in: dir, waitIfMissing: KeyFiles.relayWaitForMissingKey) }
            #expect(generating >= .milliseconds(300))
            let loading = try clock.measure { _ = try KeyFiles.loadOrGenerate(in: dir, waitIfMissing: KeyFiles.relayWaitForMissingKey) }
            #expect(loading < .milliseconds(300))
        }
    }

    @Test func aFileWrittenDuringTheWaitIsLoaded() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let path = dir + "/id_ed25519"
            let writer = Thread {
                usleep(50_000)
                try? KeyTestFiles.write(KeySigningTests.vectorSecretKeyFile, to: path)
            }
            writer.start()
            let outcome = try KeyFiles.loadOrGenerate(in: dir, waitIfMissing: .milliseconds(300))
            #expect(outcome.publicKeyBase64 == KeySigningTests.vectorPublicKey)
            #expect(!FileManager.default.fileExists(atPath: dir + "/id_ed25519.pub"))
        }
    }
}

/// File helpers of the key tests, in a namespace so they cannot collide with other suites' helpers.
enum KeyTestFiles {
    /// Runs `body` with a fresh empty directory and removes it afterwards.
    static func withKeyDirectory<R>(_ body: (String) throws -> R) throws -> R {
        var template = Array((FileManager.default.temporaryDirectory.path + "/ringdesk-keys-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let dir = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try body(dir)
    }

    static func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    static func fileMode(_ path: String) throws -> mode_t {
        var info = stat()
        guard stat(path, &info) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return info.st_mode & 0o7777
    }
}
