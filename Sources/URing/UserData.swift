/// The 64-bit tag every SQE carries and its CQE returns: a packed integer, never a pointer
/// (STYLE.md habit 4), so a completion can never dereference freed memory.
///
/// Layout (bit 0 is least significant):
/// ```
///  63        56 55                    24 23            8 7        0
/// +------------+------------------------+---------------+----------+
/// |  aux (8)   |      slot (32)         | generation(16)|  op (8)  |
/// +------------+------------------------+---------------+----------+
/// ```
/// `op` says which kind of operation completed (0 is reserved for "no dispatch"); `slot` indexes
/// the owner's table (a connection, a socket, a pump direction); `generation` is the slot's reuse
/// counter at submission time, so a completion that arrives after the slot was freed and reused
/// is recognised as stale; `aux` is free for the owner (a direction, a sub-operation).
public struct UserData: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    @inlinable
    public init(op: UInt8, slot: UInt32 = 0, generation: UInt16 = 0, aux: UInt8 = 0) {
        rawValue = UInt64(op) | UInt64(generation) << 8 | UInt64(slot) << 24 | UInt64(aux) << 56
    }

    @inlinable public var op: UInt8 { UInt8(truncatingIfNeeded: rawValue) }
    @inlinable public var generation: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 8) }
    @inlinable public var slot: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 24) }
    @inlinable public var aux: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 56) }

    /// Completions tagged with this are consumed without dispatch (e.g. the result of a cancel
    /// request whose target's own completion is what matters).
    public static let ignored = UserData(rawValue: 0)

    public var description: String { "op=\(op) slot=\(slot) gen=\(generation) aux=\(aux)" }
}

/// A completion: the kernel's answer to one SQE (or one of many, for multishot operations).
public struct Completion: Sendable {
    public var userData: UserData
    /// `>= 0` success (bytes, fd, …); `< 0` is `-errno`.
    public var result: Int32
    public var flags: UInt32

    @inlinable public init(userData: UserData, result: Int32, flags: UInt32) {
        self.userData = userData; self.result = result; self.flags = flags
    }

    /// The error, if the operation failed.
    @inlinable public var error: Errno? { result < 0 ? Errno(rawValue: -result) : nil }
    /// More completions will follow for this SQE (multishot). Without it, this is the final one:
    /// only then may what the SQE points at be released (STYLE.md habit 3).
    @inlinable public var hasMore: Bool { flags & 2 != 0 } // IORING_CQE_F_MORE
    /// The provided buffer the kernel picked, for buffer-select operations.
    @inlinable public var bufferID: UInt16? { flags & 1 != 0 ? UInt16(truncatingIfNeeded: flags >> 16) : nil } // F_BUFFER, BUFFER_SHIFT
    /// The socket had more data after this receive.
    @inlinable public var socketNonEmpty: Bool { flags & 4 != 0 } // IORING_CQE_F_SOCK_NONEMPTY
}
