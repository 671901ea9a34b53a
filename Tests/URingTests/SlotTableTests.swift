import Testing
@testable import URing

/// `#require` cannot take a mutating call: insert outside the macro.
private func inserted<E>(_ table: inout SlotTable<E>, _ element: E) -> SlotTable<E>.Handle? { table.insert(element) }

@Suite(.timeLimit(.minutes(1)))
struct SlotTableTests {
    typealias Handle = SlotTable<String>.Handle

    @Test func aFreedSlotIsReusedWithTheNextGeneration() throws {
        var table = SlotTable<String>(capacity: 4)
        let a = try #require(inserted(&table, "a"))
        #expect(table[a] == "a")
        let removed = table.remove(a)
        #expect(removed == "a")
        let b = try #require(inserted(&table, "b"))
        #expect(b.index == a.index, "LIFO reuse")
        #expect(b.generation == a.generation &+ 1)
        #expect(table[b] == "b")
    }

    @Test func aStaleHandleFindsNothingAndChangesNothing() throws {
        var table = SlotTable<String>(capacity: 1)
        let old = try #require(inserted(&table, "old"))
        // An op was submitted tagged with `old`; the slot is freed and reused before its completion.
        let tag = old.userData(op: 3, aux: 1)
        table.remove(old)
        let new = try #require(inserted(&table, "new"))
        #expect(new.index == old.index)
        let stale = Handle(tag)
        #expect(stale == old)
        #expect(table[stale] == nil)
        let mutated = table.withElement(stale) { $0 = "clobbered"; return 1 }
        #expect(mutated == nil)
        table[stale] = "clobbered"
        let removedStale = table.remove(stale)
        #expect(removedStale == nil)
        #expect(table[new] == "new")
        #expect(table.count == 1)
    }

    @Test func aFullTableRefusesAndAFreedSlotMakesRoom() throws {
        var table = SlotTable<Int>(capacity: 3)
        let handles = (0..<3).map { table.insert($0)! }
        let refused = table.insert(99)
        #expect(refused == nil)
        #expect(table.count == 3)
        #expect(Set(table.handles) == Set(handles))
        table.remove(handles[1])
        #expect(table.handles.count == 2)
        let again = try #require(inserted(&table, 7))
        #expect(again.index == handles[1].index)
        #expect(table[handles[1]] == nil)
    }

    @Test func withElementMutatesInPlace() throws {
        var table = SlotTable<[Int]>(capacity: 2)
        let h = try #require(inserted(&table, [1]))
        let count = table.withElement(h) { $0.append(2); return $0.count }
        #expect(count == 2)
        #expect(table[h] == [1, 2])
        table[h] = [3]
        #expect(table[h] == [3])
    }

    @Test func generationsWrapAndStillTellNeighboursApart() throws {
        var table = SlotTable<Int>(capacity: 1)
        var previous = try #require(inserted(&table, 0))
        for i in 1...70_000 {
            table.remove(previous)
            guard let next = table.insert(i), next.generation == previous.generation &+ 1, table[previous] == nil else {
                Issue.record("reuse \(i) after generation \(previous.generation) went wrong")
                break
            }
            previous = next
        }
    }

    @Test func userDataRoundTripsEveryField() {
        let u = UserData(op: 0xEF, slot: 0xDEAD_BEEF, generation: 0xFFFE, aux: 0x81)
        #expect(u.op == 0xEF && u.slot == 0xDEAD_BEEF && u.generation == 0xFFFE && u.aux == 0x81)
        #expect(UserData(rawValue: u.rawValue) == u)
        #expect(UserData.ignored.op == 0)
        let h = SlotTable<Int>.Handle(u)
        #expect(h.userData(op: 0xEF, aux: 0x81) == u)
    }

    @Test func handlesFollowEveryInsertAndRemoveInARandomSequence() {
        var table = SlotTable<Int>(capacity: 64)
        var model: [SlotTable<Int>.Handle: Int] = [:]
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        for step in 0..<20_000 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            if state % 3 != 0, let h = table.insert(step) {
                model[h] = step
            } else if let victim = model.keys.randomElement() {
                #expect(table.remove(victim) == model.removeValue(forKey: victim))
            }
            if step % 97 == 0 {
                #expect(Set(table.handles) == Set(model.keys))
                #expect(table.count == model.count)
            }
        }
        for h in table.handles { table.remove(h) }
        #expect(table.count == 0 && table.handles.isEmpty)
    }
}
