import CURing
import Glibc

/// One datagram as multishot recvmsg leaves it in a provided buffer:
/// ```
/// +-----------------------+-----------------+------------------+-----------------------+
/// | io_uring_recvmsg_out  | name            | control          | payload               |
/// | (16 bytes)            | (msg_namelen)   | (msg_controllen) | (up to buffer's end)  |
/// +-----------------------+-----------------+------------------+-----------------------+
/// ```
/// The name and control areas always take the sizes the submitted `msghdr` asked for, whatever
/// the sender's address length. A view over the buffer, valid while the buffer is not recycled;
/// it copies nothing. The parsing is liburing's (`io_uring_recvmsg_validate`, `_name`,
/// `_payload`, `_payload_length`), reached through this module because only URing imports CURing.
public struct RecvMsgOut {
    @usableFromInline let header: UnsafeMutablePointer<io_uring_recvmsg_out>
    @usableFromInline let msghdr: UnsafeMutablePointer<msghdr>
    @usableFromInline let received: Int32

    /// Views the first `received` bytes of `buffer` (the completion's result) as laid out for
    /// `msghdr` (the one the multishot recvmsg was submitted with). Nil when the bytes are too
    /// few to hold the header, name and control areas, which the kernel never produces for a
    /// successful completion.
    /// The corresponding C function is `io_uring_recvmsg_validate`.
    @inlinable
    public init?(buffer: UnsafeMutableRawBufferPointer, received: Int32, msghdr: UnsafeMutablePointer<msghdr>) {
        guard received >= 0, Int(received) <= buffer.count,
              let header = io_uring_recvmsg_validate(buffer.baseAddress, received, msghdr) else { return nil }
        self.header = header
        self.msghdr = msghdr
        self.received = received
    }

    /// The sender's address as the kernel wrote it, cut to the name area's size.
    /// The corresponding C function is `io_uring_recvmsg_name`.
    @inlinable
    public var name: UnsafeRawBufferPointer {
        let length = min(Int(header.pointee.namelen), Int(msghdr.pointee.msg_namelen))
        return UnsafeRawBufferPointer(start: io_uring_recvmsg_name(header), count: length)
    }

    /// The sender's address, when it fitted the name area and is IPv4 or IPv6.
    @inlinable
    public var source: SocketEndpoint? {
        let raw = name
        guard Int(header.pointee.namelen) <= Int(msghdr.pointee.msg_namelen),
              raw.count >= MemoryLayout<sa_family_t>.size,
              raw.count <= MemoryLayout<sockaddr_storage>.size else { return nil }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) }
        let family = Int32(storage.ss_family)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        return SocketEndpoint(storage: storage, length: socklen_t(raw.count))
    }

    /// The datagram's bytes held in the buffer (all of it unless `isTruncated`).
    /// The corresponding C functions are `io_uring_recvmsg_payload` and `_payload_length`.
    @inlinable
    public var payload: UnsafeMutableRawBufferPointer {
        let start = io_uring_recvmsg_payload(header, msghdr)
        let length = io_uring_recvmsg_payload_length(header, received, msghdr)
        return UnsafeMutableRawBufferPointer(start: start, count: Int(length))
    }

    /// The payload length the kernel reported: the datagram's full length when the recvmsg was
    /// submitted with `MSG_TRUNC`, otherwise the bytes kept (`payload.count`).
    @inlinable public var datagramLength: Int { Int(header.pointee.payloadlen) }
    /// The datagram did not fit the buffer (`MSG_TRUNC`); the rest of it is lost.
    @inlinable public var isTruncated: Bool { header.pointee.flags & UInt32(MSG_TRUNC) != 0 }
    /// `recvmsg` flags of this datagram (`MSG_TRUNC`, `MSG_CTRUNC`, …).
    @inlinable public var flags: UInt32 { header.pointee.flags }
}
