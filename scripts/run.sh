#!/usr/bin/env bash
# Sets everything up and runs RingDesk with its default configuration:
# installs missing packages, builds in release mode, and starts hbbs (and hbbr) in a data
# directory (default ./data; override with RINGDESK_DATA), generating the key pair on first start.
# Ctrl-C stops everything (hbbr first lets running relay sessions finish, up to DRAIN_TIME s).
#
# Environment: RINGDESK_DATA (data directory), RINGDESK_BIND (an address both servers bind,
# default all interfaces), PORT (hbbs's main port, default 21116; hbbr uses PORT+1), and every
# option variable of docs/OPERATIONS.md (it is passed on). Arguments are passed to hbbs.
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

bind=()
[ -n "${RINGDESK_BIND:-}" ] && bind=(-b "$RINGDESK_BIND")
port=${PORT:-21116}
"$bin/hbbs" "${bind[@]}" "$@" &
pids+=($!)
"$bin/hbbr" "${bind[@]}" &
pids+=($!)

# Wait for the key the first start generates.
for _ in $(seq 1 50); do [ -s id_ed25519.pub ] && break; sleep 0.1; done
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null || { echo "a server failed to start; its log is above" >&2; exit 1; }
done
host=$(hostname -I 2>/dev/null | awk '{print $1}')
[ -n "$host" ] || host="<this host's address>"
id_server=$host relay_server=$host
if [ "$port" != 21116 ]; then id_server="$host:$port" relay_server="$host:$((port + 1))"; fi
cat <<INFO

RingDesk is running (data in $data).
In the RustDesk client, Settings → Network → ID/Relay server:
  ID server:    $id_server
  Relay server: $relay_server
  Key:          $(cat id_ed25519.pub 2>/dev/null || echo '<see id_ed25519.pub>')
Open these ports: UDP $port; TCP $((port - 1)), $port, $((port + 1)), $((port + 2)), $((port + 3)).
Press Ctrl-C to stop.
INFO
wait -n "${pids[@]}"
