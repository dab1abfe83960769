#!/usr/bin/env bash
# What recording metrics costs the hottest path: 4 KiB ranges at random offsets on the publish URI
# (benches/wrk/range4k.lua, 32 connections), the same binary with metrics on (the default) and
# off (the hidden --no-metrics), both running, runs alternating; medians and the ratio.
# Target: metrics on loses at most 3%. Also scrapes /metrics once to show the counters moved.
# Run on demand (not in CI): bash benches/metrics.sh   (RUNS=7 DURATION=5s THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib/serve.sh

RUNS=${RUNS:-7}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
SIZE=$((10 << 20))

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "metrics.sh needs $tool" >&2; exit 1; }
done
cargo build --release --quiet

work=$(mktemp -d)
cleanup() {
  ms_stop_all
  rm -rf "$work"
}
trap cleanup EXIT

head -c "$SIZE" /dev/urandom >"$work/bench.bin"
ms_start "$work/on"
on_base=$MS_BASE
on_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
ms_start "$work/off" --no-metrics
off_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
check_serves "$on_url" "$work/bench.bin"
check_serves "$off_url" "$work/bench.bin"

lua=benches/wrk/range4k.lua
run_wrk warm-on "$on_url" 4 "$lua" >/dev/null
run_wrk warm-off "$off_url" 4 "$lua" >/dev/null

declare -a on off
for i in $(seq "$RUNS"); do
  # Alternate which goes first, so a drift in the machine's load hits both alike.
  if [ $((i % 2)) = 1 ]; then
    on+=("$(run_wrk metrics-on "$on_url" 32 "$lua")")
    off+=("$(run_wrk metrics-off "$off_url" 32 "$lua")")
  else
    off+=("$(run_wrk metrics-off "$off_url" 32 "$lua")")
    on+=("$(run_wrk metrics-on "$on_url" 32 "$lua")")
  fi
  echo "run $i: 4 KiB ranges req/s metrics on ${on[-1]}, off ${off[-1]}"
done

m_on=$(printf '%s\n' "${on[@]}" | median)
m_off=$(printf '%s\n' "${off[@]}" | median)
python3 - "$m_on" "$m_off" <<'PY'
import sys
on, off = map(float, sys.argv[1:])
print(f"4 KiB ranges, 32 conns   median req/s: metrics on {on:,.0f}  off {off:,.0f}  "
      f"ratio {on / off:.3f} (loss {100 * (1 - on / off):.1f}%, target <= 3%)")
PY
curl -sf -H "Authorization: Bearer $BENCH_ADMIN" "$on_base/metrics" |
  grep -E '^mediastore_(http_requests_total\{route="publish"|cache_(hits|misses)_total\{cache="publish")'
