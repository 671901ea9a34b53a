import Foundation
import Testing
@testable import RustDeskProtocol

/// The `-k` / `KEY` tables of PROTOCOL.md §4.2, row by row for both servers, plus §14 items 72–73.
@Suite(.timeLimit(.minutes(1)))
struct KeyResolutionTests {
    static let filePair = try! Ed25519KeyPair(seed: [UInt8](repeating: 9, count: 32))
    static let optionPair = try! Ed25519KeyPair(seed: KeySigningTests.zeroSeed)

    /// A loader stub that records how often it ran.
    final class StubLoader {
        var calls = 0
        let outcome: KeyFileOutcome
        init(_ outcome: KeyFileOutcome = .loaded(KeyResolutionTests.filePair)) { self.outcome = outcome }
        func resolve(_ value: String, _ role: ServerRole) throws(KeyFileError) -> ServerKey {
            try ServerKey.resolve(option: value, role: role) { () throws(KeyFileError) -> KeyFileOutcome in
                calls += 1
                return outcome
            }
        }
    }

    // MARK: hbbs

    @Test func hbbsSecretKeyOptionEnforcesItsPublicHalfAndSignsWithoutFiles() throws {
        let loader = StubLoader()
        let key = try loader.resolve(KeySigningTests.vectorSecretKeyFile, .rendezvousServer)
        #expect(key == ServerKey(enforcedLicenceKey: KeySigningTests.vectorPublicKey, signingKey: Self.optionPair))
        #expect(loader.calls == 0)
    }

    @Test(arguments: ["-", "_"])
    func hbbsDashOrUnderscoreUsesTheKeyFiles(value: String) throws {
        let loader = StubLoader()
        let key = try loader.resolve(value, .rendezvousServer)
        #expect(key.enforcedLicenceKey == Self.filePair.publicKeyBase64)
        #expect(key.signingKey == Self.filePair)
        #expect(key.keyFileOutcome == .loaded(Self.filePair))
        #expect(loader.calls == 1)
    }

    @Test(arguments: ["-", "_"])
    func hbbsDashWithNoKeyEnforcesNothingAndCannotSign(value: String) throws {
        let key = try StubLoader(.noKey(.notUTF8)).resolve(value, .rendezvousServer)
        #expect(key.enforcedLicenceKey == "")
        #expect(key.signingKey == nil)
    }

    @Test func hbbsEmptyKeyEnforcesNothingButStillSignsWithTheFileKey() throws {
        let loader = StubLoader(.generated(Self.filePair))
        let key = try loader.resolve("", .rendezvousServer)
        #expect(key.enforcedLicenceKey == "")
        #expect(key.signingKey == Self.filePair)
        #expect(loader.calls == 1)
    }

    @Test(arguments: [KeySigningTests.vectorPublicKey, "my-licence", "AAAA", " - ", "--"])
    func hbbsAnyOtherValueIsEnforcedAsGivenAndNothingIsSigned(value: String) throws {
        let loader = StubLoader()
        let key = try loader.resolve(value, .rendezvousServer)
        #expect(key == ServerKey(enforcedLicenceKey: value, signingKey: nil))
        #expect(loader.calls == 0)
    }

    @Test func hbbsMalformedKeyFileStopsResolution() {
        let error = KeyFileError.malformedPrivateKey(path: "id_ed25519", decodedByteCount: 3)
        #expect(throws: error) {
            try ServerKey.resolve(option: "-", role: .rendezvousServer) { () throws(KeyFileError) -> KeyFileOutcome in throw error }
        }
    }

    // MARK: hbbr

    @Test func hbbrSecretKeyOptionEnforcesItsPublicHalfAndNeverSigns() throws {
        let loader = StubLoader()
        let key = try loader.resolve(KeySigningTests.vectorSecretKeyFile, .relayServer)
        #expect(key == ServerKey(enforcedLicenceKey: KeySigningTests.vectorPublicKey, signingKey: nil))
        #expect(loader.calls == 0)
    }

    @Test(arguments: ["-", "_"])
    func hbbrDashOrUnderscoreEnforcesTheFilePublicKey(value: String) throws {
        let loader = StubLoader()
        let key = try loader.resolve(value, .relayServer)
        #expect(key.enforcedLicenceKey == Self.filePair.publicKeyBase64)
        #expect(key.signingKey == nil)
        #expect(loader.calls == 1)
    }

    @Test func hbbrEmptyKeyEnforcesNothingAndTouchesNoFiles() throws {
        let loader = StubLoader()
        #expect(try loader.resolve("", .relayServer) == ServerKey(enforcedLicenceKey: "", signingKey: nil))
        #expect(loader.calls == 0)
    }

    @Test(arguments: [KeySigningTests.vectorPublicKey, "my-licence", "AAAA"])
    func hbbrAnyOtherValueIsEnforcedAsGiven(value: String) throws {
        let loader = StubLoader()
        #expect(try loader.resolve(value, .relayServer) == ServerKey(enforcedLicenceKey: value, signingKey: nil))
        #expect(loader.calls == 0)
    }

    @Test func defaultsAreDashForHbbsAndEmptyForHbbr() {
        #expect(ServerRole.rendezvousServer.defaultKeyOption == "-")
        #expect(ServerRole.relayServer.defaultKeyOption == "")
    }

    // MARK: With real files

    @Test func hbbsDefaultKeyCreatesTheFilesInTheGivenDirectory() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let key = try ServerKey.resolve(option: ServerRole.rendezvousServer.defaultKeyOption, role: .rendezvousServer, directory: dir)
            let publicText = try String(contentsOfFile: dir + "/id_ed25519.pub", encoding: .utf8)
            #expect(key.enforcedLicenceKey == publicText)
            #expect(key.signingKey?.publicKeyBase64 == publicText)
        }
    }

    @Test func aSecretKeyOptionWritesNoFilesAndItsSignaturesVerifyWithTheEnforcedKey() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let key = try ServerKey.resolve(option: KeySigningTests.vectorSecretKeyFile, role: .rendezvousServer, directory: dir)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
            let signed = try #require(key.signingKey).sign(message: KeySigningTests.idPk)
            #expect(try Ed25519PublicKey(base64: key.enforcedLicenceKey).open(signedMessage: signed) == KeySigningTests.idPk)
        }
    }

    @Test func hbbrWaitsForAMissingKeyFileBeforeGenerating() throws {
        try KeyTestFiles.withKeyDirectory { dir in
            let elapsed = try ContinuousClock().measure {
                _ = try ServerKey.resolve(option: "-", role: .relayServer, directory: dir)
            }
            #expect(elapsed >= .milliseconds(300))
            #expect(FileManager.default.fileExists(atPath: dir + "/id_ed25519"))
        }
    }
}
