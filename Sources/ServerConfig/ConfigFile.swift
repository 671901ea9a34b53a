import Glibc

/// The `.env` / `--config` file format of PROTOCOL.md §11.3: INI without sections.
///
/// Exactly what is accepted (anything else is a `ConfigFileError`, never a silent skip):
///
/// - The file is UTF-8 (a leading byte-order mark is skipped) and at most `maximumSize` bytes.
/// - Lines end at LF; a CR right before the LF is dropped. Spaces and tabs around a line are ignored.
/// - A blank line, or a line whose first character is `;` or `#`, is skipped (a comment).
/// - Every other line is `key = value`. The key is the text before the first `=`, trimmed; it
///   must not be empty and is taken literally (no quotes, no escapes). A line starting with `[`
///   (a section header) or without `=` is an error.
/// - The value is the text after that `=`, trimmed, in one of three forms:
///   - `"double quoted"`: backslash escapes are processed; the closing quote must be followed only
///     by spaces/tabs or a comment (`;` or `#`).
///   - `'single quoted'`: taken literally, no escapes (the way to write backslashes verbatim).
///   - unquoted: backslash escapes are processed; `;` or `#` preceded by a space or tab starts a
///     comment (so `a=x#y` keeps `x#y`, `a=x #y` is `x`, `a= #y` is empty, `a=#y` is `#y`);
///     trailing spaces/tabs are dropped.
/// - Escapes: `\\` `\"` `\'` `\;` `\#` `\=` `\:` stand for the character itself, `\n` `\r` `\t`
///   for LF, CR and tab. Any other escape, or a backslash ending the line, is an error.
/// - A key may appear more than once; the entries are returned in file order, so applying them in
///   order lets the last one win.
///
/// Why strict: upstream (rust-ini) ignores a file it cannot parse *as a whole*, so one typo there
/// silently drops every setting, including `DB_URL` and `KEY`. A server that starts with a new
/// empty database or a different key is worse than one that refuses to start and says why.
public enum ConfigFile {
    /// Files larger than this are refused (`ConfigFileError.tooLarge`). A real `.env` is a few
    /// hundred bytes; the bound keeps a mistaken path (a log, `/dev/zero`) from eating memory.
    public static let maximumSize = 1 << 20

    /// Parses file content.
    ///
    /// - Parameters:
    ///   - bytes: the raw file content.
    ///   - path: names the file in errors only.
    /// - Returns: the `(key, value)` entries in file order.
    /// - Throws: `ConfigFileError.tooLarge`, `.invalidUTF8`, or `.syntax` with the 1-based line.
    public static func parse(_ bytes: [UInt8], path: String) throws(ConfigFileError) -> [(String, String)] {
        guard bytes.count <= maximumSize else {
            throw .tooLarge(path: path, limit: maximumSize)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalidUTF8(path: path)
        }
        return try parse(text, path: path)
    }

