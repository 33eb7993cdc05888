#!/bin/sh
# tests/test_load_corrupt.sh — weft-load's end-to-end check of echoed bytes.
#
#   test_load_corrupt.sh WEFT_LOAD CORRUPT_ECHO [ipv6]
#
# Against corrupt_echo flipping one byte every 16 KiB, weft-load must exit 1
# and report mismatches in its JSON. Against corrupt_echo with corruption off,
# every mode (echo, rate, flood, churn) must exit 0 with no mismatches. With
# "ipv6", only the echo mode over ::1, and exit 77 (ctest: skipped) where the
# host has no IPv6 loopback. Each server is started on a free port (it prints
# the port), lives at most 60 s, and is stopped by its PID.
set -u
LOAD=$1
ECHO=$2
MODE=${3:-}
TMP=$(mktemp -d)
SRV_PID=

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
        SRV_PID=
    fi
}

cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# start_server EVERY_KIB: starts corrupt_echo, sets SRV_PID and PORT.
start_server() {
    : >"$TMP/port"
    "$ECHO" --every "$1" --lifetime 60 0 >"$TMP/port" 2>>"$TMP/server.err" &
    SRV_PID=$!
    i=0
    while [ ! -s "$TMP/port" ]; do
        i=$((i + 1))
        [ $i -le 50 ] || fail "corrupt_echo did not print its port within 5 s"
        kill -0 "$SRV_PID" 2>/dev/null || fail "corrupt_echo exited at start"
        sleep 0.1
    done
    PORT=$(head -n 1 "$TMP/port")
}

# json_num FILE FIELD: the first numeric value of "FIELD": in FILE.
json_num() {
    sed -n "s/.*\"$2\":\([0-9][0-9]*\).*/\1/p" "$1" | head -n 1
}

# run NAME ARGS...: runs weft-load with --json, sets RC; output in $TMP/NAME.json.
run() {
    name=$1
    shift
    timeout 60 "$LOAD" "$@" --port "$PORT" --json >"$TMP/$name.json" 2>"$TMP/$name.err"
    RC=$?
}

# expect_clean NAME: weft-load exited 0 and reported no mismatches.
expect_clean() {
    [ "$RC" -eq 0 ] || { cat "$TMP/$1.json" "$TMP/$1.err" >&2; fail "$1: exit $RC, expected 0"; }
    grep -q '"ok":true' "$TMP/$1.json" || fail "$1: JSON does not say ok"
    [ "$(json_num "$TMP/$1.json" mismatches)" = 0 ] || fail "$1: mismatches reported"
    echo "ok: $1 ($(json_num "$TMP/$1.json" messages_verified) messages verified)"
}

if [ "$MODE" = ipv6 ]; then
    if ! grep -q ' lo$' /proc/net/if_inet6 2>/dev/null; then
        echo "SKIP: no IPv6 loopback (::1) on this host"
        exit 77
    fi
    start_server 0
    run ipv6 echo --host ::1 --conns 4 --duration 0.5
    expect_clean ipv6
    stop_server
    echo "PASS"
    exit 0
fi

# 1. Corruption must be caught, reported and make the run fail.
start_server 16
run corrupt echo --conns 4 --depth 4 --duration 2 --timeout 2
[ "$RC" -eq 1 ] || { cat "$TMP/corrupt.json" >&2; fail "corrupt: exit $RC, expected 1"; }
MM=$(json_num "$TMP/corrupt.json" mismatches)
[ -n "$MM" ] && [ "$MM" -gt 0 ] || fail "corrupt: no mismatches in the JSON report"
grep -q '"ok":false' "$TMP/corrupt.json" || fail "corrupt: JSON says ok"
grep -q 'mismatch on connection' "$TMP/corrupt.err" || fail "corrupt: no mismatch detail on stderr"
echo "ok: corrupt ($MM mismatches reported, exit 1)"

# Header-sized messages: a flipped byte lands in the header too.
run corrupt16 echo --conns 2 --size 16 --duration 1 --timeout 2
[ "$RC" -eq 1 ] || fail "corrupt16: exit $RC, expected 1"
[ "$(json_num "$TMP/corrupt16.json" mismatches)" -gt 0 ] || fail "corrupt16: no mismatches"
echo "ok: corrupt16 ($(json_num "$TMP/corrupt16.json" mismatches) mismatches reported, exit 1)"
stop_server

# 2. A faithful echo server: every mode passes.
start_server 0
run echo echo --conns 20 --depth 4 --size 1000 --duration 1
expect_clean echo
run rate rate --conns 20 --rate 5000 --duration 1
expect_clean rate
run count echo --conns 4 --count 1000
expect_clean count
[ "$(json_num "$TMP/count.json" messages_verified)" = 1000 ] || fail "count: not 1000 messages"
run flood flood --conns 500 --hold 0.5
expect_clean flood
[ "$(json_num "$TMP/flood.json" check_ok)" = 500 ] || fail "flood: not all 500 answered"
run churn churn --conns 8 --count 500
expect_clean churn
[ "$(json_num "$TMP/churn.json" cycles)" = 500 ] || fail "churn: not 500 cycles"
stop_server

# 3. Nobody listening: connections fail, exit 1, no hang.
run refused echo --conns 3 --duration 1
[ "$RC" -eq 1 ] || fail "refused: exit $RC, expected 1"
[ "$(json_num "$TMP/refused.json" failed_refused)" = 3 ] || fail "refused: not 3 refusals"
echo "ok: refused"
echo "PASS"
