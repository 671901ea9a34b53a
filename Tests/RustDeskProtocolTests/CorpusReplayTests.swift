import Testing
import ProtocolFuzzing
import Glibc

/// Replays every committed libFuzzer seed (Fuzz/Corpus/<target>/) through the same target body
/// the fuzzer runs; a violated property traps the test process, so a regression cannot pass.
@Suite(.timeLimit(.minutes(1)))
struct CorpusReplayTests {
    static let corpusRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) } // Tests/RustDeskProtocolTests/<file>
        return path + "/Fuzz/Corpus"
    }()

    @Test(arguments: FuzzTarget.allCases)
    func seedCorpusReplaysCleanly(_ target: FuzzTarget) throws {
        let dir = Self.corpusRoot + "/" + target.rawValue
        let files = try listFiles(dir)
        #expect(files.count >= 3, "corpus \(dir) is missing or nearly empty")
        for file in files {
            let bytes = try readFile(dir + "/" + file)
            bytes.withUnsafeBytes { target.run($0) }
        }
    }
}

func listFiles(_ dir: String) throws -> [String] {
    guard let d = opendir(dir) else { throw CorpusError.cannotOpen(dir) }
    defer { closedir(d) }
    var names: [String] = []
    while let entry = readdir(d) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        if !name.hasPrefix(".") { names.append(name) }
    }
    return names.sorted()
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw CorpusError.cannotOpen(path) }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n == 0 { break }
        out += chunk[..<n]
    }
    return out
}

enum CorpusError: Error { case cannotOpen(String) }