    /// Parses file content already decoded as text; see the type's documentation for the grammar.
    public static func parse(_ text: String, path: String) throws(ConfigFileError) -> [(String, String)] {
        var entries: [(String, String)] = []
        var body = Substring(text)
        if body.first == "\u{FEFF}" { body = body.dropFirst() }
        // Split on LF only: "\r\n" is a single Character in Swift, so split the scalars.
        var lineNumber = 0
        for rawLine in body.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var scalars = Substring.UnicodeScalarView(rawLine)
            if scalars.last == "\r" { scalars.removeLast() }
            let line = trimmed(Substring(scalars))
            guard let first = line.first, first != ";", first != "#" else { continue }
            if first == "[" {
                throw .syntax(path: path, line: lineNumber, reason: "section headers are not supported (only `key=value` lines are read)")
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw .syntax(path: path, line: lineNumber, reason: "expected `key=value`")
            }
            let key = trimmed(line[..<equals])
            if key.isEmpty {
                throw .syntax(path: path, line: lineNumber, reason: "empty key before `=`")
            }
            do {
                let afterEquals = line[line.index(after: equals)...]
                let value = try parseValue(trimmed(afterEquals),
                                           afterBlank: afterEquals.first == " " || afterEquals.first == "\t")
                entries.append((String(key), value))
            } catch {
                throw .syntax(path: path, line: lineNumber, reason: error.reason)
            }
        }
        return entries
    }

    /// Reads and parses a file.
    ///
    /// - Returns: nil when the file does not exist (PROTOCOL.md §11.3: a missing file is ignored),
    ///   otherwise its entries in file order.
    /// - Throws: `.unreadable` for any other open/read failure (permissions, a directory),
    ///   `.tooLarge` without reading past `maximumSize + 1` bytes, and the parse errors.
    public static func load(path: String) throws(ConfigFileError) -> [(String, String)]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let error = errno
            // ENOTDIR: a path component is a file, so the file cannot exist either.
            if error == ENOENT || error == ENOTDIR { return nil }
            throw .unreadable(path: path, errno: error)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count <= maximumSize {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                // EISDIR arrives here: open(2) succeeds on a directory, read(2) refuses.
                throw .unreadable(path: path, errno: errno)
            }
            if n == 0 { return try parse(bytes, path: path) }
            bytes.append(contentsOf: chunk[..<n])
        }
        throw .tooLarge(path: path, limit: maximumSize)
    }

    private struct ValueError: Error { let reason: String }

    /// `afterBlank`: spaces or tabs separated the value from the `=`, so a leading `;`/`#` is a comment.
    private static func parseValue(_ text: Substring, afterBlank: Bool) throws(ValueError) -> String {
        guard let first = text.first else { return "" }
        if first == "'" || first == "\"" {
            var out = ""
            var i = text.index(after: text.startIndex)
            while i < text.endIndex {
                let c = text[i]
                if c == first {
                    let rest = trimmed(text[text.index(after: i)...])
                    if let r = rest.first, r != ";", r != "#" {
                        throw ValueError(reason: "unexpected text after the closing quote")
                    }
                    return out
                }
                if c == "\\" && first == "\"" {
                    i = text.index(after: i)
                    guard i < text.endIndex else { break }
                    out.append(try unescape(text[i]))
                } else {
                    out.append(c)
                }
                i = text.index(after: i)
            }
            throw ValueError(reason: "unterminated quoted value")
        }
        var out = ""
        var previous: Character = afterBlank ? " " : "="
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if (c == ";" || c == "#") && (previous == " " || previous == "\t") { break }
            if c == "\\" {
                i = text.index(after: i)
                guard i < text.endIndex else { throw ValueError(reason: "backslash at the end of the line") }
                out.append(try unescape(text[i]))
                // An escaped character never starts a comment, whatever follows it.
                previous = "\\"
            } else {
                out.append(c)
                previous = c
            }
            i = text.index(after: i)
        }
        while let last = out.last, last == " " || last == "\t" { out.removeLast() }
        return out
    }

    private static func unescape(_ c: Character) throws(ValueError) -> Character {
        switch c {
        case "\\", "\"", "'", ";", "#", "=", ":": return c
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        default: throw ValueError(reason: "unknown escape `\\\(c)`")
        }
    }

    private static func trimmed(_ s: Substring) -> Substring { s.trimmingASCIIBlanks() }
}

/// Why a `.env` or `--config` file could not be used.
public enum ConfigFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file exists but could not be opened or read (`errno` from open(2)/read(2)).
    case unreadable(path: String, errno: Int32)
    /// The file is larger than `ConfigFile.maximumSize`.
    case tooLarge(path: String, limit: Int)
    /// The file is not valid UTF-8.
    case invalidUTF8(path: String)
    /// A line breaks the grammar documented on `ConfigFile`.
    case syntax(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let e):
            return "\(path): cannot read (\(String(cString: strerror(e))))"
        case .tooLarge(let path, let limit):
            return "\(path): larger than \(limit) bytes, refused"
        case .invalidUTF8(let path):
            return "\(path): not valid UTF-8"
        case .syntax(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        }
    }
}
