import Glibc
import Synchronization

/// The hbbs peer table (PROTOCOL.md §10) on its own thread.
///
/// One dedicated pthread owns the SQLite connection; callers post requests to a bounded queue and
/// never wait for the disk. Each accepted request's completion is called exactly once, **on the
/// store's thread**, in posting order; it should only hand the result on (e.g. post it to a
/// worker's mailbox) — a slow completion delays every later request. A request the queue refuses
/// (full or closed) throws from the posting call and its completion is never called.
///
/// Writes are grouped: requests taken from the queue together run in one transaction of at most
/// `maxRequestsPerTransaction`, and their completions are called after the commit, so a success
/// means the row is on disk. If the commit fails, every write of that transaction reports the
/// failure. Only the three operations of §10.3 exist: nothing deletes a row or changes `uuid`.
public final class PeerStore: Sendable {
    /// Default bound of the request queue.
    public static let defaultQueueCapacity = 65_536
    /// Most requests per transaction: bounds how long one commit holds back the requests behind it.
    public static let maxRequestsPerTransaction = 1024

    /// The database file.
    public let path: String
    /// The journal mode in force: `wal`, unless the file system cannot do WAL.
    public let journalMode: String
    private let queue: RequestQueue
    private let counters: Counters
    private let thread: pthread_t
    private let joined = Mutex(false)

    /// Opens (creating if missing) the database at `path`, creates the §10.2 schema if needed,
    /// and starts the store's thread.
    ///
    /// - Parameters:
    ///   - path: a file path (no `sqlite:` prefix); relative to the working directory.
    ///   - queueCapacity: how many requests may wait before posts are refused.
    /// - Throws: `PeerStoreError.sqlite` when the file cannot be opened, is not a database or the
    ///   schema cannot be created; `.threadStart` if the thread cannot be created.
    public convenience init(path: String, queueCapacity: Int = PeerStore.defaultQueueCapacity) throws(PeerStoreError) {
        try self.init(path: path, queueCapacity: queueCapacity, testPragmas: [])
    }

