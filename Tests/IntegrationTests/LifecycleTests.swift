import Glibc
import RustDeskProtocol
import Testing

/// Process lifecycle of the real binaries (issue "Run and operate"): hbbr's drain on SIGTERM /
/// SIGINT, and what SIGHUP reloads in each server. `ServerProcess` starts every server with
/// `DRAIN_TIME=0`; these tests give `--drain-time` on the command line, which wins.
extension HbbrTests {
    /// True when a new TCP connection to `port` on 127.0.0.3 is refused (nobody listens).
    func connectionRefused(_ port: UInt16) -> Bool {
        do { _ = try TCPClient(port: port, ip: "127.0.0.3") } catch { return true }
        return false
    }

    /// Polls until `body` is true or `seconds` pass.
    func eventually(within seconds: Double, _ body: () -> Bool) -> Bool {
        let deadline = now() + seconds
        while now() < deadline {
            if body() { return true }
            usleep(20_000)
        }
        return body()
    }

    @Test(arguments: ["auto", "splice-ring", "copy"])
    func sigtermDrainsRunningSessionsForTheDrainTimeThenExitsZero(relayMode: String) throws {
        let server = try start(["--drain-time", "3", "--relay-mode", relayMode])
        let (a, b) = try tcpPair(server, uuid: "U-drain-1")
        a.write([7])
        #expect(b.readExactly(1) == [7])
        // A half that is still waiting for its partner when the signal comes.
        let waiting = try TCPClient(port: server.port, ip: "127.0.0.4")
        waiting.write(relayFrame("U-drain-unpaired"))
        usleep(200_000)

        // Bytes in flight when the signal arrives, and bytes sent during the drain, all arrive.
        let before = Array(Pattern.shared.bytes[0..<200_000])
        a.write(before)
        let t0 = now()
        kill(server.pid, SIGTERM)
        #expect(eventually(within: 2) { connectionRefused(server.port) }, "listeners closed at the start of the drain")
        #expect(waiting.closedByServer(within: 2), "a half without a partner cannot pair any more: closed")
        #expect(b.readExactly(before.count, within: 5) == before)
        let during = Array(Pattern.shared.bytes[500..<100_500])
        b.write(during)
        #expect(a.readExactly(during.count, within: 5) == during)
        #expect(server.exitStatus(within: 0.5) == nil, "still draining")

        // The session is closed when the drain time is over, and the process exits 0.
        #expect(b.closedByServer(within: 6))
        let status = server.exitStatus(within: 5)
        let elapsed = now() - t0
        #expect(status == 0)
        #expect(elapsed >= 2.8 && elapsed < 6, "ended after the 3-s drain time (took \(elapsed) s)")
        #expect(a.read(within: 0.5).eof)
        #expect(server.log.contains("draining 1 session(s) for up to 3 s"))
    }

    @Test func drainEndsAsSoonAsTheLastSessionEnds() throws {
        let server = try start(["--drain-time", "60"])
        let (a, b) = try tcpPair(server, uuid: "U-drain-2")
        a.write([1, 2])
        #expect(b.readExactly(2) == [1, 2])
        let t0 = now()
        kill(server.pid, SIGTERM)
        #expect(eventually(within: 2) { connectionRefused(server.port) })
        a.shutdownBoth()
        #expect(b.closedByServer(within: 3))
        #expect(server.exitStatus(within: 5) == 0)
        #expect(now() - t0 < 5, "did not wait for the 60-s drain time")
        #expect(server.log.contains("drained: every session ended"))
    }

    @Test func aSecondStopSignalEndsTheDrainAtOnce() throws {
        let server = try start(["--drain-time", "60"])
        let (a, b) = try tcpPair(server, uuid: "U-drain-3")
        a.write([9])
        #expect(b.readExactly(1) == [9])
        kill(server.pid, SIGTERM)
        #expect(eventually(within: 2) { connectionRefused(server.port) })
        #expect(server.exitStatus(within: 0.3) == nil)
        let t0 = now()
        kill(server.pid, SIGINT)
        #expect(server.exitStatus(within: 5) == 0)
        #expect(now() - t0 < 3)
        #expect(a.closedByServer(within: 1) && b.closedByServer(within: 1))
    }

    @Test func withoutSessionsAStopSignalExitsAtOnce() throws {
        let server = try start(["--drain-time", "60"])
        let t0 = now()
        #expect(server.stop(within: 5) == 0)
        #expect(now() - t0 < 3)
    }

    @Test func sighupAfterEditingBlocklistBlocksTheAddress() throws {
        let dir = makeTempDirectory()
        writeFile(dir + "/blocklist.txt", "127.0.0.9\n")
        let server = try start(directory: dir)
        defer { server.stop() }
        let before = try TCPClient(port: server.port, ip: "127.0.0.5")
        before.write(relayFrame("U-hup"))
        #expect(!before.closedByServer(within: 0.5), "not blocked yet")

        writeFile(dir + "/blocklist.txt", "127.0.0.9\n127.0.0.5 # added\n")
        kill(server.pid, SIGHUP)
        #expect(eventually(within: 5) { server.log.contains("reloaded blocklist.txt: 2 entries") })
        let after = try TCPClient(port: server.port, ip: "127.0.0.5")
        after.write(relayFrame("U-hup-2"))
        let (bytes, eof) = after.read(within: 2)
        #expect(bytes.isEmpty && eof, "refused after the reload")
        // Still serving everyone else, and SIGHUP did not stop the process.
        let other = try TCPClient(port: server.port, ip: "127.0.0.6")
        other.write(relayFrame("U-hup-3"))
        #expect(!other.closedByServer(within: 0.5))
        #expect(server.exitStatus(within: 0.1) == nil)
    }
}

@Suite(.timeLimit(.minutes(2)))
struct HbbsReloadTests {
    func relayServers(_ path: String) -> String { unixConsole(path, "rs") }

    @Test func sighupRereadsRelayServersFromDotEnv() throws {
        let dir = makeTempDirectory()
        let path = dir + "/console.sock"
        func writeEnv(_ text: String) {
            let f = fopen(dir + "/.env", "w")!
            fputs(text, f)
            fclose(f)
        }
        writeEnv("RELAY_SERVERS=127.0.0.9\n")
        let server = try ServerProcess("hbbs", arguments: ["--admin-console", "unix:" + path], directory: dir)
        defer { server.stop() }
        var reply = ""
        let deadline = now() + 10
        while now() < deadline && !reply.contains("127.0.0.9") {
            reply = relayServers(path)
            usleep(50_000)
        }
        #expect(reply.contains("127.0.0.9"))

        writeEnv("RELAY_SERVERS=127.0.0.10:21117,127.0.0.11\n")
        kill(server.pid, SIGHUP)
        var after = ""
        let until = now() + 5
        while now() < until && !after.contains("127.0.0.11") {
            after = relayServers(path)
            usleep(50_000)
        }
        #expect(after.contains("127.0.0.10:21117") && after.contains("127.0.0.11") && !after.contains("127.0.0.9"))
        #expect(server.log.contains("SIGHUP: relay servers now"))

        // A configuration that no longer parses is reported and changes nothing.
        writeEnv("RELAY_SERVERS=127.0.0.12\nWORKERS=lots\n")
        kill(server.pid, SIGHUP)
        let t0 = now()
        while now() - t0 < 5 && !server.log.contains("configuration not reloaded") { usleep(50_000) }
        #expect(server.log.contains("configuration not reloaded"))
        #expect(relayServers(path).contains("127.0.0.11"))
        #expect(server.exitStatus(within: 0.1) == nil)
        #expect(server.stop() == 0)
    }
}
