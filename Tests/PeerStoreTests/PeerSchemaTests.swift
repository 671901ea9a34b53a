import Testing
import TestSupport
@testable import PeerStore

/// PROTOCOL.md §10.1–10.2: the file RingDesk creates is the file upstream creates.
@Suite(.timeLimit(.minutes(1)))
struct PeerSchemaTests {
    func normalized(_ sql: String?) -> String? {
        sql?.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
    }

    @Test func schemaMatchesUpstreamInEveryNameTypeAndIndex() throws {
        let dir = TemporaryDirectory()
        RawDatabase(dir.file("upstream.sqlite3")).execute(upstreamSchemaSQL)
        try PeerStore(path: dir.file("ours.sqlite3")).close()
        let upstream = RawDatabase(dir.file("upstream.sqlite3"))
        let ours = RawDatabase(dir.file("ours.sqlite3"))

        let master = "select type, name, tbl_name, sql from sqlite_master order by type, name"
        let upstreamMaster = upstream.rows(master).map { $0.prefix(3) + [normalized($0[3])] }
        let ourMaster = ours.rows(master).map { $0.prefix(3) + [normalized($0[3])] }
        #expect(ourMaster == upstreamMaster)
        // A without-rowid table is its own primary-key index: no separate sqlite_master entry.
        #expect(ourMaster.count == 5, "the table and four indexes: \(ourMaster)")

        for pragma in ["pragma table_info(peer)", "pragma index_list(peer)"] {
            #expect(ours.rows(pragma) == upstream.rows(pragma), "\(pragma)")
        }
        for index in upstream.rows("pragma index_list(peer)").map({ $0[1]! }) {
            #expect(ours.rows("pragma index_xinfo(\(index))") == upstream.rows("pragma index_xinfo(\(index))"), "\(index)")
        }
    }

