import CSQLite

/// The `peer` schema of PROTOCOL.md §10.2, exactly: same table, column names and declared types,
/// constraints, `without rowid`, and the four index names, so a file moves between upstream hbbs
/// and RingDesk in both directions. Every statement is `if not exists` and runs at every open.
public enum PeerSchema {
    public static let statements = [
        """
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
        ) without rowid
        """,
        "create unique index if not exists index_peer_id on peer (id)",
        "create index if not exists index_peer_user on peer (user)",
        "create index if not exists index_peer_created_at on peer (created_at)",
        "create index if not exists index_peer_status on peer (status)",
    ]
}

/// `SQLITE_TRANSIENT` (`(sqlite3_destructor_type)-1`), a cast macro Swift cannot import: SQLite
/// copies bound values before the bind call returns, so no Swift buffer has to outlive it.
private let transient = unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)

/// One SQLite connection with its prepared statements. Confined: used by the thread that opens it
/// until the store's thread starts, then only by that thread.
final class SQLiteConnection {
    private let db: OpaquePointer
    private var loadStatement: OpaquePointer?
    private var insertStatement: OpaquePointer?
    private var updateStatement: OpaquePointer?
    private var beginStatement: OpaquePointer?
    private var commitStatement: OpaquePointer?
    private var rollbackStatement: OpaquePointer?
    /// What `pragma journal_mode=wal` reported (`wal`, or the mode kept if WAL is impossible).
    private(set) var journalMode = ""
    private var isClosed = false

    /// How long a statement waits for another process's lock (a second hbbs, a backup, the
    /// sqlite3 shell) before failing with SQLITE_BUSY.
    static let busyTimeoutMilliseconds: Int32 = 5000

