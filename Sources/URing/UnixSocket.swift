import Glibc

extension Socket {
    /// A Unix stream listener at `path` (for a local admin console: file permissions decide who
    /// may connect, so the socket is made `0600`). A stale socket left at `path` by an earlier run
    /// is replaced; any other kind of file there is refused with `EEXIST`.
    /// The corresponding C functions are `socket`, `lstat`, `unlink`, `bind`, `chmod`, `listen`.
    /// - Throws: `ENAMETOOLONG` when `path` does not fit `sun_path`, else the failing call's errno.
    public static func unixListener(path: String, backlog: Int32 = 128) throws(Errno) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { throw Errno(rawValue: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { p in
            p.copyBytes(from: bytes)
            p[bytes.count] = 0
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw Errno(rawValue: EEXIST) }
            _ = Glibc.unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno.current }
        do throws(Errno) {
            let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
            let r = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard r == 0 else { throw Errno.current }
            guard chmod(path, 0o600) == 0 else { throw Errno.current }
            _ = try Errno.retryingInterrupts { listen(fd, backlog) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Removes a socket file (a Unix listener's path at shutdown). Errors are ignored: the file
    /// may already be gone. The corresponding C function is `unlink`.
    public static func unlink(_ path: String) {
        _ = Glibc.unlink(path)
    }
}
