import Glibc
import RustDeskProtocol
import Testing

/// hbbs end to end: the real binary, real UDP/TCP/WebSocket on 127.0.0.x, written from
/// PROTOCOL.md §5 and the §14 checklist. A = 127.0.0.1 (controlling), B = 127.0.0.2 (registered).
@Suite(.timeLimit(.minutes(2)))
struct HbbsTests {
    static let pk = [UInt8](repeating: 0x11, count: 32)

    /// Starts hbbs serving loopback like any client (`--admin-console off`) and waits until UDP answers.
    func start(_ extra: [String] = [], environment: [String: String] = [:], directory: String? = nil) throws -> ServerProcess {
        let server = try ServerProcess("hbbs", arguments: ["--admin-console", "off"] + extra, environment: environment, directory: directory)
        let probe = try UDPClient()
        let deadline = now() + 10
        while now() < deadline {
            if probe.request(.registerPeer(.init(id: "probe")), to: server.port, attempts: 1) != nil { return server }
            if server.exitStatus(within: 0.01) != nil { break }
        }
        let log = server.log
        server.stop()
        throw TestError.failed("hbbs did not answer; log:\n\(log)")
    }

    func register(_ b: UDPClient, id: String = "123456789", port: UInt16) -> RendezvousMessage? {
        b.request(.registerPk(.init(id: id, uuid: [1, 2, 3, 4], pk: Self.pk)), to: port)
    }

    func key(_ server: ServerProcess) -> String { server.readFile("id_ed25519.pub") ?? "" }

    @Test func registrationFlowOverUDP() throws {
        let server = try start()
        defer { server.stop() }
        let b = try UDPClient(ip: "127.0.0.2")
        // 12: unknown id → request_pk; 13: empty id → no reply.
        #expect(b.request(.registerPeer(.init(id: "123456789", serial: 3)), to: server.port)?.serializedBytes() == hex("3a 02 10 01"))
        b.send(.registerPeer(.init(id: "")), to: server.port)
        #expect(b.receive(within: 0.5) == nil)
        // 14, 15
        #expect(b.request(.registerPk(.init(id: "12345", uuid: [1], pk: Self.pk)), to: server.port)?.serializedBytes() == hex("82 01 02 08 02"))
        b.send(.registerPk(.init(id: "123456789", uuid: [], pk: Self.pk)), to: server.port)
        #expect(b.receive(within: 0.5) == nil)
        // 16: new registration → OK, then keep-alive → request_pk false.
        #expect(register(b, port: server.port)?.serializedBytes() == hex("82 01 00"))
        #expect(b.request(.registerPeer(.init(id: "123456789", serial: 3)), to: server.port)?.serializedBytes() == hex("3a 00"))
        // 17: different uuid → mismatch.
        #expect(b.request(.registerPk(.init(id: "123456789", uuid: [9], pk: Self.pk)), to: server.port)?.serializedBytes() == hex("82 01 02 08 02"))
        // 25 needs a non-loopback source (loopback sources are exempt from the IP-change rule,
        // §5.2.1), which RendezvousTests cover; here the exemption itself: another 127.x address
        // keeps the registration.
        let other = try UDPClient(ip: "127.0.0.3")
        #expect(other.request(.registerPeer(.init(id: "123456789")), to: server.port)?.serializedBytes() == hex("3a 00"))
    }

    @Test func udpIgnoresEverythingElseAndGarbage() throws {
        let server = try start()
        defer { server.stop() }
        let c = try UDPClient()
        // 7: garbage, empty, huge datagrams → nothing.
        c.send([0xFF, 0x00, 0x13], to: server.port)
        c.send([], to: server.port)
        c.send([UInt8](repeating: 0x0B, count: 65_000), to: server.port)
        // 29: messages that are TCP-only over UDP → nothing.
        for m: RendezvousMessage in [.punchHoleRequest(.init(id: "123456789")), .punchHoleSent(.init(socketAddr: [1])),
                                     .localAddr(.init(socketAddr: [1])), .testNatRequest(.init(serial: 1)),
                                     .onlineRequest(.init(id: "x", peers: ["1"])), .requestRelay(.init(id: "1", uuid: "u"))] {
            c.send(m, to: server.port)
        }
        #expect(c.receive(within: 0.7) == nil)
        // Still healthy.
        #expect(c.request(.registerPeer(.init(id: "x1")), to: server.port) != nil)
    }