    /// Opens (creating if missing) the database at `path`, switches it to WAL, creates the schema
    /// and prepares the statements.
    ///
    /// - Throws: `PeerStoreError.sqlite` — e.g. SQLITE_CANTOPEN (14) for a missing directory,
    ///   SQLITE_NOTADB (26) for a file that is not a database, SQLITE_READONLY (8).
    init(path: String) throws(PeerStoreError) {
        var handle: OpaquePointer?
        // NOMUTEX: one thread at a time uses the connection, so SQLite's own mutex is useless.
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard let handle else {
            throw .sqlite(code: rc, message: "out of memory", operation: "open \(path)")
        }
        guard rc == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(handle))
            sqlite3_close_v2(handle)
            throw .sqlite(code: rc, message: message, operation: "open \(path)")
        }
        db = handle
        do {
            sqlite3_extended_result_codes(db, 1)
            sqlite3_busy_timeout(db, Self.busyTimeoutMilliseconds)
            // The first statement reads the header: a corrupt file fails here (SQLITE_NOTADB).
            journalMode = try Self.queryText(db, "pragma journal_mode=wal") ?? ""
            for sql in PeerSchema.statements {
                try Self.execute(db, sql, operation: "create schema")
            }
            loadStatement = try prepare("select guid, id, uuid, pk, user, status, info from peer where id = ?")
            insertStatement = try prepare("insert into peer(guid, id, uuid, pk, info) values (?, ?, ?, ?, ?)")
            updateStatement = try prepare("update peer set id = ?, pk = ?, info = ? where guid = ?")
            beginStatement = try prepare("begin immediate")
            commitStatement = try prepare("commit")
            rollbackStatement = try prepare("rollback")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Finalizes the statements and closes the connection. Idempotent.
    func close() {
        if isClosed { return }
        isClosed = true
        for statement in [loadStatement, insertStatement, updateStatement, beginStatement, commitStatement, rollbackStatement] {
            sqlite3_finalize(statement)
        }
        // Every statement is finalized, so close_v2 closes now and checkpoints the WAL.
        sqlite3_close_v2(db)
    }

    // MARK: Operations (PROTOCOL.md §10.3)

    /// `select guid, id, uuid, pk, user, status, info where id = ?`; nil when no row has `id`.
    func load(id: String) throws(PeerStoreError) -> PeerRow? {
        let statement = loadStatement!
        defer { sqlite3_reset(statement) }
        try check(bind(statement, 1, text: id), "load \(id)")
        let rc = sqlite3_step(statement)
        if rc == SQLITE_DONE { return nil }
        guard rc == SQLITE_ROW else { throw failure(rc, "load \(id)") }
        return PeerRow(
            guid: PeerGUID(bytes: blob(statement, 0)),
            id: text(statement, 1),
            uuid: blob(statement, 2),
            pk: blob(statement, 3),
            user: sqlite3_column_type(statement, 4) == SQLITE_NULL ? nil : blob(statement, 4),
            status: sqlite3_column_type(statement, 5) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, 5),
            ip: PeerInfo.ip(fromJSON: text(statement, 6)))
    }

    /// `insert (guid, id, uuid, pk, info)`; `created_at` takes its default.
    func insert(guid: PeerGUID, id: String, uuid: [UInt8], pk: [UInt8], ip: String) throws(PeerStoreError) {
        let statement = insertStatement!
        defer { sqlite3_reset(statement) }
        let operation = "insert \(id)"
        try check(bind(statement, 1, blob: guid.bytes), operation)
        try check(bind(statement, 2, text: id), operation)
        try check(bind(statement, 3, blob: uuid), operation)
        try check(bind(statement, 4, blob: pk), operation)
        try check(bind(statement, 5, text: PeerInfo.json(ip: ip)), operation)
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE else { throw failure(rc, operation) }
    }

    /// `update id, pk, info where guid = ?` (never `uuid`). Returns whether a row had that guid.
    func update(guid: PeerGUID, id: String, pk: [UInt8], ip: String) throws(PeerStoreError) -> Bool {
        let statement = updateStatement!
        defer { sqlite3_reset(statement) }
        let operation = "update \(id)"
        try check(bind(statement, 1, text: id), operation)
        try check(bind(statement, 2, blob: pk), operation)
        try check(bind(statement, 3, text: PeerInfo.json(ip: ip)), operation)
        try check(bind(statement, 4, blob: guid.bytes), operation)
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE else { throw failure(rc, operation) }
        return sqlite3_changes(db) > 0
    }

    func begin() throws(PeerStoreError) { try run(beginStatement!, "begin transaction") }
    func commit() throws(PeerStoreError) { try run(commitStatement!, "commit") }

    /// Rolls back if a transaction is open; a failure leaves nothing more to undo, so it is ignored.
    func rollback() {
        if !isInAutocommit { try? run(rollbackStatement!, "rollback") }
    }

    /// True when no transaction is open, including after SQLite rolled one back by itself
    /// (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM … roll back the whole transaction).
    var isInAutocommit: Bool { sqlite3_get_autocommit(db) != 0 }

    // MARK: Helpers

    private func run(_ statement: OpaquePointer, _ operation: String) throws(PeerStoreError) {
        defer { sqlite3_reset(statement) }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE else { throw failure(rc, operation) }
    }

    private func prepare(_ sql: String) throws(PeerStoreError) -> OpaquePointer {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure(rc, "prepare \(sql)") }
        return statement
    }

    private func failure(_ rc: Int32, _ operation: String) -> PeerStoreError {
        Self.failure(db, rc, operation)
    }

    private static func failure(_ db: OpaquePointer, _ rc: Int32, _ operation: String) -> PeerStoreError {
        .sqlite(code: rc, message: String(cString: sqlite3_errmsg(db)), operation: operation)
    }

    private func check(_ rc: Int32, _ operation: String) throws(PeerStoreError) {
        guard rc == SQLITE_OK else { throw failure(rc, operation) }
    }

    /// Runs `sql` once (tests only: settings that make SQLite fail on purpose).
    func execute(_ sql: String) throws(PeerStoreError) { try Self.execute(db, sql, operation: sql) }

    private static func execute(_ db: OpaquePointer, _ sql: String, operation: String) throws(PeerStoreError) {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw failure(db, rc, operation) }
    }

    /// The first column of the first row of `sql`, run once.
    private static func queryText(_ db: OpaquePointer, _ sql: String) throws(PeerStoreError) -> String? {
        var statement: OpaquePointer?
        var rc = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        defer { sqlite3_finalize(statement) }
        guard rc == SQLITE_OK, let statement else { throw failure(db, rc, sql) }
        rc = sqlite3_step(statement)
        if rc == SQLITE_DONE { return nil }
        guard rc == SQLITE_ROW else { throw failure(db, rc, sql) }
        return sqlite3_column_text(statement, 0).map { String(cString: $0) }
    }

    private func bind(_ statement: OpaquePointer, _ index: Int32, blob: [UInt8]) -> Int32 {
        // A nil pointer would bind NULL, which `not null` columns refuse: bind an empty blob.
        if blob.isEmpty { return sqlite3_bind_zeroblob(statement, index, 0) }
        return blob.withUnsafeBytes { sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), transient) }
    }

    private func bind(_ statement: OpaquePointer, _ index: Int32, text: String) -> Int32 {
        var text = text
        return text.withUTF8 { utf8 in
            // As for blobs: an empty string must not become NULL.
            guard let base = utf8.baseAddress, utf8.count > 0 else {
                return sqlite3_bind_text(statement, index, "", 0, transient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text64(statement, index, $0, UInt64(utf8.count), transient, UInt8(SQLITE_UTF8))
            }
        }
    }

    private func blob(_ statement: OpaquePointer, _ column: Int32) -> [UInt8] {
        // sqlite3_column_blob first, then _bytes (the documented order); a zero-length blob is NULL.
        guard let pointer = sqlite3_column_blob(statement, column) else { return [] }
        let count = Int(sqlite3_column_bytes(statement, column))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func text(_ statement: OpaquePointer, _ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        // Repairs invalid UTF-8 (possible in rows other tools wrote) instead of failing the load.
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
}
