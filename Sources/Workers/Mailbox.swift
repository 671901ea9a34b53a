import Glibc
import Synchronization
import URing

/// Messages for one worker from any thread (another worker, the control plane).
///
/// A mutex-protected queue plus an eventfd the worker keeps a read armed on. The lock is this
/// worker's alone (never one shared by all workers) and is only taken for cross-worker hand-offs,
/// which are off the per-byte and per-datagram path. A post to a non-empty queue does not write
/// the eventfd again: one wake-up drains everything queued.
public final class Mailbox<Message: Sendable>: Sendable {
    struct State {
        var queue: [Message] = []
        var stopRequested = false
    }
    let state = Mutex(State())
    /// The eventfd the owning worker reads; written to wake it.
    public let eventFD: Int32

    public init() throws(Errno) {
        eventFD = try EventFD.make()
    }

    deinit { Socket.close(eventFD) }

    /// Queues `message` and wakes the worker if it was idle.
    public func post(_ message: Message) {
        let wake = state.withLock { s -> Bool in
            s.queue.append(message)
            return s.queue.count == 1
        }
        if wake { signal() }
    }

    /// Asks the worker to stop gracefully.
    public func requestStop() {
        state.withLock { $0.stopRequested = true }
        signal()
    }

    /// Takes everything queued (called by the owning worker after a wake-up).
    func takeAll() -> (messages: [Message], stop: Bool) {
        state.withLock { s in
            let m = s.queue
            s.queue.removeAll(keepingCapacity: true)
            return (m, s.stopRequested)
        }
    }

    private func signal() {
        var one: UInt64 = 1
        // EAGAIN only if the counter would overflow, which a pending wake-up makes harmless.
        _ = write(eventFD, &one, 8)
    }
}