    @Test func punchHoleFlowOverTCP() throws {
        let server = try start()
        defer { server.stop() }
        let k = key(server)
        #expect(k.count == 44)
        let b = try UDPClient(ip: "127.0.0.2")
        #expect(register(b, port: server.port)?.serializedBytes() == hex("82 01 00"))
        // 31: wrong key → LICENSE_MISMATCH on the same connection.
        let wrong = try TCPClient(port: server.port)
        wrong.send(.punchHoleRequest(.init(id: "123456789", licenceKey: "wrong")))
        #expect(wrong.receiveMessage()?.serializedBytes() == hex("5a 02 18 03"))
        // 33: unknown id.
        let unknown = try TCPClient(port: server.port)
        unknown.send(.punchHoleRequest(.init(id: "999999999", licenceKey: k)))
        #expect(unknown.receiveMessage()?.serializedBytes() == hex("5a 00"))
        // 35: A on another IP → B gets PunchHole with A's exact address.
        let a = try TCPClient(port: server.port)
        a.send(.punchHoleRequest(.init(id: "123456789", natType: .asymmetric, licenceKey: k)))
        guard case .punchHole(let ph)? = b.receiveMessage() else { Issue.record("B got no PunchHole"); return }
        #expect(AddrMangle.decode(ph.socketAddr) == SocketAddress("127.0.0.1:\(a.localPort)"))
        #expect(ph.natType == .asymmetric && ph.relayServer == "")
        // 40: B answers PunchHoleSent on a new connection → A gets the signed response.
        let bTCP = try TCPClient(port: server.port, ip: "127.0.0.2")
        bTCP.send(.punchHoleSent(.init(socketAddr: ph.socketAddr, id: "123456789", relayServer: "x", natType: .asymmetric, version: "1.4.0")))
        guard case .punchHoleResponse(let r)? = a.receiveMessage() else { Issue.record("A got no response"); return }
        #expect(AddrMangle.decode(r.socketAddr) == SocketAddress("127.0.0.2:\(bTCP.localPort)"))
        #expect(r.relayServer == "x" && r.union == .natType(.asymmetric))
        let opened = try Ed25519PublicKey(base64: k).open(signedMessage: r.pk)
        #expect(try IdPk(serializedBytes: opened) == IdPk(id: "123456789", pk: Self.pk))
        #expect(bTCP.closedByServer())
        // 46: a second answer for the same A is dropped.
        let again = try TCPClient(port: server.port, ip: "127.0.0.2")
        again.send(.punchHoleSent(.init(socketAddr: ph.socketAddr, id: "123456789", version: "1.4.0")))
        #expect(a.receiveMessage(within: 0.7) == nil)
    }

    @Test func sameIPGetsFetchLocalAddrAndLocalAddrAnswer() throws {
        let server = try start()
        defer { server.stop() }
        let k = key(server)
        let b = try UDPClient(ip: "127.0.0.1")
        #expect(register(b, port: server.port)?.serializedBytes() == hex("82 01 00"))
        let a = try TCPClient(port: server.port)
        a.send(.punchHoleRequest(.init(id: "123456789", licenceKey: k)))
        guard case .fetchLocalAddr(let f)? = b.receiveMessage() else { Issue.record("expected FetchLocalAddr"); return }
        let lan = AddrMangle.encode(SocketAddress("192.168.1.20:21118")!, timeMicros: 5)
        let bTCP = try TCPClient(port: server.port)
        bTCP.send(.localAddr(.init(socketAddr: f.socketAddr, localAddr: lan, relayServer: "r", id: "123456789", version: "1.4.0")))
        guard case .punchHoleResponse(let r)? = a.receiveMessage() else { Issue.record("A got no response"); return }
        #expect(r.socketAddr == lan && r.union == .isLocal(true) && r.pk.count == 109 && r.relayServer == "r")
    }

