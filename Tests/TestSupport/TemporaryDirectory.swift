import Glibc

/// A fresh directory under /tmp for one test, removed with its plain files and empty
/// subdirectories when released. Shared by the test targets that need real files.
public final class TemporaryDirectory {
    public let path: String

    public init() {
        var template = Array("/tmp/ringdesk-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: \(errno)")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." {
                    let full = path + "/" + name
                    if unlink(full) != 0 { rmdir(full) }
                }
            }
            closedir(dir)
        }
        rmdir(path)
    }

    /// The full path of `name` inside this directory.
    public func file(_ name: String) -> String { path + "/" + name }

    public func exists(_ name: String) -> Bool { access(file(name), F_OK) == 0 }

    /// Writes `content` to `name` (replacing it) and returns the full path.
    @discardableResult
    public func write(_ name: String, _ content: String) -> String { write(name, bytes: Array(content.utf8)) }

    @discardableResult
    public func write(_ name: String, bytes: [UInt8]) -> String {
        let full = file(name)
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "cannot create \(full)")
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            precondition(n > 0, "write to \(full) failed")
            offset += n
        }
        close(fd)
        return full
    }
}
