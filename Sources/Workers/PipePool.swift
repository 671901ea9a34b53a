import Glibc
import URing

/// A pipe lent by a `PipePool` to one pump direction for as long as bytes sit in it.
///
/// The pipe knows its fill level: `bytesIn` counts what was spliced into it since it was lent,
/// `bytesOut` what was spliced out; `fill` is the difference. A pipe goes back to its pool only
/// when `fill` is 0; a pipe holding bytes is closed instead, so stale bytes of one session can
/// never reach another.
public struct Pipe: Sendable {
    /// The end splices read from (pipe → socket).
    public let readFD: Int32
    /// The end splices write to (socket → pipe).
    public let writeFD: Int32
    /// Bytes the pipe holds at most (`F_GETPIPE_SZ`); a splice into an empty pipe never gets more.
    public let capacity: Int
    /// The pool's table index, which catches a double release.
    let slot: Int
    public internal(set) var bytesIn: UInt64 = 0
    public internal(set) var bytesOut: UInt64 = 0

    /// Bytes in the pipe now, by the counts booked so far. Signed: should a chain ever be split
    /// (see `Pump.step`), the splice out may complete, and be booked, before the splice in.
    @inlinable public var fill: Int { Int(Int64(bitPattern: bytesIn &- bytesOut)) }
    @inlinable public var isEmpty: Bool { bytesIn == bytesOut }

    /// Records a splice into the pipe that moved `count` bytes.
    mutating func filled(_ count: Int) { bytesIn &+= UInt64(count) }
    /// Records a splice out of the pipe that moved `count` bytes.
    mutating func drained(_ count: Int) { bytesOut &+= UInt64(count) }
}

/// A worker's pipes for splicing (STYLE.md habit 5: one owner thread, no locks).
///
/// Pipes are created on demand up to `maximumPipes` (which bounds pipe memory: at most
/// `maximumPipes × pipeSize` bytes of kernel buffers, and `2 × maximumPipes` descriptors) and
/// reused LIFO, so a busy worker keeps touching the same few pipes. `acquire()` returns nil when
/// every pipe is lent (or a new one cannot be created): the caller then copies through user
/// space instead. A pump direction holds a pipe only while bytes are on their way: idle
/// connections hold none.
///
/// Creating a pool sets SIGPIPE to ignored for the process. The kernel's splice into a socket
/// does not pass `MSG_NOSIGNAL`: a splice(2) to a peer that reset raises SIGPIPE, which kills the
/// process by default. io_uring (6.18 measured) runs splices on io-wq threads, which block
/// signals, so the error arrives as -EPIPE; the ignore keeps that true should a splice ever run
/// on the worker's own thread.
public final class PipePool {
    public struct Configuration: Sendable {
        /// Requested capacity of each pipe (`F_SETPIPE_SZ`). 1 MiB (the default `fs.pipe-max-size`)
        /// measured best for loopback and LAN relaying: larger splices, fewer io-wq round trips.
        /// When the kernel refuses (EPERM over `fs.pipe-user-pages-soft` for an unprivileged user)
        /// the pipe keeps the size it got and `undersizedPipes` counts it.
        public var pipeSize = 1 << 20
        /// Most pipes open at once (idle plus lent). 0: no pipe is ever lent, every chunk is
        /// copied (tests of the copy fallback).
        public var maximumPipes = 64
        /// Pipes created up front by `init`, so the first transfers make no pipe syscalls.
        public var preallocated = 0
        public init() {}
    }

    private struct IdlePipe {
        var readFD: Int32
        var writeFD: Int32
        var capacity: Int
        var slot: Int
    }

    public let configuration: Configuration
    private var idle: [IdlePipe] = []
    private var lent: [Bool]
    private var freeSlots: [Int]
    private var ownerCheck = OwnerThreadCheck()

    /// Pipes currently lent to pump directions.
    public private(set) var inUse = 0
    /// Times `acquire()` returned nil.
    public private(set) var refusals = 0
    /// Pipes closed on release because they still held bytes.
    public private(set) var discarded = 0
    /// Pipes whose capacity the kernel would not raise to `pipeSize`.
    public private(set) var undersizedPipes = 0

