import CURing
import Glibc

/// Whether io_uring can be used on this host, and if not, why and what to do about it.
///
/// Run once at startup, before any worker: a server that cannot use io_uring exits with the
/// one-line `message` instead of crashing or hanging (issue "io_uring engine", startup).
public enum IOURingSupport: Sendable, Equatable {
    case available(missingOptionalFeatures: [String])
    case unavailable(Reason)

    public enum Reason: Sendable, Equatable {
        /// `kernel.io_uring_disabled` is 2 (or 1 and we are not in `kernel.io_uring_group`).
        case disabledBySysctl(value: Int)
        /// `io_uring_setup` returned EPERM: a seccomp profile (Docker's default) or an LSM denies it.
        case deniedBySeccompOrLSM
        /// `io_uring_setup` returned ENOSYS: the kernel lacks io_uring, or a filter fakes ENOSYS.
        case notImplemented
        /// The ring works but opcodes the engine needs are missing (kernel too old).
        case missingOpcodes([String])
        /// Anything else from `io_uring_setup`.
        case setupFailed(Errno)
    }

    public var isAvailable: Bool { if case .available = self { return true } else { return false } }

    /// One line naming the cause and the remedy (empty when available).
    public var message: String {
        guard case .unavailable(let reason) = self else { return "" }
        switch reason {
        case .disabledBySysctl(let v):
            return "io_uring is disabled on this host (sysctl kernel.io_uring_disabled=\(v)); enable it with `sysctl -w kernel.io_uring_disabled=0` (or add this user to kernel.io_uring_group when the value is 1)."
        case .deniedBySeccompOrLSM:
            return "io_uring_setup was denied with EPERM, usually by a container seccomp profile; run the container with a profile that allows io_uring_setup/io_uring_enter/io_uring_register (see docs/OPERATIONS.md, e.g. `--security-opt seccomp=unconfined` or the shipped profile)."
        case .notImplemented:
            return "io_uring_setup returned ENOSYS: the kernel has no io_uring (Linux 6.1 or newer is required) or a seccomp filter hides it; upgrade the kernel or allow the io_uring syscalls."
        case .missingOpcodes(let ops):
            return "the kernel's io_uring lacks required operations (\(ops.joined(separator: ", "))); Linux 6.1 or newer is required."
        case .setupFailed(let e):
            return "io_uring_setup failed: \(e); check RLIMIT_MEMLOCK and the kernel's io_uring settings."
        }
    }

    /// Probes the running kernel: sysctl, a throwaway ring, then the opcode table.
    public static func probe() -> IOURingSupport {
        if let v = readSysctl("/proc/sys/kernel/io_uring_disabled"), v == 2 {
            return .unavailable(.disabledBySysctl(value: v))
        }
        let r = CURing_try_ring(8, 0)
        if r < 0 {
            switch Errno(rawValue: -r) {
            case .permissionDenied, .accessDenied:
                if let v = readSysctl("/proc/sys/kernel/io_uring_disabled"), v != 0 {
                    return .unavailable(.disabledBySysctl(value: v))
                }
                return .unavailable(.deniedBySeccompOrLSM)
            case .notImplemented: return .unavailable(.notImplemented)
            default: return .unavailable(.setupFailed(Errno(rawValue: -r)))
            }
        }
        guard let probe = io_uring_get_probe() else { return .unavailable(.missingOpcodes(["IORING_REGISTER_PROBE"])) }
        defer { io_uring_free_probe(probe) }
        var missing: [String] = []
        for i in 0..<CURing_op_count() where CURing_opcode_supported(probe, CURing_op_code(i)) == 0 {
            missing.append(String(cString: CURing_op_name(i)))
        }
        if !missing.isEmpty { return .unavailable(.missingOpcodes(missing)) }
        var optional: [String] = []
        if CURing_try_ring(8, CURing_SETUP_SINGLE_ISSUER | CURing_SETUP_DEFER_TASKRUN) < 0 {
            optional.append("SINGLE_ISSUER|DEFER_TASKRUN")
        }
        return .available(missingOptionalFeatures: optional)
    }

    static func readSysctl(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 31) }
        guard n > 0 else { return nil }
        let text = String(decoding: buf[0..<n], as: UTF8.self).trimmingWhitespace()
        return Int(text)
    }
}

extension String {
    func trimmingWhitespace() -> Substring {
        var s = self[...]
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return s
    }
}
