/// Why a peer-store request or the store itself failed.
public enum PeerStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// SQLite returned `code` (an extended result code, e.g. 2067 SQLITE_CONSTRAINT_UNIQUE) with
    /// `message` (sqlite3_errmsg) while doing `operation`.
    case sqlite(code: Int32, message: String, operation: String)
    /// The request queue already held `capacity` requests; the request was not queued.
    case queueFull(capacity: Int)
    /// The store is closing or closed; the request was not queued.
    case closed
    /// pthread_create failed with this error number; the store did not open.
    case threadStart(errno: Int32)

    /// The SQLite result code, if this is an SQLite failure.
    public var sqliteCode: Int32? {
        if case .sqlite(let code, _, _) = self { return code }
        return nil
    }

    /// The primary result code (the low byte of an extended code), e.g. 19 SQLITE_CONSTRAINT.
    public var primarySQLiteCode: Int32? { sqliteCode.map { $0 & 0xFF } }

    /// An insert whose `id` (or `guid`) already exists: the row was not written. The caller
    /// should load the existing row and update it by its guid instead.
    public var isUniqueViolation: Bool {
        // SQLITE_CONSTRAINT_UNIQUE = 19 | 8 << 8, SQLITE_CONSTRAINT_PRIMARYKEY = 19 | 6 << 8
        // (function-like macros in sqlite3.h, so Swift does not import them).
        sqliteCode == 2067 || sqliteCode == 1555
    }

    public var description: String {
        switch self {
        case .sqlite(let code, let message, let operation):
            return "peer database: \(operation) failed: \(message) (SQLite code \(code))"
        case .queueFull(let capacity):
            return "peer database: request queue full (\(capacity) pending), request refused"
        case .closed:
            return "peer database: closed"
        case .threadStart(let errno):
            return "peer database: cannot start its thread (error \(errno))"
        }
    }
}
