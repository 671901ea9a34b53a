import Crypto
import Glibc
import Synchronization
import Testing
import URing
@testable import Workers

/// Starts `workers` TCP echo workers on one SO_REUSEPORT port of 127.0.0.1; each handler owns
/// its listener from then on (it closes it, even when its start fails).
func startTCPEchoGroup(
    workers: Int, _ configuration: EchoConfiguration = .init(), tickNanos: UInt64 = 0
) throws -> (group: WorkerGroup<TCPEchoHandler>, stats: EchoStats, port: UInt16) {
    let (listeners, port) = try reusePortGroup(workers, tcp: true)
    let stats = EchoStats(workers: workers)
    var settings = WorkerConfiguration()
    settings.count = workers
    settings.ringEntries = 256
    settings.completionEntries = 4096
    settings.tickNanos = tickNanos
    let group: WorkerGroup<TCPEchoHandler>
    do {
        group = try WorkerGroup(configuration: settings) { index in
            TCPEchoHandler(index: index, listener: listeners[index], configuration: configuration, counters: stats.workers[index])
        }
    } catch {
        for fd in listeners { Socket.close(fd) }
        throw error
    }
    try group.start()
    return (group, stats, port)
}

/// Streams `data` through an echo connection: one thread writes it all while another reads the
/// echo (starting `readerDelayMillis` later), so the server sees back-pressure from both sides.
func streamThroughEcho(port: UInt16, _ data: [UInt8], receiveBuffer: Int32 = 0, readerDelayMillis: Int = 0) throws -> (sent: [UInt8], echoed: [UInt8], failures: [String]) {
    let client = try Client(tcpTo: .loopbackV4(port: port), receiveBuffer: receiveBuffer)
    let fd = client.fd
    let echoed = Mutex<[UInt8]>([])
    let failures = onThreads(2) { role in
        if role == 0 {
            // Uneven writes, so chunk and buffer boundaries never line up.
            var offset = 0
            var step = 1
            while offset < data.count {
                let n = min(data.count - offset, 1 + (step * 7919) % 65_000)
                try sendAll(fd, Array(data[offset..<offset + n]))
                offset += n
                step += 1
            }
        } else {
            if readerDelayMillis > 0 { usleep(UInt32(readerDelayMillis * 1000)) }
            var hasher = SHA256()
            var remaining = data.count
            var offset = 0
            while remaining > 0 {
                let chunk = try receiveExactly(fd, min(remaining, 32_768))
                guard chunk[...] == data[offset..<offset + chunk.count] else {
                    throw TestFailure("echoed bytes differ within \(offset)..<\(offset + chunk.count)")
                }
                hasher.update(data: chunk)
                remaining -= chunk.count
                offset += chunk.count
            }
            let digest = Array(hasher.finalize())
            echoed.withLock { $0 = digest }
        }
    }
    return (Array(SHA256.hash(data: data)), echoed.withLock { $0 }, failures)
}

extension EngineTests {
    @Suite(.timeLimit(.minutes(2)))
    struct TCPEcho {
        @Test func manyConcurrentConnectionsAcrossThreeWorkersEchoEveryByteInOrder() throws {
            let (group, stats, port) = try startTCPEchoGroup(workers: 3)
            defer { group.stop() }
            let threads = 8, connectionsPerThread = 6, rounds = 24
            let expectedBytes = Mutex(0)
            // Every connection of a thread stays open for the whole run: 48 at once, echoing in
            // turns (write a chunk, read its echo), sizes from 1 byte to 3 buffers.
            var failures = onThreads(threads) { t in
                var clients: [Int32] = []
                defer { for fd in clients { close(fd) } }
                for _ in 0..<connectionsPerThread {
                    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
                    guard fd >= 0 else { throw TestFailure("socket: \(Errno.current)") }
                    clients.append(fd)
                    Client.setTimeouts(fd)
                    try SocketEndpoint.loopbackV4(port: port).withSockaddr { (sa, len) throws(Errno) in
                        _ = try Errno.retryingInterrupts { connect(fd, sa, len) }
                    }
                }
                var total = 0
                for round in 0..<rounds {
                    for (c, fd) in clients.enumerated() {
                        let size = 1 + (t * 7_919 + c * 104_729 + round * 1_299_709) % 50_000
                        let bytes = patternBytes(size, seed: UInt64(t << 32 | c << 16 | round))
                        try sendAll(fd, bytes)
                        let echo = try receiveExactly(fd, size)
                        guard echo == bytes else { throw TestFailure("thread \(t) connection \(c) round \(round): echo differs") }
                        total += size
                    }
                }
                expectedBytes.withLock { $0 += total }
            }
            // Then two long streams, 4 MiB each, written and read back concurrently.
            for s in 0..<2 {
                let data = patternBytes(4 << 20, seed: UInt64(1000 + s))
                let (sent, echoed, streamFailures) = try streamThroughEcho(port: port, data)
                failures += streamFailures
                #expect(sent == echoed, "stream \(s)")
                expectedBytes.withLock { $0 += data.count }
            }
            #expect(failures.isEmpty, "\(failures)")

            let connections = threads * connectionsPerThread + 2
            #expect(waitUntil { stats.sum(.closed) == connections }, "closed \(stats.sum(.closed)) of \(connections)")
            #expect(stats.sum(.accepted) == connections)
            #expect(stats.sum(.bytesEchoed) == expectedBytes.withLock { $0 })
            #expect(stats.sum(.stale) == 0)
            // SO_REUSEPORT spread 50 connections over the three listeners.
            for (i, w) in stats.workers.enumerated() {
                #expect(w[.accepted] > 0, "worker \(i) accepted nothing")
            }
        }

        @Test func exhaustedBuffersEndTheReceiveAndTheRearmedReceiveLosesNothing() throws {
            // Four 4 KiB buffers, a 4 KiB send buffer on the server and a small receive buffer on
            // a client that starts reading late: every buffer ends up waiting in a send, the
            // multishot receive ends with -ENOBUFS, sends come back short, and recycling re-arms.
            var configuration = EchoConfiguration()
            configuration.bufferCount = 4
            configuration.bufferSize = 4096
            configuration.sendBufferSize = 4096
            let (group, stats, port) = try startTCPEchoGroup(workers: 1, configuration)
            defer { group.stop() }
            let data = patternBytes(2 << 20, seed: 99)
            let (sent, echoed, failures) = try streamThroughEcho(port: port, data, receiveBuffer: 4096, readerDelayMillis: 300)
            #expect(failures.isEmpty, "\(failures)")
            #expect(sent == echoed)
            #expect(stats.sum(.noBuffers) >= 1, "the receive never ran out of buffers")
            #expect(stats.sum(.rearmed) >= stats.sum(.noBuffers))
            #expect(stats.sum(.bytesEchoed) == data.count)
            // A 4 KiB SO_SNDBUF takes 4 KiB chunks only in parts: the resume path ran (hundreds of
            // times on 6.18).
            #expect(stats.sum(.shortSends) >= 1, "no send came back short")
            #expect(waitUntil { stats.sum(.closed) == 1 })
        }
    }
}
