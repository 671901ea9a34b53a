#!/usr/bin/env bash
# The test command (README): installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v swift >/dev/null || { echo "swift is not on PATH; install Swift 6.1+ (https://www.swift.org/install/linux/)" >&2; exit 1; }
swift build --build-tests
# Serial: several suites prove "no descriptor leaked" by counting the process's own /proc/self/fd
# (rings, eventfds, pipes); suites running beside them would make those counts meaningless.
swift test --skip-build --no-parallel "$@"
# The README's first command, end to end (only for a full run, not a filtered one).
if [ $# -eq 0 ] && [ "${RINGDESK_SKIP_SMOKE:-}" != 1 ]; then scripts/smoke.sh; fi