    @Test func relayRequestAndResponse() throws {
        let server = try start(["-r", "relay.invalid.example:21117,127.0.0.1:21117"])
        defer { server.stop() }
        let b = try UDPClient(ip: "127.0.0.2")
        #expect(register(b, port: server.port)?.serializedBytes() == hex("82 01 00"))
        // 43
        let a = try TCPClient(port: server.port)
        a.send(.requestRelay(.init(id: "123456789", uuid: "U")))
        guard case .requestRelay(let rr)? = b.receiveMessage() else { Issue.record("B got no RequestRelay"); return }
        #expect(rr.uuid == "U" && rr.id == "123456789")
        #expect(AddrMangle.decode(rr.socketAddr) == SocketAddress("127.0.0.1:\(a.localPort)"))
        // 44
        let bTCP = try TCPClient(port: server.port, ip: "127.0.0.2")
        bTCP.send(.relayResponse(.init(socketAddr: rr.socketAddr, uuid: "U", relayServer: "r", union: .id("123456789"), version: "1.4.0")))
        guard case .relayResponse(let resp)? = a.receiveMessage() else { Issue.record("A got no RelayResponse"); return }
        #expect(resp.socketAddr.isEmpty && resp.uuid == "U" && resp.relayServer == "r" && resp.version == "1.4.0")
        guard case .pk(let signed)? = resp.union else { Issue.record("expected pk"); return }
        #expect(signed.count == 109)
        // 45: no waiting A → dropped, sender closed.
        let stray = try TCPClient(port: server.port, ip: "127.0.0.2")
        stray.send(.relayResponse(.init(socketAddr: AddrMangle.encode(SocketAddress("10.9.9.9:1")!, timeMicros: 1), uuid: "V")))
        #expect(stray.closedByServer())
        // 39: relays rotate (the unresolvable one was dropped at startup).
        let a2 = try TCPClient(port: server.port)
        a2.send(.punchHoleRequest(.init(id: "123456789", licenceKey: key(server))))
        guard case .punchHole(let ph)? = b.receiveMessage() else { Issue.record("B got no PunchHole"); return }
        #expect(ph.relayServer == "127.0.0.1:21117")
    }

    @Test func tcpOnlyAnswersAndClosures() throws {
        let server = try start()
        defer { server.stop() }
        // 49: TestNatRequest on P → source port, closed.
        let t = try TCPClient(port: server.port)
        t.write(hex("14 a2 01 02 08 03"))
        #expect(t.receiveMessage() == .testNatResponse(.init(port: Int32(t.localPort))))
        #expect(t.closedByServer())
        // 52: P-1 reports the same port number as P for the same local port.
        let nat = try TCPClient(port: server.port - 1)
        nat.send(.testNatRequest(.init(serial: 0)))
        #expect(nat.receiveMessage() == .testNatResponse(.init(port: Int32(nat.localPort))))
        // 48: RegisterPk over TCP without a key (the client's change-ID request) → NOT_SUPPORT.
        // (With a key it is a TCP registration, a RingDesk extension: see tcpRegistration…)
        let r = try TCPClient(port: server.port)
        r.send(.registerPk(.init(id: "123456789", uuid: [1], oldId: "987654321")))
        #expect(r.receiveMessage()?.serializedBytes() == hex("82 01 02 08 06"))
        #expect(r.closedByServer())
        // 51: KeyExchange / HealthCheck / RegisterPeer → closed, no reply.
        for m: RendezvousMessage in [.keyExchange(.init(keys: [[1]])), .hc(.init(token: "t")), .registerPeer(.init(id: "1"))] {
            let c = try TCPClient(port: server.port)
            c.send(m)
            #expect(c.closedByServer())
        }
        // 9: garbage frame → closed; 8: deep groups → closed; 6: oversized header → closed.
        for bytes in [hex("0c ff ff ff"), try FrameCodec.frame([UInt8](repeating: 0x0B, count: 3000) + [UInt8](repeating: 0x0C, count: 3000)), hex("ff ff ff ff")] {
            let c = try TCPClient(port: server.port)
            c.write(bytes)
            #expect(c.closedByServer())
        }
        // Still healthy.
        let u = try UDPClient()
        #expect(u.request(.registerPeer(.init(id: "z")), to: server.port) != nil)
    }

