#!/usr/bin/env bash
# Hot S3 blobs served from the node's local copy (`--blob-cache`), in one run:
#   A: mediastore on PostgreSQL metadata (benches/lib/postgres.sh) and S3 blobs on a throwaway
#      single-node Garage (benches/lib/garage.sh);
#   B: mediastore on the embedded default (SQLite + local files), its own data dir;
# the same random 10 MiB file published on both. Then RUNS times (default 3):
#   1. cold: A restarted (its blob cache is emptied at start), one whole download timed with
#      curl, next to the same object fetched straight from Garage (presigned GET);
#   2. hot: once A's cache holds the blob (one complete file in <A's data dir>/blob-cache),
#      4 KiB ranges at random offsets over 32 connections (benches/wrk/range4k.lua) and whole
#      downloads over 4 connections, wrk -tTHREADS, on A and on B (alternating).
# Prints every figure, the medians and ratios (A / Garage cold, A / B hot), the Garage requests
# A made for its cold read and during its hot runs (0 when it reads its local copy), and the CPU
# each process spent: per cold read (/proc/<pid>/task/*/schedstat) and per hot request (user +
# system, /proc/<pid>/stat). The Garage GET of a run comes after A's cache has filled.
# Run on demand (not in CI), as root (initdb runs as the postgres user): bash benches/s3_hot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib/garage.sh
. benches/lib/postgres.sh
. benches/lib/serve.sh

RUNS=${RUNS:-3}
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

# A on a fixed port, so its publish URI stays the same across restarts.
a_args=(--metadata-url "$PG_URL" --blob-url "s3://$GARAGE_BUCKET/bench")
a_port=$(free_port)
MS_PORT=$a_port ms_start "$work/a" "${a_args[@]}"
a_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
ms_start "$work/b"
b_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
b_pid=$MS_PID
garage_url=$(garage_presign bench/)
echo "A (postgres + garage): $a_url"
echo "B (embedded):          $b_url"
echo "garage:                ${garage_url%%\?*} (presigned)"
for url in "$a_url" "$b_url" "$garage_url"; do check_serves "$url" "$work/bench.bin"; done

cache_dir=$work/a/data/blob-cache
# Waits until A's cache holds one complete copy of the blob; prints how long it took.
wait_filled() {
  local t0=$EPOCHREALTIME _ f
  for _ in $(seq 600); do
    f=("$cache_dir"/*)
    if [ "${#f[@]}" = 1 ] && [ -f "${f[0]}" ] && [ "$(stat -c %s "${f[0]}")" = "$SIZE" ]; then
      python3 -c "print(f'{($EPOCHREALTIME - $t0) * 1000:.0f}')"
      sleep 0.2 # the copy is opened and handed to the blob right after its last write
      return 0
    fi
    sleep 0.05
  done
  echo "A's blob cache did not fill: $(ls -l "$cache_dir")" >&2
  return 1
}

# One timed whole download; prints MiB/s, checks status, size and bytes.
timed_get() { # url
  local got
  got=$(curl -s -o "$work/got.bin" -w '%{http_code} %{size_download} %{time_total}' "$1")
  set -- $got
  [ "$1" = 200 ] && [ "$2" = "$SIZE" ] || { echo "cold GET answered $1 with $2 bytes" >&2; return 1; }
  cmp "$work/got.bin" "$work/bench.bin"
  python3 -c "print(f'{$SIZE / (1 << 20) / $3:.1f}')"
}

# Requests Garage has logged (one line each: "<peer> (key <id>) <METHOD> <path>").
# CPU time (ns, all threads) of a process so far; finer than /proc/<pid>/stat's ticks for one GET.
cpu_ns() { awk '{s += $1} END {print s + 0}' "/proc/$1/task/"*/schedstat 2>/dev/null; }

garage_requests() {
  grep -E ' 127\.0\.0\.1:[0-9]+ (\(key [^)]*\) )?(GET|HEAD|PUT|POST|DELETE) /' "$GARAGE_DIR/garage.log" | grep -vc 'in response to' || true
}

WRK_CPU_LOG=$work/cpu
lua=benches/wrk/range4k.lua
ticks=$(getconf CLK_TCK)
declare -a cold_a cold_g a_r b_r a_w b_w fill_ms hot_gets
for i in $(seq "$RUNS"); do
  # --- cold ---
  ms_stop "$work/a"
  MS_PORT=$a_port ms_start "$work/a" "${a_args[@]}"
  a_pid=$MS_PID
  [ -z "$(ls -A "$cache_dir")" ] || { echo "A's blob cache is not empty after a restart" >&2; exit 1; }
  q0=$(garage_requests) a0=$(cpu_ns "$a_pid") g0=$(cpu_ns "$GARAGE_PID")
  cold_a+=("$(timed_get "$a_url")")
  fill_ms+=("$(wait_filled)")
  q1=$(garage_requests) a1=$(cpu_ns "$a_pid") g1=$(cpu_ns "$GARAGE_PID")
  cold_g+=("$(timed_get "$garage_url")")
  g2=$(cpu_ns "$GARAGE_PID")
  echo "A-cold $((q1 - q0)) $((a1 - a0)) $((g1 - g0))" >>"$work/cold"
  echo "garage-cold 1 0 $((g2 - g1))" >>"$work/cold"
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
  echo "run $i: cold MiB/s A ${cold_a[-1]} garage ${cold_g[-1]} (A's cache complete ${fill_ms[-1]} ms after its GET ended, 50 ms polls);" \
    "hot ranges req/s A ${a_r[-1]} B ${b_r[-1]}; whole req/s A ${a_w[-1]} B ${b_w[-1]};" \
    "Garage requests during A's hot runs: ${hot_gets[-1]}"
done

python3 - "$SIZE" "$ticks" "$WRK_CPU_LOG" "$work/cold" \
  "$(printf '%s\n' "${cold_a[@]}" | median)" "$(printf '%s\n' "${cold_g[@]}" | median)" \
  "$(printf '%s\n' "${a_r[@]}" | median)" "$(printf '%s\n' "${b_r[@]}" | median)" \
  "$(printf '%s\n' "${a_w[@]}" | median)" "$(printf '%s\n' "${b_w[@]}" | median)" <<'PY'
import sys
from collections import defaultdict
size, ticks = map(float, sys.argv[1:3])
cold_a, cold_g, a_r, b_r, a_w, b_w = map(float, sys.argv[5:11])
mib = size / (1 << 20)
print(f"cold first read, 10 MiB  median MiB/s: A {cold_a:,.0f}  garage {cold_g:,.0f}  ratio {cold_a / cold_g:.2f}x (target >= 0.9)")
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
