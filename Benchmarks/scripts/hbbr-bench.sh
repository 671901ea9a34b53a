#!/usr/bin/env bash
# The hbbr benchmarks of docs/PERFORMANCE.md, in one run on loopback: the same pairs carried
#   direct   – A and B connected to each other (the baseline),
#   splice   – through hbbr --relay-mode splice (splice(2) called by the worker; the defaults),
#   nobatch  – the same with --batch-wait 0 (workers wake per completion),
#   ring     – through hbbr --relay-mode splice-ring (splices run by io-wq),
#   copy     – through hbbr --relay-mode copy,
#   haproxy  – through HAProxy in TCP mode with option splice-request/splice-response
#              (A → HAProxy → a sink that rdbench accepts as B),
# in alternation, ROUNDS times, reporting medians: throughput as a ratio of direct, and the relay's
# CPU-seconds per GB (from /proc, so a shared machine's noise matters less). Then PACED pairs at
# 180 kB/s A→B (RustDesk's average session): relay CPU per GB, memory per pair, pipes in use; and
# the pairing rate with p99 pairing latency.
#
# Needs: a release build (swift build -c release), haproxy (apt-get install haproxy), python3.
# Usage: Benchmarks/scripts/hbbr-bench.sh [OUT_DIR]    env: ROUNDS (3), PACED ("1000 10000"),
#        PACED_SECONDS (20), WORKERS (2), IO_WORKERS (8), BIN (the release build's bin path)
# Each paced pair costs 2 descriptors in the relay and 2 in rdbench: RLIMIT_NOFILE bounds PACED.
set -euo pipefail
cd "$(dirname "$0")/../.."
# BIN: a directory holding hbbr and rdbench (e.g. a copy of an earlier build, for a before/after).
bin=${BIN:-$(swift build -c release --show-bin-path)}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
rounds=${ROUNDS:-3}
workers=${WORKERS:-2}
paced=${PACED:-1000 10000}
paced_seconds=${PACED_SECONDS:-20}
work=$(mktemp -d)
ulimit -n "$(ulimit -Hn)"
command -v haproxy >/dev/null || { echo "haproxy not installed (apt-get install haproxy)" >&2; exit 1; }

# Every port sits below the ephemeral range (32768+), so thousands of client connections cannot
# take one of them as their local port first.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start_hbbr() { # mode port [name] [extra args...]
  local mode=$1 port=$2 name=${3:-$1}
  shift 2; [ $# -gt 0 ] && shift
  mkdir -p "$work/$name"
  # The bandwidth limits (TOTAL 1024 Mb/s, SINGLE 128 Mb/s by default) are raised out of the way:
  # this measures the relay, not the limiter.
  (cd "$work/$name" && DRAIN_TIME=0 TOTAL_BANDWIDTH=100000000 SINGLE_BANDWIDTH=100000000 exec "$bin/hbbr" -b 127.0.0.1 -p "$port" --admin-console off --relay-mode "$mode" \
     --workers "$workers" --io-workers "${IO_WORKERS:-8}" --metrics "127.0.0.1:$((port + 5))" "$@" >"$work/$name.log" 2>&1) &
  pids+=($!)
}
start_hbbr splice 20117
splice_pid=${pids[-1]}
start_hbbr copy 20217
copy_pid=${pids[-1]}
start_hbbr splice-ring 20417
ring_pid=${pids[-1]}
# The default mode waking per completion (no --batch-wait): what the batched waits change.
start_hbbr splice 20517 nobatch --batch-wait 0
nobatch_pid=${pids[-1]}
cat >"$work/haproxy.cfg" <<CFG
global
    # 2 descriptors per connection plus 2 per pipe must fit RLIMIT_NOFILE.
    maxconn $(( ($(ulimit -n) - 1000) / 2 ))
    maxpipes 256
    nbthread $workers
    tune.pipesize 1048576
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    option splice-request
    option splice-response
frontend relay
    bind 127.0.0.1:20317
    default_backend sink
backend sink
    server sink 127.0.0.1:20318
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=${pids[-1]}
sleep 1

run() { # name target-args... ; prints JSON to $out/name.json
  local name=$1; shift
  "$bin/rdbench" relay "$@" --json >"$out/$name.json" 2>"$out/$name.err" || echo "  ($name: exit $?)" >&2
}
target_args() { # target
  case $1 in
    direct)  echo "--direct" ;;
    splice)  echo "--server 127.0.0.1:20117 --server-pid $splice_pid" ;;
    copy)    echo "--server 127.0.0.1:20217 --server-pid $copy_pid" ;;
    ring)    echo "--server 127.0.0.1:20417 --server-pid $ring_pid" ;;
    nobatch) echo "--server 127.0.0.1:20517 --server-pid $nobatch_pid" ;;
    haproxy) echo "--direct --through 127.0.0.1:20317 --sink-port 20318 --server-pid $haproxy_pid" ;;
  esac
}

echo "flat out: 1 pair × 1 GiB and 64 pairs × 64 MiB each way, $rounds rounds"
for r in $(seq 1 "$rounds"); do
  for t in direct splice nobatch ring copy haproxy; do
    # shellcheck disable=SC2046
    run "flat-1-$t-$r" $(target_args $t) --pairs 1 --bytes 1G --timeout 120s
    # shellcheck disable=SC2046
    run "flat-64-$t-$r" $(target_args $t) --pairs 64 --bytes 64M --timeout 120s
  done
done

