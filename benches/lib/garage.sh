# A throwaway single-node Garage (S3-compatible object store) for the benches, as
# tests/common/garage.rs starts one: free loopback ports, everything in one directory, a default
# key and bucket. Sourced (bash):
#
#   . benches/lib/garage.sh
#   garage_start "$work/garage"     # sets GARAGE_ENDPOINT GARAGE_BUCKET GARAGE_ACCESS_KEY
#                                   #      GARAGE_SECRET_KEY GARAGE_PID
#   garage_env                      # exports AWS_* for mediastore / boto3
#   url=$(garage_presign prefix)    # presigned GET of the only object under prefix
#   url=$(garage_presign_new prefix seen)  # ... of the one object not yet named in file seen
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

# A presigned GET URL (SigV4, path-style, 7 days: SigV4's longest) of the only object under
# prefix in the bucket; needs python3 boto3 and garage_env.
garage_presign() { # prefix
  _garage_presign "$1" ""
}

# The same for the one object under prefix whose key is not yet in the file seen (one key a
# line), which gets its key: how a bench finds the object an upload just made.
garage_presign_new() { # prefix seen
  touch "$2"
  _garage_presign "$1" "$2"
}

_garage_presign() { # prefix seen-or-empty
  python3 - "$GARAGE_BUCKET" "$1" "$2" <<'PY'
import os, sys
import boto3
from botocore.config import Config
bucket, prefix, seen = sys.argv[1:4]
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["AWS_ENDPOINT_URL"],
    region_name=os.environ["AWS_REGION"],
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
known = set(open(seen).read().split()) if seen else set()
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
keys = [o["Key"] for p in pages for o in p.get("Contents", [])
        if "/.uploads/" not in o["Key"] and o["Key"] not in known]
if len(keys) != 1:
    sys.exit(f"expected one new object under {prefix}, found {keys}")
if seen:
    with open(seen, "a") as f:
        f.write(keys[0] + "\n")
print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": keys[0]},
                                ExpiresIn=7 * 24 * 3600))
PY
}