    @Test func secureTCPGreetingAndEncryptedExchange() throws {
        let server = try start()
        defer { server.stop() }
        let serverKey = try Ed25519PublicKey(base64: key(server))
        // §4.5: a plain-TCP connection on P is greeted with a signed ephemeral key.
        let c = try TCPClient(port: server.port)
        guard case .keyExchange(let greeting)? = c.receiveFrame() else { Issue.record("no greeting"); return }
        #expect(greeting.keys.count == 1 && greeting.keys[0].count == 96)
        let (reply, channel) = try SecureHandshake.clientReply(to: greeting, serverKey: serverKey)
        c.send(.keyExchange(reply))
        c.channel = channel
        c.greetingSeen = true
        c.sendSecure(.punchHoleRequest(.init(id: "999999999", licenceKey: "wrong")))
        #expect(c.receiveMessage()?.serializedBytes() == hex("5a 02 18 03"))
        // The NAT port and the WebSocket port never greet.
        let nat = try TCPClient(port: server.port - 1)
        nat.send(.testNatRequest(.init(serial: 0)))
        #expect(nat.receiveFrame() == .testNatResponse(.init(port: Int32(nat.localPort))))
        // A garbage KeyExchange reply closes the connection.
        let bad = try TCPClient(port: server.port)
        guard case .keyExchange? = bad.receiveFrame() else { Issue.record("no greeting"); return }
        bad.send(.keyExchange(.init(keys: [[UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 48)])))
        #expect(bad.closedByServer())
    }

    @Test func aClientThatSpeaksFirstIsNotGreetedAndStaysPlaintext() throws {
        // §4.5: only clients doing the handshake wait for the greeting; one that sends its
        // request at once is answered in plaintext with no KeyExchange before the answer, and
        // no greeting follows later either.
        let server = try start()
        defer { server.stop() }
        for _ in 0..<3 {
            let c = try TCPClient(port: server.port)
            c.send(.punchHoleRequest(.init(id: "999999999", licenceKey: "wrong")))
            #expect(c.receiveFrame()?.serializedBytes() == hex("5a 02 18 03"), "the answer, not a greeting, comes first")
            #expect(c.receiveFrame(within: 0.3) == nil, "nothing after it")
        }
        // A silent client is still greeted (after the short wait), and a later plaintext request
        // on it is answered after that greeting.
        let quiet = try TCPClient(port: server.port)
        let started = now()
        guard case .keyExchange(let greeting)? = quiet.receiveFrame() else { Issue.record("no greeting"); return }
        #expect(greeting.keys.count == 1)
        #expect(now() - started < 2, "greeted within the short wait")
        quiet.send(.punchHoleRequest(.init(id: "999999999", licenceKey: "wrong")))
        quiet.greetingSeen = true
        #expect(quiet.receiveMessage()?.serializedBytes() == hex("5a 02 18 03"))
    }

