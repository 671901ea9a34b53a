import Glibc
import Synchronization

/// Minimal leveled logging to stdout with `RUST_LOG`-style filters (`error`, `warn`, `info`,
/// `debug`, `trace`; a `target=level` list takes its most verbose level). Never called on the
/// per-datagram or per-byte path; counters serve there.
public enum Log {
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case error = 1, warn, info, debug, trace
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        public var description: String {
            switch self {
            case .error: return "ERROR"
            case .warn: return "WARN"
            case .info: return "INFO"
            case .debug: return "DEBUG"
            case .trace: return "TRACE"
            }
        }
        init?(_ text: some StringProtocol) {
            switch text.lowercased() {
            case "error": self = .error
            case "warn", "warning": self = .warn
            case "info": self = .info
            case "debug": self = .debug
            case "trace": self = .trace
            case "off": return nil
            default: return nil
            }
        }
    }

    static let threshold = Atomic<Int>(Level.info.rawValue)
    static let lock = Mutex(())

    /// Applies a `RUST_LOG` value (default `info`).
    public static func configure(_ filter: String?) {
        guard let filter, !filter.isEmpty else { threshold.store(Level.info.rawValue, ordering: .relaxed); return }
        var level = 0
        for part in filter.split(separator: ",") {
            let value = part.split(separator: "=").last.map(String.init) ?? String(part)
            if let l = Level(value) { level = max(level, l.rawValue) }
            else if value.lowercased() == "off" { level = max(level, 0) }
        }
        threshold.store(level, ordering: .relaxed)
    }

    public static func enabled(_ level: Level) -> Bool { level.rawValue <= threshold.load(ordering: .relaxed) }

    public static func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard enabled(level) else { return }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tm = tm()
        var secs = ts.tv_sec
        gmtime_r(&secs, &tm)
        let stamp = zeroPadded(Int(tm.tm_year) + 1900, 4) + "-" + zeroPadded(Int(tm.tm_mon) + 1, 2) + "-"
            + zeroPadded(Int(tm.tm_mday), 2) + "T" + zeroPadded(Int(tm.tm_hour), 2) + ":"
            + zeroPadded(Int(tm.tm_min), 2) + ":" + zeroPadded(Int(tm.tm_sec), 2) + "."
            + zeroPadded(ts.tv_nsec / 1_000_000, 3) + "Z"
        let line = "\(stamp) \(level) \(message())\n"
        // One write(2) per line: lines from different threads never interleave.
        lock.withLock { _ in
            var bytes = Array(line.utf8)
            _ = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress, $0.count) }
        }
    }

    public static func error(_ m: @autoclosure () -> String) { log(.error, m()) }
    public static func warn(_ m: @autoclosure () -> String) { log(.warn, m()) }
    public static func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public static func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }
}

/// `value` in decimal, left-padded with zeros to `width`.
func zeroPadded(_ value: Int, _ width: Int) -> String {
    let digits = value.description
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// Writes `text` to standard error in one write(2) (startup errors before logging is set up).
public func printError(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}
