import Testing
@testable import RustDeskUtils
import RustDeskProtocol

/// `rustdesk-utils` logic in process (PROTOCOL.md §11.4); `RustDeskUtilsProcessTests` runs the binary.
@Suite(.timeLimit(.minutes(1)))
struct RustDeskUtilsTests {
    static let vectorPublicKey = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="
    static let vectorSecretKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA7aie8zrakLWKjqNAqbw1zZTIVdx3iQ6Y6wEihi1naKQ=="

    func run(_ arguments: String...) -> (status: Int32, lines: [String]) {
        var lines: [String] = []
        let status = RustDeskUtils.run(arguments: arguments, environment: { _ in nil }) { lines.append($0) }
        return (status, lines)
    }

    @Test func theAppendixPairIsValid() {
        #expect(KeyPairValidation(publicKey: Self.vectorPublicKey, secretKey: Self.vectorSecretKey) == .valid)
        #expect(run("validatekeypair", Self.vectorPublicKey, Self.vectorSecretKey) == (0, ["Key pair is VALID"]))
    }

    @Test func eachInvalidKeyHasItsMessage() {
        let otherPublic = Ed25519KeyPair.generate().publicKeyBase64
        let cases: [(String, String, KeyPairValidation)] = [
            (Self.vectorPublicKey, "not base64!", .secretKeyNotBase64),
            (Self.vectorPublicKey, Self.vectorPublicKey, .secretKeyWrongLength),
            ("not base64!", Self.vectorSecretKey, .publicKeyNotBase64),
            (Self.vectorSecretKey, Self.vectorSecretKey, .publicKeyWrongLength),
            (otherPublic, Self.vectorSecretKey, .mismatched),
            // The secret is checked first, as upstream does.
            ("not base64!", "not base64!", .secretKeyNotBase64),
        ]
        for (publicKey, secretKey, expected) in cases {
            #expect(KeyPairValidation(publicKey: publicKey, secretKey: secretKey) == expected)
            #expect(run("validatekeypair", publicKey, secretKey) == (1, [expected.rawValue]))
        }
        #expect(KeyPairValidation.secretKeyNotBase64.rawValue == "Invalid secret key")
        #expect(KeyPairValidation.secretKeyWrongLength.rawValue == "Invalid Secret key")
        #expect(KeyPairValidation.publicKeyNotBase64.rawValue == "Invalid public key")
        #expect(KeyPairValidation.publicKeyWrongLength.rawValue == "Invalid Public key")
    }

    @Test func aSecretWhoseHalvesDisagreeIsInvalidForEitherPublicKey() throws {
        let stored = Ed25519KeyPair.generate().publicKey
        let secret = try Ed25519KeyPair(secretKey: [UInt8](repeating: 0, count: 32) + stored.bytes)
        #expect(KeyPairValidation(publicKey: stored.base64, secretKey: secret.secretKeyBase64) == .mismatched)
        #expect(KeyPairValidation(publicKey: Self.vectorPublicKey, secretKey: secret.secretKeyBase64) == .mismatched)
    }

    @Test func genkeypairPrintsAPairThatValidates() throws {
        let (status, lines) = run("genkeypair")
        #expect(status == 0)
        try #require(lines.count == 2)
        #expect(lines[0].hasPrefix("Public Key:  ") && lines[1].hasPrefix("Secret Key:  "))
        let publicKey = String(lines[0].dropFirst("Public Key:  ".count))
        let secretKey = String(lines[1].dropFirst("Secret Key:  ".count))
        #expect(publicKey.utf8.count == 44 && secretKey.utf8.count == 88)
        #expect(KeyPairValidation(publicKey: publicKey, secretKey: secretKey) == .valid)
    }

    @Test func noCommandOrAnUnknownOnePrintsUsageAndFails() {
        #expect(run() == (1, RustDeskUtils.usage))
        #expect(run("frobnicate") == (1, RustDeskUtils.usage))
    }

    @Test func theUsageNamesEveryCommand() {
        let text = RustDeskUtils.usage.joined(separator: "\n")
        #expect(text.contains("genkeypair"))
        #expect(text.contains("validatekeypair [public key] [secret key]"))
        #expect(text.contains("doctor [rustdesk-server]"))
    }

    @Test func validatekeypairNeedsBothKeys() {
        let expected = ["ERROR: You must supply both the public and the secret key"] + RustDeskUtils.usage
        #expect(run("validatekeypair") == (1, expected))
        #expect(run("validatekeypair", Self.vectorPublicKey) == (1, expected))
    }

    @Test func doctorNeedsAHost() {
        let result = run("doctor")
        #expect(result.status == 1)
        #expect(result.lines.first == "ERROR: You must supply the rustdesk-server address")
        #expect(Array(result.lines.dropFirst()) == RustDeskUtils.usage)
    }

    @Test(arguments: ["VALIDATEKEYPAIR", "ValidateKeyPair", "validatekeypair"])
    func commandNamesAreCaseInsensitive(command: String) {
        #expect(run(command, Self.vectorPublicKey, Self.vectorSecretKey) == (0, ["Key pair is VALID"]))
    }

    @Test func thePortBaseComesOnlyFromTheTestVariable() {
        #expect(Doctor.portBase { _ in nil } == 21114)
        #expect(Doctor.portBase { $0 == Doctor.portBaseVariable ? "40000" : nil } == 40000)
        for bad in ["", "0", "-5", "65531", "70000", "abc"] {
            #expect(Doctor.portBase { _ in bad } == 21114)
        }
    }

    @Test func wholeMillisecondsTruncate() {
        #expect(Doctor.wholeMilliseconds(.microseconds(999)) == 0)
        #expect(Doctor.wholeMilliseconds(.milliseconds(1500)) == 1500)
        #expect(Doctor.wholeMilliseconds(.seconds(2) + .nanoseconds(999_999)) == 2000)
    }
}
