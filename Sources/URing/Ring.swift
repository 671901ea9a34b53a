import CURing
import Glibc

/// One io_uring instance, owned by exactly one thread (STYLE.md habit 5).
///
/// Created with `SINGLE_ISSUER | DEFER_TASKRUN` when the kernel accepts them (completion work
/// then runs only when this thread waits for completions, never interrupting it), otherwise
/// without. Submission builders fill an SQE and tag it with a `UserData`; nothing they point at
/// may be released before the operation's final completion.
///
/// Not `Sendable` and not copyable: the ring must stay on the thread that created it.
public struct Ring: ~Copyable {
    @usableFromInline let ring: UnsafeMutablePointer<io_uring>
    /// The setup flags the kernel accepted.
    public let setupFlags: UInt32
    /// The kernel's `IORING_FEAT_*` bits for this ring.
    public let features: UInt32
    /// SQEs filled since the last submit.
    @usableFromInline var unsubmitted: Int = 0
    /// SQEs filled since the ring was created (for metrics).
    @usableFromInline var sqeCount: UInt64 = 0
    public var sqesQueued: UInt64 { sqeCount }
    @usableFromInline let cqeBatch: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    @usableFromInline static let cqeBatchSize = 256
    #if DEBUG
    /// The creating thread: debug builds check that only it waits on the ring (habit 5). The
    /// kernel enforces this for `SINGLE_ISSUER` rings (`EEXIST`); the check covers the fallbacks.
    let owner: pthread_t
    #endif

    /// Creates a ring with `entries` SQEs and `completionEntries` CQEs (at least `2 × entries`).
    ///
    /// Setup flags are tried strongest first (`setupCandidates`); a set the kernel rejects with
    /// `EINVAL` (a flag it does not know) falls through to the next, so the ring works on any
    /// kernel with io_uring and `setupFlags` / `usesDeferredTaskRun` say what was taken.
    /// With `SINGLE_ISSUER` the calling thread becomes the only one that may submit or wait.
    /// - Throws: `Errno` from `io_uring_queue_init_params` (the startup probe explains them).
    ///   The corresponding C function is `io_uring_queue_init_params`.
    public init(entries: UInt32 = 1024, completionEntries: UInt32? = nil, preferSingleIssuer: Bool = true) throws(Errno) {
        try self.init(
            entries: entries, completionEntries: completionEntries,
            candidates: Self.setupCandidates(preferSingleIssuer: preferSingleIssuer, sizedCompletionQueue: completionEntries != nil)
        )
    }

    /// The setup flag sets `init` tries, in order.
    ///
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (6.1+): completion work runs only when the owner waits.
    /// Without DEFER_TASKRUN (6.0) `SINGLE_ISSUER` still pairs with `COOP_TASKRUN`, which keeps
    /// the kernel from interrupting the worker with task-work IPIs (the worker enters the kernel
    /// every loop anyway). `SUBMIT_ALL` (5.18+) keeps a batch going past one failing SQE, whose
    /// error then arrives as its own completion.
    static func setupCandidates(preferSingleIssuer: Bool, sizedCompletionQueue: Bool) -> [UInt32] {
        let base = sizedCompletionQueue ? CURing_SETUP_CQSIZE : 0
        var candidates: [UInt32] = []
        if preferSingleIssuer {
            candidates.append(base | CURing_SETUP_SINGLE_ISSUER | CURing_SETUP_DEFER_TASKRUN | CURing_SETUP_SUBMIT_ALL)
            candidates.append(base | CURing_SETUP_SINGLE_ISSUER | CURing_SETUP_COOP_TASKRUN | CURing_SETUP_SUBMIT_ALL)
        }
        candidates.append(base | CURing_SETUP_COOP_TASKRUN | CURing_SETUP_SUBMIT_ALL)
        candidates.append(base)
        return candidates
    }

