#!/usr/bin/env bash
# Serving speed of the publish URI next to nginx (sendfile on) on the same 10 MiB file:
#   - 4 KiB ranges at random offsets, 32 connections (benches/wrk/range4k.lua)
#   - whole-file downloads, 4 connections
# RUNS runs each (default 3), alternating servers; prints every figure, medians and ratios.
# Run on demand (not in CI): bash benches/serve.sh
#
# Fairness on a small machine: wrk gets THREADS threads (default 2), nginx worker_processes 2 and
# mediastore its default runtime (one worker per core, here 2). Both write an access log line
# per request (mediastore always logs one), both serve from the page cache (warmed first).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
SIZE=$((10 << 20))

for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "serve.sh needs $tool" >&2; exit 1; }
done
cargo build --release --quiet

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  [ -f "$work/ms.pid" ] && kill "$(cat "$work/ms.pid")" 2>/dev/null || true
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

# --- the file ---
mkdir -p "$work/www"
head -c "$SIZE" /dev/urandom >"$work/www/bench.bin"
chmod 644 "$work/www/bench.bin"

# --- mediastore ---
admin=bench-admin-token-0123456789
"${CARGO_TARGET_DIR:-target}/release/mediastore" serve --listen 127.0.0.1:0 --data-dir "$work/data" --admin-token "$admin" \
  >"$work/ms.out" 2>"$work/ms.log" &
echo $! >"$work/ms.pid"
for _ in $(seq 100); do grep -q listening "$work/ms.out" && break; sleep 0.1; done
base=$(sed -n 's/^mediastore listening on //p' "$work/ms.out")
token=$(curl -sf -X POST "$base/v1/customers" -H "Authorization: Bearer $admin" -d '{"name":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ms_url=$(curl -sf -X POST "$base/v1/files?name=bench.bin&publish=file_sid" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/octet-stream' --data-binary @"$work/www/bench.bin" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["publish_uri"])')

# --- nginx: own prefix and config, loopback, foreground, as the current user ---
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user $(id -un);"
cat >"$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/bench.bin" && break; sleep 0.1; done
nginx_url="http://127.0.0.1:$port/bench.bin"

# Same bytes from both, and a range check.
cmp <(curl -sf "$ms_url") "$work/www/bench.bin"
cmp <(curl -sf "$nginx_url") "$work/www/bench.bin"
for url in "$ms_url" "$nginx_url"; do
  [ "$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H 'Range: bytes=100-4195' "$url")" = "206 4096" ] ||
    { echo "$url does not answer a 4 KiB range with 206" >&2; exit 1; }
done

# wrk's "Requests/sec" of one run.
run_wrk() { # name url connections [lua]
  local out
  if [ -n "${4:-}" ]; then
    out=$(FILE_SIZE=$SIZE wrk -t"$THREADS" -c"$3" -d"$DURATION" -s "$4" "$2" 2>&1)
  else
    out=$(wrk -t"$THREADS" -c"$3" -d"$DURATION" "$2" 2>&1)
  fi
  if grep -q -e "Non-2xx" -e "Socket errors" <<<"$out"; then
    echo "$1: errors in run:" >&2
    echo "$out" >&2
  fi
  sed -n 's/^Requests\/sec: *//p' <<<"$out"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Warm the page cache and both servers.
wrk -t1 -c4 -d2s "$ms_url" >/dev/null
wrk -t1 -c4 -d2s "$nginx_url" >/dev/null

lua=benches/wrk/range4k.lua
declare -a ms_r ng_r ms_w ng_w
for i in $(seq "$RUNS"); do
  ms_r+=("$(run_wrk mediastore-range "$ms_url" 32 "$lua")")
  ng_r+=("$(run_wrk nginx-range "$nginx_url" 32 "$lua")")
  ms_w+=("$(run_wrk mediastore-whole "$ms_url" 4)")
  ng_w+=("$(run_wrk nginx-whole "$nginx_url" 4)")
  echo "run $i: ranges req/s mediastore ${ms_r[-1]} nginx ${ng_r[-1]}; whole files req/s mediastore ${ms_w[-1]} nginx ${ng_w[-1]}"
done

m_ms_r=$(printf '%s\n' "${ms_r[@]}" | median)
m_ng_r=$(printf '%s\n' "${ng_r[@]}" | median)
m_ms_w=$(printf '%s\n' "${ms_w[@]}" | median)
m_ng_w=$(printf '%s\n' "${ng_w[@]}" | median)
python3 - "$m_ms_r" "$m_ng_r" "$m_ms_w" "$m_ng_w" "$SIZE" <<'PY'
import sys
ms_r, ng_r, ms_w, ng_w, size = map(float, sys.argv[1:])
mib = size / (1 << 20)
print(f"4 KiB ranges, 32 conns   median req/s: mediastore {ms_r:,.0f}  nginx {ng_r:,.0f}  ratio {ms_r / ng_r:.2f}x (target >= 1.0)")
print(f"10 MiB whole, 4 conns    median MiB/s: mediastore {ms_w * mib:,.0f}  nginx {ng_w * mib:,.0f}  ratio {ms_w / ng_w:.2f}x (target >= 0.9)")
PY
