#!/usr/bin/env bash
# Waveforms and loudness normalisation against ffmpeg, in the same run: median of N runs each
# (hyperfine), ratios.
#  (a) a 10-minute recording's waveform (JSON, 256 samples per pixel, as `waveform=json`)
#      against ffmpeg decoding the same file to PCM (target ≤ 0.5x);
#  (b) `norm` (measure, then convert with gain and true-peak limiter, as `norm=-16`) against
#      the same conversion without it (target ≤ 1.3x) and against ffmpeg's two-pass loudnorm
#      (measure, then convert with the measured values) to the same encoder and bitrate.
# Ours: the media crate's examples (the library calls the server makes), built from this tree.
# Run on demand (not in CI):  benches/loudness.sh [runs]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${1:-5}"
OURS=example
. "$ROOT/benches/lib/transcode_cases.sh"
cargo build -q --release -p mediastore-media --example waveform
WF="target/release/examples/waveform"
q() { ffmpeg -hide_banner -loglevel error -y "$@"; }
if [[ ! -f "$W/music_10min_128k.mp3" ]]; then
  q -stream_loop 3 -i "$W/music_3min.wav" -t 600 -c:a pcm_s16le "$W/music_10min.wav"
  q -i "$W/music_10min.wav" -c:a libmp3lame -b:a 128k "$W/music_10min_128k.mp3"
fi
[[ -f "$W/speech8k_10min_alaw.wav" ]] || q -i "$W/speech8k_10min.wav" -c:a pcm_alaw "$W/speech8k_10min_alaw.wav"

row() { printf '%-44s %12s %12s %8s\n' "$@"; }
# Median wall times (ms) of the commands given, by hyperfine, then their mean CPU times (ms,
# user + system: on a shared machine the steadier figure).
medians() {
  hyperfine -N --warmup "${WARMUP:-1}" --runs "$RUNS" --export-json "$W/h.json" "$@" >/dev/null
  python3 -c '
import json,sys
r=json.load(open(sys.argv[1]))["results"]
print(" ".join("%.1f" % (x["median"]*1000) for x in r), " ".join("%.1f" % ((x["user"]+x["system"])*1000) for x in r))' "$W/h.json"
}
ratio() { python3 -c "print('%.2f' % ($1/$2))"; }

echo
echo "(a) waveform=json (256 spp) vs ffmpeg decoding to PCM"
row case "ours (ms)" "ffmpeg (ms)" ratio
for c in "10 min 8 kHz A-law wav (call recording)|$W/speech8k_10min_alaw.wav" \
         "10 min 16 kHz speech wav|$W/speech16k_10min.wav" \
         "10 min 44.1 kHz stereo mp3 128k|$W/music_10min_128k.mp3" \
         "10 min 44.1 kHz stereo wav|$W/music_10min.wav"; do
  IFS='|' read -r name in <<<"$c"
  read -r a b ca cb < <(medians "$WF $in $W/wf.json" \
    "ffmpeg -hide_banner -loglevel error -y -threads 1 -i $in -f s16le -c:a pcm_s16le $W/pcm.raw")
  row "$name" "$a" "$b" "$(ratio "$a" "$b")"
  row "  CPU" "$ca" "$cb" "$(ratio "$ca" "$cb")"
done

# ffmpeg's two-pass loudnorm: measure, then normalise with the measured values (linear when
# it can, as EBU recommends), encoding as ours does.
cat >"$W/loudnorm2.sh" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
in=$1 out=$2; shift 2
m=$(ffmpeg -hide_banner -nostats -threads 1 -i "$in" -af loudnorm=I=-16:TP=-1:print_format=json -f null - 2>&1 | sed -n '/^{/,/^}/p')
get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$m" "$1"; }
ffmpeg -hide_banner -loglevel error -y -threads 1 -i "$in" -af "loudnorm=I=-16:TP=-1:measured_I=$(get input_i):measured_TP=$(get input_tp):measured_LRA=$(get input_lra):measured_thresh=$(get input_thresh):offset=$(get target_offset):linear=true" "$@" "$out"
SH
chmod +x "$W/loudnorm2.sh"

