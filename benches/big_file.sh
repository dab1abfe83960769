#!/usr/bin/env bash
# A 1 GiB upload and download through the server; prints throughput and the server's peak RSS
# (VmHWM). Run on demand: bash benches/big_file.sh [size_mib]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
admin=bench-admin-token-0123456789
./target/release/mediastore serve --listen 127.0.0.1:0 --data-dir "$work/data" --admin-token "$admin" \
  >"$work/out" 2>"$work/log" &
echo $! >"$work/pid"
for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
base=$(sed -n 's/^mediastore listening on //p' "$work/out")
token=$(curl -s -X POST "$base/v1/customers" -H "Authorization: Bearer $admin" \
  -d '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
head -c $((SIZE_MIB << 20)) /dev/urandom >"$work/big.bin"
pid=$(cat "$work/pid")
echo "file: ${SIZE_MIB} MiB"
t0=$(date +%s.%N)
sid=$(curl -s -X POST "$base/v1/files?name=big.bin" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/octet-stream' -T "$work/big.bin" -X POST \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["file_sid"])')
t1=$(date +%s.%N)
curl -s "$base/v1/files/$sid/data" -H "Authorization: Bearer $token" -o "$work/copy.bin"
t2=$(date +%s.%N)
cmp "$work/big.bin" "$work/copy.bin" && echo "download identical to upload"
python3 - "$t0" "$t1" "$t2" "$SIZE_MIB" <<'PY'
import sys
t0, t1, t2, mib = map(float, sys.argv[1:])
print(f"upload:   {t1 - t0:6.2f} s  {mib / (t1 - t0):7.1f} MiB/s")
print(f"download: {t2 - t1:6.2f} s  {mib / (t2 - t1):7.1f} MiB/s")
PY
grep -E 'VmHWM|VmRSS' "/proc/$pid/status"
