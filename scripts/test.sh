#!/usr/bin/env bash
# The test command (README): installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v swift >/dev/null || { echo "swift is not on PATH; install Swift 6.1+ (https://www.swift.org/install/linux/)" >&2; exit 1; }
swift build --build-tests
swift test --skip-build "$@"
