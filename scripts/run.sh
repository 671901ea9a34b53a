#!/usr/bin/env bash
# Sets everything up and runs RingDesk with its default configuration:
# installs missing packages, builds in release mode, and starts hbbs (and hbbr) in a data
# directory (default ./data; override with RINGDESK_DATA), generating the key pair on first start.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data=${RINGDESK_DATA:-$root/data}
scripts/install-deps.sh
command -v swift >/dev/null || { echo "swift is not on PATH; install Swift 6.1+ (https://www.swift.org/install/linux/)" >&2; exit 1; }
swift build -c release
bin=$(swift build -c release --show-bin-path)
mkdir -p "$data"
cd "$data"

pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait || true; }
trap stop INT TERM EXIT

"$bin/hbbs" "$@" &
pids+=($!)
if [ -x "$bin/hbbr" ]; then
  "$bin/hbbr" &
  pids+=($!)
fi

# Wait for the key the first start generates.
for _ in $(seq 1 50); do [ -s id_ed25519.pub ] && break; sleep 0.1; done
host=$(hostname -I 2>/dev/null | awk '{print $1}')
[ -n "$host" ] || host="<this host's address>"
cat <<INFO

RingDesk is running (data in $data).
In the RustDesk client, Settings → Network → ID/Relay server:
  ID server:    $host
  Relay server: $host
  Key:          $(cat id_ed25519.pub 2>/dev/null || echo '<see id_ed25519.pub>')
Open these ports: UDP 21116; TCP 21115, 21116, 21117, 21118, 21119.
Press Ctrl-C to stop.
INFO
wait -n "${pids[@]}"
