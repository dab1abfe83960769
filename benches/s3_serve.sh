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

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
SIZE=$((10 << 20))
BIN=${CARGO_TARGET_DIR:-target}/release/mediastore

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "s3_serve.sh needs $tool" >&2; exit 1; }
done
python3 -c 'import boto3' 2>/dev/null || { echo "s3_serve.sh needs python3 boto3" >&2; exit 1; }
garage_program >/dev/null
cargo build --release --quiet

work=$(mktemp -d)
cleanup() {
  [ -f "$work/ms.pid" ] && kill "$(cat "$work/ms.pid")" 2>/dev/null || true
  garage_stop
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

head -c "$SIZE" /dev/urandom >"$work/bench.bin"

# --- Garage ---
garage_start "$work/garage"
garage_env

# --- mediastore on it ---
admin=bench-admin-token-0123456789
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$work/data" --admin-token "$admin" \
  --blob-url "s3://$GARAGE_BUCKET/bench" >"$work/ms.out" 2>"$work/ms.log" &
echo $! >"$work/ms.pid"
for _ in $(seq 100); do grep -q listening "$work/ms.out" && break; sleep 0.1; done
grep -q listening "$work/ms.out" || { echo "mediastore did not start:" >&2; cat "$work/ms.log" >&2; exit 1; }
base=$(sed -n 's/^mediastore listening on //p' "$work/ms.out")
token=$(curl -sf -X POST "$base/v1/customers" -H "Authorization: Bearer $admin" -d '{"name":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ms_url=$(curl -sf -X POST "$base/v1/files?name=bench.bin&publish=file_sid" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/octet-stream' --data-binary @"$work/bench.bin" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["publish_uri"])')

# --- the same object straight from Garage: the only object under bench/, presigned ---
garage_url=$(python3 - "$GARAGE_BUCKET" <<'PY'
import os, sys
import boto3
from botocore.config import Config
bucket = sys.argv[1]
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["AWS_ENDPOINT_URL"],
    region_name=os.environ["AWS_REGION"],
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="bench/").get("Contents", [])]
if len(keys) != 1:
    sys.exit(f"expected one object under bench/, found {keys}")
print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": keys[0]},
                                ExpiresIn=7 * 24 * 3600))  # SigV4's longest
PY
)
echo "mediastore: $ms_url"
echo "garage:     ${garage_url%%\?*} (presigned)"

# Same bytes from both, and a range check.
cmp <(curl -sf "$ms_url") "$work/bench.bin"
cmp <(curl -sf "$garage_url") "$work/bench.bin"
for url in "$ms_url" "$garage_url"; do
  [ "$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H 'Range: bytes=100-4195' "$url")" = "206 4096" ] ||
    { echo "${url%%\?*} does not answer a 4 KiB range with 206" >&2; exit 1; }
done
cmp <(curl -sf -H 'Range: bytes=5000000-5004095' "$ms_url") <(curl -sf -H 'Range: bytes=5000000-5004095' "$garage_url")

ms_pid=$(cat "$work/ms.pid")
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in ticks

# wrk's "Requests/sec" of one run; the CPU mediastore and Garage spent per request in it goes
# to $work/cpu.
run_wrk() { # name url connections [lua]
  local out m0 g0 m1 g1
  m0=$(cpu "$ms_pid")
  g0=$(cpu "$GARAGE_PID")
  if [ -n "${4:-}" ]; then
    out=$(FILE_SIZE=$SIZE wrk -t"$THREADS" -c"$3" -d"$DURATION" -s "$4" "$2" 2>&1)
  else
    out=$(wrk -t"$THREADS" -c"$3" -d"$DURATION" "$2" 2>&1)
  fi
  m1=$(cpu "$ms_pid")
  g1=$(cpu "$GARAGE_PID")
  if grep -q -e "Non-2xx" -e "Socket errors" <<<"$out"; then
    echo "$1: errors in run:" >&2
    echo "$out" >&2
  fi
  local total
  total=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
  echo "$1 $total $((m1 - m0)) $((g1 - g0))" >>"$work/cpu"
  sed -n 's/^Requests\/sec: *//p' <<<"$out"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

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
