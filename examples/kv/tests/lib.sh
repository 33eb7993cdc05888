# examples/kv/tests/lib.sh — shared by the weft-kv shell tests (sourced).
#
# kv_start [weft-kv options...]: starts $KV on 127.0.0.1, port 0, in the
# background; sets KV_PID and KV_PORT. Everything it made goes in $DIR and is
# removed at exit; the server it started is stopped by PID, nothing else.
set -u
DIR=$(mktemp -d "${TMPDIR:-/tmp}/weft-kv-test.XXXXXX") || exit 1
KV_PID=
kv_cleanup() {
    if [ -n "$KV_PID" ] && kill -0 "$KV_PID" 2>/dev/null; then
        kill -KILL "$KV_PID" 2>/dev/null
        wait "$KV_PID" 2>/dev/null
    fi
    rm -rf "$DIR"
}
trap kv_cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "---- weft-kv output"
    cat "$DIR/kv.out" 2>/dev/null
    exit 1
}
need() {
    command -v "$1" >/dev/null 2>&1 ||
        fail "$1 is not installed (Debian package '$2')"
}

kv_start() {
    : >"$DIR/kv.out"
    $KV_WRAP "$KV" --bind 127.0.0.1 --port 0 --stats-socket "$DIR/admin.sock" "$@" \
        >"$DIR/kv.out" 2>&1 &
    KV_PID=$!
    KV_PORT=
    i=0
    while [ $i -lt 600 ]; do
        KV_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\),.*/\1/p' "$DIR/kv.out")
        [ -n "$KV_PORT" ] && return 0
        kill -0 "$KV_PID" 2>/dev/null || fail "weft-kv exited before listening"
        sleep 0.1
        i=$((i + 1))
    done
    fail "weft-kv did not print its port within 60 s"
}

# kv_stop: SIGTERM, then wait (at most 60 s); sets KV_RC.
kv_stop() {
    kill -TERM "$KV_PID"
    i=0
    while [ $i -lt 600 ]; do
        state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$KV_PID/stat" 2>/dev/null)
        [ -z "$state" ] || [ "$state" = Z ] && break
        sleep 0.1
        i=$((i + 1))
    done
    [ $i -lt 600 ] || fail "weft-kv did not exit within 60 s of SIGTERM"
    wait "$KV_PID"
    KV_RC=$?
    KV_PID=
}

# cli ARGS...: one redis-cli command, bounded, replies in redis-cli's typed
# form ("(integer) 2", "(nil)", "\"bar\"", "(error) ...").
cli() { timeout 10 redis-cli -h 127.0.0.1 -p "$KV_PORT" --no-raw "$@"; }

# expect WANT ARGS...: the reply to one command must be exactly WANT.
expect() {
    want=$1
    shift
    got=$(cli "$@" 2>&1)
    [ "$got" = "$want" ] || fail "'$*': got [$got], want [$want]"
}
