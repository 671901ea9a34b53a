#!/usr/bin/env bash
# Build the libFuzzer targets and fuzz one of them.
#   Fuzz/run.sh                       # list targets
#   Fuzz/run.sh FrameDecoder [secs]   # fuzz for secs seconds (default 60) from the seed corpus
# New interesting inputs go to Fuzz/.out/<target>/ (ignored by git); copy the ones worth keeping
# into Fuzz/Corpus/<corpus>/ so that the test suite replays them (CorpusReplayTests).
set -euo pipefail
cd "$(dirname "$0")"
declare -A corpus=([RendezvousMessage]=rendezvous_message [FrameDecoder]=frame_decoder [AddrMangle]=addr_mangle
                 [WebSocketUpgrade]=websocket_upgrade [WebSocketFrames]=websocket_frames)
if [ $# -lt 1 ]; then echo "targets: ${!corpus[*]}"; exit 0; fi
target=$1; secs=${2:-60}
[ -n "${corpus[$target]:-}" ] || { echo "unknown target $target; targets: ${!corpus[*]}" >&2; exit 2; }
flags=(-c release --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp)
swift build "${flags[@]}" --product "Fuzz$target"
mkdir -p ".out/$target"
bin=$(swift build "${flags[@]}" --show-bin-path)/Fuzz$target
exec "$bin" -max_total_time="$secs" -max_len=70000 ".out/$target" "Corpus/${corpus[$target]}"
