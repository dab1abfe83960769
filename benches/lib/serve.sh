# Helpers shared by the serving benches (serve.sh, s3_serve.sh, s3_hot.sh). Sourced (bash) from
# the repository root:
#
#   . benches/lib/serve.sh
#   ms_start "$work/a" [serve args...]  # mediastore (release binary) with --data-dir $work/a/data,
#                                       # --listen 127.0.0.1:${MS_PORT:-0}; sets MS_BASE MS_PID
#   url=$(ms_publish "$MS_BASE" file)   # a customer, the file uploaded with publish=file_sid
#   token=$(ms_customer "$MS_BASE"); url=$(ms_upload "$MS_BASE" "$token" file)  # the same in two
#   ms_stop "$work/a"                   # ms_stop_all in the caller's EXIT trap
#   check_serves url file               # same bytes, 206 with 4096 bytes to a range
#   run_wrk name url connections [lua]  # prints wrk's req/s; errors to stderr; CPU to WRK_CPU_LOG
#   printf '%s\n' ... | median
#
# The binary is $CARGO_TARGET_DIR/release/mediastore (./target without it).

BENCH_ADMIN=bench-admin-token-0123456789
MS_BIN=${CARGO_TARGET_DIR:-target}/release/mediastore
MS_DIRS=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ms_start() { # dir [serve args...]
  local dir=$1
  shift
  mkdir -p "$dir"
  rm -f "$dir/ms.out"
  "$MS_BIN" serve --listen "127.0.0.1:${MS_PORT:-0}" --data-dir "$dir/data" --admin-token "$BENCH_ADMIN" \
    "$@" >"$dir/ms.out" 2>>"$dir/ms.log" &
  MS_PID=$!
  echo "$MS_PID" >"$dir/ms.pid"
  MS_DIRS+=("$dir")
  local _
  for _ in $(seq 300); do
    grep -q listening "$dir/ms.out" 2>/dev/null && break
    kill -0 "$MS_PID" 2>/dev/null || break
    sleep 0.1
  done
  grep -q listening "$dir/ms.out" || { echo "mediastore did not start:" >&2; tail -20 "$dir/ms.log" >&2; return 1; }
  MS_BASE=$(sed -n 's/^mediastore listening on //p' "$dir/ms.out")
}

ms_stop() { # dir
  local pid _
  [ -f "$1/ms.pid" ] || return 0
  pid=$(cat "$1/ms.pid")
  rm -f "$1/ms.pid"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

ms_stop_all() {
  local d
  for d in "${MS_DIRS[@]}"; do ms_stop "$d"; done
}

ms_publish() { # base file -> publish URI
  ms_upload "$1" "$(ms_customer "$1")" "$2"
}

ms_customer() { # base -> the new customer's token
  curl -sf -X POST "$1/v1/customers" -H "Authorization: Bearer $BENCH_ADMIN" -d '{"name":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

ms_upload() { # base token file -> publish URI
  curl -sf -X POST "$1/v1/files?name=$(basename "$3")&publish=file_sid" -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$3" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["publish_uri"])'
}

# The whole body is the file, and a 4 KiB range is answered 206 with 4096 bytes of it.
check_serves() { # url file
  cmp <(curl -sf "$1") "$2" || { echo "${1%%\?*} does not serve the file's bytes" >&2; return 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H 'Range: bytes=100-4195' "$1")" = "206 4096" ] ||
    { echo "${1%%\?*} does not answer a 4 KiB range with 206" >&2; return 1; }
  cmp <(curl -sf -H 'Range: bytes=5000000-5004095' "$1") <(tail -c +5000001 "$2" | head -c 4096) ||
    { echo "${1%%\?*} sends wrong bytes for a range" >&2; return 1; }
}

# CPU (user + system, clock ticks) of a process and its live children.
cpu_ticks() { # pid
  local p
  for p in "$1" $(cat "/proc/$1/task/"*/children 2>/dev/null); do
    awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null
  done | awk '{s += $1} END {print s + 0}'
}

# wrk's "Requests/sec" of one run (THREADS threads, DURATION; FILE_SIZE for the lua script).
# Non-2xx answers and socket errors are printed to stderr with wrk's output. When WRK_CPU_LOG is
# set, a line "name requests ticks..." goes to it: the CPU each of WRK_CPU_PIDS spent in the run.
run_wrk() { # name url connections [lua]
  local out p total
  local -a c0=() c1=()
  for p in "${WRK_CPU_PIDS[@]}"; do c0+=("$(cpu_ticks "$p")"); done
  if [ -n "${4:-}" ]; then
    out=$(FILE_SIZE=${FILE_SIZE:-$SIZE} wrk -t"${THREADS:-2}" -c"$3" -d"${DURATION:-10s}" -s "$4" "$2" 2>&1)
  else
    out=$(wrk -t"${THREADS:-2}" -c"$3" -d"${DURATION:-10s}" "$2" 2>&1)
  fi
  for p in "${WRK_CPU_PIDS[@]}"; do c1+=("$(cpu_ticks "$p")"); done
  if grep -q -e "Non-2xx" -e "Socket errors" <<<"$out"; then
    echo "$1: errors in run:" >&2
    echo "$out" >&2
  fi
  if [ -n "${WRK_CPU_LOG:-}" ]; then
    total=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
    local line="$1 ${total:-0}" i
    for i in "${!c0[@]}"; do line+=" $((c1[i] - c0[i]))"; done
    echo "$line" >>"$WRK_CPU_LOG"
  fi
  sed -n 's/^Requests\/sec: *//p' <<<"$out"
}
WRK_CPU_PIDS=()

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
