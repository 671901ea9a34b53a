#!/usr/bin/env bash
# Regenerates the swift-protobuf code used only by the comparison benchmark:
#
#     scripts/gen-swift-protobuf.sh
#
# Output: Benchmarks/SwiftProtobufComparison/Generated/rendezvous.pb.swift (committed, so
# nobody builds the plugin just to run the benchmarks: a first plugin build takes ~10 min
# on 2 cores).
#
# Needs protoc (apt-get install protobuf-compiler) and swift-protobuf's protoc-gen-swift,
# the same version the benchmark package depends on (1.39.0). Override its location with
# PROTOC_GEN_SWIFT=/path/to/protoc-gen-swift (default /tmp/swpb/.build/release/...) and
# protoc's with PROTOC. To build the plugin:
#
#     git clone --branch 1.39.0 https://github.com/apple/swift-protobuf /tmp/swpb
#     swift build -c release --package-path /tmp/swpb --product protoc-gen-swift
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
plugin="${PROTOC_GEN_SWIFT:-/tmp/swpb/.build/release/protoc-gen-swift}"
protoc="${PROTOC:-protoc}"
out="$root/Benchmarks/SwiftProtobufComparison/Generated"

if [[ ! -x "$plugin" ]]; then
    echo "protoc-gen-swift not found at $plugin; build it (see the top of this script)" >&2
    echo "or set PROTOC_GEN_SWIFT" >&2
    exit 1
fi
command -v "$protoc" >/dev/null || { echo "protoc not found; apt-get install protobuf-compiler" >&2; exit 1; }

mkdir -p "$out"
# Public visibility: the generated types live in their own module, imported by the suite.
"$protoc" \
    --plugin=protoc-gen-swift="$plugin" \
    --swift_opt=Visibility=Public \
    --swift_out="$out" \
    -I "$root/proto" \
    rendezvous.proto
echo "wrote ${out#"$root"/}/rendezvous.pb.swift ($("$plugin" --version))"
