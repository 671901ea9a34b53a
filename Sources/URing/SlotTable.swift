/// A fixed-capacity table of per-connection (or per-operation) records addressed by index and
/// generation, the two halves of a `UserData`'s slot (STYLE.md habit 4).
///
/// Freed slots are reused LIFO; each reuse bumps the generation, so a completion submitted for
/// the previous occupant is recognised as stale (`self[handle]` returns nil). Storage is
/// allocated once; the capacity is the connection limit.
public struct SlotTable<Element> {
    public struct Handle: Hashable, Sendable {
        public var index: UInt32
        public var generation: UInt16
        public init(index: UInt32, generation: UInt16) { self.index = index; self.generation = generation }
        public init(_ userData: UserData) { self.init(index: userData.slot, generation: userData.generation) }
        public func userData(op: UInt8, aux: UInt8 = 0) -> UserData {
            UserData(op: op, slot: index, generation: generation, aux: aux)
        }
    }

    private var elements: [Element?]
    private var generations: [UInt16]
    private var free: [UInt32]
    /// Indices of the occupied slots, unordered, and each occupied index's position in it: the
    /// periodic sweeps (timeouts, rate slices) visit live elements only, not the whole capacity.
    private var live: [UInt32]
    private var livePosition: [UInt32]
    public private(set) var count = 0
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0 && capacity <= Int(UInt32.max))
        self.capacity = capacity
        elements = Array(repeating: nil, count: capacity)
        generations = Array(repeating: 0, count: capacity)
        free = (0..<UInt32(capacity)).reversed()
        live = []
        live.reserveCapacity(capacity)
        livePosition = Array(repeating: 0, count: capacity)
    }

    /// Stores `element` in a free slot; nil when the table is full (the caller refuses and counts).
    public mutating func insert(_ element: Element) -> Handle? {
        guard let index = free.popLast() else { return nil }
        generations[Int(index)] &+= 1
        elements[Int(index)] = element
        livePosition[Int(index)] = UInt32(live.count)
        live.append(index)
        count += 1
        return Handle(index: index, generation: generations[Int(index)])
    }

    /// The element for a live handle; nil for a freed slot or a stale generation.
    public subscript(handle: Handle) -> Element? {
        get {
            guard Int(handle.index) < capacity, generations[Int(handle.index)] == handle.generation else { return nil }
            return elements[Int(handle.index)]
        }
        set {
            guard Int(handle.index) < capacity, generations[Int(handle.index)] == handle.generation,
                  elements[Int(handle.index)] != nil, let newValue else { return }
            elements[Int(handle.index)] = newValue
        }
    }

    /// Mutates a live element in place; returns nil if the handle is stale.
    public mutating func withElement<R>(_ handle: Handle, _ body: (inout Element) -> R) -> R? {
        guard Int(handle.index) < capacity, generations[Int(handle.index)] == handle.generation,
              elements[Int(handle.index)] != nil else { return nil }
        return body(&elements[Int(handle.index)]!)
    }

    /// Frees the slot and returns its element; nil if the handle is stale.
    @discardableResult
    public mutating func remove(_ handle: Handle) -> Element? {
        guard Int(handle.index) < capacity, generations[Int(handle.index)] == handle.generation,
              let element = elements[Int(handle.index)] else { return nil }
        elements[Int(handle.index)] = nil
        free.append(handle.index)
        let position = Int(livePosition[Int(handle.index)])
        let last = live.removeLast()
        if last != handle.index {
            live[position] = last
            livePosition[Int(last)] = UInt32(position)
        }
        count -= 1
        return element
    }

    /// Live handles, in no particular order: a snapshot, so the caller may remove while it walks
    /// them. Costs O(live), not O(capacity).
    public var handles: [Handle] {
        live.map { Handle(index: $0, generation: generations[Int($0)]) }
    }
}
