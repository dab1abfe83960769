# Shared by transcode.sh and transcode_cpu.sh: the inputs (generated once into
# target/bench-media/), our transcoder command ($OURS) and the cases, each
# "name|our args|ffmpeg args" (same encoder; same output rate as our plan picks).
# Expects ROOT (the repository) to be set.
W="$ROOT/target/bench-media"
mkdir -p "$W"
cd "$ROOT"

# OURS=example forces the media crate's example (always built from the current tree;
# the server binary may be stale); any other OURS is taken as the transcoder command.
# Binaries are looked for in $CARGO_TARGET_DIR when it is set.
T="${CARGO_TARGET_DIR:-target}"
if [[ -n "${OURS:-}" && "${OURS}" != example ]]; then
  :
elif [[ "${OURS:-}" != example ]] && [[ -x "$T/release/mediastore" ]] && "$T/release/mediastore" transcode --help >/dev/null 2>&1; then
  OURS="$T/release/mediastore transcode"
else
  cargo build -q --release -p mediastore-media --example transcode
  OURS="$T/release/examples/transcode"
fi
echo "ours: $OURS"

q() { ffmpeg -hide_banner -loglevel error -y "$@"; }
if [[ ! -f "$W/speech8k_10min.wav" ]]; then
  # Speech: the fixture looped for 10 minutes.
  q -stream_loop 119 -i fixtures/media/speech16k.wav -t 600 -ar 16000 -c:a pcm_s16le "$W/speech16k_10min.wav"
  q -i "$W/speech16k_10min.wav" -ar 8000 -c:a pcm_s16le "$W/speech8k_10min.wav"
  q -stream_loop 39 -i fixtures/media/music44k.wav -t 180 -c:a pcm_s16le "$W/music_3min.wav"
  q -i "$W/music_3min.wav" -c:a libmp3lame -b:a 128k "$W/music_3min_128k.mp3"
fi

# name | our args | ffmpeg args (same encoder; same output rate as our plan picks)
cases=(
  "speech8k wav -> mp3 32k|$W/speech8k_10min.wav $W/o1.mp3 --bitrate 32|-i $W/speech8k_10min.wav -c:a libmp3lame -b:a 32k -ar 8000 $W/f1.mp3"
  "speech8k wav -> alaw|$W/speech8k_10min.wav $W/o2.al|-i $W/speech8k_10min.wav -f alaw $W/f2.al"
  "speech16k wav -> g722|$W/speech16k_10min.wav $W/o3.g722|-i $W/speech16k_10min.wav -c:a g722 -f g722 $W/f3.g722"
  "music 44.1k stereo wav -> ogg 128k|$W/music_3min.wav $W/o4.ogg|-i $W/music_3min.wav -c:a libvorbis -b:a 128k $W/f4.ogg"
  "music 44.1k stereo wav -> flac|$W/music_3min.wav $W/o5.flac|-i $W/music_3min.wav -c:a flac $W/f5.flac"
  "mp3 128k -> mp3 64k|$W/music_3min_128k.mp3 $W/o6.mp3 --bitrate 64|-i $W/music_3min_128k.mp3 -c:a libmp3lame -b:a 64k -ar 24000 $W/f6.mp3"
)

