#!/usr/bin/env bash
# Transcoding through the server (release build), 10-minute 16 kHz mono recordings:
#  - time to first byte of wav → mp3 and wav → g722 (target < 100 ms), and of wav → ogg (its
#    bitrate calibration encodes the first 10 s before any byte leaves)
#  - a Range at minute 9 of wav → alaw on the first request (target < 50 ms), from the 16 kHz
#    source (resampled: seeks to an aligned frame just before the range, drops the filter's
#    warm-up) and from an 8 kHz one (same rate: the conversion seeks to the range)
#  - a cached copy against its first conversion (target ≥ 5× faster)
#  - peak RSS with 8 conversions of 10-minute files at once (target < 150 MiB)
# Each timing is the median of 5 runs (a fresh file per run where "first request" matters).
# Run on demand: bash benches/transcode_server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
admin=bench-admin-token-0123456789
./target/release/mediastore serve --listen 127.0.0.1:0 --data-dir "$work/data" --admin-token "$admin" \
  --transcode-workers 8 --transcode-cache 1GiB >"$work/out" 2>"$work/log" &
echo $! >"$work/pid"
for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
base=$(sed -n 's/^mediastore listening on //p' "$work/out")
token=$(curl -s -X POST "$base/v1/customers" -H "Authorization: Bearer $admin" \
  -d '{"name":"bench","max_containers":2}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# 10 minutes of speech-like audio (tones with a syllable envelope and noise), 16 kHz and 8 kHz mono.
for rate in 16000 8000; do
python3 - "$work/rec$rate.wav" "$rate" <<'PY'
import math, random, struct, sys, wave
rate, secs = int(sys.argv[2]), 600
random.seed(1)
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    frames = bytearray()
    for i in range(rate * secs):
        t = i / rate
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 3 * t)
        f0 = 140 + 40 * math.sin(2 * math.pi * 0.3 * t)
        s = env * (0.5 * math.sin(2 * math.pi * f0 * t) + 0.3 * math.sin(2 * math.pi * 2.7 * f0 * t)) + 0.02 * (random.random() - 0.5)
        frames += struct.pack("<h", int(s * 12000))
    w.writeframes(bytes(frames))
PY
done
cp "$work/rec16000.wav" "$work/rec.wav"

upload() {
  curl -s -X POST "$base/v1/files?name=rec$1.wav&publish=file_sid" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/octet-stream' -T "${2:-$work/rec.wav}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["publish_uri"])'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { python3 -c "print(f'{float(\"$1\")*1000:.1f}')"; }

echo "source: 10 min, 16 kHz mono wav ($(stat -c %s "$work/rec.wav") bytes)"
for f in mp3 g722 ogg; do
  for i in 1 2 3 4 5; do
    uri=$(upload "$f$i")
    python3 benches/ttfb.py "$uri?f=$f"
  done | median >"$work/ttfb"
  echo "first byte, wav → $f (uncached): $(ms "$(cat "$work/ttfb")") ms"
done
for i in 1 2 3 4 5; do
  uri=$(upload "al$i")
  # Minute 9 of the alaw copy: 8000 bytes per second.
  curl -s -o /dev/null -w '%{time_total}\n' -H "Range: bytes=$((540 * 8000))-$((540 * 8000 + 65535))" "$uri?f=alaw"
done | median >"$work/range"
echo "Range at minute 9, 16 kHz wav → alaw (resampled, seeks), first request: $(ms "$(cat "$work/range")") ms"
for i in 1 2 3 4 5; do
  uri=$(upload "al8k$i" "$work/rec8000.wav")
  curl -s -o /dev/null -w '%{time_total}\n' -H "Range: bytes=$((540 * 8000))-$((540 * 8000 + 65535))" "$uri?f=alaw"
done | median >"$work/range8k"
echo "Range at minute 9, 8 kHz wav → alaw (same rate, seeks), first request: $(ms "$(cat "$work/range8k")") ms"

first=(); cached=()
for i in 1 2 3 4 5; do
  uri=$(upload "c$i")
  first+=("$(curl -s -o /dev/null -w '%{time_total}' "$uri?f=mp3")")
  cached+=("$(curl -s -o /dev/null -w '%{time_total}' "$uri?f=mp3")")
done
f_med=$(printf '%s\n' "${first[@]}" | median); c_med=$(printf '%s\n' "${cached[@]}" | median)
echo "wav → mp3 whole copy: first $(ms "$f_med") ms, cached $(ms "$c_med") ms, ratio $(python3 -c "print(f'{$f_med/$c_med:.1f}')")×"

# Eight conversions of eight different 10-minute files at once.
uris=(); for i in 1 2 3 4 5 6 7 8; do uris+=("$(upload "p$i")"); done
pid=$(cat "$work/pid")
before=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
jobs=()
for u in "${uris[@]}"; do curl -s -o /dev/null "$u?f=ogg" & jobs+=($!); done
wait "${jobs[@]}"
after=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "peak RSS: $((after / 1024)) MiB with 8 concurrent conversions (before them: $((before / 1024)) MiB)"