    @Test func selfTestWatchdogProbesEverySecondAndExitsWithoutReplies() throws {
        // 77: TEST_HBBS pointed at a socket that never answers: RegisterPeer "(:test_hbbs:)" every
        // second, then exit status 1 after more than 12 s of silence.
        let silent = try UDPClient()
        let server = try ServerProcess("hbbs", arguments: ["--admin-console", "off"], environment: ["TEST_HBBS": "127.0.0.1:\(silent.port)"])
        defer { server.stop() }
        var probes = 0
        let deadline = now() + 4
        while now() < deadline {
            if silent.receiveMessage(within: 0.5) == .registerPeer(.init(id: "(:test_hbbs:)")) { probes += 1 }
        }
        #expect((2...6).contains(probes), "\(probes) probes in 4 s")
        #expect(server.exitStatus(within: 15) == 1)
    }

    @Test func tcpAndWebSocketRegistrationMakePeersReachable() throws {
        let server = try start()
        defer { server.stop() }
        let k = key(server)
        // §5.9: B registers over TCP P; OK with keep_alive; online; punched over that connection.
        let b = try TCPClient(port: server.port, ip: "127.0.0.2")
        b.send(.registerPk(.init(id: "123456789", uuid: [1, 2, 3, 4], pk: Self.pk)))
        #expect(b.receiveMessage() == .registerPkResponse(.init(result: .ok, keepAlive: 30)))
        let q = try TCPClient(port: server.port - 1)
        q.send(.onlineRequest(.init(id: "me", peers: ["123456789"])))
        #expect(q.receiveMessage() == .onlineResponse(.init(states: [0x80])))
        let a = try TCPClient(port: server.port)
        a.send(.punchHoleRequest(.init(id: "123456789", natType: .asymmetric, licenceKey: k)))
        guard case .punchHole(let ph)? = b.receiveMessage() else { Issue.record("B got no PunchHole over TCP"); return }
        #expect(AddrMangle.decode(ph.socketAddr) == SocketAddress("127.0.0.1:\(a.localPort)"))
        // RequestRelay reaches B the same way.
        let a2 = try TCPClient(port: server.port)
        a2.send(.requestRelay(.init(id: "123456789", uuid: "U")))
        guard case .requestRelay(let rr)? = b.receiveMessage() else { Issue.record("B got no RequestRelay over TCP"); return }
        #expect(rr.uuid == "U")
        // The server keeps the connection alive with empty frames (every 10 s).
        let payload = b.receivePayload(within: 12)
        #expect(payload == [], "expected an empty keep-alive frame")
        b.write([0x00])
        // WebSocket registration works too.
        let ws = try WebSocketTestClient(port: server.port + 2, path: "/ws/id")
        ws.sendBinary(RendezvousMessage.registerPk(.init(id: "222222222", uuid: [9], pk: Self.pk)).serializedBytes())
        let reply = ws.receiveBinary().flatMap { try? RendezvousMessage(serializedBytes: $0) }
        #expect(reply == .registerPkResponse(.init(result: .ok, keepAlive: 30)))
    }

    @Test func configUpdateFollowsRegisterPeerWhenTheServerSerialIsNewer() throws {
        // 27: -s 5 → RegisterPeer{serial 3} gets the response, then ConfigUpdate{serial 5}.
        let server = try start(["-s", "5", "-R", "a.example.com"])
        defer { server.stop() }
        let c = try UDPClient(ip: "127.0.0.2")
        c.send(.registerPeer(.init(id: "123456789", serial: 3)), to: server.port)
        #expect(c.receiveMessage()?.serializedBytes() == hex("3a 02 10 01"))
        guard case .configureUpdate(let cu)? = c.receiveMessage() else { Issue.record("no ConfigUpdate"); return }
        #expect(cu.serial == 5)
        c.send(.registerPeer(.init(id: "123456789", serial: 5)), to: server.port)
        #expect(c.receiveMessage() != nil)
        #expect(c.receive(within: 0.5) == nil, "no ConfigUpdate when the client is current")
    }

