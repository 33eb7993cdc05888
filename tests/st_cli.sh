#!/bin/sh
# tests/st_cli.sh — weft-stat from the command line.
#
#   - against nothing (a path nobody listens on, a stale socket file, a port
#     with no server) it exits 1 with a message naming the path and the cause;
#   - a bad option exits 2;
#   - against a live weft-echo: --once prints one screen (totals, latency,
#     one row per worker) without terminal control codes, --json prints the
#     server's JSON unchanged (one line with "total"), --prometheus prints
#     exposition text with "# TYPE", and the live view with --count 2
#     refreshes twice, clears the screen and restores the cursor.
# Stops only the weft-echo it started, by PID.
#
# usage: st_cli.sh WEFT-ECHO WEFT-STAT
set -u
ECHO=$1
STAT=$2
DIR=$(mktemp -d /tmp/weft-st-cli-XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
    echo "st_cli: FAIL: $*" >&2
    exit 1
}

# --- no server -----------------------------------------------------------------
"$STAT" --once --socket "$DIR/nobody.sock" >"$DIR/out" 2>"$DIR/err"
rc=$?
[ $rc -eq 1 ] || fail "no socket file: exit $rc, want 1"
grep -q "no weft server answers at $DIR/nobody.sock: No such file or directory" "$DIR/err" ||
    fail "no socket file: message: $(cat "$DIR/err")"
[ -s "$DIR/out" ] && fail "no socket file: printed to stdout: $(cat "$DIR/out")"

# A stale socket file: bound, then its owner went away (nobody listens).
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
    "$DIR/stale.sock" || fail "python3 could not make a stale socket"
[ -S "$DIR/stale.sock" ] || fail "no stale socket made"
for mode in --once --json --prometheus --count=1; do
    "$STAT" $mode --socket "$DIR/stale.sock" >"$DIR/out" 2>"$DIR/err"
    rc=$?
    [ $rc -eq 1 ] || fail "stale socket $mode: exit $rc, want 1"
    grep -q "no weft server answers at $DIR/stale.sock: Connection refused (is it running?" \
        "$DIR/err" || fail "stale socket $mode: message: $(cat "$DIR/err")"
done

# A port with no server: the default socket path for it.
"$STAT" --json --port 1 >/dev/null 2>"$DIR/err"
[ $? -eq 1 ] || fail "--port 1: want exit 1"
grep -q "/tmp/weft-1.sock" "$DIR/err" || fail "--port 1: message: $(cat "$DIR/err")"

"$STAT" --interval 0 >/dev/null 2>&1
[ $? -eq 2 ] || fail "--interval 0: want exit 2"
"$STAT" --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "--bogus: want exit 2"
"$STAT" --help | grep -q -- "--prometheus" || fail "--help"

# --- a live server -----------------------------------------------------------
SOCK=$DIR/admin.sock
"$ECHO" --port 0 --workers 2 --stats-interval 100 --stats-socket "$SOCK" >"$DIR/echo.log" 2>&1 &
PID=$!
i=0
while ! grep -q "admin socket" "$DIR/echo.log" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "weft-echo did not start: $(cat "$DIR/echo.log")"
    sleep 0.1
done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DIR/echo.log")
[ -n "$PORT" ] || fail "no port in $(cat "$DIR/echo.log")"

# Some traffic so the figures are not all zero.
python3 - "$PORT" <<'PY' || fail "echo traffic"
import socket, sys
port = int(sys.argv[1])
for i in range(10):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    msg = bytes((i + k) % 256 for k in range(1000 * (i + 1)))
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("EOF")
        got += chunk
    assert got == msg
    s.close()
PY
sleep 0.3

