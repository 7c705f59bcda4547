# Shared by the bench verify e2e scripts (sourced): a temp dir, one server at a time
# (always stopped on exit), ok/FAIL counting, and a tachyon serve on port 0.
# Needs BIN set (the tachyon binary) before start_tachyon is called.

TMP=$(mktemp -d)
PID=""
FAILS=0

stop_server() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PID" 2>/dev/null
  wait "$PID" 2>/dev/null
  PID=""
}
cleanup() {
  stop_server
  rm -rf "$TMP"
}
trap cleanup EXIT

pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }

# skip_unless_files FILE... -> exit 77 when one is missing
skip_unless_files() {
  for f in "$@"; do
    if [ ! -f "$f" ]; then
      echo "skipped: model $f not found"
      exit 77
    fi
  done
}

# start_tachyon MODEL -> sets URL and PID (tachyon serve on port 0, 2 threads)
start_tachyon() {
  "$BIN" serve -m "$1" --host 127.0.0.1 --port 0 -t 2 2>"$TMP/server.log" &
  PID=$!
  URL=""
  for _ in $(seq 300); do
    URL=$(grep -o 'listening on http://[^ ]*' "$TMP/server.log" | sed 's/listening on //')
    [ -n "$URL" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$URL" ]; then
    echo "server for $1 did not start:"
    cat "$TMP/server.log"
    exit 1
  fi
}
