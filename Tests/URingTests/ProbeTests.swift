import Testing
@testable import URing
import Glibc

@Suite(.timeLimit(.minutes(1)))
struct ProbeTests {
    @Test func probeReportsAvailabilityConsistentWithARealRing() {
        let support = IOURingSupport.probe()
        // Independently of the probe's own path, ask the kernel for a ring through liburing.
        let direct = CURingTrial.tryRing()
        #expect(support.isAvailable == (direct == 0), "probe said \(support), a direct ring gave \(direct)")
        if !support.isAvailable { #expect(!support.message.isEmpty) }
    }

    @Test func everyUnavailableReasonHasAnActionableMessage() {
        let reasons: [IOURingSupport.Reason] = [
            .disabledBySysctl(value: 2), .deniedBySeccompOrLSM, .notImplemented,
            .missingOpcodes(["SPLICE"]), .setupFailed(.invalidArgument),
        ]
        for r in reasons {
            let m = IOURingSupport.unavailable(r).message
            #expect(m.contains("io_uring"), "\(m)")
            #expect(!m.contains("\n"), "must be one line: \(m)")
        }
        #expect(IOURingSupport.unavailable(.missingOpcodes(["SPLICE", "MSG_RING"])).message.contains("SPLICE, MSG_RING"))
    }

    @Test func sysctlReaderParsesTheProcFile() throws {
        // /proc/sys/kernel/io_uring_disabled exists on 6.6+; where absent the reader returns nil.
        let fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY)
        if fd >= 0 {
            close(fd)
            let v = try #require(IOURingSupport.readSysctl("/proc/sys/kernel/io_uring_disabled"))
            #expect((0...2).contains(v))
        } else {
            #expect(IOURingSupport.readSysctl("/proc/sys/kernel/io_uring_disabled") == nil)
        }
        #expect(IOURingSupport.readSysctl("/nonexistent/sysctl") == nil)
    }
}
