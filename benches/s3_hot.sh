#!/usr/bin/env bash
# S3 blobs through the node-local read-through cache (`--blob-cache`), in one run:
#   A: mediastore on PostgreSQL metadata (benches/lib/postgres.sh) and S3 blobs on a throwaway
#      single-node Garage (benches/lib/garage.sh);
#   C: a second node on the same PostgreSQL and bucket (its own data dir and cache), which
#      uploads the files of the cold reads and is stopped before they start, so that A's first
#      read of each is its first sight of the blob: a file uploaded by another node;
#   B: mediastore on the embedded default (SQLite + local files), its own data dir;
# a random 10 MiB file published on A and on B for the hot reads, and RUNS x COLD distinct
# random 10 MiB files published through C for the cold reads, all of one customer (as a node
# sees a customer's files: its container is known to A after the first; the hot file is
# another customer's). A is started once and warmed (its
# hot file served whole and by ranges, so its PostgreSQL pool, its connections to Garage and
# its lazy state are those of a running node). Then RUNS times (default 3):
#   1. cold, COLD times (default 5), each on a file A has never read: one whole download
#      through A timed with curl; once A's cache holds the blob (A's GET fills it as it
#      streams), the same object fetched straight from Garage (presigned GET). Garage's side
#      of file k always comes right after A's read of file k (both find the object's blocks
#      just written, in the page cache);
#   2. hot: A's hot file from its cache, 4 KiB ranges at random offsets over 32 connections
#      (benches/wrk/range4k.lua) and whole downloads over 4 connections, wrk -tTHREADS, on A and
#      on B (alternating).
# Prints every figure, the medians over all cold reads and all runs and the ratios (A / Garage
# cold, as ratio of medians and median of the pairs' ratios; A / B hot), the median time to
# first byte of the cold reads, the Garage requests A made per cold read and during its hot runs
# (0 when it reads its local copy), and the CPU each process spent: per cold read
# (/proc/<pid>/task/*/schedstat, A's from its GET to its cache being complete) and per hot
# request (user + system, /proc/<pid>/stat).
# A_EXTRA adds flags to A alone (e.g. A_EXTRA="--blob-cache-keep 0" for the copy written as the
# chunks come instead of once the client has the blob).
# Run on demand (not in CI), as root (initdb runs as the postgres user): bash benches/s3_hot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib/garage.sh
. benches/lib/postgres.sh
. benches/lib/serve.sh

RUNS=${RUNS:-3}
COLD=${COLD:-5}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
SIZE=$((10 << 20))

for tool in wrk curl python3 runuser; do
  command -v "$tool" >/dev/null || { echo "s3_hot.sh needs $tool" >&2; exit 1; }
done
python3 -c 'import boto3' 2>/dev/null || { echo "s3_hot.sh needs python3 boto3" >&2; exit 1; }
garage_program >/dev/null
cargo build --release --quiet

