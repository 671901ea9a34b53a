import Glibc
import Logging

/// The servers' logging: a thin facade over one swift-log `Logger` whose handler is
/// `RustLogHandler` (upstream's line format, `RUST_LOG` filtering). Messages are autoclosures, so
/// nothing is formatted when the level is off. Never called on the per-datagram or per-byte path;
/// counters serve there.
public enum Log {
    /// The levels RUST_LOG knows, most severe first.
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case error = 1, warn, info, debug, trace
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        /// Upstream's spelling in log lines.
        public var description: String {
            switch self {
            case .error: return "ERROR"
            case .warn: return "WARN"
            case .info: return "INFO"
            case .debug: return "DEBUG"
            case .trace: return "TRACE"
            }
        }
        /// `error`, `warn` (or `warning`), `info`, `debug`, `trace`, any case.
        public init?(_ text: some StringProtocol) {
            switch text.lowercased() {
            case "error": self = .error
            case "warn", "warning": self = .warn
            case "info": self = .info
            case "debug": self = .debug
            case "trace": self = .trace
            default: return nil
            }
        }
        var swiftLog: Logger.Level {
            switch self {
            case .error: return .error
            case .warn: return .warning
            case .info: return .info
            case .debug: return .debug
            case .trace: return .trace
            }
        }
        init(_ level: Logger.Level) {
            switch level {
            case .critical, .error: self = .error
            case .warning: self = .warn
            case .notice, .info: self = .info
            case .debug: self = .debug
            case .trace: self = .trace
            }
        }
    }

    /// The process logger. Written only by `configure`, which runs on the main thread before any
    /// other thread starts; read by every thread afterwards.
    nonisolated(unsafe) public private(set) static var logger = Logger(label: "ringdesk") { label in
        RustLogHandler(target: label, filter: RustLogFilter(""))
    }

    /// Applies a `RUST_LOG` value (nil or empty: `info`) to the process logger, whose target is
    /// `target` (the program name, as upstream's module paths start with it). Directives that do
    /// not parse are ignored with one warning line. Call once, before starting threads.
    public static func configure(_ rustLog: String?, target: String) {
        let handler = RustLogHandler(target: target, filter: RustLogFilter(rustLog ?? ""))
        logger = Logger(label: target) { _ in handler }
        if !handler.filter.ignored.isEmpty {
            handler.write(.warn, "RUST_LOG: ignoring " + handler.filter.ignored.map { "'\($0)'" }.joined(separator: ", "))
        }
    }

    public static func enabled(_ level: Level) -> Bool { logger.logLevel <= level.swiftLog }

    public static func log(_ level: Level, _ message: @autoclosure () -> String) {
        logger.log(level: level.swiftLog, "\(message())")
    }

    public static func error(_ m: @autoclosure () -> String) { logger.error("\(m())") }
    public static func warn(_ m: @autoclosure () -> String) { logger.warning("\(m())") }
    public static func info(_ m: @autoclosure () -> String) { logger.info("\(m())") }
    public static func debug(_ m: @autoclosure () -> String) { logger.debug("\(m())") }
}

/// A parsed `RUST_LOG` value, as upstream's logger reads it: comma-separated directives, each
/// `level` (the default for every target), `target=level`, or a bare `target` (everything of it,
/// i.e. trace). Levels: `error`, `warn`, `info`, `debug`, `trace`, `off`, any case. A target
/// directive applies to that target and to its `target::sub` paths; the longest match wins, and
/// a later directive for the same target replaces an earlier one. Anything else (an unknown
/// level, more than one `=`, spaces inside a directive) is ignored and listed in `ignored`.
public struct RustLogFilter: Sendable {
    /// nil = `off`.
    public typealias Threshold = Log.Level?
    /// Level for targets no directive names (`info` unless a bare level says otherwise).
    public private(set) var defaultLevel: Threshold = .info
    /// `(target, level)` in the order given, later ones replacing earlier ones for the same target.
    public private(set) var directives: [(target: String, level: Threshold)] = []
    /// Directives that did not parse, verbatim.
    public private(set) var ignored: [String] = []

