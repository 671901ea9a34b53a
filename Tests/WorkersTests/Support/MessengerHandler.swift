import Glibc
import Synchronization
import URing
@testable import Workers

enum Note: Sendable {
    /// Ask the receiving worker to post `.delivered(token, from: itself)` to worker `to`.
    case relay(token: Int, to: Int)
    case delivered(token: Int, from: Int)
}

struct Delivery: Sendable, Equatable {
    var receiver: Int
    var from: Int
    var token: Int
    var onOwnThread: Bool
}

final class MessengerLog: Sendable {
    let deliveries = Mutex<[Delivery]>([])
    let ticks = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    /// Per worker: its configured CPU and the affinity it saw from inside.
    let affinity = Mutex<[Int: (configured: Int?, seen: [Int])]>([:])
}

/// A worker with no sockets: it relays mailbox messages, counts ticks and reports its affinity.
final class MessengerHandler: WorkerHandler {
    typealias Message = Note
    let index: Int
    let log: MessengerLog
    var thread = pthread_self()

    init(index: Int, log: MessengerLog) { self.index = index; self.log = log }

    func start(_ context: inout WorkerContext<Note>) throws(Errno) {
        thread = pthread_self()
        let seen = try Affinity.allowedCPUs()
        let configured = context.cpu
        log.affinity.withLock { $0[context.index] = (configured, seen) }
    }

    func receive(_ message: Note, _ context: inout WorkerContext<Note>) {
        switch message {
        case .relay(let token, let to):
            context.post(.delivered(token: token, from: index), to: to)
        case .delivered(let token, let from):
            let own = pthread_equal(thread, pthread_self()) != 0
            log.deliveries.withLock { $0.append(Delivery(receiver: context.index, from: from, token: token, onOwnThread: own)) }
        }
    }

    func handle(_ completion: Completion, _ context: inout WorkerContext<Note>) {
        preconditionFailure("no ops submitted")
    }

    func tick(_ context: inout WorkerContext<Note>) { log.ticks.add(1, ordering: .relaxed) }
    func beginStop(_ context: inout WorkerContext<Note>) {}
    var isDrained: Bool { true }
    func finish(_ context: inout WorkerContext<Note>) { log.finished.add(1, ordering: .relaxed) }
}
