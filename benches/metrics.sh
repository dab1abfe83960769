#!/usr/bin/env bash
# What recording metrics costs the hottest path: 4 KiB ranges at random offsets on the publish URI
# (benches/wrk/range4k.lua, 32 connections), the same binary with metrics on (the default) and
# off (the hidden --no-metrics), both running, runs alternating; medians and the ratio.
# Target: metrics on loses at most 3%. On a busy machine the load drifts between runs: the
# median of each run's back-to-back on/off ratio is the figure to read, beside the medians.
# Also scrapes /metrics once to show the counters moved.
# Run on demand (not in CI): bash benches/metrics.sh   (RUNS=11 DURATION=4s THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib/serve.sh

RUNS=${RUNS:-11}
DURATION=${DURATION:-4s}
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
on_pid=$MS_PID
on_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
ms_start "$work/off" --no-metrics
off_pid=$MS_PID
off_url=$(ms_publish "$MS_BASE" "$work/bench.bin")
check_serves "$on_url" "$work/bench.bin"
check_serves "$off_url" "$work/bench.bin"

lua=benches/wrk/range4k.lua
run_wrk warm-on "$on_url" 4 "$lua" >/dev/null
run_wrk warm-off "$off_url" 4 "$lua" >/dev/null

# Each run also logs the CPU both servers spent (benches/lib/serve.sh): CPU per request is far
# less disturbed by other work on the machine than requests per second.
WRK_CPU_PIDS=("$on_pid" "$off_pid")
WRK_CPU_LOG=$work/cpu.log
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
python3 - "$m_on" "$m_off" "${on[*]}" "${off[*]}" "$WRK_CPU_LOG" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
on, off = map(float, sys.argv[1:3])
pairs = [a / b for a, b in zip(map(float, sys.argv[3].split()), map(float, sys.argv[4].split()))]
paired = statistics.median(pairs)
print(f"4 KiB ranges, 32 conns   median req/s: metrics on {on:,.0f}  off {off:,.0f}  "
      f"ratio of medians {on / off:.3f}")
print(f"median of the {len(pairs)} back-to-back req/s ratios: {paired:.3f} "
      f"(loss {100 * (1 - paired):.1f}%, target <= 3%)")
# CPU per request of the server under test in each run ("name requests ticks_on ticks_off").
tick_us = 1e6 / float(sys.argv[6])
us = {"metrics-on": [], "metrics-off": []}
for line in open(sys.argv[5]):
    name, requests, t_on, t_off = line.split()
    if name in us and int(requests) > 0:
        ticks = int(t_on) if name == "metrics-on" else int(t_off)
        us[name].append(ticks * tick_us / int(requests))
c_on, c_off = statistics.median(us["metrics-on"]), statistics.median(us["metrics-off"])
print(f"server CPU per request (median): metrics on {c_on:.2f} us  off {c_off:.2f} us  "
      f"ratio {c_on / c_off:.3f} (extra {100 * (c_on / c_off - 1):.1f}%)")
PY
curl -sf -H "Authorization: Bearer $BENCH_ADMIN" "$on_base/metrics" |
  grep -E '^mediastore_(http_requests_total\{route="publish"|cache_(hits|misses)_total\{cache="publish")'
