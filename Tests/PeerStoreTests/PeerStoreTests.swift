import Dispatch
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import PeerStore

/// PROTOCOL.md §10.3 operations, and the store's thread and queue.
@Suite(.timeLimit(.minutes(1)))
struct PeerStoreTests {
    // MARK: Operations

    @Test func insertThenLoadRoundTrips() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let inserted = Collector<Result<PeerGUID, PeerStoreError>>()
        let guid = try store.insert(id: "100000001", uuid: bytes(24, 0xA1), pk: bytes(32, 0xB2), ip: "::ffff:203.0.113.7") {
            inserted.append($0)
        }
        let loaded = Collector<Result<PeerRow?, PeerStoreError>>()
        try store.load(id: "100000001") { loaded.append($0) }
        store.close()

        #expect(try inserted.all.map { try $0.get() } == [guid])
        let record = try #require(try loaded.all.first?.get())
        #expect(record == PeerRow(guid: guid, id: "100000001", uuid: bytes(24, 0xA1), pk: bytes(32, 0xB2),
                                     user: nil, status: nil, ip: "::ffff:203.0.113.7"))
        let db = RawDatabase(dir.file("db.sqlite3"))
        #expect(db.rows("select info, user, status, note from peer")[0] == [#"{"ip":"::ffff:203.0.113.7"}"#, nil, nil, nil])
        #expect(db.blob("select guid from peer") == guid.bytes)
    }

    @Test func loadOfAnUnknownIdIsNil() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let loaded = Collector<Result<PeerRow?, PeerStoreError>>()
        try store.load(id: "999999999") { loaded.append($0) }
        store.close()
        #expect(try loaded.all.map { try $0.get() } == [nil])
    }

    @Test func newGuidsAreRandomVersion4() {
        let a = PeerGUID.random(), b = PeerGUID.random()
        #expect(a != b)
        for guid in [a, b] {
            #expect(guid.bytes.count == 16)
            #expect(guid.bytes[6] >> 4 == 4, "version 4")
            #expect(guid.bytes[8] >> 6 == 0b10, "RFC variant")
        }
        #expect(a.description.count == 32)
    }

    @Test func createdAtIsSetBySQLiteInUTC() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        try store.insert(id: "100000001", uuid: [1], pk: [2], ip: "1.2.3.4")
        store.close()
        let row = RawDatabase(dir.file("db.sqlite3"))
            .rows("select created_at, abs(julianday('now') - julianday(created_at)) * 86400 < 120 from peer")[0]
        let createdAt = try #require(row[0])
        #expect(createdAt.count == 19, "YYYY-MM-DD HH:MM:SS: \(createdAt)")
        #expect(Array(createdAt)[4] == "-" && Array(createdAt)[10] == " " && Array(createdAt)[13] == ":")
        #expect(row[1] == "1", "within two minutes of now (UTC)")
    }

    @Test func updateChangesIdPkAndInfoButNeverUuid() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let guid = try store.insert(id: "100000001", uuid: bytes(24, 1), pk: bytes(32, 2), ip: "1.1.1.1")
        let updated = Collector<Result<Bool, PeerStoreError>>()
        try store.update(guid: guid, id: "100000002", pk: bytes(32, 3), ip: "2.2.2.2") { updated.append($0) }
        let loaded = Collector<PeerRow?>()
        try store.load(id: "100000001") { loaded.append(try? $0.get()) }
        try store.load(id: "100000002") { loaded.append(try? $0.get()) }
        store.close()

        #expect(try updated.all.map { try $0.get() } == [true])
        #expect(loaded.all.count == 2)
        #expect(loaded.all[0] == nil, "the old id is gone")
        #expect(loaded.all[1] == PeerRow(guid: guid, id: "100000002", uuid: bytes(24, 1), pk: bytes(32, 3), ip: "2.2.2.2"))
        let db = RawDatabase(dir.file("db.sqlite3"))
        #expect(db.count() == 1)
        #expect(db.blob("select uuid from peer") == bytes(24, 1))
    }

    @Test func updateOfAnUnknownGuidTouchesNothing() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        try store.insert(id: "100000001", uuid: [1], pk: [2], ip: "1.1.1.1")
        let updated = Collector<Result<Bool, PeerStoreError>>()
        try store.update(guid: PeerGUID.random(), id: "100000001", pk: [9], ip: "9.9.9.9") { updated.append($0) }
        store.close()
        #expect(try updated.all.map { try $0.get() } == [false])
        #expect(RawDatabase(dir.file("db.sqlite3")).blob("select pk from peer") == [2])
    }

    @Test func insertingAnExistingIdIsAUniqueViolationAndKeepsTheRow() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let first = try store.insert(id: "100000001", uuid: [1], pk: [2], ip: "1.1.1.1")
        let second = Collector<Result<PeerGUID, PeerStoreError>>()
        try store.insert(id: "100000001", uuid: [3], pk: [4], ip: "2.2.2.2") { second.append($0) }
        store.close()
        guard case .failure(let error) = try #require(second.all.first) else {
            Issue.record("duplicate id accepted")
            return
        }
        #expect(error.isUniqueViolation)
        #expect(error.primarySQLiteCode == 19)
        #expect(error.description.contains("insert 100000001"))
        let db = RawDatabase(dir.file("db.sqlite3"))
        #expect(db.count() == 1)
        #expect(db.blob("select guid from peer") == first.bytes)
    }

    @Test func infoIsEscapedJSON() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let ip = "a\"b\\c\n\u{01}é\u{7F}"
        try store.insert(id: "100000001", uuid: [1], pk: [2], ip: ip)
        let loaded = Collector<PeerRow?>()
        try store.load(id: "100000001") { loaded.append(try? $0.get()) }
        store.close()
        #expect(RawDatabase(dir.file("db.sqlite3")).rows("select info, json_valid(info) from peer")[0] ==
            ["{\"ip\":\"a\\\"b\\\\c\\n\\u0001é\u{7F}\"}", "1"])
        #expect(loaded.all.first??.ip == ip)
    }

    @Test func emptyValuesAreStoredAsEmptyNotNull() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let inserted = Collector<Result<PeerGUID, PeerStoreError>>()
        try store.insert(id: "100000001", uuid: [], pk: [], ip: "") { inserted.append($0) }
        let loaded = Collector<PeerRow?>()
        try store.load(id: "100000001") { loaded.append(try? $0.get()) }
        store.close()
        #expect((try? inserted.all.first?.get()) != nil)
        #expect(loaded.all.first??.uuid == [])
        #expect(loaded.all.first??.pk == [])
        #expect(loaded.all.first??.ip == "")
        #expect(RawDatabase(dir.file("db.sqlite3")).rows("select typeof(uuid), typeof(pk) from peer")[0] == ["blob", "blob"])
    }

    // MARK: Thread and queue

    @Test func completionsRunOnTheStoreThreadInPostingOrder() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let order = Collector<(Int, UInt)>()
        let caller = pthread_self()
        for i in 0..<300 {
            switch i % 3 {
            case 0: try store.insert(id: "id\(i)", uuid: [1], pk: [2], ip: "x") { _ in order.append((i, pthread_self())) }
            case 1: try store.load(id: "id\(i - 1)") { _ in order.append((i, pthread_self())) }
            default: try store.barrier { order.append((i, pthread_self())) }
            }
        }
        store.close()
        #expect(order.all.map(\.0) == Array(0..<300))
        let threads = Set(order.all.map(\.1))
        #expect(threads.count == 1)
        #expect(threads.first != caller)
        #expect(store.statistics.posted == 300)
        #expect(store.statistics.succeeded == 300)
        #expect(store.statistics.failed == 0)
    }

    @Test func concurrentPostsFromSeveralThreads() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let results = Collector<Bool>()
        let refused = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<250 {
                let id = "t\(thread)-\(i)"
                do {
                    try store.insert(id: id, uuid: [UInt8(thread)], pk: [UInt8(truncatingIfNeeded: i)], ip: "10.0.0.\(thread)") {
                        results.append((try? $0.get()) != nil)
                    }
                    try store.load(id: id) { results.append((try? $0.get())??.id == id) }
                } catch {
                    refused.add(1, ordering: .relaxed)
                }
            }
        }
        store.close()
        #expect(refused.load(ordering: .relaxed) == 0)
        #expect(results.count == 4000)
        #expect(results.all.allSatisfy { $0 }, "every insert succeeded and every load saw its own insert")
        #expect(RawDatabase(dir.file("db.sqlite3")).count() == 2000)
    }

    @Test func aFullQueueRefusesAtOnceAndCountsIt() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"), queueCapacity: 2)
        let gate = Gate()
        // The first request is taken off the queue and holds the store's thread in its completion.
        try store.barrier { gate.enterAndWait() }
        #expect(waitUntil { gate.entered })
        let done = Collector<String>()
        try store.insert(id: "a", uuid: [1], pk: [1], ip: "") { _ in done.append("a") }
        try store.load(id: "a") { _ in done.append("load") }
        let start = clockNanoseconds()
        #expect(throws: PeerStoreError.queueFull(capacity: 2)) {
            try store.insert(id: "b", uuid: [1], pk: [1], ip: "") { _ in done.append("b") }
        }
        #expect(throws: PeerStoreError.queueFull(capacity: 2)) { try store.barrier { done.append("barrier") } }
        #expect(clockNanoseconds() - start < 1_000_000_000, "refusal does not wait for the queue")
        #expect(store.statistics.rejectedQueueFull == 2)
        gate.open()
        store.close()
        #expect(done.all == ["a", "load"], "refused requests never complete; accepted ones do")
        #expect(store.statistics.posted == 3)
        #expect(RawDatabase(dir.file("db.sqlite3")).count() == 1)
    }

    @Test func closeDrainsEveryQueuedRequestThenRefuses() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let done = Collector<Bool>()
        for i in 0..<3000 {
            try store.insert(id: "\(i)", uuid: [1], pk: [2], ip: "x") { done.append((try? $0.get()) != nil) }
        }
        store.close()
        #expect(done.count == 3000)
        #expect(done.all.allSatisfy { $0 })
        #expect(throws: PeerStoreError.closed) { try store.load(id: "1") { _ in } }
        #expect(throws: PeerStoreError.closed) { try store.insert(id: "x", uuid: [1], pk: [2], ip: "") }
        store.close()
        let stats = store.statistics
        #expect(stats.posted == 3000)
        #expect(stats.succeeded == 3000)
        #expect(stats.rejectedClosed == 2)
        #expect(stats.transactions >= 3, "at most \(PeerStore.maxRequestsPerTransaction) requests per transaction")
        #expect(RawDatabase(dir.file("db.sqlite3")).count() == 3000)
    }

    @Test func releasingTheStoreWithoutCloseStillDrains() throws {
        let dir = TemporaryDirectory()
        let done = Collector<Bool>()
        do {
            let store = try PeerStore(path: dir.file("db.sqlite3"))
            for i in 0..<500 {
                try store.insert(id: "\(i)", uuid: [1], pk: [2], ip: "x") { done.append((try? $0.get()) != nil) }
            }
        }
        #expect(done.count == 500)
        #expect(RawDatabase(dir.file("db.sqlite3")).count() == 500)
    }

    @Test func oneFailedWriteDoesNotFailTheOthersOfItsTransaction() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let gate = Gate()
        try store.barrier { gate.enterAndWait() }
        #expect(waitUntil { gate.entered })
        // Queued while the thread is held: taken together, run in one transaction.
        let results = Collector<(String, Bool)>()
        try store.insert(id: "A", uuid: [1], pk: [1], ip: "") { results.append(("A", (try? $0.get()) != nil)) }
        try store.insert(id: "A", uuid: [2], pk: [2], ip: "") { results.append(("A again", (try? $0.get()) != nil)) }
        try store.insert(id: "B", uuid: [3], pk: [3], ip: "") { results.append(("B", (try? $0.get()) != nil)) }
        gate.open()
        store.close()
        #expect(results.all.map { "\($0.0):\($0.1)" } == ["A:true", "A again:false", "B:true"])
        #expect(store.statistics.failed == 1)
        #expect(RawDatabase(dir.file("db.sqlite3")).rows("select id from peer order by id").map { $0[0] } == ["A", "B"])
    }

    @Test func reportedWriteResultsMatchTheFileWhenTheDatabaseFills() throws {
        let dir = TemporaryDirectory()
        // A page cap makes SQLite fail with SQLITE_FULL part-way through a transaction.
        let pages = Int(RawDatabase(dir.file("probe.sqlite3")).rows("pragma page_count")[0][0]!)!
        let store = try PeerStore(path: dir.file("db.sqlite3"), queueCapacity: 1000,
                                  testPragmas: ["pragma max_page_count = \(max(pages, 8) + 12)"])
        let gate = Gate()
        try store.barrier { gate.enterAndWait() }
        #expect(waitUntil { gate.entered })
        let results = Collector<(String, Result<PeerGUID, PeerStoreError>)>()
        for i in 0..<200 {
            let id = "\(100_000_000 + i)"
            try store.insert(id: id, uuid: bytes(16, 1), pk: bytes(3000, UInt8(truncatingIfNeeded: i)), ip: "x") {
                results.append((id, $0))
            }
        }
        gate.open()
        store.close()

        let succeeded = results.all.filter { if case .success = $0.1 { true } else { false } }.map(\.0)
        let failures = results.all.compactMap { if case .failure(let e) = $0.1 { e } else { nil } }
        #expect(results.count == 200)
        #expect(!failures.isEmpty, "the cap was never reached")
        #expect(failures.allSatisfy { $0.primarySQLiteCode == 13 }, "SQLITE_FULL: \(failures.first.map(String.init(describing:)) ?? "")")
        let db = RawDatabase(dir.file("db.sqlite3"))
        #expect(db.rows("select id from peer order by id").map { $0[0]! } == succeeded,
                "a write reported as done is in the file, a failed one is not")
        #expect(store.statistics.failed == failures.count)
    }

    @Test func releasingTheLastReferenceOnTheStoreThreadClosesWithoutDeadlock() throws {
        let dir = TemporaryDirectory()
        let gate = Gate()
        let released = Collector<Bool>()
        do {
            let store = try PeerStore(path: dir.file("db.sqlite3"))
            try store.insert(id: "100000001", uuid: [1], pk: [2], ip: "x")
            // The completion keeps the store alive; it is released on the store's own thread.
            try store.barrier { [store] in
                gate.enterAndWait()
                _ = store.path
                released.append(true)
            }
            #expect(waitUntil { gate.entered })
        }
        gate.open()
        #expect(waitUntil { released.count == 1 })
        // The thread closes the connection on its own; closing removes the WAL file.
        #expect(waitUntil { !dir.exists("db.sqlite3-wal") })
        #expect(RawDatabase(dir.file("db.sqlite3")).count() == 1)
    }

    @Test func aBurstOfTenThousandInsertsFinishes() throws {
        let dir = TemporaryDirectory()
        let store = try PeerStore(path: dir.file("db.sqlite3"))
        let start = clockNanoseconds()
        let ok = Atomic<Int>(0)
        for i in 0..<10_000 {
            try store.insert(id: String(100_000_000 + i), uuid: bytes(16, UInt8(truncatingIfNeeded: i)), pk: bytes(32, 7),
                             ip: "::ffff:198.51.100.\(i % 256)") { if case .success = $0 { ok.add(1, ordering: .relaxed) } }
        }
        let finished = Collector<Bool>()
        try store.barrier { finished.append(true) }
        #expect(waitUntil(seconds: 45) { finished.count == 1 })
        let seconds = Double(clockNanoseconds() - start) / 1e9
        store.close()
        #expect(ok.load(ordering: .relaxed) == 10_000)
        #expect(RawDatabase(dir.file("db.sqlite3")).count() == 10_000)
        print("10 000 inserts: \(seconds) s, \(store.statistics.transactions) transactions")
    }

    // MARK: Errors

    @Test func aFileThatIsNotADatabaseIsATypedError() {
        let dir = TemporaryDirectory()
        let path = dir.write("db_v2.sqlite3", bytes: Array(String(repeating: "this is not a database. ", count: 200).utf8))
        do {
            _ = try PeerStore(path: path)
            Issue.record("a corrupt file was opened")
        } catch {
            #expect(error.sqliteCode == 26, "SQLITE_NOTADB: \(error)")
            #expect(error.description.contains("not a database"))
        }
    }

    @Test func aPathThatCannotBeCreatedIsATypedError() {
        let dir = TemporaryDirectory()
        for path in [dir.file("missing-directory/db.sqlite3"), dir.path] {
            do {
                _ = try PeerStore(path: path)
                Issue.record("\(path) was opened")
            } catch {
                #expect(error.primarySQLiteCode == 14, "SQLITE_CANTOPEN for \(path): \(error)")
                #expect(error.description.contains(path))
            }
        }
    }
}

