import CMmsg
import Glibc
import URing
import Workers

struct UDPOptions {
    var requests = 2_000_000
    var clients = 4
    var workers = 1
    /// Requests a client keeps outstanding (bounded, so no socket queue overflows).
    var window = 32
    /// A client waiting this long for a reply counts its outstanding requests as lost.
    var replyTimeoutMillis = 200
    var timeoutSeconds = 120.0
    var rounds = 1
    var pin = false
}

/// What one client thread saw.
struct UDPClientResult: Sendable {
    var sent = 0
    var replies = 0
    var lost = 0
    /// Replies that arrived after their requests had been counted lost.
    var late = 0
    var badReplies = 0
    var errors = 0
    var timedOut = false
    var cpuSeconds = 0.0
}

/// One server's run under the load.
struct UDPPhaseResult: Sendable {
    var server: String
    var threads: Int
    var clients = UDPClientResult()
    var served = 0
    var invalid = 0
    var serverSendFailures = 0
    var sendPoolExhausted = 0
    var receiveRearms = 0
    var wallSeconds = 0.0
    var cpu = PhaseCPU()

    var requestsPerSecond: Double { Double(clients.replies) / wallSeconds }
    /// Server CPU (its threads and their io-wq workers) per million requests served.
    var cpuSecondsPerMillion: Double { cpu.serverTotalSeconds / (Double(served) / 1e6) }
    var generatorSeconds: Double { clients.cpuSeconds }
    /// Process CPU not attributed to the server or the clients (main, sampler, exited io-wq tails).
    var restSeconds: Double { cpu.processSeconds - cpu.serverTotalSeconds - cpu.otherIoWorkerSeconds - clients.cpuSeconds }
    var clean: Bool { !clients.timedOut && clients.lost == 0 && clients.badReplies == 0 && clients.errors == 0 }
}

struct UDPRound: Sendable {
    var uring: UDPPhaseResult
    var baseline: UDPPhaseResult
    /// io_uring CPU per request ÷ recvmmsg CPU per request (below 1: io_uring is cheaper).
    var cpuRatio: Double { uring.cpuSecondsPerMillion / baseline.cpuSecondsPerMillion }
    var throughputRatio: Double { uring.requestsPerSecond / baseline.requestsPerSecond }
}

enum UDPBench {
    static func run(_ o: UDPOptions) throws -> [UDPRound] {
        var rounds: [UDPRound] = []
        for _ in 0..<o.rounds {
            let uring = try runUring(o)
            let baseline = try runBaseline(o)
            rounds.append(UDPRound(uring: uring, baseline: baseline))
        }
        return rounds
    }

    static func pinnedCPUs(_ o: UDPOptions) throws -> [Int]? {
        o.pin ? try Affinity.allowedCPUs() : nil
    }

    static func runUring(_ o: UDPOptions) throws -> UDPPhaseResult {
        let (fds, port) = try bindReusePortUDP(count: o.workers)
        let board = ServerBoard()
        var configuration = WorkerConfiguration()
        configuration.count = o.workers
        configuration.pinned = o.pin
        configuration.tickNanos = 0
        let group = try WorkerGroup(configuration: configuration) { i in UringUDPServer(fd: fds[i], index: i, board: board) }
        try group.start()
        var result = UDPPhaseResult(server: "io_uring", threads: o.workers)
        (result.clients, result.wallSeconds, result.cpu) = drive(port: port, serverThreads: board.threadIDs, o)
        group.stop()
        fill(&result, board.totals)
        return result
    }

    static func runBaseline(_ o: UDPOptions) throws -> UDPPhaseResult {
        let (fds, port) = try bindReusePortUDP(count: o.workers)
        let server = MmsgUDPServer(fds: fds, pinTo: try pinnedCPUs(o))
        var result = UDPPhaseResult(server: "recvmmsg", threads: o.workers)
        (result.clients, result.wallSeconds, result.cpu) = drive(port: port, serverThreads: server.board.threadIDs, o)
        server.stop()
        fill(&result, server.board.totals)
        return result
    }

    static func fill(_ r: inout UDPPhaseResult, _ c: ServerBoard.Counters) {
        r.served = c.served
        r.invalid = c.invalid
        r.serverSendFailures = c.sendFailures
        r.sendPoolExhausted = c.sendPoolExhausted
        r.receiveRearms = c.receiveRearms
    }