    /// `testPragmas` run after the schema, for tests that need SQLite to fail (e.g. `max_page_count`).
    init(path: String, queueCapacity: Int, testPragmas: [String]) throws(PeerStoreError) {
        let connection = try SQLiteConnection(path: path)
        for pragma in testPragmas { try connection.execute(pragma) }
        let queue = RequestQueue(capacity: queueCapacity)
        let counters = Counters()
        let worker = Unmanaged.passRetained(StoreThread(connection: connection, queue: queue, counters: counters))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let worker = Unmanaged<StoreThread>.fromOpaque(raw!).takeRetainedValue()
            worker.run()
            return nil
        }, worker.toOpaque())
        guard rc == 0 else {
            worker.release()
            throw .threadStart(errno: rc)
        }
        self.path = path
        self.journalMode = connection.journalMode
        self.queue = queue
        self.counters = counters
        self.thread = thread
    }

    /// Closes the store if the owner forgot to. When the last reference goes away on the store's
    /// own thread (a completion held it), that thread cannot be joined: it drains and exits alone.
    deinit {
        if pthread_equal(pthread_self(), thread) != 0 {
            queue.close()
            joined.withLock { if !$0 { pthread_detach(thread); $0 = true } }
        } else {
            close()
        }
    }

    // MARK: Requests

    /// Loads the row whose `id` is `id` (§10.3 "Load by ID").
    ///
    /// - Parameter completion: called on the store's thread with the row, nil if there is none,
    ///   or the SQLite failure.
    /// - Throws: `.queueFull` or `.closed`; `completion` is then never called.
    public func load(id: String, completion: @escaping @Sendable (Result<PeerRow?, PeerStoreError>) -> Void)
        throws(PeerStoreError) {
        try post(.load(id: id, completion: completion))
    }

    /// Inserts a row (§10.3 "Insert"): `guid`, `id`, `uuid`, `pk` and `info = {"ip":…}`;
    /// `created_at` is set by SQLite.
    ///
    /// The guid is chosen here and returned at once, so the caller can record it before the row
    /// is written: later changes to the peer become updates by that guid, queued behind this insert.
    ///
    /// - Parameters:
    ///   - guid: the new row's key; a random UUID v4 by default.
    ///   - completion: optional; called on the store's thread after the commit with the guid, or
    ///     the failure (`isUniqueViolation` when a row with this `id` already exists).
    /// - Throws: `.queueFull` or `.closed`; nothing is written then.
    @discardableResult
    public func insert(id: String, uuid: [UInt8], pk: [UInt8], ip: String, guid: PeerGUID = .random(),
                       completion: (@Sendable (Result<PeerGUID, PeerStoreError>) -> Void)? = nil)
        throws(PeerStoreError) -> PeerGUID {
        try post(.insert(guid: guid, id: id, uuid: uuid, pk: pk, ip: ip, completion: completion))
        return guid
    }

    /// Updates `id`, `pk` and `info` of the row whose guid is `guid` (§10.3 "Update"); `uuid` is
    /// never changed.
    ///
    /// - Parameter completion: optional; called on the store's thread after the commit with
    ///   whether a row had that guid, or the failure.
    /// - Throws: `.queueFull` or `.closed`; nothing is written then.
    public func update(guid: PeerGUID, id: String, pk: [UInt8], ip: String,
                       completion: (@Sendable (Result<Bool, PeerStoreError>) -> Void)? = nil) throws(PeerStoreError) {
        try post(.update(guid: guid, id: id, pk: pk, ip: ip, completion: completion))
    }

    /// Calls `completion` on the store's thread once every request posted before it has completed.
    ///
    /// - Throws: `.queueFull` or `.closed`.
    public func barrier(_ completion: @escaping @Sendable () -> Void) throws(PeerStoreError) {
        try post(.barrier(completion: completion))
    }

    private func post(_ request: PeerStoreRequest) throws(PeerStoreError) {
        do {
            try queue.post(request)
            counters.posted.add(1, ordering: .relaxed)
        } catch {
            switch error {
            case .queueFull: counters.rejectedQueueFull.add(1, ordering: .relaxed)
            default: counters.rejectedClosed.add(1, ordering: .relaxed)
            }
            throw error
        }
    }

    // MARK: Lifecycle and statistics

    /// Stops accepting requests, completes every queued one, closes the connection (which
    /// checkpoints the WAL) and joins the thread. Returns when all that is done. Idempotent.
    ///
    /// Must not be called from a completion (the store's own thread would wait for itself).
    public func close() {
        precondition(pthread_equal(pthread_self(), thread) == 0,
                     "PeerStore.close() called from a completion: the store's thread cannot wait for itself")
        queue.close()
        // Held while joining so a concurrent close() also returns only once everything is closed.
        joined.withLock { done in
            if !done {
                pthread_join(thread, nil)
                done = true
            }
        }
    }

    /// Counters since open.
    public var statistics: PeerStoreStatistics {
        PeerStoreStatistics(
            posted: counters.posted.load(ordering: .relaxed),
            rejectedQueueFull: counters.rejectedQueueFull.load(ordering: .relaxed),
            rejectedClosed: counters.rejectedClosed.load(ordering: .relaxed),
            succeeded: counters.succeeded.load(ordering: .relaxed),
            failed: counters.failed.load(ordering: .relaxed),
            transactions: counters.transactions.load(ordering: .relaxed))
    }
}

/// A snapshot of a store's counters.
public struct PeerStoreStatistics: Equatable, Sendable {
    /// Requests accepted into the queue.
    public var posted: Int
    /// Requests refused because the queue was full.
    public var rejectedQueueFull: Int
    /// Requests refused because the store was closing or closed.
    public var rejectedClosed: Int
    /// Completed requests whose result was a success (barriers included).
    public var succeeded: Int
    /// Completed requests whose result was an error.
    public var failed: Int
    /// Committed write transactions.
    public var transactions: Int
}