    /// Tries `candidates` in order (tests pass sets the kernel must reject to exercise the fallback).
    init(entries: UInt32, completionEntries: UInt32?, candidates: [UInt32]) throws(Errno) {
        ring = .allocate(capacity: 1)
        cqeBatch = .allocate(capacity: Self.cqeBatchSize)
        var lastError = Errno.invalidArgument
        for flags in candidates {
            var params = io_uring_params()
            params.flags = flags
            if flags & CURing_SETUP_CQSIZE != 0 { params.cq_entries = max(completionEntries ?? 0, entries * 2) }
            let r = io_uring_queue_init_params(entries, ring, &params)
            if r == 0 {
                setupFlags = flags
                features = params.features
                #if DEBUG
                owner = pthread_self()
                #endif
                return
            }
            lastError = Errno(rawValue: -r)
            // EINVAL: a flag this kernel does not know; try the next set. Anything else is final.
            if lastError != .invalidArgument { break }
        }
        ring.deallocate()
        cqeBatch.deallocate()
        throw lastError
    }

    deinit {
        io_uring_queue_exit(ring)
        ring.deallocate()
        cqeBatch.deallocate()
    }

    /// The ring's own file descriptor (for `msg_ring` targets and diagnostics).
    public var fileDescriptor: Int32 { ring.pointee.ring_fd }
    /// Completion work runs only when the owner waits (`IORING_SETUP_DEFER_TASKRUN`, 6.1+).
    public var usesDeferredTaskRun: Bool { setupFlags & CURing_SETUP_DEFER_TASKRUN != 0 }
    /// Only the creating thread may submit (`IORING_SETUP_SINGLE_ISSUER`, 6.0+).
    public var usesSingleIssuer: Bool { setupFlags & CURing_SETUP_SINGLE_ISSUER != 0 }

    // MARK: Submission

