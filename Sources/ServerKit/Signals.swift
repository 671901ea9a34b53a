import Glibc

/// Process signals for the control plane: block them in every thread (call `blockStopSignals()`
/// before starting workers, so they inherit the mask) and wait for one on the main thread.
public enum Signals {
    static func set(_ signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        return set
    }

    public static let stop: [Int32] = [SIGTERM, SIGINT, SIGQUIT]

    /// Blocks the stop signals and SIGHUP in the calling thread (and threads it creates later),
    /// and ignores SIGPIPE (sends use MSG_NOSIGNAL; this covers everything else).
    public static func blockControlSignals() {
        var s = set(stop + [SIGHUP])
        pthread_sigmask(SIG_BLOCK, &s, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Waits up to `milliseconds` for a stop signal or SIGHUP; nil when none arrived.
    public static func wait(milliseconds: Int) -> Int32? {
        var s = set(stop + [SIGHUP])
        var timeout = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        while true {
            let r = sigtimedwait(&s, nil, &timeout)
            if r > 0 { return r }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Waits for a stop signal or SIGHUP; returns its number.
    public static func wait() -> Int32 {
        var s = set(stop + [SIGHUP])
        var received: Int32 = 0
        while sigwait(&s, &received) != 0 {}
        return received
    }
}
