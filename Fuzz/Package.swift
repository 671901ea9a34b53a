// swift-tools-version: 6.1
// libFuzzer targets for RingDesk's decoders. Separate from the main package because these
// executables have no `main` of their own (libFuzzer supplies it) and only link with
// `--sanitize=fuzzer`. Build and run with Fuzz/run.sh (see Fuzz/README.md).
import PackageDescription

let targets = ["RendezvousMessage", "FrameDecoder", "AddrMangle", "WebSocketUpgrade", "WebSocketFrames"]

let package = Package(
    name: "RingDeskFuzz",
    dependencies: [.package(name: "RingDesk", path: "..")],
    targets: targets.map { name in
        .executableTarget(
            name: "Fuzz\(name)",
            dependencies: [.product(name: "ProtocolFuzzing", package: "RingDesk")],
            path: "Sources/Fuzz\(name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    }
)
