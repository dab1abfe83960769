#!/usr/bin/env bash
# CPU per conversion and throughput under load, ours against ffmpeg (same cases, same
# encoders as transcode.sh, ffmpeg on one thread as there), in the same run:
#   - user+system CPU seconds of one conversion, median of RUNS (default 3), and the ratio
#     ours/ffmpeg (target <= 1.0: capacity under many conversions is set by CPU, not wall time);
#   - N parallel conversions (N = cores x 2), conversions per second (median of RUNS), ours and
#     ffmpeg's N processes, and the ratio (target >= 1.0).
# Run on demand (not in CI):  bash benches/transcode_cpu.sh [runs]
# BASE="<transcoder command>" (e.g. a copy of a previous build's example binary) adds that
# build's CPU and throughput, measured in the same run, interleaved with ours.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${1:-3}"
. "$ROOT/benches/lib/transcode_cases.sh"
N=$(( $(nproc) * 2 ))

# "user system" CPU seconds of one run of a command.
cpu() { /usr/bin/time -f '%U %S' -o "$W/t.txt" "$@" >/dev/null 2>&1; awk '{print $1 + $2}' "$W/t.txt"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Seconds of wall time for N copies at once of a command line whose outputs are made distinct
# by SED (a sed expression with @N@ standing for the copy's number).
parallel() { # sed cmdline
  local start end i
  start=$(date +%s.%N)
  for i in $(seq "$N"); do
    # shellcheck disable=SC2046
    $(sed "$1" <<<"$2" | sed "s/@N@/$i/g") >/dev/null 2>&1 &
  done
  wait
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}

printf '\n%-36s %9s %9s %7s   %9s %9s %7s' case "ours cpu" "ff cpu" ratio "ours /s" "ff /s" ratio
[[ -n "${BASE:-}" ]] && printf '   %9s %7s %9s %7s' "base cpu" ratio "base /s" ratio
echo
for c in "${cases[@]}"; do
  IFS='|' read -r name ours theirs <<<"$c"
  ff="ffmpeg -hide_banner -loglevel error -y -threads 1 $theirs"
  # Ours, ffmpeg (and the base build) alternate run by run.
  : >"$W/cpu_a" && : >"$W/cpu_b" && : >"$W/cpu_c"
  for _ in $(seq "$RUNS"); do
    cpu $OURS $ours >>"$W/cpu_a"
    cpu $ff >>"$W/cpu_b"
    if [[ -n "${BASE:-}" ]]; then cpu $BASE $ours >>"$W/cpu_c"; fi
  done
  a=$(median <"$W/cpu_a") b=$(median <"$W/cpu_b") c=0 wc=0
  # N at once, RUNS times, alternating too; median wall time of each.
  # Outputs $W/oK.ext and $W/fK.ext become $W/p<copy>_oK.ext and $W/p<copy>_fK.ext.
  : >"$W/par_a" && : >"$W/par_b" && : >"$W/par_c"
  for _ in $(seq "$RUNS"); do
    parallel "s#$W/o#$W/p@N@_o#" "$OURS $ours" >>"$W/par_a"
    parallel "s#$W/f#$W/p@N@_f#" "$ff" >>"$W/par_b"
    if [[ -n "${BASE:-}" ]]; then parallel "s#$W/o#$W/p@N@_o#" "$BASE $ours" >>"$W/par_c"; fi
  done
  wa=$(median <"$W/par_a") wb=$(median <"$W/par_b")
  if [[ -n "${BASE:-}" ]]; then
    c=$(median <"$W/cpu_c") wc=$(median <"$W/par_c")
  fi
  python3 - "$name" "$a" "$b" "$wa" "$wb" "$N" "$c" "$wc" <<'PY'
import sys
name, a, b, wa, wb, n, c, wc = sys.argv[1], *map(float, sys.argv[2:])
line = f"{name:36s} {a:9.3f} {b:9.3f} {a / b:7.2f}   {n / wa:9.2f} {n / wb:9.2f} {(n / wa) / (n / wb):7.2f}"
if c:
    line += f"   {c:9.3f} {c / b:7.2f} {n / wc:9.2f} {(n / wc) / (n / wb):7.2f}"
print(line)
PY
done
echo "(cpu: user+system seconds per conversion, median of $RUNS; /s: $N parallel conversions per second, median of $RUNS; targets: cpu ratio <= 1.0, throughput ratio >= 1.0; base ratios are against ffmpeg too)"
rm -f "$W"/p*_o* "$W"/p*_f*
