#!/bin/sh
# it_valgrind.sh — weft-echo runs clean under valgrind memcheck.
#
# usage: it_valgrind.sh PATH-TO-WEFT-ECHO PATH-TO-IT_CLIENT
#
# Runs weft-echo (2 workers, port 0) under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
#            --error-exitcode=99
# pushes a short load through it (it_client: 4 connections x 64 KiB echoed
# and verified), stops it with SIGTERM (by PID) and asserts exit status 0
# and "ERROR SUMMARY: 0 errors". valgrind missing is a failure, not a skip
# ('make deps' installs it).
set -u
echo_bin=$1
client=$2
if ! command -v valgrind >/dev/null 2>&1; then
    echo "FAIL: valgrind is not installed (install the Debian package 'valgrind' or run 'make deps')"
    exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/it_valgrind.XXXXXX") || exit 1
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "---- weft-echo stdout"; cat "$dir/out" 2>/dev/null
    echo "---- valgrind"; cat "$dir/vg" 2>/dev/null
    exit 1
}

: >"$dir/out"
valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --log-file="$dir/vg" "$echo_bin" --bind 127.0.0.1 --port 0 --workers 2 >"$dir/out" 2>&1 &
pid=$!

# Wait (at most 60 s) for "listening on 127.0.0.1:PORT,".
port=
i=0
while [ $i -lt 600 ]; do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\),.*/\1/p' "$dir/out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "weft-echo exited before listening"
    sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || fail "weft-echo did not print its port within 60 s"
echo "weft-echo under valgrind: pid $pid, port $port"

"$client" 127.0.0.1 "$port" 4 65536 || fail "the echo load failed"

kill -TERM "$pid"
# Wait (at most 60 s) for it to exit.
i=0
while [ $i -lt 600 ]; do
    # Gone, or a zombie (which still answers kill -0): wait reaps it below.
    state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null)
    [ -z "$state" ] || [ "$state" = Z ] && break
    sleep 0.1
    i=$((i + 1))
done
[ $i -lt 600 ] || fail "weft-echo did not exit within 60 s of SIGTERM"
wait "$pid"
rc=$?
pid=
cat "$dir/out"
grep -E 'ERROR SUMMARY|total heap usage|in use at exit|definitely lost|indirectly lost|possibly lost|still reachable' "$dir/vg"
[ "$rc" -eq 0 ] || fail "exit status $rc under valgrind (99: valgrind found errors)"
grep -q 'ERROR SUMMARY: 0 errors' "$dir/vg" || fail "valgrind reported errors"
echo "PASS"
