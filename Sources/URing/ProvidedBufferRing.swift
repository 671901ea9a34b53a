import CURing
import Glibc

/// A provided-buffer ring (`io_uring_register_buf_ring`): a group of equal buffers the kernel
/// picks from for multishot receives, so no buffer is tied up by an idle connection.
///
/// Protocol: a completion with `bufferID` hands that buffer to the owner; the owner gives it back
/// with `recycle(_:)` once done with the bytes (for an echo or relay: after the send that used
/// them completed). When every buffer is out, multishot receives end with `-ENOBUFS`; recycle,
/// then re-arm them. Memory is allocated once (anonymous mmap, page aligned) and never grows.
///
/// Owned by one worker thread. Call `unregister(from:)` on that thread before releasing it.
public final class ProvidedBufferRing {
    public let group: UInt16
    public let count: Int
    public let bufferSize: Int
    let ringMemory: UnsafeMutableRawPointer
    let ringBytes: Int
    let buffers: UnsafeMutableRawPointer
    let entries: UnsafeMutablePointer<io_uring_buf_ring>
    let mask: Int32
    /// Buffers currently handed out by the kernel (for tests and metrics).
    public private(set) var outstanding = 0
    private var registered = false

    /// - Parameters:
    ///   - count: number of buffers, a power of two up to 32 768.
    ///   - bufferSize: bytes per buffer.
    /// - Throws: `Errno` from mmap or registration (ENOMEM, EINVAL on kernels before 5.19).
    ///   The corresponding C function is `io_uring_register_buf_ring`.
    public init(ring: inout Ring, group: UInt16, count: Int, bufferSize: Int) throws(Errno) {
        precondition(count > 0 && count <= 32_768 && count & (count - 1) == 0, "count must be a power of two ≤ 32768")
        self.group = group
        self.count = count
        self.bufferSize = bufferSize
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        ringBytes = (count * MemoryLayout<io_uring_buf>.stride + page - 1) / page * page
        let total = ringBytes + count * bufferSize
        let mem = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mem, mem != MAP_FAILED else { throw Errno.current }
        ringMemory = mem
        buffers = mem + ringBytes
        entries = mem.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        mask = io_uring_buf_ring_mask(UInt32(count))
        io_uring_buf_ring_init(entries)
        var reg = io_uring_buf_reg()
        reg.ring_addr = UInt64(UInt(bitPattern: mem))
        reg.ring_entries = UInt32(count)
        reg.bgid = group
        do {
            try ring.registerBufferRing(&reg)
        } catch {
            munmap(mem, total)
            throw error
        }
        registered = true
        for id in 0..<count { add(UInt16(id), offset: id) }
        io_uring_buf_ring_advance(entries, Int32(count))
    }

    deinit {
        precondition(!registered, "ProvidedBufferRing released while still registered")
        munmap(ringMemory, ringBytes + count * bufferSize)
    }

    /// The memory of buffer `id` (valid while the ring exists).
    @inlinable
    public func buffer(_ id: UInt16) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: bufferBase + Int(id) * bufferSize, count: bufferSize)
    }
    @usableFromInline var bufferBase: UnsafeMutableRawPointer { buffers }

    /// Called for each completion that carried a buffer (bookkeeping only).
    @inlinable public func taken(_ id: UInt16) { noteTaken() }
    @usableFromInline func noteTaken() { outstanding += 1 }

    /// Gives buffer `id` back to the kernel.
    public func recycle(_ id: UInt16) {
        assert(Int(id) < count && outstanding > 0, "recycled a buffer that was not handed out")
        add(id, offset: 0)
        io_uring_buf_ring_advance(entries, 1)
        outstanding -= 1
    }

    private func add(_ id: UInt16, offset: Int) {
        io_uring_buf_ring_add(entries, buffers + Int(id) * bufferSize, UInt32(bufferSize), id, mask, Int32(offset))
    }

    /// Unregisters the group; afterwards the memory may be released.
    public func unregister(from ring: inout Ring) {
        guard registered else { return }
        ring.unregisterBufferRing(group: group)
        registered = false
    }
}
