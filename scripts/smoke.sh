#!/usr/bin/env bash
# Smoke test of the README's first command, run by CI after the test suite: starts
# scripts/run.sh as a person would, registers a peer over UDP with rdbench, completes a relay pair
# (every byte verified), then presses "Ctrl-C" (SIGINT to the script's process group) and checks
# that both servers exit and the peer reached the database.
#
# Loopback only: RINGDESK_BIND=127.0.0.1, a free PORT, and ADMIN_CONSOLE=off so that loopback
# clients are served as clients rather than given the admin console (docs/OPERATIONS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
log=$work/run.log

free() { ! (ss -Hltun 2>/dev/null | awk '{print $5}' | grep -Eq "[:.]$1\$"); }
port=""
for base in 41116 42116 43116 44116 45116; do
  if free $((base - 1)) && free "$base" && free $((base + 1)) && free $((base + 2)) && free $((base + 3)); then port=$base; break; fi
done
[ -n "$port" ] || { echo "smoke: no free port range" >&2; exit 1; }

fail() {
  echo "smoke: FAILED: $*" >&2
  echo "---- run.sh output ----" >&2
  cat "$log" >&2 || true
  [ -n "${group:-}" ] && kill -KILL -- "-$group" 2>/dev/null || true
  exit 1
}

# Its own session and process group, like a terminal's foreground job.
RINGDESK_DATA=$work/data RINGDESK_BIND=127.0.0.1 PORT=$port ADMIN_CONSOLE=off \
  setsid "$root/scripts/run.sh" >"$log" 2>&1 &
group=$!

# run.sh builds in release mode first: allow for a slow machine.
deadline=$((SECONDS + 1500))
until grep -q "Press Ctrl-C to stop" "$log" 2>/dev/null; do
  kill -0 "$group" 2>/dev/null || fail "run.sh exited before the servers were up"
  [ $SECONDS -lt $deadline ] || fail "servers not up after 25 minutes"
  sleep 1
done
grep -q "Key:          [A-Za-z0-9+/=]\{44\}" "$log" || fail "no key printed"
bin=$(swift build -c release --show-bin-path)

echo "smoke: servers up on 127.0.0.1:$port; registering a peer"
reg=$(timeout 60 "$bin/rdbench" register --server "127.0.0.1:$port" --peers 1 --rate 5 --duration 2s --json) \
  || fail "rdbench register failed"
python3 - "$reg" <<'PY' || fail "registration: $reg"
import json, sys
r = json.loads(sys.argv[1])
assert r["register_pk"]["ok"] == 1, r["register_pk"]
assert r["register_peer"]["replies"] >= 5 and r["loss"] == 0, r["register_peer"]
PY

echo "smoke: relaying a pair through 127.0.0.1:$((port + 1))"
rel=$(timeout 60 "$bin/rdbench" relay --server "127.0.0.1:$((port + 1))" --pairs 1 --bytes 4M --json) \
  || fail "rdbench relay failed: $rel"
python3 - "$rel" <<'PY' || fail "relay: $rel"
import json, sys
r = json.loads(sys.argv[1])
assert r["pairs_completed"] == 1, r
assert r["bytes_verified"] == 2 * 4 * 1024 * 1024, r
PY

echo "smoke: Ctrl-C"
kill -INT -- "-$group"
for _ in $(seq 1 150); do kill -0 "$group" 2>/dev/null || break; sleep 0.1; done
kill -0 "$group" 2>/dev/null && fail "run.sh still running 15 s after Ctrl-C"
pgrep -g "$group" >/dev/null 2>&1 && fail "a server outlived run.sh"
grep -q "hbbs stopped" "$log" || fail "hbbs did not log a clean stop"
grep -q "hbbr stopped" "$log" || fail "hbbr did not log a clean stop"
for p in $((port - 1)) "$port" $((port + 1)) $((port + 2)) $((port + 3)); do free "$p" || fail "port $p still open"; done
[ -s "$work/data/db_v2.sqlite3" ] || fail "no database written"
python3 -c "import sqlite3" 2>/dev/null || { echo "smoke: python3 has no sqlite3 module; database content not checked"; rm -rf "$work"; echo "smoke: OK"; exit 0; }
python3 - "$work/data/db_v2.sqlite3" <<'PY' || fail "the registered peer is not in the database"
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("select count(*) from peer").fetchone()[0]
assert n >= 1, n
PY
rm -rf "$work"
echo "smoke: OK (start, UDP registration, relay pair, Ctrl-C)"
