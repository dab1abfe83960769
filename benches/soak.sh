#!/usr/bin/env bash
# Soak: mixed uploads, ranges, conversions and deletes against one server on loopback for a
# bounded time; reports the requests made, unexpected answers (errors), and the server's RSS and
# open descriptors at start and end. Stops by itself.
#   bash benches/soak.sh [seconds=60] [clients=4]
# Uses a release build (cargo build --release) unless MEDIASTORE_BIN names a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
CLIENTS=${2:-4}
if [ -z "${MEDIASTORE_BIN:-}" ]; then
  cargo build --release --quiet
  MEDIASTORE_BIN="${CARGO_TARGET_DIR:-target}/release/mediastore"
fi
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
admin=soak-admin-token-0123456789
"$MEDIASTORE_BIN" serve --listen 127.0.0.1:0 --data-dir "$work/data" --admin-token "$admin" \
  --idle-timeout 5s >"$work/out" 2>"$work/log" &
echo $! >"$work/pid"
pid=$(cat "$work/pid")
for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
base=$(sed -n 's/^mediastore listening on //p' "$work/out")
token=$(curl -s -X POST "$base/v1/customers" -H "Authorization: Bearer $admin" \
  -d '{"name":"soak"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
cp fixtures/media/speech8k.wav "$work/speech.wav"
head -c $((256 << 10)) /dev/urandom >"$work/blob.bin"

probe() { # rss_kib fds
  echo "$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status) $(ls /proc/"$pid"/fd | wc -l)"
}
read -r rss0 fd0 < <(probe)

# One client: a loop of upload, ranges, a conversion, a delete, each answer checked.
client() {
  local n=$1 end=$(( $(date +%s) + SECS )) ok=0 bad=0
  while [ "$(date +%s)" -lt "$end" ]; do
    local f=$work/blob.bin name=b$n.bin
    if (( (ok + bad) % 2 == 0 )); then f=$work/speech.wav; name=s$n.wav; fi
    local up
    up=$(curl -s -w '\n%{http_code}' -X POST "$base/v1/files?name=$name&publish=file_sid" \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/octet-stream' \
      --data-binary @"$f")
    if [ "$(tail -n1 <<<"$up")" != 201 ]; then bad=$((bad + 1)); echo "upload: $up" >&2; continue; fi
    local sid uri
    sid=$(head -n1 <<<"$up" | python3 -c 'import json,sys; print(json.load(sys.stdin)["file_sid"])')
    uri=$(head -n1 <<<"$up" | python3 -c 'import json,sys; print(json.load(sys.stdin)["publish_uri"])')
    for r in 0-4095 100-200,300-400 -1000 999999999-; do
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Range: bytes=$r" "$uri")
      case "$r:$code" in 999999999-:416|*:206) ok=$((ok + 1)) ;; *) bad=$((bad + 1)); echo "range $r: $code" >&2 ;; esac
    done
    if [[ $name == *.wav ]]; then
      for q in 'f=mp3' 'f=ulaw' 'f=ogg&br=32'; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$uri?$q")
        case $code in 200|429|503) ok=$((ok + 1)) ;; *) bad=$((bad + 1)); echo "convert $q: $code" >&2 ;; esac
      done
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$base/v1/files/$sid" \
      -H "Authorization: Bearer $token")
    if [ "$code" = 204 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "delete: $code" >&2; fi
    ok=$((ok + 1))
  done
  echo "$ok $bad" >"$work/client.$n"
}

echo "soak: $SECS s, $CLIENTS clients, $base (pid $pid)"
for n in $(seq "$CLIENTS"); do client "$n" 2>>"$work/errors" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
sleep 1
read -r rss1 fd1 < <(probe)
ok=0; bad=0
for n in $(seq "$CLIENTS"); do read -r o b <"$work/client.$n"; ok=$((ok + o)); bad=$((bad + b)); done
acct=$(curl -s "$base/v1/account" -H "Authorization: Bearer $token")
echo "requests answered as expected: $ok, unexpected: $bad"
echo "server errors in its log: $(grep -c 'status=5' "$work/log" || true)"
echo "RSS: ${rss0} KiB at start, ${rss1} KiB at end"
echo "open descriptors: ${fd0} at start, ${fd1} at end"
echo "account after deleting everything: $acct"
echo "descriptors at end, by kind:"
ls -l /proc/"$pid"/fd | awk 'NR > 1 {print $NF}' | sed -E 's/[0-9a-f]{8,}/<id>/g; s/[0-9]+/N/g' | sort | uniq -c | sort -rn
if [ "$bad" -gt 0 ]; then sort "$work/errors" | uniq -c | sort -rn | head -10; exit 1; fi