work=$(mktemp -d)
cleanup() {
  ms_stop_all
  garage_stop
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

head -c "$SIZE" /dev/urandom >"$work/bench.bin"

garage_start "$work/garage"
garage_env
pg_start
echo "garage $GARAGE_ENDPOINT, postgres $PG_URL"

a_args=(--metadata-url "$PG_URL" --blob-url "s3://$GARAGE_BUCKET/bench")
# A_EXTRA: more flags for A only (an A/B of one setting, e.g. A_EXTRA="--blob-cache-keep 0").
ms_start "$work/a" "${a_args[@]}" ${A_EXTRA:-}
a_base=$MS_BASE a_pid=$MS_PID
a_url=$(ms_publish "$a_base" "$work/bench.bin")
garage_url=$(garage_presign_new bench/ "$work/seen")
ms_start "$work/b"
b_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
b_pid=$MS_PID
echo "A (postgres + garage): $a_url"
echo "B (embedded):          $b_url"
echo "garage:                ${garage_url%%\?*} (presigned)"

# The cold files, uploaded through C; their publish URIs on A, their objects' on Garage.
ms_start "$work/c" "${a_args[@]}"
token=$(ms_customer "$MS_BASE")
declare -a cold_urls cold_garage
for n in $(seq $((RUNS * COLD))); do
  head -c "$SIZE" /dev/urandom >"$work/cold$n.bin"
  url=$(ms_upload "$MS_BASE" "$token" "$work/cold$n.bin")
  cold_urls[n]=$a_base/f/${url##*/f/}
  cold_garage[n]=$(garage_presign_new bench/ "$work/seen")
done
ms_stop "$work/c"
echo "$((RUNS * COLD)) cold files uploaded through C"

cache_dir=$work/a/data/blob-cache
# Waits until A's cache holds $1 complete copies (SIZE bytes each); prints how long it took.
wait_filled() { # copies
  local t0=$EPOCHREALTIME _
  for _ in $(seq 600); do
    if [ "$(find "$cache_dir" -type f -size "${SIZE}c" | wc -l)" = "$1" ] &&
      [ "$(ls -A "$cache_dir" | wc -l)" = "$1" ]; then
      python3 -c "print(f'{($EPOCHREALTIME - $t0) * 1000:.0f}')"
      sleep 0.2 # the copy is opened and handed to the blob right after its last write
      return 0
    fi
    sleep 0.05
  done
  echo "A's blob cache did not fill to $1 copies: $(ls -l "$cache_dir")" >&2
  return 1
}

[ -z "$(ls -A "$cache_dir")" ] || { echo "A's blob cache is not empty before its first read" >&2; exit 1; }
for url in "$a_url" "$b_url" "$garage_url"; do check_serves "$url" "$work/bench.bin"; done
wait_filled 1 >/dev/null
copies=1

# One timed whole download; prints MiB/s and the time to its first byte (ms), checks status,
# size and bytes.
timed_get() { # url file
  local got
  got=$(curl -s -o "$work/got.bin" -w '%{http_code} %{size_download} %{time_total} %{time_starttransfer}' "$1")
  set -- $got "$2"
  [ "$1" = 200 ] && [ "$2" = "$SIZE" ] || { echo "cold GET answered $1 with $2 bytes" >&2; return 1; }
  cmp "$work/got.bin" "$5"
  python3 -c "print(f'{$SIZE / (1 << 20) / $3:.1f} {$4 * 1000:.1f}')"
}

# Requests Garage has logged (one line each: "<peer> (key <id>) <METHOD> <path>").
# CPU time (ns, all threads) of a process so far; finer than /proc/<pid>/stat's ticks for one GET.
cpu_ns() { awk '{s += $1} END {printf "%.0f\n", s}' "/proc/$1/task/"*/schedstat 2>/dev/null; }

garage_requests() {
  grep -E ' 127\.0\.0\.1:[0-9]+ (\(key [^)]*\) )?(GET|HEAD|PUT|POST|DELETE) /' "$GARAGE_DIR/garage.log" | grep -vc 'in response to' || true
}

WRK_CPU_LOG=$work/cpu
lua=benches/wrk/range4k.lua
ticks=$(getconf CLK_TCK)
declare -a cold_a cold_g a_r b_r a_w b_w hot_gets
n=0
for i in $(seq "$RUNS"); do
  # --- cold: COLD files A has never read ---
  run_a=() run_g=() run_fill=()
  for _ in $(seq "$COLD"); do
    n=$((n + 1))
    q0=$(garage_requests) a0=$(cpu_ns "$a_pid") g0=$(cpu_ns "$GARAGE_PID")
    set -- $(timed_get "${cold_urls[n]}" "$work/cold$n.bin")
    cold_a+=("$1") run_a+=("$1")
    echo "$2" >>"$work/ttfb-a"
    copies=$((copies + 1))
    run_fill+=("$(wait_filled "$copies")")
    q1=$(garage_requests) a1=$(cpu_ns "$a_pid") g1=$(cpu_ns "$GARAGE_PID")
    set -- $(timed_get "${cold_garage[n]}" "$work/cold$n.bin")
    cold_g+=("$1") run_g+=("$1")
    echo "$2" >>"$work/ttfb-g"
    g2=$(cpu_ns "$GARAGE_PID")
    echo "A-cold $((q1 - q0)) $((a1 - a0)) $((g1 - g0))" >>"$work/cold"
    echo "garage-cold 1 0 $((g2 - g1))" >>"$work/cold"
  done
  # --- hot ---
  WRK_CPU_PIDS=("$a_pid" "$b_pid" "$GARAGE_PID" "$PG_PID")
  wrk -t1 -c4 -d1s "$a_url" >/dev/null
  wrk -t1 -c4 -d1s "$b_url" >/dev/null
  g0=$(garage_requests)
  a_r+=("$(run_wrk A-range "$a_url" 32 "$lua")")
  g1=$(garage_requests)
  b_r+=("$(run_wrk B-range "$b_url" 32 "$lua")")
  g2=$(garage_requests)
  a_w+=("$(run_wrk A-whole "$a_url" 4)")
  g3=$(garage_requests)
  b_w+=("$(run_wrk B-whole "$b_url" 4)")
  hot_gets+=("$((g1 - g0 + g3 - g2))")
  echo "run $i: cold MiB/s A ${run_a[*]} garage ${run_g[*]} (A's cache complete ${run_fill[*]} ms after its GET ended, 50 ms polls);" \
    "hot ranges req/s A ${a_r[-1]} B ${b_r[-1]}; whole req/s A ${a_w[-1]} B ${b_w[-1]};" \
    "Garage requests during A's hot runs: ${hot_gets[-1]}"
done

python3 - "$SIZE" "$ticks" "$WRK_CPU_LOG" "$work/cold" "$work/ttfb-a" "$work/ttfb-g" \
  "$(IFS=,; echo "${cold_a[*]}")" "$(IFS=,; echo "${cold_g[*]}")" \
  "$(printf '%s\n' "${a_r[@]}" | median)" "$(printf '%s\n' "${b_r[@]}" | median)" \
  "$(printf '%s\n' "${a_w[@]}" | median)" "$(printf '%s\n' "${b_w[@]}" | median)" <<'PY'
import sys
from collections import defaultdict
size, ticks = map(float, sys.argv[1:3])
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
pairs = list(zip(*([float(x) for x in sys.argv[k].split(",")] for k in (7, 8))))
ttfb_a, ttfb_g = (median(float(x) for x in open(sys.argv[k])) for k in (5, 6))
a_r, b_r, a_w, b_w = map(float, sys.argv[9:13])
mib = size / (1 << 20)
cold_a, cold_g = median(a for a, _ in pairs), median(g for _, g in pairs)
print(f"cold first read, 10 MiB, {len(pairs)} files  median MiB/s: A {cold_a:,.0f}  garage {cold_g:,.0f}  ratio {cold_a / cold_g:.2f}x"
      f" (median of pair ratios {median(a / g for a, g in pairs):.2f}x; target >= 0.9)")
print(f"cold first read, median time to first byte: A {ttfb_a:.1f} ms  garage {ttfb_g:.1f} ms")
print(f"hot 4 KiB ranges, 32 conns median req/s: A {a_r:,.0f}  B {b_r:,.0f}  ratio {a_r / b_r:.2f}x (target >= 0.9)")
print(f"hot 10 MiB whole, 4 conns  median MiB/s: A {a_w * mib:,.0f}  B {b_w * mib:,.0f}  ratio {a_w / b_w:.2f}x (target >= 0.9)")
acc = defaultdict(lambda: [0] * 5)
for line in open(sys.argv[3]):
    name, n, *t = line.split()
    a = acc[name]
    a[0] += int(n)
    for k, v in enumerate(t):
        a[k + 1] += int(v)
# The cold reads: A's window runs from its GET to the end of its cache fill.
cold = defaultdict(list)
for line in open(sys.argv[4]):
    name, q, a, g = line.split()
    cold[name].append((int(q), int(a) / 1e6, int(g) / 1e6))
for name, rows in cold.items():
    med = lambda k: sorted(r[k] for r in rows)[len(rows) // 2]
    if name == "A-cold":
        print(f"cold read through A (GET + cache fill), median: Garage requests {med(0)}, CPU A {med(1):.1f} ms, garage {med(2):.1f} ms")
    else:
        print(f"cold read straight from Garage, median: CPU garage {med(2):.1f} ms")
unit = {"range": ("µs", 1e6), "whole": ("ms", 1e3)}
for name, (n, *t) in acc.items():
    if n == 0:
        continue
    u, scale = unit[name.split("-")[1]]
    cols = "  ".join(f"{who} {v / ticks / n * scale:7.1f} {u}"
                     for who, v in zip(("A", "B", "garage", "postgres"), t))
    print(f"CPU per request, {name:8} {cols}")
PY
