#!/bin/sh
# Checks the suites against the p90 thresholds in Thresholds/, or rewrites those files from a
# fresh run. Run from Benchmarks/ (see RESULTS.md, "Thresholds").
#
#   ./thresholds.sh check     exit 0: within tolerance; 2: a regression; 4: only improvements
#                             (a malloc count went down: record it with update)
#   ./thresholds.sh update    after a deliberate change; commit Thresholds/ with it
#
# Only wall clock and malloc counts are stored (BenchmarkSupport.metrics says why throughput is
# not). SwiftProtobufCodec is a comparison, not a budget, and has no thresholds.
set -eu
suites='^(ProtocolCodec|Framing|WebSocketFraming|Registry|PumpBookkeeping)$'
case "${1:-}" in
check)
    exec swift package --disable-sandbox benchmark thresholds check --target "$suites" --no-progress ;;
update)
    exec swift package --disable-sandbox benchmark thresholds update --target "$suites" \
        --metric wallClock --metric mallocCountTotal --no-progress ;;
*)
    echo "usage: $0 check|update" >&2
    exit 64 ;;
esac
