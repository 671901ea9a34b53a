import CSQLite
import Glibc
import Synchronization
@testable import PeerStore
import TestSupport

/// Direct SQLite access for tests: what upstream would have written, and what is in the file.
final class RawDatabase {
    let db: OpaquePointer

    init(_ path: String) {
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
        precondition(rc == SQLITE_OK && handle != nil, "open \(path): \(rc)")
        db = handle!
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close_v2(db) }

    func execute(_ sql: String) {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &error)
        precondition(rc == SQLITE_OK, "\(sql): \(error.map { String(cString: $0) } ?? "\(rc)")")
    }

    /// Every row of `sql` with each column as text (nil for NULL); `bind` values are blobs or text.
    func rows(_ sql: String, _ bind: [Any] = []) -> [[String?]] {
        var statement: OpaquePointer?
        precondition(sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, "\(sql): \(String(cString: sqlite3_errmsg(db)))")
        defer { sqlite3_finalize(statement) }
        bindAll(statement!, bind)
        var out: [[String?]] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            out.append((0..<sqlite3_column_count(statement)).map { i in
                sqlite3_column_text(statement, i).map { String(cString: $0) }
            })
        }
        return out
    }

    /// The bytes of column 0 of the first row.
    func blob(_ sql: String, _ bind: [Any] = []) -> [UInt8]? {
        var statement: OpaquePointer?
        precondition(sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK)
        defer { sqlite3_finalize(statement) }
        bindAll(statement!, bind)
        guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
        guard let p = sqlite3_column_blob(statement, 0) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(statement, 0))))
    }

    func run(_ sql: String, _ bind: [Any]) {
        var statement: OpaquePointer?
        precondition(sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, "\(sql)")
        defer { sqlite3_finalize(statement) }
        bindAll(statement!, bind)
        let rc = sqlite3_step(statement)
        precondition(rc == SQLITE_DONE, "\(sql): \(String(cString: sqlite3_errmsg(db)))")
    }

    private func bindAll(_ statement: OpaquePointer, _ values: [Any]) {
        let transient = unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case let bytes as [UInt8]:
                bytes.withUnsafeBytes { _ = sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), transient) }
            case let text as String:
                _ = sqlite3_bind_text(statement, index, text, -1, transient)
            case let n as Int:
                _ = sqlite3_bind_int64(statement, index, Int64(n))
            default:
                _ = sqlite3_bind_null(statement, index)
            }
        }
    }

    func count() -> Int { Int(rows("select count(*) from peer")[0][0]!)! }
}

/// The §10.2 schema exactly as upstream hbbs creates it (its statement text and layout), so tests
/// can make the files an upstream deployment leaves behind.
let upstreamSchemaSQL = """

            create table if not exists peer (
                guid blob primary key not null,
                id varchar(100) not null,
                uuid blob not null,
                pk blob not null,
                created_at datetime not null default(current_timestamp),
                user blob,
                status tinyint,
                note varchar(300),
                info text not null
            ) without rowid;
            create unique index if not exists index_peer_id on peer (id);
            create index if not exists index_peer_user on peer (user);
            create index if not exists index_peer_created_at on peer (created_at);
            create index if not exists index_peer_status on peer (status);
        
"""

/// Collects completion results from the store's thread.
final class Collector<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
    var count: Int { values.withLock { $0.count } }
}

/// Polls `condition` every millisecond for up to `seconds`; true if it became true.
func waitUntil(seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Double(clockNanoseconds()) / 1e9 + seconds
    while Double(clockNanoseconds()) / 1e9 < deadline {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

func clockNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A gate a completion can wait on (on the store's thread) until the test opens it.
final class Gate: Sendable {
    private let state = Mutex((entered: false, open: false))

    /// Called by the blocked side: records arrival, then waits (bounded) for `open()`.
    func enterAndWait() {
        state.withLock { $0.entered = true }
        _ = waitUntil(seconds: 30) { state.withLock { $0.open } }
    }

    var entered: Bool { state.withLock { $0.entered } }
    func open() { state.withLock { $0.open = true } }
}

func bytes(_ n: Int, _ fill: UInt8) -> [UInt8] { [UInt8](repeating: fill, count: n) }