    public init(_ text: String) {
        for raw in text.split(separator: ",", omittingEmptySubsequences: true) {
            let part = raw.trimmingBlanks()
            if part.isEmpty { continue }
            if part.contains(where: { $0 == " " || $0 == "\t" }) { ignored.append(String(part)); continue }
            let pieces = part.split(separator: "=", maxSplits: 2, omittingEmptySubsequences: false)
            switch pieces.count {
            case 1:
                if let level = Self.threshold(pieces[0]) {
                    defaultLevel = level
                } else if Self.isTarget(pieces[0]) {
                    set(String(pieces[0]), .trace)
                } else {
                    ignored.append(String(part))
                }
            case 2 where Self.isTarget(pieces[0]):
                if pieces[1].isEmpty {
                    set(String(pieces[0]), .trace)
                } else if let level = Self.threshold(pieces[1]) {
                    set(String(pieces[0]), level)
                } else {
                    ignored.append(String(part))
                }
            default:
                ignored.append(String(part))
            }
        }
    }

    /// The threshold for `target`: the longest directive naming it or a `::` ancestor, else the
    /// default.
    public func level(for target: String) -> Threshold {
        var best: (length: Int, level: Threshold)?
        for d in directives where target == d.target || target.hasPrefix(d.target + "::") {
            if best == nil || d.target.count > best!.length { best = (d.target.count, d.level) }
        }
        if let best { return best.level }
        return defaultLevel
    }

    /// Whether `level` is logged for `target`.
    public func allows(_ level: Log.Level, for target: String) -> Bool {
        guard let threshold = self.level(for: target) else { return false }
        return level <= threshold
    }

    /// swift-log's level for a handler of `target`; `off` maps to `critical`, which the servers
    /// never use, and the handler drops it too.
    func swiftLogLevel(for target: String) -> Logger.Level { level(for: target)?.swiftLog ?? .critical }

    private mutating func set(_ target: String, _ level: Threshold) {
        directives.removeAll { $0.target == target }
        directives.append((target, level))
    }

    /// A level name or `off`; nil (no threshold at all) when the text is neither.
    private static func threshold(_ text: Substring) -> Threshold? {
        if text.lowercased() == "off" { return .some(nil) }
        return Log.Level(text).map { .some($0) }
    }

    /// A module path: letters, digits, `_`, `-` and `::` separators.
    private static func isTarget(_ text: Substring) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ":" }
    }
}

/// swift-log handler writing upstream's line format to standard output (where upstream's logger
/// writes, PROTOCOL.md §1), one `write(2)` per line so lines of different threads never mix:
///
///     [2026-01-31 12:34:56.789012 +00:00] INFO [hbbs] message key=value
///
/// Timestamps are UTC. Upstream prints the source file and line in the brackets; RingDesk
/// prints the target RUST_LOG directives match.
public struct RustLogHandler: LogHandler {
    public let target: String
    public let filter: RustLogFilter
    /// Where lines go (standard output; tests pass a pipe).
    public let fd: Int32
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level

    public init(target: String, filter: RustLogFilter, fd: Int32 = 1) {
        self.target = target
        self.filter = filter
        self.fd = fd
        logLevel = filter.swiftLogLevel(for: target)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = Log.Level(event.level)
        guard filter.allows(level, for: target) else { return }
        var text = "\(event.message)"
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { text += " \(key)=\(value)" }
        write(level, text)
    }

    /// Writes one line regardless of the filter (the RUST_LOG warning itself).
    func write(_ level: Log.Level, _ message: String) {
        var bytes = Array(Self.line(level: level, target: target, message: message, time: Self.now()).utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }

    /// One formatted line with its newline. `time` is (seconds, microseconds) since the epoch.
    public static func line(level: Log.Level, target: String, message: String, time: (seconds: Int, micros: Int)) -> String {
        var secs = time_t(time.seconds)
        var tm = tm()
        gmtime_r(&secs, &tm)
        let stamp = zeroPadded(Int(tm.tm_year) + 1900, 4) + "-" + zeroPadded(Int(tm.tm_mon) + 1, 2) + "-"
            + zeroPadded(Int(tm.tm_mday), 2) + " " + zeroPadded(Int(tm.tm_hour), 2) + ":"
            + zeroPadded(Int(tm.tm_min), 2) + ":" + zeroPadded(Int(tm.tm_sec), 2) + "."
            + zeroPadded(time.micros, 6) + " +00:00"
        return "[\(stamp)] \(level) [\(target)] \(message)\n"
    }

    static func now() -> (seconds: Int, micros: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int(ts.tv_sec), ts.tv_nsec / 1000)
    }
}

extension Substring {
    fileprivate func trimmingBlanks() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
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
