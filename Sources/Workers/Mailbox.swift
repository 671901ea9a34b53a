import Glibc
import Synchronization
import URing

/// Messages for one worker from any thread (another worker, the control plane).
///
/// A mutex-protected queue plus an eventfd the worker keeps a read armed on. The lock is this
/// worker's alone (never one shared by all workers) and is only taken for cross-worker hand-offs,
/// which are off the per-byte and per-datagram path. A post to a non-empty queue does not write
/// the eventfd again: one wake-up drains everything queued. Draining swaps the queue with the
/// worker's own (empty, same capacity) array, so once both have grown to the busiest burst no
/// post or drain allocates.
///
/// When the worker has exited the mailbox is closed: `post` refuses, so a sender that hands over
/// something owned (a descriptor) keeps it and releases it itself.
public final class Mailbox<Message: Sendable>: Sendable {
    struct State {
        var queue: [Message] = []
        var stopRequested = false
        var closed = false
    }
    let state = Mutex(State())
    /// The eventfd the owning worker reads; written to wake it.
    public let eventFD: Int32

    public init() throws(Errno) {
        eventFD = try EventFD.make()
    }

    deinit { Socket.close(eventFD) }

    /// Queues `message` and wakes the worker if it was idle. Returns false, dropping nothing the
    /// caller still owns, when the worker has already exited.
    @discardableResult
    public func post(_ message: Message) -> Bool {
        let (accepted, wake) = state.withLock { s -> (Bool, Bool) in
            if s.closed { return (false, false) }
            s.queue.append(message)
            return (true, s.queue.count == 1)
        }
        if wake { signal() }
        return accepted
    }

    /// Asks the worker to stop gracefully.
    public func requestStop() {
        state.withLock { $0.stopRequested = true }
        signal()
    }

    /// Moves everything queued into `inbox` (which must be empty) and says whether a stop was
    /// requested. Called by the owning worker after a wake-up.
    func drain(into inbox: inout [Message]) -> Bool {
        state.withLock { s in
            swap(&s.queue, &inbox)
            return s.stopRequested
        }
    }

    /// Refuses further posts and moves what is still queued into `inbox`. Called by the owning
    /// worker once it is drained and about to exit.
    func close(into inbox: inout [Message]) {
        state.withLock { s in
            s.closed = true
            swap(&s.queue, &inbox)
        }
    }

    private func signal() {
        var one: UInt64 = 1
        // EAGAIN only if the counter would overflow, which a pending wake-up makes harmless.
        _ = write(eventFD, &one, 8)
    }
}