    @Test func columnsAndIndexesAreExactlyTheSpecifiedOnes() throws {
        let dir = TemporaryDirectory()
        try PeerStore(path: dir.file("db_v2.sqlite3")).close()
        let db = RawDatabase(dir.file("db_v2.sqlite3"))
        // name, declared type (SQLite reports the standard names upper-cased), not null, default, pk position
        let columns = db.rows("pragma table_info(peer)").map { [$0[1], $0[2]?.lowercased(), $0[3], $0[4], $0[5]] }
        #expect(columns == [
            ["guid", "blob", "1", nil, "1"],
            ["id", "varchar(100)", "1", nil, "0"],
            ["uuid", "blob", "1", nil, "0"],
            ["pk", "blob", "1", nil, "0"],
            ["created_at", "datetime", "1", "current_timestamp", "0"],
            ["user", "blob", "0", nil, "0"],
            ["status", "tinyint", "0", nil, "0"],
            ["note", "varchar(300)", "0", nil, "0"],
            ["info", "text", "1", nil, "0"],
        ])
        // name, unique, origin
        let indexes = Set(db.rows("pragma index_list(peer)").map { [$0[1]!, $0[2]!, $0[3]!] })
        #expect(indexes == [
            ["index_peer_id", "1", "c"], ["index_peer_user", "0", "c"], ["index_peer_created_at", "0", "c"],
            ["index_peer_status", "0", "c"], ["sqlite_autoindex_peer_1", "1", "pk"],
        ])
        for (index, column) in [("index_peer_id", "id"), ("index_peer_user", "user"),
                                ("index_peer_created_at", "created_at"), ("index_peer_status", "status")] {
            #expect(db.rows("pragma index_info(\(index))").map { $0[2] } == [column])
        }
        let tableSQL = normalized(db.rows("select sql from sqlite_master where name = 'peer'")[0][0])
        #expect(tableSQL?.hasSuffix(") without rowid") == true, "\(tableSQL ?? "nil")")
    }

    @Test func schemaStatementsRunAtEveryOpenWithoutHarm() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("db.sqlite3")
        let store = try PeerStore(path: path)
        try store.insert(id: "100000001", uuid: [1], pk: [2], ip: "1.2.3.4")
        store.close()
        try PeerStore(path: path).close()
        let db = RawDatabase(path)
        #expect(db.count() == 1)
        #expect(db.rows("select count(*) from sqlite_master")[0][0] == "5")
    }

    @Test func databaseUsesWriteAheadLogging() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        #expect(store.journalMode == "wal")
        try store.insert(id: "100000001", uuid: [1], pk: [2], ip: "1.2.3.4")
        let done = Collector<Bool>()
        try store.barrier { done.append(true) }
        #expect(waitUntil { done.count == 1 })
        #expect(dir.exists("db.sqlite3-wal"), "WAL side file while open")
        store.close()
        #expect(RawDatabase(dir.file("db.sqlite3")).rows("pragma journal_mode")[0][0] == "wal")
    }

    @Test func createsAMissingFile() throws {
        let dir = TemporaryDirectory()
        #expect(!dir.exists("new.sqlite3"))
        try PeerStore(path: dir.file("new.sqlite3")).close()
        #expect(dir.exists("new.sqlite3"))
    }

    @Test func readsAFileUpstreamWroteIncludingProValues() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("db_v2.sqlite3")
        do {
            let db = RawDatabase(path)
            db.execute(upstreamSchemaSQL)
            let insert = "insert into peer(guid, id, uuid, pk, info) values (?, ?, ?, ?, ?)"
            db.run(insert, [bytes(16, 1), "111111111", bytes(24, 2), bytes(32, 3), #"{"ip":"::ffff:203.0.113.7"}"#])
            db.run("insert into peer(guid, id, uuid, pk, user, status, note, info) values (?, ?, ?, ?, ?, ?, ?, ?)",
                   [bytes(16, 4), "222222222", bytes(24, 5), bytes(32, 6), [UInt8]([9, 8, 7]), 1, "vip customer",
                    #"{"ip":"198.51.100.2","os":"linux","extra":{"list":[1,2.5e3,true,null,"x"]}}"#])
            db.run("insert into peer(guid, id, uuid, pk, user, status, note, info) values (?, ?, ?, ?, ?, ?, ?, ?)",
                   [bytes(16, 7), "333333333", bytes(24, 8), bytes(32, 9), 42, 0, "typed", "not json at all"])
            db.run(insert, [bytes(16, 10), "444444444", bytes(24, 11), bytes(32, 12), "{}"])
        }
        let store = try PeerStore(path: path)
        let loaded = Collector<(String, PeerRow?)>()
        for id in ["111111111", "222222222", "333333333", "444444444", "555555555"] {
            try store.load(id: id) { loaded.append((id, try? $0.get())) }
        }
        // A change to the Pro row must leave user/status/note alone.
        try store.update(guid: PeerGUID(bytes: bytes(16, 4)), id: "222222222", pk: bytes(32, 13), ip: "198.51.100.3")
        store.close()

        let records = Dictionary(uniqueKeysWithValues: loaded.all.map { ($0.0, $0.1) })
        #expect(records["111111111"]! == PeerRow(guid: PeerGUID(bytes: bytes(16, 1)), id: "111111111", uuid: bytes(24, 2),
                                                    pk: bytes(32, 3), user: nil, status: nil, ip: "::ffff:203.0.113.7"))
        #expect(records["222222222"]! == PeerRow(guid: PeerGUID(bytes: bytes(16, 4)), id: "222222222", uuid: bytes(24, 5),
                                                    pk: bytes(32, 6), user: [9, 8, 7], status: 1, ip: "198.51.100.2"))
        let typed = try #require(records["333333333"] ?? nil)
        #expect(typed.user == Array("42".utf8), "an integer user is read as its text bytes")
        #expect(typed.status == 0)
        #expect(typed.ip == "", "malformed info gives an empty ip")
        #expect(records["444444444"]??.ip == "")
        #expect(records["555555555"]! == nil)

        let db = RawDatabase(path)
        #expect(db.rows("select note, status, hex(user), info from peer where id = '222222222'")[0] ==
            ["vip customer", "1", "090807", #"{"ip":"198.51.100.3"}"#])
        #expect(db.blob("select pk from peer where id = '222222222'") == bytes(32, 13))
    }
}
