#!/bin/sh
# tests/it_uring.sh — the io_uring backend is chosen, runs and reports
# itself, and a kernel that refuses io_uring gets epoll instead.
#
#  1. --io uring, and WEFT_IO=uring alone: the banner and weft-stat say
#     "io uring", no fallback line, and it_client's 8 connections x 256 KiB
#     come back byte for byte.
#  2. WEFT_URING_FAIL=EPERM|ENOSYS|ENOMEM (a test-only knob that makes the
#     backend's setup fail as such a kernel does): exactly one log line
#     "I/O backend uring unavailable (<reason>): falling back to epoll",
#     the banner and weft-stat say "io epoll", and the echo still works.
#  3. Every server stops on SIGTERM with status 0.
#
# This machine's kernel must allow io_uring: on one that refuses it, part 1
# fails (with the fallback line in the message), as it should.
#
# usage: it_uring.sh WEFT_ECHO WEFT_STAT IT_CLIENT
set -u
ECHO=$1
STAT=$2
CLIENT=$3
fail() { echo "it_uring: FAIL: $*" >&2; exit 1; }
DIR=$(mktemp -d /tmp/weft-it-uring.XXXXXX) || exit 2
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        p=$(sed -n 's|.*listening on 127\.0\.0\.1:\([0-9][0-9]*\),.*|\1|p' "$1")
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# check WANT-IO FALLBACK-REASON ARGS...: start weft-echo with ARGS (the
# environment is the caller's), then check the banner, the fallback line
# (none when FALLBACK-REASON is empty), weft-stat, an echo and the stop.
check() {
    want=$1
    why=$2
    shift 2
    rm -f "$DIR/out" "$DIR/s.sock"
    "$ECHO" --port 0 --workers 2 --stats-socket "$DIR/s.sock" --stats-interval 100 "$@" \
        >"$DIR/out" 2>&1 &
    PID=$!
    port=$(wait_port "$DIR/out") || fail "weft-echo $* did not start: $(cat "$DIR/out")"
    grep -q "2 workers (io $want)" "$DIR/out" || fail "weft-echo $*: banner: $(cat "$DIR/out")"
    n=$(grep -c "I/O backend uring unavailable" "$DIR/out")
    if [ -z "$why" ]; then
        [ "$n" -eq 0 ] || fail "weft-echo $*: an unexpected fallback: $(cat "$DIR/out")"
    else
        [ "$n" -eq 1 ] || fail "weft-echo $*: $n fallback lines, want 1: $(cat "$DIR/out")"
        grep -q "I/O backend uring unavailable ($why): falling back to epoll" "$DIR/out" ||
            fail "weft-echo $*: the fallback line: $(cat "$DIR/out")"
    fi
    timeout 10 "$STAT" --socket "$DIR/s.sock" --once >"$DIR/stat" 2>&1 ||
        fail "weft-stat: $(cat "$DIR/stat")"
    grep -q " io $want " "$DIR/stat" || fail "weft-stat says: $(head -1 "$DIR/stat")"
    timeout 30 "$CLIENT" 127.0.0.1 "$port" 8 262144 >"$DIR/client" 2>&1 ||
        fail "it_client on io $want: $(cat "$DIR/client")"
    kill -TERM "$PID"
    wait "$PID"
    st=$?
    PID=
    [ $st -eq 0 ] || fail "weft-echo $* exited $st after SIGTERM: $(cat "$DIR/out")"
}

unset WEFT_URING_FAIL
check uring "" --io uring
export WEFT_IO=uring
check uring ""
export WEFT_URING_FAIL=ENOMEM
check epoll "Cannot allocate memory"
unset WEFT_IO
export WEFT_URING_FAIL=EPERM
check epoll "Operation not permitted" --io uring
# The knob touches nothing but io_uring.
check epoll "" --io epoll
export WEFT_URING_FAIL=ENOSYS
check epoll "Function not implemented" --io uring
echo "it_uring: io uring chosen by --io and WEFT_IO; EPERM, ENOSYS, ENOMEM fall back to epoll: ok"
