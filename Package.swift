// swift-tools-version: 6.1
// RingDesk: a wire-compatible, io_uring-based replacement for RustDesk's hbbs/hbbr. Linux only.
import PackageDescription

let package = Package(
    name: "RingDesk",
    products: [
        .executable(name: "rustdesk-utils", targets: ["rustdesk-utils"]),
        .library(name: "RustDeskProtocol", targets: ["RustDeskProtocol"]),
        .library(name: "URing", targets: ["URing"]),
        .library(name: "ProtocolFuzzing", targets: ["ProtocolFuzzing"]),
    ],
    dependencies: [
        // SHA-1 for Sec-WebSocket-Accept and SHA-256 in tests (BoringSSL-backed on Linux).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
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

        // rustdesk-utils: genkeypair / validatekeypair / doctor (§11.4). Logic lives in the library.
        .target(name: "RustDeskUtils", dependencies: ["RustDeskProtocol", "URing"]),
        .executableTarget(name: "rustdesk-utils", dependencies: ["RustDeskUtils"]),

        .testTarget(
            name: "RustDeskProtocolTests",
            dependencies: ["RustDeskProtocol", "ProtocolFuzzing", "CSodium", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "URingTests", dependencies: ["URing"]),
        .testTarget(name: "WorkersTests", dependencies: ["Workers", "URing", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "RustDeskUtilsTests", dependencies: ["RustDeskUtils", "RustDeskProtocol", "URing"]),
    ]
)