"$STAT" --once --socket "$SOCK" >"$DIR/once" 2>"$DIR/err" || fail "--once: $(cat "$DIR/err")"
grep -q "$(printf '\033')" "$DIR/once" && fail "--once printed terminal control codes"
grep -q "^connections  open 0 " "$DIR/once" || fail "--once: no connections line: $(cat "$DIR/once")"
grep -q "accepted 10 " "$DIR/once" || fail "--once: accepted 10 missing: $(cat "$DIR/once")"
grep -q "^turn     p50 " "$DIR/once" || fail "--once: no turn latency"
[ "$(grep -c '^[01] ' "$DIR/once")" -eq 2 ] || fail "--once: want 2 worker rows: $(cat "$DIR/once")"

"$STAT" --json --socket "$SOCK" >"$DIR/json" 2>"$DIR/err" || fail "--json: $(cat "$DIR/err")"
[ "$(wc -l <"$DIR/json")" -eq 1 ] || fail "--json: not one line"
grep -q '"total":{"accepted":10,' "$DIR/json" || fail "--json: $(cat "$DIR/json")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["total"]["bytes_in"]==55000, d["total"]; assert len(d["workers"])==2' \
    "$DIR/json" || fail "--json is not the JSON expected"
# Unchanged: the same bytes as the raw admin answer (both taken after the
# figures settled, so the only difference allowed is the sample).
python3 - "$SOCK" "$DIR/json" <<'PY' || fail "--json differs from the server's answer"
import socket, sys, json, re
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"stats json\nquit\n")
raw = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    raw += c
mine = open(sys.argv[2], "rb").read()
strip = lambda b: re.sub(rb'"(seq|uptime_s|interval_s)":[0-9.]+', b"", b)
strip2 = lambda b: re.sub(rb'"(turn|handler)":\{[^}]*\}', b"", strip(b))
strip3 = lambda b: re.sub(rb'"rate":\{[^}]*\}', b"", strip2(b))
assert strip3(raw) == strip3(mine), (raw[:200], mine[:200])
PY

"$STAT" --prometheus --socket "$SOCK" >"$DIR/prom" 2>"$DIR/err" || fail "--prometheus: $(cat "$DIR/err")"
grep -q "^# TYPE weft_accepted_total counter$" "$DIR/prom" || fail "--prometheus: no # TYPE"
grep -q "^weft_accepted_total 10$" "$DIR/prom" || fail "--prometheus: accepted"
grep -q '^weft_turn_latency_seconds_bucket{worker="0",le="+Inf"} ' "$DIR/prom" ||
    fail "--prometheus: no turn latency histogram"

"$STAT" --socket "$SOCK" --count 2 --interval 0.2 >"$DIR/live" 2>"$DIR/err" ||
    fail "live view: $(cat "$DIR/err")"
[ "$(grep -c "$(printf '\033')\[H$(printf '\033')\[2J" "$DIR/live")" -eq 2 ] ||
    fail "live view: want 2 screens"
tail -c 6 "$DIR/live" | grep -q "$(printf '\033')\[?25h" || fail "live view: cursor not restored"

# Ctrl-C ends the live view cleanly and restores the cursor.
"$STAT" --socket "$SOCK" --interval 0.2 >"$DIR/live2" 2>&1 &
SPID=$!
sleep 0.7
kill -INT $SPID
wait $SPID
rc=$?
[ $rc -eq 0 ] || fail "live view after SIGINT: exit $rc"
tail -c 6 "$DIR/live2" | grep -q "$(printf '\033')\[?25h" || fail "SIGINT: cursor not restored"

kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ $rc -eq 0 ] || fail "weft-echo exit $rc after SIGTERM"
[ -e "$SOCK" ] && fail "admin socket left behind"

# The server is gone: the same socket path now answers nothing.
"$STAT" --once --socket "$SOCK" >/dev/null 2>"$DIR/err"
[ $? -eq 1 ] || fail "stopped server: want exit 1"
grep -q "no weft server answers at $SOCK" "$DIR/err" || fail "stopped server: $(cat "$DIR/err")"
echo "st_cli: ok"