/// `info` is read like upstream's serde: any damage gives an empty ip, never a crash.
@Suite(.timeLimit(.minutes(1)))
struct PeerInfoTests {
    @Test(arguments: [
        (#"{"ip":"1.2.3.4"}"#, "1.2.3.4"),
        (#" { "ip" : "::ffff:1.2.3.4" } "#, "::ffff:1.2.3.4"),
        (#"{"os":"linux","ip":"1.2.3.4","n":-1.5e+3,"a":[{},[],true,false,null]}"#, "1.2.3.4"),
        (#"{"ip":"\u00e9\ud83d\ude00\/\"\\"}"#, "é😀/\"\\"),
        (#"{}"#, ""),
        (#"{"IP":"1.2.3.4"}"#, ""),
        (#"{"ip":5}"#, ""),
        (#"{"ip":null}"#, ""),
        (#"{"ip":"a","ip":"b"}"#, ""),
        (#"{"ip":"1.2.3.4""#, ""),
        (#"{"ip":"1.2.3.4"} x"#, ""),
        (#"{"ip":"1.2.3.4",}"#, ""),
        (#"["ip","1.2.3.4"]"#, ""),
        (#""1.2.3.4""#, ""),
        ("", ""),
        ("not json", ""),
        (#"{"ip":"\ud83d"}"#, ""),
        (#"{"ip":"\x"}"#, ""),
        ("{\"ip\":\"a\nb\"}", ""),
        (#"{"x":01,"ip":"a"}"#, ""),
        (#"{"x":1.,"ip":"a"}"#, ""),
        (#"{"x":tru,"ip":"a"}"#, ""),
    ])
    func ipMember(json: String, ip: String) {
        #expect(PeerInfo.ip(fromJSON: json) == ip)
    }

    @Test func deepNestingIsRefusedNotRecursedWithoutBound() {
        let deep = #"{"x":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + #","ip":"a"}"#
        #expect(PeerInfo.ip(fromJSON: deep) == "")
        let shallow = #"{"x":"# + String(repeating: "[", count: 10) + String(repeating: "]", count: 10) + #","ip":"a"}"#
        #expect(PeerInfo.ip(fromJSON: shallow) == "a")
    }

    @Test func encodingRoundTrips() {
        for ip in ["1.2.3.4", "::ffff:203.0.113.7", "", "\"\\\u{0}\u{1F}\t\r\n\u{08}\u{0C}é😀"] {
            #expect(PeerInfo.ip(fromJSON: PeerInfo.json(ip: ip)) == ip, "\(ip)")
        }
        #expect(PeerInfo.json(ip: "1.2.3.4") == #"{"ip":"1.2.3.4"}"#)
    }
}
