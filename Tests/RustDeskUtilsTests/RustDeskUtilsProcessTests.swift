import Foundation
import Testing
@testable import RustDeskUtils

/// The built `rustdesk-utils` binary run as a child process (PROTOCOL.md §11.4, §14 item 74):
/// exit statuses and stdout exactly as a user or the Docker helper sees them.
@Suite(.timeLimit(.minutes(1)))
struct RustDeskUtilsProcessTests {
    static let usage = RustDeskUtils.usage.joined(separator: "\n") + "\n"

    @Test func noArgumentsPrintsUsageAndExitsOne() throws {
        let result = try runUtils([])
        #expect(result.status == 1)
        #expect(result.output == Self.usage)
    }

    @Test func anUnknownCommandPrintsUsageAndExitsOne() throws {
        let result = try runUtils(["keygen"])
        #expect(result.status == 1)
        #expect(result.output == Self.usage)
    }

    /// Command names in any case (the second row) behave like the lower-case ones.
    @Test(arguments: [("genkeypair", "validatekeypair"), ("GENKEYPAIR", "ValidateKeyPair")])
    func genkeypairOutputValidates(generate: String, validate: String) throws {
        let generated = try runUtils([generate])
        #expect(generated.status == 0)
        let (publicKey, secretKey) = try parsePair(generated.output)
        let validated = try runUtils([validate, publicKey, secretKey])
        #expect(validated.status == 0)
        #expect(validated.output == "Key pair is VALID\n")
    }

    @Test func aMismatchedPairIsInvalid() throws {
        let (publicKey, _) = try parsePair(try runUtils(["genkeypair"]).output)
        let (_, secretKey) = try parsePair(try runUtils(["genkeypair"]).output)
        let result = try runUtils(["validatekeypair", publicKey, secretKey])
        #expect(result.status == 1)
        #expect(result.output == "Key pair is INVALID\n")
    }

    @Test(arguments: [
        (RustDeskUtilsTests.vectorPublicKey, "%%%", "Invalid secret key"),
        (RustDeskUtilsTests.vectorPublicKey, RustDeskUtilsTests.vectorPublicKey, "Invalid Secret key"),
        ("%%%", RustDeskUtilsTests.vectorSecretKey, "Invalid public key"),
        ("AAAA", RustDeskUtilsTests.vectorSecretKey, "Invalid Public key"),
    ])
    func eachInvalidKeyMessage(publicKey: String, secretKey: String, message: String) throws {
        let result = try runUtils(["validatekeypair", publicKey, secretKey])
        #expect(result.status == 1)
        #expect(result.output == message + "\n")
    }

    @Test func validatekeypairWithAMissingKeyPrintsTheErrorAndUsage() throws {
        let result = try runUtils(["validatekeypair", RustDeskUtilsTests.vectorPublicKey])
        #expect(result.status == 1)
        #expect(result.output == "ERROR: You must supply both the public and the secret key\n" + Self.usage)
    }

    @Test func doctorWithoutAHostPrintsAnErrorAndUsage() throws {
        let result = try runUtils(["doctor"])
        #expect(result.status == 1)
        #expect(result.output.hasPrefix("ERROR: "))
        #expect(result.output.hasSuffix(Self.usage))
    }

    @Test func doctorReportsListeningAndClosedLoopbackPorts() throws {
        let ports = try LoopbackPorts(listeningAt: [1, 3, 4])
        let result = try runUtils(["DOCTOR", "127.0.0.1"], environment: [Doctor.portBaseVariable: String(ports.base)])
        #expect(result.status == 0)
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "Checking server:  127.0.0.1")
        #expect(lines.contains("Is IPv4: true"))
        ports.expectReport(lines)
    }
}

/// Runs the built `rustdesk-utils` with `arguments` and the current environment plus `environment`;
/// returns its exit status and everything it wrote to stdout.
func runUtils(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = try utilsBinary()
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let stdout = Pipe()
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The `rustdesk-utils` SwiftPM built next to this test bundle (both live in `.build/<triple>/debug`).
func utilsBinary() throws -> URL {
    let executable = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    var candidates = [executable.deletingLastPathComponent().appendingPathComponent("rustdesk-utils")]
    candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/rustdesk-utils"))
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw BinaryNotBuilt(searched: candidates.map(\.path))
    }
    return found
}

struct BinaryNotBuilt: Error, CustomStringConvertible {
    let searched: [String]
    var description: String { "rustdesk-utils not found (run `swift build` first); looked at \(searched)" }
}

/// The two keys from `genkeypair` output.
func parsePair(_ output: String) throws -> (publicKey: String, secretKey: String) {
    let lines = output.split(separator: "\n").map(String.init)
    try #require(lines.count == 2)
    try #require(lines[0].hasPrefix("Public Key:  ") && lines[1].hasPrefix("Secret Key:  "))
    return (String(lines[0].dropFirst(13)), String(lines[1].dropFirst(13)))
}