    @Test func configUpdateIsAcceptedFromLoopbackOnly() throws {
        // 28: ConfigUpdate{serial 9} from 127.0.0.1 raises the serial (observable through the next
        // RegisterPeer with serial 3).
        let server = try start()
        defer { server.stop() }
        let c = try UDPClient(ip: "127.0.0.1")
        c.send(.configureUpdate(.init(serial: 9, rendezvousServers: ["localhost"])), to: server.port)
        usleep(200_000)
        c.send(.registerPeer(.init(id: "123456789", serial: 3)), to: server.port)
        #expect(c.receiveMessage() != nil)
        guard case .configureUpdate(let cu)? = c.receiveMessage() else { Issue.record("no ConfigUpdate after the loopback update"); return }
        #expect(cu.serial == 9 && cu.rendezvousServers == ["localhost"])
    }

    @Test func answerForAClosedSinkIsDropped() throws {
        // 47: A's connection closes before B answers → the answer is dropped, nothing breaks.
        let server = try start()
        defer { server.stop() }
        let b = try UDPClient(ip: "127.0.0.2")
        #expect(register(b, port: server.port) != nil)
        var a: TCPClient? = try TCPClient(port: server.port)
        a!.send(.punchHoleRequest(.init(id: "123456789", licenceKey: key(server))))
        guard case .punchHole(let ph)? = b.receiveMessage() else { Issue.record("B got no PunchHole"); return }
        a = nil
        usleep(200_000)
        let bTCP = try TCPClient(port: server.port, ip: "127.0.0.2")
        bTCP.send(.punchHoleSent(.init(socketAddr: ph.socketAddr, id: "123456789", version: "1.4.0")))
        #expect(bTCP.closedByServer())
        #expect(b.request(.registerPeer(.init(id: "123456789")), to: server.port) != nil, "server still healthy")
    }

    @Test func onlineRequestOnAllTCPPorts() throws {
        let server = try start()
        defer { server.stop() }
        let b = try UDPClient(ip: "127.0.0.2")
        #expect(register(b, id: "111111111", port: server.port) != nil)
        #expect(register(b, id: "333333333", port: server.port) != nil)
        for port in [server.port - 1, server.port] {
            let c = try TCPClient(port: port)
            c.send(.onlineRequest(.init(id: "me", peers: ["111111111", "999999999", "333333333"])))
            #expect(c.receiveMessage() == .onlineResponse(.init(states: [0xA0])), "port \(port)")
        }
        let empty = try TCPClient(port: server.port - 1)
        empty.send(.onlineRequest(.init(id: "me", peers: [])))
        #expect(empty.receiveMessage()?.serializedBytes() == hex("c2 01 00"))
    }

    @Test func webSocketPortServesTheSameProtocol() throws {
        let server = try start(["--trusted-proxies", "*"])
        defer { server.stop() }
        let b = try UDPClient(ip: "127.0.0.1")
        #expect(register(b, port: server.port)?.serializedBytes() == hex("82 01 00"))
        let ws = try WebSocketTestClient(port: server.port + 2, path: "/ws/id", headers: ["X-Real-IP: 203.0.113.9"])
        // 10: binary TestNatRequest → binary TestNatResponse; text ignored.
        ws.sendText("hello")
        ws.sendBinary(RendezvousMessage.punchHoleRequest(.init(id: "123456789", licenceKey: key(server))).serializedBytes())
        // 37, 50: same IP over WS still gets PunchHole, carrying X-Real-IP:0.
        guard case .punchHole(let ph)? = b.receiveMessage() else { Issue.record("B got no PunchHole"); return }
        #expect(AddrMangle.decode(ph.socketAddr) == SocketAddress("203.0.113.9:0"))
    }

