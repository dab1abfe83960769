#!/usr/bin/env bash
# A 1 GiB upload and download through the server; prints throughput and the server's peak RSS
# (VmHWM). Run on demand: bash benches/big_file.sh [size_mib]
# STORE=s3 puts the blobs on a throwaway single-node Garage (benches/lib/garage.sh) with
# `--blob-url s3://<bucket>/bench`: the upload goes out as a multipart upload, the download is a
# streamed GET; Garage's own peak RSS is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
STORE=${STORE:-embedded}
BIN=${CARGO_TARGET_DIR:-target}/release/mediastore
cargo build --release --quiet
work=$(mktemp -d)
blob_args=()
if [ "$STORE" = s3 ]; then
  . benches/lib/garage.sh
  trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; garage_stop; rm -rf "$work"' EXIT
  garage_start "$work/garage"
  garage_env
  blob_args=(--blob-url "s3://$GARAGE_BUCKET/bench")
elif [ "$STORE" = embedded ]; then
  trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
else
  echo "STORE is embedded (default) or s3" >&2
  exit 2
fi
admin=bench-admin-token-0123456789
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$work/data" --admin-token "$admin" "${blob_args[@]}" \
  >"$work/out" 2>"$work/log" &
echo $! >"$work/pid"
for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
base=$(sed -n 's/^mediastore listening on //p' "$work/out")
token=$(curl -s -X POST "$base/v1/customers" -H "Authorization: Bearer $admin" \
  -d '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
head -c $((SIZE_MIB << 20)) /dev/urandom >"$work/big.bin"
pid=$(cat "$work/pid")
echo "file: ${SIZE_MIB} MiB, store: $STORE"
# S3 mode: CPU (user + system) of mediastore and of Garage per phase, from /proc/<pid>/stat.
cpu() { [ "$STORE" = s3 ] && awk '{print $14 + $15}' "/proc/$pid/stat" "/proc/$GARAGE_PID/stat" | paste -sd' '; true; }
c0=$(cpu)
t0=$(date +%s.%N)
sid=$(curl -s -X POST "$base/v1/files?name=big.bin" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/octet-stream' -T "$work/big.bin" -X POST \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["file_sid"])')
t1=$(date +%s.%N)
c1=$(cpu)
curl -s "$base/v1/files/$sid/data" -H "Authorization: Bearer $token" -o "$work/copy.bin"
t2=$(date +%s.%N)
c2=$(cpu)
cmp "$work/big.bin" "$work/copy.bin" && echo "download identical to upload"
python3 - "$t0" "$t1" "$t2" "$SIZE_MIB" <<'PY'
import sys
t0, t1, t2, mib = map(float, sys.argv[1:])
print(f"upload:   {t1 - t0:6.2f} s  {mib / (t1 - t0):7.1f} MiB/s")
print(f"download: {t2 - t1:6.2f} s  {mib / (t2 - t1):7.1f} MiB/s")
PY
grep -E 'VmHWM|VmRSS' "/proc/$pid/status"
if [ "$STORE" = s3 ]; then
  python3 - "$(getconf CLK_TCK)" $c0 $c1 $c2 <<'PY'
import sys
tck, m0, g0, m1, g1, m2, g2 = map(float, sys.argv[1:])
print(f"CPU upload:   mediastore {(m1 - m0) / tck:5.2f} s  garage {(g1 - g0) / tck:5.2f} s")
print(f"CPU download: mediastore {(m2 - m1) / tck:5.2f} s  garage {(g2 - g1) / tck:5.2f} s")
PY
  echo "garage: $(grep -E 'VmHWM' "/proc/$GARAGE_PID/status" | tr -s ' \t' ' ')"
  "$(garage_program)" -c "$GARAGE_DIR/garage.toml" bucket info "$GARAGE_BUCKET" 2>/dev/null |
    grep -iE 'objects|size|unfinished' || true
fi
