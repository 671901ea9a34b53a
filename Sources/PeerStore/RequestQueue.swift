import Glibc

/// A request for the store's thread.
enum PeerStoreRequest: Sendable {
    case load(id: String, completion: @Sendable (Result<PeerRow?, PeerStoreError>) -> Void)
    case insert(guid: PeerGUID, id: String, uuid: [UInt8], pk: [UInt8], ip: String,
                completion: (@Sendable (Result<PeerGUID, PeerStoreError>) -> Void)?)
    case update(guid: PeerGUID, id: String, pk: [UInt8], ip: String,
                completion: (@Sendable (Result<Bool, PeerStoreError>) -> Void)?)
    case barrier(completion: @Sendable () -> Void)

    var isWrite: Bool {
        switch self {
        case .insert, .update: return true
        case .load, .barrier: return false
        }
    }
}

/// The bounded multi-producer, single-consumer queue in front of the store's thread.
///
/// A pthread mutex and condition variable, because the consumer must sleep until work arrives
/// and `Synchronization.Mutex` has no condition variable. Producers never wait: a full queue is
/// reported to the caller at once. `@unchecked Sendable`: `pending` and `closing` are only
/// touched with `mutex` held.
final class RequestQueue: @unchecked Sendable {
    let capacity: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending: [PeerStoreRequest] = []
    private var closing = false

    init(capacity: Int) {
        precondition(capacity > 0, "queue capacity must be positive")
        self.capacity = capacity
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Queues `request` without blocking.
    ///
    /// - Throws: `.closed` after `close()`, `.queueFull` when `capacity` requests are waiting
    ///   (requests the consumer already took do not count).
    func post(_ request: PeerStoreRequest) throws(PeerStoreError) {
        pthread_mutex_lock(mutex)
        if closing {
            pthread_mutex_unlock(mutex)
            throw .closed
        }
        if pending.count >= capacity {
            pthread_mutex_unlock(mutex)
            throw .queueFull(capacity: capacity)
        }
        pending.append(request)
        // The consumer only sleeps on an empty queue, so only the first request must wake it.
        let wake = pending.count == 1
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(condition) }
    }

    /// Refuses further posts and wakes the consumer; what is queued is still handed out.
    func close() {
        pthread_mutex_lock(mutex)
        closing = true
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
    }

    /// Consumer side: waits for requests, then moves all of them into `batch` (which must be
    /// empty; its storage is reused so steady state allocates nothing).
    ///
    /// - Returns: false once the queue is closed and empty: the consumer should stop.
    func waitAndTakeAll(into batch: inout [PeerStoreRequest]) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while pending.isEmpty && !closing {
            pthread_cond_wait(condition, mutex)
        }
        if pending.isEmpty { return false }
        swap(&pending, &batch)
        return true
    }
}