    /// A fresh SQE, submitting pending ones first if the queue is full.
    /// - Throws: `Errno` from the submit that was needed to make room, or `EBUSY` when the kernel
    ///   took none of them (the caller backs off until completions have been reaped).
    @inlinable
    public mutating func nextSQE() throws(Errno) -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(ring) { unsubmitted += 1; sqeCount &+= 1; return sqe }
        _ = try submit()
        guard let sqe = io_uring_get_sqe(ring) else { throw Errno(rawValue: EBUSY) }
        unsubmitted += 1
        sqeCount &+= 1
        return sqe
    }

    /// Submits every filled SQE; returns how many the kernel consumed.
    ///
    /// `EINTR` is retried. `EBUSY` and `EAGAIN` (the kernel cannot take more right now: reap
    /// completions first, or it could not allocate a request) return 0 without throwing: liburing
    /// has already published the SQEs in the SQ ring and counts what to submit from the kernel's
    /// head, so the next submit or wait hands the same SQEs over again, none lost and none doubled.
    /// The corresponding C function is `io_uring_submit`.
    @inlinable @discardableResult
    public mutating func submit() throws(Errno) -> Int {
        unsubmitted = 0
        while true {
            let r = io_uring_submit(ring)
            if r >= 0 { return Int(r) }
            let e = Errno(rawValue: -r)
            // EINTR: a signal; EBUSY/EAGAIN: the CQ is full and must be drained first (the
            // caller's loop does that), so what was queued stays queued.
            if e == .interrupted { continue }
            if e.rawValue == EBUSY || e == .wouldBlock { return 0 }
            throw e
        }
    }

    /// Submits and waits until at least `minimum` completions are ready, or `timeoutNanos` passes
    /// (nil: no timeout). With DEFER_TASKRUN this is where completion work runs.
    /// The corresponding C functions are `io_uring_submit_and_wait(_timeout)`.
    public mutating func submitAndWait(minimum: Int = 1, timeoutNanos: Int64? = nil) throws(Errno) {
        let handle = ring
        try waiting {
            if let t = timeoutNanos {
                var ts = __kernel_timespec(tv_sec: t / 1_000_000_000, tv_nsec: t % 1_000_000_000)
                var cqe: UnsafeMutablePointer<io_uring_cqe>?
                return io_uring_submit_and_wait_timeout(handle, &cqe, UInt32(minimum), &ts, nil)
            }
            return io_uring_submit_and_wait(handle, UInt32(minimum))
        }
    }

    /// Runs a submit-and-wait call until it is not interrupted: `EINTR` is retried; a timeout,
    /// `EBUSY` or `EAGAIN` (CQ full: the caller reaps first) return; anything else is thrown.
    @inline(__always)
    mutating func waiting(_ call: () -> Int32) throws(Errno) {
        #if DEBUG
        precondition(pthread_equal(owner, pthread_self()) != 0, "a Ring was waited on from a thread other than the one that created it")
        #endif
        unsubmitted = 0
        while true {
            let r = call()
            if r >= 0 { return }
            let e = Errno(rawValue: -r)
            switch e {
            case .interrupted: continue
            case .timedOut, Errno(rawValue: EBUSY), .wouldBlock: return
            default: throw e
            }
        }
    }

    /// The kernel bounds how long a wait holds out for more than one completion
    /// (`IORING_FEAT_MIN_TIMEOUT`, 6.12+): `submitAndWait(minimum:minWaitMicros:)` batches.
    public var supportsMinWait: Bool { features & CURing_FEAT_MIN_TIMEOUT != 0 }

    /// Whether this kernel's rings support the bounded batch wait (creates and drops a small ring).
    public static func kernelSupportsMinWait() -> Bool {
        do {
            let probe = try Ring(entries: 4)
            return probe.supportsMinWait
        } catch {
            return false
        }
    }

    /// Submits and waits for `minimum` completions for at most `minWaitMicros`; after that one
    /// completion ends the wait (and with none by then, the first one to come, or `timeoutNanos`,
    /// whichever is first). A loaded worker thus handles several completions per wake-up while
    /// an idle one sleeps until its next event. Needs `supportsMinWait`; without it, or with
    /// `minimum` 1 or no minimum wait, this is `submitAndWait(minimum: 1, timeoutNanos:)`.
    /// The corresponding C function is `io_uring_submit_and_wait_min_timeout` (liburing 2.8).
    public mutating func submitAndWait(minimum: Int, minWaitMicros: UInt32, timeoutNanos: Int64 = 1_000_000_000) throws(Errno) {
        guard supportsMinWait, minimum > 1, minWaitMicros > 0 else { return try submitAndWait(minimum: 1, timeoutNanos: timeoutNanos) }
        // The kernel needs an overall timeout longer than the minimum wait, or it ends the wait
        // empty once the minimum wait is over.
        let timeout = max(timeoutNanos, Int64(minWaitMicros) * 1_000 + 1_000_000)
        let handle = ring
        try waiting { CURing_submit_and_wait_min(handle, UInt32(minimum), minWaitMicros, timeout) }
    }

    // MARK: Completion

    /// Calls `body` for every completion ready now, in order, without waiting; returns the count.
    /// CQEs are released in batches after `body` returns for each.
    @inlinable @discardableResult
    public mutating func drainCompletions(_ body: (Completion) -> Void) -> Int {
        var total = 0
        while true {
            let n = Int(CURing_peek_batch(ring, cqeBatch, UInt32(Self.cqeBatchSize)))
            if n == 0 { return total }
            for i in 0..<n {
                let cqe = cqeBatch[i]!.pointee
                body(Completion(userData: UserData(rawValue: cqe.user_data), result: cqe.res, flags: cqe.flags))
            }
            io_uring_cq_advance(ring, UInt32(n))
            total += n
        }
    }

    /// Copies up to `buffer.count` ready completions into `buffer` and releases their CQEs, so the
    /// caller can dispatch them while submitting new work on this ring. Returns the count.
    @inlinable
    public mutating func reapCompletions(into buffer: UnsafeMutableBufferPointer<Completion>) -> Int {
        let n = Int(CURing_peek_batch(ring, cqeBatch, UInt32(min(buffer.count, Self.cqeBatchSize))))
        for i in 0..<n {
            let cqe = cqeBatch[i]!.pointee
            buffer[i] = Completion(userData: UserData(rawValue: cqe.user_data), result: cqe.res, flags: cqe.flags)
        }
        if n > 0 { io_uring_cq_advance(ring, UInt32(n)) }
        return n
    }

    /// Number of completions ready to be drained.
    public var readyCompletions: Int { Int(io_uring_cq_ready(ring)) }

    // MARK: Operations. Each fills one SQE; `flags` are IOSQE_* (see `SQEFlags`).

    @inlinable
    mutating func prepared(_ userData: UserData, flags: SQEFlags, _ fill: (UnsafeMutablePointer<io_uring_sqe>) -> Void) throws(Errno) {
        let sqe = try nextSQE()
        fill(sqe)
        sqe.pointee.flags |= flags.rawValue
        io_uring_sqe_set_data64(sqe, userData.rawValue)
    }

    /// Multishot accept: one completion per accepted connection (result = new fd, `SOCK_NONBLOCK |
    /// SOCK_CLOEXEC`), until the kernel ends it (a completion without `hasMore`), then re-arm.
    /// `peerAddresses` is not used: peer addresses are read with `getpeername` when needed.
    public mutating func multishotAccept(fd: Int32, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_multishot_accept($0, fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)) }
    }

    /// Multishot receive into buffers picked from provided-buffer group `group`.
    public mutating func multishotRecv(fd: Int32, group: UInt16, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags.union(.bufferSelect)) {
            io_uring_prep_recv_multishot($0, fd, nil, 0, 0)
            $0.pointee.buf_group = group
        }
    }

    /// Multishot recvmsg (UDP) into provided buffers; each buffer starts with an
    /// `io_uring_recvmsg_out` header laid out per `msghdr` (name length, control length); parse
    /// it with `RecvMsgOut`. `messageFlags` are recvmsg's (`MSG_TRUNC`: report a truncated
    /// datagram's full length instead of the bytes kept).
    public mutating func multishotRecvMsg(fd: Int32, msghdr: UnsafeMutablePointer<msghdr>, group: UInt16, messageFlags: Int32 = 0, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags.union(.bufferSelect)) {
            io_uring_prep_recvmsg_multishot($0, fd, msghdr, UInt32(bitPattern: messageFlags))
            $0.pointee.buf_group = group
        }
    }

    /// Single-shot receive into caller memory (kept alive until the completion).
    public mutating func recv(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_recv($0, fd, buffer.baseAddress, buffer.count, 0) }
    }

    /// Send from caller memory (kept alive until the completion). `MSG_NOSIGNAL` always.
    public mutating func send(fd: Int32, from buffer: UnsafeRawBufferPointer, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_send($0, fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    /// sendmsg from a caller-owned `msghdr` (kept alive until the completion).
    public mutating func sendMsg(fd: Int32, msghdr: UnsafePointer<msghdr>, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_sendmsg($0, fd, msghdr, UInt32(MSG_NOSIGNAL)) }
    }

    /// splice(2) of up to `length` bytes between a socket and a pipe (offsets: none).
    public mutating func splice(from input: Int32, to output: Int32, length: UInt32, spliceFlags: UInt32 = CURing_SPLICE_F_NONBLOCK | CURing_SPLICE_F_MOVE, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_splice($0, input, -1, output, -1, length, spliceFlags) }
    }

    /// One-shot poll for `events` (POLLIN, POLLOUT, …); result is the ready mask.
    public mutating func pollAdd(fd: Int32, events: Int16, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_poll_add($0, fd, UInt32(UInt16(bitPattern: events))) }
    }

    /// A timeout after `nanoseconds`, or after `count` other completions if `count > 0`.
    /// `timespec` must stay valid until the completion (the kernel copies it at submission in
    /// current kernels, but the contract is the conservative one).
    public mutating func timeout(_ timespec: UnsafeMutablePointer<__kernel_timespec>, count: UInt32 = 0, multishot: Bool = false, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_timeout($0, timespec, count, multishot ? CURing_TIMEOUT_MULTISHOT : 0) }
    }

    /// A timeout linked to the previous SQE (which must carry `.link`): cancels it if it has not
    /// completed in time.
    public mutating func linkTimeout(_ timespec: UnsafeMutablePointer<__kernel_timespec>, userData: UserData = .ignored) throws(Errno) {
        try prepared(userData, flags: []) { io_uring_prep_link_timeout($0, timespec, 0) }
    }

    /// Asks the kernel to cancel the operation tagged `target`. Its own completion (usually
    /// `-ECANCELED`) still arrives and is where resources are released.
    public mutating func cancel(_ target: UserData, all: Bool = false, userData: UserData = .ignored) throws(Errno) {
        try prepared(userData, flags: []) { io_uring_prep_cancel64($0, target.rawValue, all ? Int32(CURing_ASYNC_CANCEL_ALL) : 0) }
    }

    /// Cancels every operation on `fd`.
    public mutating func cancel(fd: Int32, userData: UserData = .ignored) throws(Errno) {
        try prepared(userData, flags: []) { io_uring_prep_cancel_fd($0, fd, CURing_ASYNC_CANCEL_ALL) }
    }

    /// close(2) through the ring.
    public mutating func close(fd: Int32, userData: UserData = .ignored) throws(Errno) {
        try prepared(userData, flags: []) { io_uring_prep_close($0, fd) }
    }

    /// shutdown(2) through the ring (`how`: SHUT_WR to propagate a half-close).
    public mutating func shutdown(fd: Int32, how: Int32, userData: UserData = .ignored, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_shutdown($0, fd, how) }
    }

    /// Reads an 8-byte counter (eventfd) into caller memory.
    public mutating func read(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_read($0, fd, buffer.baseAddress, UInt32(buffer.count), 0) }
    }

    /// Posts a completion carrying `data`/`result` on another ring (cross-ring wake-up).
    public mutating func messageRing(targetRingFD: Int32, result: Int32, data: UserData, userData: UserData = .ignored) throws(Errno) {
        try prepared(userData, flags: .skipSuccess) { io_uring_prep_msg_ring($0, targetRingFD, UInt32(bitPattern: result), data.rawValue, 0) }
    }

    /// A no-op whose completion carries `userData` (tests, wake-ups within the ring).
    public mutating func nop(userData: UserData, flags: SQEFlags = []) throws(Errno) {
        try prepared(userData, flags: flags) { io_uring_prep_nop($0) }
    }

    /// Caps the kernel's io-wq threads that run this ring's blocking work (splice, and anything
    /// else the kernel punts): `bounded` for regular-file work, `unbounded` for sockets and pipes.
    /// 0 leaves a value unchanged, so `limitIOWorkers(bounded: 0, unbounded: 0)` reads the
    /// current caps. Returns the caps in effect before the call. io-wq is per submitting thread,
    /// so with one ring per worker thread this is a per-worker cap. Linux 5.15+.
    /// The corresponding C function is `io_uring_register_iowq_max_workers`.
    @discardableResult
    public func limitIOWorkers(bounded: UInt32, unbounded: UInt32) throws(Errno) -> (bounded: UInt32, unbounded: UInt32) {
        var values: (UInt32, UInt32) = (bounded, unbounded)
        _ = try withUnsafeMutablePointer(to: &values) { p throws(Errno) in
            try p.withMemoryRebound(to: UInt32.self, capacity: 2) { v throws(Errno) in
                try Errno.check(io_uring_register_iowq_max_workers(ring, v))
            }
        }
        return values
    }

    /// Registers a provided-buffer ring (see `ProvidedBufferRing`).
    /// The corresponding C function is `io_uring_register_buf_ring`.
    func registerBufferRing(_ reg: inout io_uring_buf_reg) throws(Errno) {
        _ = try Errno.check(io_uring_register_buf_ring(ring, &reg, 0))
    }

    func unregisterBufferRing(group: UInt16) {
        _ = io_uring_unregister_buf_ring(ring, Int32(group))
    }
}

/// IOSQE_* flags for one SQE.
public struct SQEFlags: OptionSet, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The next SQE starts only after this one succeeds (a short or failed one cancels it).
    public static let link = SQEFlags(rawValue: CURing_IOSQE_IO_LINK)
    /// The next SQE starts after this one whatever its result (splice chains: a short first
    /// splice must not cancel the second).
    public static let hardLink = SQEFlags(rawValue: CURing_IOSQE_IO_HARDLINK)
    public static let async = SQEFlags(rawValue: CURing_IOSQE_ASYNC)
    public static let bufferSelect = SQEFlags(rawValue: CURing_IOSQE_BUFFER_SELECT)
    /// No completion on success (fire-and-forget sends whose failure still reports).
    public static let skipSuccess = SQEFlags(rawValue: CURing_IOSQE_CQE_SKIP_SUCCESS)
    public static let drain = SQEFlags(rawValue: CURing_IOSQE_IO_DRAIN)
}
