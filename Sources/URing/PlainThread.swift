import Glibc

/// A plain pthread running `body`, never the Swift concurrency pool: load generators and baseline
/// servers block in syscalls (epoll_wait, recvmmsg). `join()` waits for it. Used by engine-bench
/// and rdbench. The corresponding C functions are `pthread_create` and `pthread_join`.
public final class PlainThread: @unchecked Sendable {
    private var thread = pthread_t()
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    public init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let r = pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        precondition(r == 0, "pthread_create: \(r)")
    }

    public func join() { pthread_join(thread, nil) }
}
