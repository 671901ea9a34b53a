// swift-tools-version: 6.1
// RingDesk: a wire-compatible, io_uring-based replacement for RustDesk's hbbs/hbbr. Linux only.
import PackageDescription

let package = Package(
    name: "RingDesk",
    products: [
        .executable(name: "rustdesk-utils", targets: ["rustdesk-utils"]),
        .executable(name: "hbbs", targets: ["hbbs"]),
        .executable(name: "engine-bench", targets: ["engine-bench"]),
        .executable(name: "hbbr", targets: ["hbbr"]),
        .executable(name: "rdbench", targets: ["rdbench"]),
        .library(name: "RustDeskProtocol", targets: ["RustDeskProtocol"]),
        .library(name: "URing", targets: ["URing"]),
        // For Benchmarks/ (a separate package can only reach products): the registry rules and
        // the engine's pure bookkeeping (PipePool, SlotTable) are measured there.
        .library(name: "Rendezvous", targets: ["Rendezvous"]),
        .library(name: "Workers", targets: ["Workers"]),
        .library(name: "ProtocolFuzzing", targets: ["ProtocolFuzzing"]),
    ],
    dependencies: [
        // SHA-1 for Sec-WebSocket-Accept and SHA-256 in tests (BoringSSL-backed on Linux).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // Latency percentiles in rdbench (HdrHistogram).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Logging facade; RingDesk's own handler writes upstream's line format (ServerKit/Log.swift).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Metrics facade, and the Prometheus registry and text format behind --metrics.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims: only what Swift cannot import directly (see each header).
        .target(
            name: "CURing",
            path: "CShims/CURing",
            linkerSettings: [.linkedLibrary("uring")]
        ),
        .target(
            name: "CSodium",
            path: "CShims/CSodium",
            linkerSettings: [.linkedLibrary("sodium")]
        ),
        .target(
            name: "CSQLite",
            path: "CShims/CSQLite",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),

        // Pure protocol: protobuf codec, framing, AddrMangle, WebSocket, keys. No sockets.
        .target(
            name: "RustDeskProtocol",
            dependencies: [
                "CSodium",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Fuzz target bodies, shared by the libFuzzer package in Fuzz/ and the corpus replay test.
        .target(name: "ProtocolFuzzing", dependencies: ["RustDeskProtocol"]),
        // Mechanism: errno, syscalls, io_uring probe (and, with issue 4, the ring itself).
        .target(name: "URing", dependencies: ["CURing"]),
        // Threads: pinned workers, one ring each, mailboxes; sockets and pumps on top of URing.
        .target(name: "Workers", dependencies: ["URing"]),

        // hbbs logic: registry, registration and punch-hole rules, console. No sockets.
        .target(name: "Rendezvous", dependencies: ["RustDeskProtocol"]),

        // hbbr logic: pairing, bandwidth limits and accounting, IP lists, console. No sockets.
        .target(name: "Relay", dependencies: ["RustDeskProtocol"]),
        // Command line, .env/--config files and environment (§11): pure values; stdlib (+ Glibc to read files).
        .target(name: "ServerConfig"),
        // hbbs persistence (§10): the peer table in SQLite, on its own thread behind a bounded queue.
        .target(name: "PeerStore", dependencies: ["CSQLite"]),

        // Shared by the server executables: address conversion, binding, logging, signals, and the
        // metrics/health HTTP endpoint.
        .target(name: "ServerKit", dependencies: [
            "RustDeskProtocol", "ServerConfig", "URing", "Workers",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // hbbs on the engine: carries out Rendezvous's decisions on UDP P, TCP P, P-1 and P+2.
        .target(name: "RendezvousServer", dependencies: ["ServerKit", "Rendezvous", "RustDeskProtocol", "PeerStore", "ServerConfig", "URing", "Workers"]),
        .executableTarget(name: "hbbs", dependencies: ["RendezvousServer", "ServerKit", "ServerConfig", "RustDeskProtocol", "URing"]),
        // hbbr on the engine: pairing across workers, splice/copy pumps and the message relay, limits.
        .target(name: "RelayServer", dependencies: ["ServerKit", "Relay", "RustDeskProtocol", "ServerConfig", "URing", "Workers"]),
        .executableTarget(name: "hbbr", dependencies: ["RelayServer", "ServerKit", "ServerConfig"]),

        // rustdesk-utils: genkeypair / validatekeypair / doctor (§11.4). Logic lives in the library.
        .target(name: "RustDeskUtils", dependencies: ["RustDeskProtocol", "URing"]),
        .executableTarget(name: "rustdesk-utils", dependencies: ["RustDeskUtils"]),

        // Engine benchmarks (docs/PERFORMANCE.md, "Engine and servers"): the io_uring UDP loop
        // against recvmmsg/sendmmsg, the splice and buffered pumps against a direct connection.
        .executableTarget(name: "engine-bench", dependencies: ["Workers", "URing", "CMmsg", "Rendezvous", "RustDeskProtocol"]),
        // rdbench (issue "rdbench"): load harness against real hbbs/hbbr; logic in LoadHarness.
        .target(name: "LoadHarness", dependencies: ["RustDeskProtocol", "URing", "CLoadHarness", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        .executableTarget(name: "rdbench", dependencies: ["LoadHarness"]),
        // epoll and timerfd headers for LoadHarness (not exported by Swift's Glibc module).
        .target(name: "CLoadHarness"),
        // recvmmsg/sendmmsg (behind _GNU_SOURCE) for engine-bench's baseline server and clients.
        .target(name: "CMmsg", path: "CShims/CMmsg"),

        .testTarget(
            name: "RustDeskProtocolTests",
            dependencies: ["RustDeskProtocol", "ProtocolFuzzing", "CSodium", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "URingTests", dependencies: ["URing"]),
        .testTarget(name: "RendezvousTests", dependencies: ["Rendezvous", "RustDeskProtocol"]),
        .testTarget(name: "RelayTests", dependencies: ["Relay", "RustDeskProtocol"]),
        // Splice and buffered pumps against the real kernel on loopback; SHA-256 of what moved.
        .testTarget(name: "PumpTests", dependencies: ["Workers", "URing", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "WorkersTests", dependencies: ["Workers", "URing", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "RustDeskUtilsTests", dependencies: ["RustDeskUtils", "RustDeskProtocol", "URing"]),
        // Helpers shared by test targets (temporary directories).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ServerConfigTests", dependencies: ["ServerConfig", "TestSupport"]),
        // RUST_LOG filter, log line format, the metrics HTTP request parser and exposition.
        .testTarget(name: "ServerKitTests", dependencies: [
            "ServerKit", "ServerConfig", "Workers",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // End to end: spawns the built executables and speaks the wire protocol over loopback.
        .testTarget(name: "IntegrationTests", dependencies: ["RustDeskProtocol", "URing", "hbbs", "hbbr", "rdbench", "engine-bench"]),
        .testTarget(name: "LoadHarnessTests", dependencies: ["LoadHarness"]),
        .testTarget(name: "PeerStoreTests", dependencies: ["PeerStore", "CSQLite", "TestSupport"]),
        // Deployment artefacts: runs scripts/install.sh into a temporary DESTDIR, checks the units
        // (systemd-analyze verify when present) and the Docker seccomp profile. No server code.
        .testTarget(name: "DeploymentTests"),
    ]
)