echo
echo "(b) norm=-16 vs the same conversion without it, and vs ffmpeg's two-pass loudnorm"
printf '%-44s %10s %10s %10s %9s %9s\n' case "plain (ms)" "norm (ms)" "ffmpeg (ms)" norm/plain norm/ffmpeg
# loudnorm resamples to 192 kHz internally: ffmpeg's output rate is set back to ours.
# (ffmpeg's loudnorm takes over a minute on these: no warm-up run.)
# Then the CPU of the same two pinned to one core ("pinned"): on this 2-vCPU VM, the limiter's
# thread and the encoder's thread running side by side cost each other CPU time; pinned, the
# figure is the work alone. And "plain, normalised input": the plain conversion of the audio
# norm produces (our --norm output as WAV), i.e. the encoder's own cost on the louder audio,
# which the norm path pays too; norm over it is what measuring, settling and limiting add.
for c in "10 min 16 kHz speech wav -> mp3 32k|$W/speech16k_10min.wav|mp3|--bitrate 32|-c:a libmp3lame -b:a 32k -ar 16000" \
         "3 min 44.1 kHz stereo wav -> mp3 128k|$W/music_3min.wav|mp3||-c:a libmp3lame -b:a 128k -ar 44100"; do
  IFS='|' read -r name in ext ours_args ff_args <<<"$c"
  read -r a b f ca cb cf < <(WARMUP=0 medians \
    "$OURS $in $W/plain.$ext --stream $ours_args" \
    "$OURS $in $W/norm.$ext --norm -16 $ours_args" \
    "$W/loudnorm2.sh $in $W/ff.$ext $ff_args")
  printf '%-44s %10s %10s %10s %9s %9s\n' "$name" "$a" "$b" "$f" "$(ratio "$b" "$a")" "$(ratio "$b" "$f")"
  printf '%-44s %10s %10s %10s %9s %9s\n' "  CPU" "$ca" "$cb" "$cf" "$(ratio "$cb" "$ca")" "$(ratio "$cb" "$cf")"
  $OURS "$in" "$W/normed.wav" --norm -16 >/dev/null
  read -r _ _ _ pa pb pn < <(medians \
    "taskset -c 0 $OURS $in $W/plain.$ext --stream $ours_args" \
    "taskset -c 0 $OURS $in $W/norm.$ext --norm -16 $ours_args" \
    "taskset -c 0 $OURS $W/normed.wav $W/plain.$ext --stream $ours_args")
  printf '%-44s %10s %10s %10s %9s\n' "  CPU pinned (plain, norm, plain normalised)" "$pa" "$pb" "$pn" "$(ratio "$pb" "$pa")"
  printf '%-44s %10s %10s %10s %9s\n' "  norm / plain of normalised input" "" "" "" "$(ratio "$pb" "$pn")"
done

# (c) A one-hour recording's waveform served by the server (the release binary, embedded
# default): its peak RSS (VmHWM) after the GET, against a server that only started and took the
# upload. Peaks are computed in one streaming pass, so memory does not grow with the length.
echo
echo "(c) one-hour recordings, waveform=json served: server peak RSS"
cargo build -q --release
. "$ROOT/benches/lib/serve.sh"
trap ms_stop_all EXIT
[[ -f "$W/speech16k_60min.wav" ]] || q -stream_loop 5 -i "$W/speech16k_10min.wav" -t 3600 -c:a pcm_s16le "$W/speech16k_60min.wav"
[[ -f "$W/music_60min_128k.mp3" ]] || q -stream_loop 5 -i "$W/music_10min_128k.mp3" -t 3600 -c copy "$W/music_60min_128k.mp3"
printf '%-44s %12s %12s %10s %10s\n' case "RSS up (MiB)" "RSS wf (MiB)" "pixels" "secs"
for c in "60 min 16 kHz speech wav|$W/speech16k_60min.wav" "60 min 44.1 kHz stereo mp3 128k|$W/music_60min_128k.mp3"; do
  IFS='|' read -r name in <<<"$c"
  dir=$(mktemp -d)
  ms_start "$dir"
  url=$(ms_publish "$MS_BASE" "$in")
  before=$(awk '/VmHWM/ {print $2}' "/proc/$MS_PID/status")
  t0=$EPOCHREALTIME
  curl -sf "$url?waveform=json" -o "$W/wf60.json"
  secs=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')")
  after=$(awk '/VmHWM/ {print $2}' "/proc/$MS_PID/status")
  px=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["length"])' "$W/wf60.json")
  printf '%-44s %12.1f %12.1f %10s %10s\n' "$name" "$(echo "$before/1024" | bc -l)" "$(echo "$after/1024" | bc -l)" "$px" "$secs"
  ms_stop "$dir"
  rm -rf "$dir"
done