for n in $paced; do
  echo "paced: $n pairs at 180K A→B for ${paced_seconds}s"
  for t in splice nobatch ring copy haproxy; do
    # shellcheck disable=SC2046
    run "paced-$n-$t" $(target_args $t) --pairs "$n" --rate 180K --direction a-to-b --duration "${paced_seconds}s" --timeout 300s &
    rp=$!
    # Pipes and copy buffers in use (hbbr's metrics) and threads (io-wq threads are threads of the process),
    # sampled while the run goes on.
    peak=0 threads=0 buffers=0
    while kill -0 $rp 2>/dev/null; do
      case $t in splice) pid=$splice_pid ;; nobatch) pid=$nobatch_pid ;; ring) pid=$ring_pid ;; copy) pid=$copy_pid ;; *) pid=$haproxy_pid ;; esac
      nt=$(ls /proc/$pid/task 2>/dev/null | wc -l)
      [ "$nt" -gt "$threads" ] && threads=$nt
      if [ "$t" != haproxy ]; then
        case $t in splice) port=20122 ;; nobatch) port=20522 ;; ring) port=20422 ;; *) port=20222 ;; esac
        m=$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null)
        v=$(echo "$m" | awk '/^ringdesk_hbbr_pipes_in_use/ {s+=$2} END {print s+0}')
        [ "${v%.*}" -gt "$peak" ] && peak=${v%.*}
        v=$(echo "$m" | awk '/^ringdesk_hbbr_copy_buffers_in_use/ {s+=$2} END {print s+0}')
        [ "${v%.*}" -gt "$buffers" ] && buffers=${v%.*}
      fi
      sleep 1
    done
    wait $rp || true
    echo "$peak" >"$out/paced-$n-$t.pipes"
    echo "$buffers" >"$out/paced-$n-$t.buffers"
    echo "$threads" >"$out/paced-$n-$t.threads"
  done
done

echo "pairing rate: 5000 pairs, 1 KiB each way"
for t in splice haproxy; do
  # shellcheck disable=SC2046
  run "setup-$t" $(target_args $t) --pairs 5000 --bytes 1K --timeout 120s
done

python3 - "$out" "$rounds" "$paced" <<'PY'
import json, os, statistics, sys
out, rounds, paced = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def load(n):
    try: return json.load(open(os.path.join(out, n + ".json")))
    except Exception: return None
def cpu_gb(r):
    s = r and r.get("server_usage")
    return s and s.get("cpu_seconds_per_gb")
def tput(r): return r and r.get("throughput_bytes_per_s")
print("\n| load | target | throughput (median) | × direct | relay CPU-s/GB (median) |")
print("|---|---|---|---|---|")
for load_ in ("flat-1", "flat-64"):
    d = [tput(load(f"{load_}-direct-{i}")) for i in range(1, rounds + 1)]
    for t in ("direct", "splice", "nobatch", "ring", "copy", "haproxy"):
        rs = [load(f"{load_}-{t}-{i}") for i in range(1, rounds + 1)]
        tp = [tput(r) for r in rs if tput(r)]
        ratios = [tput(r) / dd for r, dd in zip(rs, d) if tput(r) and dd]
        cg = [cpu_gb(r) for r in rs if cpu_gb(r)]
        print(f"| {load_} | {t} | {statistics.median(tp)/2**20:.0f} MiB/s | {statistics.median(ratios):.2f} | "
              + (f"{statistics.median(cg):.3f} |" if cg else "– |"))
print("\n| paced pairs | target | achieved per pair | relay CPU-s/GB | relay CPU-s per pair-hour | peak RSS | per pair | pipes in use (peak) | copy buffers in use (peak) | threads (peak) | ok |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for n in paced:
    for t in ("splice", "nobatch", "ring", "copy", "haproxy"):
        r = load(f"paced-{n}-{t}")
        if not r: print(f"| {n} | {t} | failed |"); continue
        s = r.get("server_usage") or {}
        try: pipes = open(os.path.join(out, f"paced-{n}-{t}.pipes")).read().strip()
        except Exception: pipes = "–"
        try: threads = open(os.path.join(out, f"paced-{n}-{t}.threads")).read().strip()
        except Exception: threads = "–"
        try: buffers = open(os.path.join(out, f"paced-{n}-{t}.buffers")).read().strip()
        except Exception: buffers = "–"
        cpu = s.get("cpu_seconds"); secs = r.get("seconds") or 0
        per_pair_hour = cpu / int(n) / secs * 3600 if cpu and secs else None
        print(f"| {n} | {t} | {r.get('achieved_rate_per_direction', 0)/1000:.0f} kB/s | "
              + (f"{s['cpu_seconds_per_gb']:.3f}" if s.get("cpu_seconds_per_gb") else "–") + " | "
              + (f"{per_pair_hour:.2f}" if per_pair_hour else "–") + " | "
              + (f"{s['peak_rss_kib']/1024:.0f} MiB | {s['peak_rss_kib']/int(n):.1f} KiB" if s.get("peak_rss_kib") else "– | –")
              + f" | {pipes if t != 'haproxy' else '–'} | {buffers if t in ('splice', 'nobatch', 'ring') else '–'} | {threads} | {r.get('pairs_completed')}/{n} |")
print("\n| pairing | pairs/s | p50 | p99 |")
print("|---|---|---|---|")
for t in ("splice", "haproxy"):
    r = load(f"setup-{t}")
    if not r: continue
    p = r.get("pairing_latency") or r.get("pairing") or {}
    print(f"| {t} | {r.get('pairs_per_s', 0):.0f} | {p.get('p50_us', '–')} µs | {p.get('p99_us', '–')} µs |")
PY
echo "raw JSON in $out"
