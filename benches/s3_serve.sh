#!/usr/bin/env bash
# Serving speed of the publish URI on the S3 blob store next to the object store itself: the same
# 10 MiB object fetched through mediastore (`--blob-url s3://<bucket>/bench` on a throwaway
# single-node Garage) and straight from Garage with a presigned GET URL (SigV4, path-style):
#   - 4 KiB ranges at random offsets, 32 connections (benches/wrk/range4k.lua)
#   - whole-file downloads, 4 connections
# RUNS runs each (default 3), alternating; prints every figure, medians and ratios
# (mediastore / Garage), and the CPU time each process spent per request (from /proc/<pid>/stat),
# which says where a request's cost goes when mediastore sits in front of Garage.
# Run on demand (not in CI): bash benches/s3_serve.sh
#
# On a small machine wrk, mediastore and Garage share the cores: wrk gets THREADS threads
# (default 2), mediastore its default runtime (one HTTP thread per core), Garage its default
# (a tokio runtime, one worker per core). mediastore logs one line per request, Garage one too
# (RUST_LOG=garage=info, as the tests run it). Through mediastore every request is also a
# request to Garage, so the ratio is what the proxy hop costs. Note (Garage 2.5, loopback): a
# ranged GET on a keep-alive connection to Garage takes ~45 ms (its sockets have Nagle on and the
# headers and body leave in separate writes), so ranges measure that stall on both sides; the
# CPU figures show mediastore's own cost. See benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib/garage.sh
. benches/lib/serve.sh

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
SIZE=$((10 << 20))

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "s3_serve.sh needs $tool" >&2; exit 1; }
done
python3 -c 'import boto3' 2>/dev/null || { echo "s3_serve.sh needs python3 boto3" >&2; exit 1; }
garage_program >/dev/null
cargo build --release --quiet

work=$(mktemp -d)
cleanup() {
  ms_stop_all
  garage_stop
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

head -c "$SIZE" /dev/urandom >"$work/bench.bin"

# --- Garage ---
garage_start "$work/garage"
garage_env

# --- mediastore on it, and the same object straight from Garage (the only one under bench/) ---
# --blob-cache: a node makes a blob local once it fits a quarter of its cache; 32 MiB keeps this
# 10 MiB object on S3, so every request is proxied (benches/s3_hot.sh measures the local copy).
ms_start "$work/ms" --blob-url "s3://$GARAGE_BUCKET/bench" --blob-cache "${BLOB_CACHE:-32MiB}"
ms_pid=$MS_PID
ms_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
garage_url=$(garage_presign bench/)
echo "mediastore: $ms_url"
echo "garage:     ${garage_url%%\?*} (presigned)"

# Same bytes from both, and a range check.
check_serves "$ms_url" "$work/bench.bin"
check_serves "$garage_url" "$work/bench.bin"

ticks=$(getconf CLK_TCK)
WRK_CPU_PIDS=("$ms_pid" "$GARAGE_PID") # CPU per run: "name requests mediastore garage" in $work/cpu
WRK_CPU_LOG=$work/cpu

# Warm both (Garage's and the kernel's caches, mediastore's publish cache and S3 connections).
wrk -t1 -c4 -d2s "$ms_url" >/dev/null
wrk -t1 -c4 -d2s "$garage_url" >/dev/null

lua=benches/wrk/range4k.lua
declare -a ms_r ga_r ms_w ga_w
for i in $(seq "$RUNS"); do
  ms_r+=("$(run_wrk mediastore-range "$ms_url" 32 "$lua")")
  ga_r+=("$(run_wrk garage-range "$garage_url" 32 "$lua")")
  ms_w+=("$(run_wrk mediastore-whole "$ms_url" 4)")
  ga_w+=("$(run_wrk garage-whole "$garage_url" 4)")
  echo "run $i: ranges req/s mediastore ${ms_r[-1]} garage ${ga_r[-1]}; whole files req/s mediastore ${ms_w[-1]} garage ${ga_w[-1]}"
done

m_ms_r=$(printf '%s\n' "${ms_r[@]}" | median)
m_ga_r=$(printf '%s\n' "${ga_r[@]}" | median)
m_ms_w=$(printf '%s\n' "${ms_w[@]}" | median)
m_ga_w=$(printf '%s\n' "${ga_w[@]}" | median)
python3 - "$m_ms_r" "$m_ga_r" "$m_ms_w" "$m_ga_w" "$SIZE" "$ticks" "$work/cpu" <<'PY'
import sys
from collections import defaultdict
ms_r, ga_r, ms_w, ga_w, size, ticks = map(float, sys.argv[1:7])
mib = size / (1 << 20)
print(f"4 KiB ranges, 32 conns   median req/s: mediastore {ms_r:,.0f}  garage {ga_r:,.0f}  ratio {ms_r / ga_r:.2f}x (target >= 0.9)")
print(f"10 MiB whole, 4 conns    median MiB/s: mediastore {ms_w * mib:,.0f}  garage {ga_w * mib:,.0f}  ratio {ms_w / ga_w:.2f}x (target >= 0.9)")
# CPU per request over all runs of a kind (user + system, /proc/<pid>/stat).
acc = defaultdict(lambda: [0, 0, 0])
for line in open(sys.argv[7]):
    name, n, m, g = line.split()
    a = acc[name]
    a[0] += int(n or 0); a[1] += int(m); a[2] += int(g)
unit = {"range": ("µs", 1e6), "whole": ("ms", 1e3)}
for name, (n, m, g) in acc.items():
    if n == 0:
        continue
    u, scale = unit[name.split("-")[1]]
    print(f"CPU per request, {name:17} mediastore {m / ticks / n * scale:7.1f} {u}  garage {g / ticks / n * scale:7.1f} {u}")
PY