    /// Pipes open now, idle or lent.
    public var open: Int { idle.count + inUse }
    /// Pipes open and waiting in the pool.
    public var idleCount: Int { idle.count }
    /// Pipes that could still be lent (idle ones plus ones not yet created).
    public var available: Int { configuration.maximumPipes - inUse }

    /// - Throws: `Errno` only from creating `configuration.preallocated` pipes (EMFILE, ENFILE).
    public init(configuration: Configuration = .init()) throws(Errno) {
        precondition(configuration.maximumPipes >= 0 && configuration.pipeSize > 0)
        precondition(configuration.preallocated <= configuration.maximumPipes)
        self.configuration = configuration
        lent = Array(repeating: false, count: configuration.maximumPipes)
        freeSlots = (0..<configuration.maximumPipes).reversed()
        signal(SIGPIPE, SIG_IGN)
        idle.reserveCapacity(configuration.maximumPipes)
        for _ in 0..<configuration.preallocated {
            idle.append(try makePipe())
        }
    }

    deinit {
        // Lent pipes belong to their pumps, which release them before they are dropped.
        for p in idle { closePipe(p.readFD, p.writeFD, slot: p.slot) }
    }

    /// An empty pipe, or nil when `maximumPipes` are lent or a new pipe cannot be created.
    public func acquire() -> Pipe? {
        checkOwner()
        if let p = idle.popLast() {
            return lend(p)
        }
        guard !freeSlots.isEmpty else {
            refusals += 1
            return nil
        }
        do {
            return lend(try makePipe())
        } catch {
            // EMFILE / ENFILE / ENOMEM: the process or system is out of descriptors or memory;
            // copying through user space still works.
            refusals += 1
            return nil
        }
    }

    /// Takes `pipe` back: into the pool if it is empty, otherwise closed.
    ///
    /// "Empty" is checked twice: by the caller's accounting (`fill`) and by asking the kernel
    /// (`FIONREAD`). A mismatch is a pump bug (it traps in debug builds); in release builds the
    /// pipe is closed rather than risk handing one session's bytes to another.
    public func release(_ pipe: Pipe) {
        checkOwner()
        precondition(pipe.slot < lent.count && lent[pipe.slot], "pipe released twice or to the wrong pool")
        lent[pipe.slot] = false
        inUse -= 1
        var empty = pipe.isEmpty
        if empty {
            // Expected: none (our own descriptor); an error makes the pipe unusable anyway.
            let queued = (try? Pipes.bytesQueued(pipe.readFD)) ?? -1
            assert(queued == 0, "pipe accounting says empty, the kernel says \(queued) bytes")
            empty = queued == 0
        }
        if empty {
            idle.append(IdlePipe(readFD: pipe.readFD, writeFD: pipe.writeFD, capacity: pipe.capacity, slot: pipe.slot))
        } else {
            discarded += 1
            closePipe(pipe.readFD, pipe.writeFD, slot: pipe.slot)
        }
    }

    /// Closes the idle pipes (lent ones stay with their pumps). For shutdown and tests.
    public func closeIdle() {
        checkOwner()
        for p in idle { closePipe(p.readFD, p.writeFD, slot: p.slot) }
        idle.removeAll(keepingCapacity: true)
    }

    private func lend(_ p: IdlePipe) -> Pipe {
        lent[p.slot] = true
        inUse += 1
        return Pipe(readFD: p.readFD, writeFD: p.writeFD, capacity: p.capacity, slot: p.slot)
    }

    private func makePipe() throws(Errno) -> IdlePipe {
        precondition(!freeSlots.isEmpty)
        let (r, w) = try Pipes.makeNonBlocking()
        let capacity: Int
        do {
            capacity = try Pipes.setCapacity(w, configuration.pipeSize)
        } catch {
            // EPERM: over fs.pipe-max-size or the per-user soft limit. Keep the default size.
            undersizedPipes += 1
            capacity = (try? Pipes.capacity(w)) ?? 4096
        }
        return IdlePipe(readFD: r, writeFD: w, capacity: capacity, slot: freeSlots.removeLast())
    }

    private func closePipe(_ r: Int32, _ w: Int32, slot: Int) {
        Socket.close(r)
        Socket.close(w)
        freeSlots.append(slot)
    }

    @inline(__always)
    private func checkOwner() { ownerCheck.check("PipePool") }
}
