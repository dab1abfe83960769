# A throwaway single-node Garage (S3-compatible object store) for the benches, as
# tests/common/garage.rs starts one: free loopback ports, everything in one directory, a default
# key and bucket. Sourced (bash):
#
#   . benches/lib/garage.sh
#   garage_start "$work/garage"     # sets GARAGE_ENDPOINT GARAGE_BUCKET GARAGE_ACCESS_KEY
#                                   #      GARAGE_SECRET_KEY GARAGE_PID
#   garage_env                      # exports AWS_* for mediastore / boto3
#   ...
#   garage_stop                     # in the caller's EXIT trap
#
# The program: $GARAGE, else $MEDIASTORE_GARAGE, else /var/tmp/mediastore-tools/garage/bin/garage,
# else `garage` on the PATH. Its log is $dir/garage.log (RUST_LOG=garage=info, as in the tests:
# one line per request, much as mediastore and nginx log one). GARAGE_BLOCK_SIZE (bytes) sets
# Garage's block_size (default 1 MiB: a read of any part of a block reads and checks all of it).

garage_program() {
  local p
  for p in "${GARAGE:-}" "${MEDIASTORE_GARAGE:-}" /var/tmp/mediastore-tools/garage/bin/garage; do
    [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return 0; }
  done
  command -v garage || { echo "garage not found (set GARAGE=/path/to/garage)" >&2; return 1; }
}

_garage_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
_garage_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

garage_start() { # dir
  local dir=$1 prog s3_port rpc_port
  prog=$(garage_program) || return 1
  mkdir -p "$dir"
  s3_port=$(_garage_port)
  rpc_port=$(_garage_port)
  cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
replication_factor = 1
${GARAGE_BLOCK_SIZE:+block_size = $GARAGE_BLOCK_SIZE}
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(_garage_hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
TOML
  GARAGE_ENDPOINT="http://127.0.0.1:$s3_port"
  GARAGE_BUCKET=${GARAGE_BUCKET:-mediastore-bench}
  GARAGE_ACCESS_KEY="GK$(_garage_hex 12)"
  GARAGE_SECRET_KEY=$(_garage_hex 32)
  GARAGE_DIR=$dir
  GARAGE_DEFAULT_ACCESS_KEY=$GARAGE_ACCESS_KEY GARAGE_DEFAULT_SECRET_KEY=$GARAGE_SECRET_KEY \
    GARAGE_DEFAULT_BUCKET=$GARAGE_BUCKET RUST_LOG=${GARAGE_LOG:-garage=info} \
    "$prog" -c "$dir/garage.toml" server --single-node --default-access-key --default-bucket \
    >"$dir/garage.log" 2>&1 </dev/null &
  GARAGE_PID=$!
  echo "$GARAGE_PID" >"$dir/garage.pid"
  # Ready once it has made the default bucket (logged after the S3 API is bound).
  local _
  for _ in $(seq 600); do
    if grep -q "default bucket" "$dir/garage.log" 2>/dev/null &&
      curl -s -o /dev/null "$GARAGE_ENDPOINT/"; then
      return 0
    fi
    kill -0 "$GARAGE_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "garage did not start:" >&2
  cat "$dir/garage.log" >&2
  return 1
}

# The AWS_* variables a mediastore server (or boto3) needs to reach it.
garage_env() {
  export AWS_ACCESS_KEY_ID=$GARAGE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$GARAGE_SECRET_KEY
  export AWS_REGION=garage AWS_ENDPOINT_URL=$GARAGE_ENDPOINT
}

garage_stop() {
  [ -n "${GARAGE_PID:-}" ] || return 0
  kill "$GARAGE_PID" 2>/dev/null || true
  local _
  for _ in $(seq 50); do kill -0 "$GARAGE_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$GARAGE_PID" 2>/dev/null || true
  GARAGE_PID=
}
