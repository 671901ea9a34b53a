import URing

/// What one connection has to send: at most one `send` in flight, whose bytes stay untouched
/// until its completion (STYLE.md habit 3), and the bytes queued behind it. A short send resumes
/// where it stopped. Used by every server worker's connections and by hbbr's message relay.
public struct Outbox {
    /// Bytes of the send in flight (or of the last short one): `inflight[inflightSent...]` is
    /// what remains.
    private var inflight: [UInt8] = []
    private var inflightSent = 0
    private var queued: [UInt8] = []
    /// A send was submitted and its completion has not arrived.
    public private(set) var isSending = false

    public init() {}

    /// Bytes not yet confirmed sent.
    public var pendingCount: Int { inflight.count - inflightSent + queued.count }
    /// Nothing queued and nothing in flight.
    public var isEmpty: Bool { !isSending && pendingCount == 0 }

    public mutating func append(_ bytes: some Sequence<UInt8>) { queued.append(contentsOf: bytes) }

    /// Appends in place (for encoders that write a header and a payload into the queue).
    public mutating func withQueue<R>(_ body: (inout [UInt8]) -> R) -> R { body(&queued) }

    /// Submits a send of what is pending unless one is in flight.
    /// - Returns: whether a send is in flight now (false: nothing to send).
    /// - Throws: the submission's `Errno`; the caller closes the connection.
    @discardableResult
    public mutating func submit(fd: Int32, ring: inout Ring, userData: UserData) throws(Errno) -> Bool {
        if isSending { return true }
        if inflightSent == inflight.count {
            if queued.isEmpty { return false }
            swap(&inflight, &queued)
            queued.removeAll(keepingCapacity: true)
            inflightSent = 0
        }
        let offset = inflightSent
        // The array is not touched until the completion, so its storage stays where the kernel reads.
        let failure: Errno? = inflight.withUnsafeBytes { bytes in
            do throws(Errno) {
                try ring.send(fd: fd, from: UnsafeRawBufferPointer(rebasing: bytes[offset...]), userData: userData)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        isSending = true
        return true
    }

    /// Books the completion of the send in flight.
    /// - Returns: false when it failed (`result < 0`): the connection is broken.
    public mutating func completed(_ result: Int32) -> Bool {
        isSending = false
        guard result >= 0 else { return false }
        inflightSent += Int(result)
        if inflightSent >= inflight.count {
            // Keep a normal-sized buffer for the next send; give a huge one back.
            inflight.removeAll(keepingCapacity: inflight.capacity <= Self.retainedCapacity)
            inflightSent = 0
        }
        return true
    }

    static let retainedCapacity = 1 << 20
}