    /// Runs the clients against `port` and measures the server threads meanwhile.
    static func drive(port: UInt16, serverThreads: [Int32], _ o: UDPOptions) -> (UDPClientResult, Double, PhaseCPU) {
        let watch = CPUWatch(serverThreads: serverThreads)
        let results = Shared<[UDPClientResult]>([])
        let deadline = monotonicSeconds() + o.timeoutSeconds
        watch.start()
        let started = monotonicSeconds()
        var threads: [BenchThread] = []
        for c in 0..<o.clients {
            let quota = o.requests / o.clients + (c < o.requests % o.clients ? 1 : 0)
            threads.append(BenchThread {
                let r = runClient(port: port, quota: quota, window: o.window, replyTimeoutMillis: o.replyTimeoutMillis, deadline: deadline)
                results.update { $0.append(r) }
            })
        }
        for t in threads { t.join() }
        let wall = monotonicSeconds() - started
        let cpu = watch.stop()
        let total = results.get().reduce(into: UDPClientResult()) { t, r in
            t.sent += r.sent
            t.replies += r.replies
            t.lost += r.lost
            t.late += r.late
            t.badReplies += r.badReplies
            t.errors += r.errors
            t.timedOut = t.timedOut || r.timedOut
            t.cpuSeconds += r.cpuSeconds
        }
        return (total, wall, cpu)
    }

    /// One client: a connected UDP socket on 127.0.0.1 that keeps up to `window` requests
    /// outstanding (sendmmsg to refill, recvmmsg to collect) until `quota` were sent and answered
    /// or counted lost.
    static func runClient(port: UInt16, quota: Int, window: Int, replyTimeoutMillis: Int, deadline: Double) -> UDPClientResult {
        var r = UDPClientResult()
        let cpuStart = currentThreadCPUNanos()
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0, "socket: \(Errno.current)")
        var tv = timeval(tv_sec: replyTimeoutMillis / 1000, tv_usec: (replyTimeoutMillis % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var size: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let connected = try? SocketEndpoint.loopbackV4(port: port).withSockaddr { sa, len in connect(fd, sa, len) }
        precondition(connected == 0, "connect: \(Errno.current)")

        let request = UnsafeMutableRawPointer.allocate(byteCount: UDPWire.request.count, alignment: 8)
        UDPWire.request.withUnsafeBytes { request.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let requestIov = UnsafeMutablePointer<iovec>.allocate(capacity: 1)
        requestIov.initialize(to: iovec(iov_base: request, iov_len: UDPWire.request.count))
        let sendMsgs = UnsafeMutablePointer<CMmsg_mmsghdr>.allocate(capacity: window)
        let recvMsgs = UnsafeMutablePointer<CMmsg_mmsghdr>.allocate(capacity: window)
        let recvIovs = UnsafeMutablePointer<iovec>.allocate(capacity: window)
        let recvBuffers = UnsafeMutableRawPointer.allocate(byteCount: window * 64, alignment: 64)
        defer {
            request.deallocate(); requestIov.deallocate(); sendMsgs.deallocate()
            recvMsgs.deallocate(); recvIovs.deallocate(); recvBuffers.deallocate()
            close(fd)
        }
        for i in 0..<window {
            sendMsgs[i] = CMmsg_mmsghdr()
            sendMsgs[i].msg_hdr.msg_iov = requestIov
            sendMsgs[i].msg_hdr.msg_iovlen = 1
            recvIovs[i] = iovec(iov_base: recvBuffers + i * 64, iov_len: 64)
            recvMsgs[i] = CMmsg_mmsghdr()
            recvMsgs[i].msg_hdr.msg_iov = recvIovs + i
            recvMsgs[i].msg_hdr.msg_iovlen = 1
        }
        let expected = UDPWire.reply
        var outstanding = 0
        while r.sent < quota || outstanding > 0 {
            if monotonicSeconds() > deadline { r.timedOut = true; r.lost += outstanding; break }
            if r.sent < quota && outstanding < window {
                let k = min(window - outstanding, quota - r.sent)
                let n = CMmsg_sendmmsg(fd, sendMsgs, UInt32(k), 0)
                if n > 0 {
                    r.sent += Int(n)
                    outstanding += Int(n)
                } else if n < 0 && n != -EINTR && n != -EAGAIN && n != -ENOBUFS {
                    // ECONNREFUSED: an ICMP port unreachable from an earlier datagram.
                    r.errors += 1
                }
            }
            let n = CMmsg_recvmmsg(fd, recvMsgs, UInt32(window), CMmsg_MSG_WAITFORONE)
            if n > 0 {
                for i in 0..<Int(n) {
                    let got = UnsafeRawBufferPointer(start: recvIovs[i].iov_base, count: Int(recvMsgs[i].msg_len))
                    if got.elementsEqual(expected) { r.replies += 1 } else { r.badReplies += 1 }
                }
                if Int(n) > outstanding {
                    r.late += Int(n) - outstanding
                    outstanding = 0
                } else {
                    outstanding -= Int(n)
                }
            } else if n < 0 {
                let e = -n
                if e == EAGAIN {
                    // No reply for replyTimeoutMillis: what is outstanding is lost.
                    r.lost += outstanding
                    outstanding = 0
                } else if e != EINTR {
                    r.errors += 1
                }
            }
        }
        r.cpuSeconds = Double(currentThreadCPUNanos() - cpuStart) / 1e9
        return r
    }
}
