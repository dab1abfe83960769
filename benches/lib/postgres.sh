# A throwaway PostgreSQL for the benches (Debian's binaries): its own temp dir owned by the
# postgres user (initdb refuses root), trust auth, a free loopback port, the socket in the temp
# dir. Sourced (bash), as root:
#
#   . benches/lib/postgres.sh
#   pg_start            # sets PG_DIR PG_PORT PG_URL (postgres://postgres@127.0.0.1:<port>/postgres) PG_PID
#   ...
#   pg_stop             # in the caller's EXIT trap: stops it and removes PG_DIR
#
# PG_BIN (default /usr/lib/postgresql/15/bin) names the binaries. Settings are initdb's defaults
# (fsync on); the log is $PG_DIR/postgres.log.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_pg() { runuser -u postgres -- "$@"; }

pg_start() {
  [ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL in $PG_BIN (set PG_BIN)" >&2; return 1; }
  PG_DIR=$(mktemp -d -t mediastore-bench-pg.XXXXXX)
  chown postgres: "$PG_DIR"
  _pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  _pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR" >/dev/null ||
    { cat "$PG_DIR/postgres.log" >&2; return 1; }
  PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    _pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      { [ -n "${PG_PID:-}" ] && kill -9 "$PG_PID" 2>/dev/null || true; }
  fi
  rm -rf "$PG_DIR"
  PG_DIR= PG_PID=
}