final class Counters: Sendable {
    let posted = Atomic<Int>(0)
    let rejectedQueueFull = Atomic<Int>(0)
    let rejectedClosed = Atomic<Int>(0)
    let succeeded = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let transactions = Atomic<Int>(0)
}

/// The store's thread: owns the connection, drains the queue, runs each batch.
private final class StoreThread {
    let connection: SQLiteConnection
    let queue: RequestQueue
    let counters: Counters

    init(connection: SQLiteConnection, queue: RequestQueue, counters: Counters) {
        self.connection = connection
        self.queue = queue
        self.counters = counters
    }

    func run() {
        var batch: [PeerStoreRequest] = []
        batch.reserveCapacity(PeerStore.maxRequestsPerTransaction)
        while queue.waitAndTakeAll(into: &batch) {
            var start = 0
            while start < batch.count {
                let end = min(start + PeerStore.maxRequestsPerTransaction, batch.count)
                runChunk(batch[start..<end])
                start = end
            }
            batch.removeAll(keepingCapacity: true)
        }
        connection.close()
    }

    /// The outcome of one request, kept until the chunk's transaction is settled.
    private enum Outcome {
        case loaded(Result<PeerRow?, PeerStoreError>)
        case written(Result<Bool, PeerStoreError>)
        case barrier
    }

    private func runChunk(_ chunk: ArraySlice<PeerStoreRequest>) {
        var inTransaction = false
        if chunk.contains(where: \.isWrite) {
            // If BEGIN fails (e.g. SQLITE_BUSY past the timeout) each write commits on its own.
            inTransaction = (try? connection.begin()) != nil
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(chunk.count)
        for request in chunk {
            switch request {
            case .load(let id, _):
                outcomes.append(.loaded(Result { () throws(PeerStoreError) in try connection.load(id: id) }))
            case .insert(let guid, let id, let uuid, let pk, let ip, _):
                outcomes.append(.written(Result { () throws(PeerStoreError) in
                    try connection.insert(guid: guid, id: id, uuid: uuid, pk: pk, ip: ip)
                    return true
                }))
            case .update(let guid, let id, let pk, let ip, _):
                outcomes.append(.written(Result { () throws(PeerStoreError) in
                    try connection.update(guid: guid, id: id, pk: pk, ip: ip)
                }))
            case .barrier:
                outcomes.append(.barrier)
            }
            if inTransaction, case .written(.failure(let error)) = outcomes.last, connection.isInAutocommit {
                // SQLite rolled the whole transaction back: earlier writes of this chunk are gone.
                failWrites(&outcomes, upTo: outcomes.count - 1, with: error)
                inTransaction = false
            }
        }
        if inTransaction {
            do {
                try connection.commit()
                counters.transactions.add(1, ordering: .relaxed)
            } catch {
                connection.rollback()
                failWrites(&outcomes, upTo: outcomes.count, with: error)
            }
        }
        for (request, outcome) in zip(chunk, outcomes) {
            deliver(request, outcome)
        }
    }

    private func failWrites(_ outcomes: inout [Outcome], upTo end: Int, with error: PeerStoreError) {
        for i in 0..<end {
            if case .written(.success) = outcomes[i] { outcomes[i] = .written(.failure(error)) }
        }
    }

    private func deliver(_ request: PeerStoreRequest, _ outcome: Outcome) {
        var succeeded = true
        switch (request, outcome) {
        case (.load(_, let completion), .loaded(let result)):
            if case .failure = result { succeeded = false }
            completion(result)
        case (.insert(let guid, _, _, _, _, let completion), .written(let result)):
            if case .failure = result { succeeded = false }
            completion?(result.map { _ in guid })
        case (.update(_, _, _, _, let completion), .written(let result)):
            if case .failure = result { succeeded = false }
            completion?(result)
        case (.barrier(let completion), .barrier):
            completion()
        default:
            preconditionFailure("outcome does not match its request")
        }
        if succeeded {
            counters.succeeded.add(1, ordering: .relaxed)
        } else {
            counters.failed.add(1, ordering: .relaxed)
        }
    }
}
