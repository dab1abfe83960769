#!/usr/bin/env bash
# Compares our transcoder against ffmpeg doing the same conversion with the same
# encoder, in the same run: median of N runs each (hyperfine), ratio ours/ffmpeg.
# Run on demand (not in CI):  benches/transcode.sh [runs]
#
# Ours: target/release/mediastore transcode when the server binary has the
# subcommand, otherwise the media crate's example binary (same library call).
# Inputs (generated once into target/bench-media/): 10 min of 8 kHz and 16 kHz
# speech, 3 min of 44.1 kHz stereo music, and that music as 128k mp3.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${1:-5}"
. "$ROOT/benches/lib/transcode_cases.sh"

printf '\n%-36s %12s %12s %8s\n' case "ours (ms)" "ffmpeg (ms)" ratio
for c in "${cases[@]}"; do
  IFS='|' read -r name ours theirs <<<"$c"
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$W/h.json" \
    "$OURS $ours" "ffmpeg -hide_banner -loglevel error -y -threads 1 $theirs" >/dev/null
  read -r a b < <(python3 -c '
import json,sys
r=json.load(open(sys.argv[1]))["results"]
print(r[0]["median"]*1000, r[1]["median"]*1000)' "$W/h.json")
  printf '%-36s %12.1f %12.1f %8.2f\n' "$name" "$a" "$b" "$(python3 -c "print($a/$b)")"
done
