import Testing
import TestSupport
@testable import ServerConfig

@Suite(.timeLimit(.minutes(1)))
struct ConfigFileTests {
    func parse(_ text: String) throws(ConfigFileError) -> [String] {
        pairs(try ConfigFile.parse(text, path: "t.env"))!
    }

    @Test func keyValueLinesCommentsAndBlankLines() throws {
        let text = """
            ; a comment
            # another comment

              RELAY_SERVERS = r1:21117,r2  
            key=-
            empty=
            spaced   =   a b   c
            """
        #expect(try parse(text) == ["RELAY_SERVERS=r1:21117,r2", "key=-", "empty=", "spaced=a b   c"])
    }

    @Test func valueKeepsEverythingAfterTheFirstEquals() throws {
        #expect(try parse("KEY=abc==") == ["KEY=abc=="])
        #expect(try parse("url=http://h/?a=b") == ["url=http://h/?a=b"])
    }

    @Test func crlfLineEndingsAndByteOrderMark() throws {
        #expect(try parse("\u{FEFF}a=1\r\nb=2\r\n") == ["a=1", "b=2"])
    }

    @Test func duplicateKeysAreKeptInFileOrder() throws {
        #expect(try parse("a=1\nA=2\na=3") == ["a=1", "A=2", "a=3"])
    }

    @Test func doubleQuotesProcessEscapes() throws {
        #expect(try parse(#"a="x y""#) == ["a=x y"])
        #expect(try parse(#"a=" padded ""#) == ["a= padded "])
        #expect(try parse(#"a="q\"uote\\back\nnl\ttab""#) == ["a=q\"uote\\back\nnl\ttab"])
        #expect(try parse(#"a="x;y#z" ; comment"#) == ["a=x;y#z"])
        #expect(try parse(#"a="""#) == ["a="])
    }

    @Test func singleQuotesAreLiteral() throws {
        #expect(try parse(#"a='C:\dir\n'"#) == [#"a=C:\dir\n"#])
        #expect(try parse(#"a='say "hi"' # c"#) == [#"a=say "hi""#])
    }

    @Test func unquotedValuesProcessEscapesAndInlineComments() throws {
        #expect(try parse("a=x #comment") == ["a=x"])
        #expect(try parse("a=x\t;comment") == ["a=x"])
        #expect(try parse("a=x#y;z") == ["a=x#y;z"])
        #expect(try parse("a=#y") == ["a=#y"])
        #expect(try parse("a= #y") == ["a="])
        #expect(try parse(##"a=x \#y"##) == ["a=x #y"])
        #expect(try parse(#"a=one\;two\=three\:four"#) == ["a=one;two=three:four"])
        #expect(try parse(#"a=back\\slash"#) == [#"a=back\slash"#])
    }

    @Test func keysAreTakenLiterally() throws {
        #expect(try parse("relay-servers=x") == ["relay-servers=x"])
        #expect(try parse("Relay_Servers=x") == ["Relay_Servers=x"])
    }

    @Test(arguments: [
        ("[section]\na=1", 1, "section"),
        ("a=1\njust words", 2, "key=value"),
        ("=value", 1, "empty key"),
        ("a=\"open", 1, "unterminated"),
        ("a='open", 1, "unterminated"),
        ("a=\"x\" y", 1, "after the closing quote"),
        (#"a=x\q"#, 1, "unknown escape"),
        (#"a="x\q""#, 1, "unknown escape"),
        ("a=x\\", 1, "backslash at the end"),
    ])
    func syntaxErrorsNameTheLine(text: String, line: Int, reason: String) {
        do {
            _ = try ConfigFile.parse(text, path: "t.env")
            Issue.record("accepted \(text)")
        } catch {
            guard case .syntax(let path, let l, let r) = error else { Issue.record("\(error)"); return }
            #expect(path == "t.env")
            #expect(l == line)
            #expect(r.contains(reason), "\(r)")
            #expect(error.description.hasPrefix("t.env:\(line): "))
        }
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: ConfigFileError.invalidUTF8(path: "t.env")) {
            try ConfigFile.parse([UInt8(ascii: "a"), UInt8(ascii: "="), 0xFF], path: "t.env")
        }
    }

    @Test func contentOverTheLimitIsRefused() {
        let big = [UInt8](repeating: UInt8(ascii: "#"), count: ConfigFile.maximumSize + 1)
        #expect(throws: ConfigFileError.tooLarge(path: "t.env", limit: ConfigFile.maximumSize)) {
            try ConfigFile.parse(big, path: "t.env")
        }
        let justFits = [UInt8](repeating: UInt8(ascii: "#"), count: ConfigFile.maximumSize)
        #expect((try? ConfigFile.parse(justFits, path: "t.env"))?.isEmpty == true)
    }

    @Test func loadReadsAFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("x.ini", "a=1\nb = \"two\"\n")
        #expect(pairs(try ConfigFile.load(path: path)) == ["a=1", "b=two"])
    }

    @Test func loadOfAMissingFileIsNil() throws {
        let dir = TemporaryDirectory()
        #expect(try ConfigFile.load(path: dir.path + "/absent") == nil)
        #expect(try ConfigFile.load(path: dir.write("file", "") + "/below-a-file") == nil)
    }

    @Test func loadStopsReadingAtTheLimit() {
        // /dev/zero never ends: the bound must stop the read, not the end of the file.
        #expect(throws: ConfigFileError.tooLarge(path: "/dev/zero", limit: ConfigFile.maximumSize)) {
            try ConfigFile.load(path: "/dev/zero")
        }
    }

    @Test func loadOfADirectoryIsUnreadable() {
        let dir = TemporaryDirectory()
        do {
            _ = try ConfigFile.load(path: dir.path)
            Issue.record("a directory was accepted")
        } catch {
            guard case .unreadable(let path, _) = error else { Issue.record("\(error)"); return }
            #expect(path == dir.path)
            #expect(error.description.contains("cannot read"))
        }
    }
}