    @Test func adminConsoleOnTheNATPortFromLoopback() throws {
        let server = try ServerProcess("hbbs", arguments: [], environment: [:])
        defer { server.stop() }
        var reply = ""
        let deadline = now() + 10
        while now() < deadline && reply.isEmpty {
            if let c = try? TCPClient(port: server.port - 1) {
                c.write(Array("aur".utf8))
                reply = String(decoding: c.read(within: 1).bytes, as: UTF8.self)
            } else { usleep(50_000) }
        }
        #expect(reply == "ALWAYS_USE_RELAY: false\n")
        let c = try TCPClient(port: server.port - 1)
        c.write(Array("h".utf8))
        #expect(String(decoding: c.read(within: 1).bytes, as: UTF8.self).split(separator: "\n").count == 7)
        // 58-like: a framed message from loopback is not protocol here (console gets it, answers nothing).
        let f = try TCPClient(port: server.port - 1)
        f.send(.testNatRequest(.init(serial: 1)))
        #expect(f.closedByServer())
    }

    @Test func adminConsoleOnAUnixSocketLeavesTheNATPortToClients() throws {
        let path = makeTempDirectory() + "/hbbs-console.sock"
        let server = try ServerProcess("hbbs", arguments: ["--admin-console", "unix:" + path])
        defer { server.stop() }
        var reply = ""
        let deadline = now() + 10
        while now() < deadline && (reply.isEmpty || reply.hasPrefix("<connect")) {
            reply = unixConsole(path, "aur")
            usleep(50_000)
        }
        #expect(reply == "ALWAYS_USE_RELAY: false\n")
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        // Loopback TCP on P-1 is a client now: the NAT test is answered.
        let nat = try TCPClient(port: server.port - 1)
        nat.send(.testNatRequest(.init(serial: 0)))
        #expect(nat.receiveMessage() == .testNatResponse(.init(port: Int32(nat.localPort))))
        #expect(server.stop() == 0)
        #expect(access(path, F_OK) != 0, "socket removed at exit")
    }

    @Test func keysAreCreatedAndReusedAndCorruptKeysStopTheServer() throws {
        let server = try start()
        let pub = server.readFile("id_ed25519.pub") ?? ""
        let sec = server.readFile("id_ed25519") ?? ""
        #expect(pub.count == 44 && sec.count == 88 && !pub.contains("/"))
        server.stop()
        // Restarted in the same directory: same key; peers in the DB get request_pk then OK (30).
        let again = try start(directory: server.directory)
        #expect(again.readFile("id_ed25519.pub") == pub)
        again.stop()
        // 71: a corrupt key → exit status 1.
        let dir = makeTempDirectory()
        let f = fopen(dir + "/id_ed25519", "w")!
        fputs("AAAA", f); fclose(f)
        let bad = try ServerProcess("hbbs", directory: dir)
        #expect(bad.exitStatus(within: 10) == 1)
    }

    @Test func restartKeepsPeersInTheDatabase() throws {
        let server = try start()
        let b = try UDPClient(ip: "127.0.0.2")
        #expect(register(b, port: server.port)?.serializedBytes() == hex("82 01 00"))
        #expect(server.stop() == 0)
        let again = try start(directory: server.directory)
        defer { again.stop() }
        // 30: request_pk after restart, the same key accepted, and a different uuid still refused.
        #expect(b.request(.registerPeer(.init(id: "123456789")), to: again.port)?.serializedBytes() == hex("3a 02 10 01"))
        #expect(b.request(.registerPk(.init(id: "123456789", uuid: [7], pk: Self.pk)), to: again.port)?.serializedBytes() == hex("82 01 02 08 02"))
        #expect(register(b, port: again.port)?.serializedBytes() == hex("82 01 00"))
        // 34-like: a peer known only from the DB but offline → OFFLINE, not ID_NOT_EXIST.
        let other = try UDPClient(ip: "127.0.0.4")
        #expect(register(other, id: "222222222", port: again.port) != nil)
    }
}

func hex(_ s: String) -> [UInt8] {
    let d = s.filter { !$0.isWhitespace }
    var out: [UInt8] = []
    var i = d.startIndex
    while i < d.endIndex { let j = d.index(i, offsetBy: 2); out.append(UInt8(d[i..<j], radix: 16)!); i = j }
    return out
}
