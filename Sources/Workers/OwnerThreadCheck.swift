import Glibc

/// Debug builds: traps when a single-owner object (a worker's pool) is used from a thread other
/// than the first one that used it (STYLE.md habit 5). Release builds: nothing.
struct OwnerThreadCheck {
    #if DEBUG
    private var owner: pthread_t?
    #endif

    @inline(__always)
    mutating func check(_ what: StaticString) {
        #if DEBUG
        let me = pthread_self()
        if let owner {
            precondition(pthread_equal(owner, me) != 0, "\(what) used from a thread other than its owner")
        } else {
            owner = me
        }
        #endif
    }
}
