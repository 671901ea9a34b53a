import Glibc

/// A worker's user-space buffers for `SplicePump`'s copy fallback (STYLE.md habit 5: one owner
/// thread, no locks).
///
/// A splice-pump direction copies a chunk through user space only when its worker's `PipePool`
/// has no pipe to lend. It takes a buffer from here for that chunk (before its recv) and gives it
/// back once every byte of the chunk was sent and the direction goes back to polling (inline:
/// before the peek-send-drop call returns); an idle direction holds no buffer. Buffers are made on first need and kept, LIFO, for the next chunk:
/// in steady state nothing is allocated. At most `maximumCached` idle buffers are kept; a
/// release beyond that frees the buffer, so the memory left behind by a burst of copying is
/// bounded by `maximumCached × bufferSize` per worker. Buffers in use are not bounded: each is
/// held by a direction with bytes on their way, as a pipe would be.
public final class CopyBufferPool {
    public struct Configuration: Sendable {
        /// Bytes per buffer: the largest chunk a copy moves. 64 KiB (measured for BufferedPump:
        /// buffer size matters more than splice versus copy).
        public var bufferSize = 64 << 10
        /// Idle buffers kept for reuse, at most. 32 × 64 KiB = 2 MiB per worker: the copy
        /// fallback is for bursts past the pipe pool (64 pipes), and a direction holds a buffer
        /// only for one chunk's recv and send, so a few dozen cover the directions copying at
        /// any one moment.
        public var maximumCached = 32
        public init() {}
    }

    public let configuration: Configuration
    private var idle: [UnsafeMutableRawBufferPointer] = []
    private var ownerCheck = OwnerThreadCheck()

    /// Buffers lent to pump directions now.
    public private(set) var inUse = 0
    /// Buffers allocated over the pool's life (a steady load stops raising it).
    public private(set) var allocations = 0

    /// Idle buffers kept for reuse.
    public var cached: Int { idle.count }

    public init(configuration: Configuration = .init()) {
        precondition(configuration.bufferSize > 0 && configuration.maximumCached >= 0)
        self.configuration = configuration
        idle.reserveCapacity(configuration.maximumCached)
    }

    deinit {
        // Lent buffers belong to their pumps, which give them back before they are dropped.
        for b in idle { b.deallocate() }
    }

    /// A buffer of `configuration.bufferSize` bytes (contents undefined), the most recently
    /// returned one if any. The caller owns it until `release`.
    public func acquire() -> UnsafeMutableRawBufferPointer {
        checkOwner()
        inUse += 1
        if let b = idle.popLast() { return b }
        allocations += 1
        return .allocate(byteCount: configuration.bufferSize, alignment: 64)
    }

    /// Takes back a buffer from `acquire()`: kept for reuse, or freed when `maximumCached` are
    /// already kept. No operation may still point at it.
    public func release(_ buffer: UnsafeMutableRawBufferPointer) {
        checkOwner()
        precondition(inUse > 0 && buffer.count == configuration.bufferSize, "buffer released twice or to the wrong pool")
        inUse -= 1
        if idle.count < configuration.maximumCached {
            idle.append(buffer)
        } else {
            buffer.deallocate()
        }
    }

    /// Frees the idle buffers (lent ones stay with their pumps). For shutdown and tests.
    public func freeIdle() {
        checkOwner()
        for b in idle { b.deallocate() }
        idle.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func checkOwner() { ownerCheck.check("CopyBufferPool") }
}
