#!/bin/sh
# kv_valgrind.sh — weft-kv runs clean under valgrind memcheck and frees every
# key on exit (the RCU teardown: delete every node, rcu_barrier, destroy the
# table).
#
# Runs weft-kv (2 workers) under valgrind --leak-check=full with definite
# and indirect leaks as errors, stores keys (plain, replaced, with expiry,
# INCR), lets the expiry sweep run, stops it with SIGTERM (by PID) and
# asserts exit status 0, "ERROR SUMMARY: 0 errors" and that no key was left:
# the server's last line counts the keys it freed.
#
# usage: kv_valgrind.sh PATH-TO-WEFT-KV
KV=$1
KV_WRAP="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
. "$(dirname "$0")/lib.sh"
need valgrind valgrind
need redis-cli redis-tools
KV_WRAP="$KV_WRAP --log-file=$DIR/vg"

kv_start --workers 2 --sweep-interval 50
R="timeout 60 redis-cli -h 127.0.0.1 -p $KV_PORT"
i=0
while [ $i -lt 50 ]; do
    printf 'SET k%d v%d\r\nSET k%d w%d\r\nSET e%d v PX 100\r\nINCR n\r\nGET k%d\r\n' \
        $i $i $i $i $i $i
    i=$((i + 1))
done >"$DIR/cmds"
$R --pipe <"$DIR/cmds" >"$DIR/pipe" 2>&1 || fail "redis-cli --pipe: $(cat "$DIR/pipe")"
grep -q 'errors: 0, replies: 250' "$DIR/pipe" || fail "redis-cli --pipe: $(cat "$DIR/pipe")"
got=$($R get n)
[ "$got" = 50 ] || fail "INCR under valgrind: [$got]"
sleep 1 # the sweep removes the 50 expired keys
got=$($R dbsize)
[ "$got" = 51 ] || fail "dbsize after the sweep: [$got], want 51 (k0..k49 and n)"

kv_stop
cat "$DIR/kv.out"
grep -E 'ERROR SUMMARY|in use at exit|definitely lost|indirectly lost|possibly lost' "$DIR/vg"
[ "$KV_RC" -eq 0 ] || { cat "$DIR/vg"; fail "exit status $KV_RC under valgrind (99: errors)"; }
grep -q 'ERROR SUMMARY: 0 errors' "$DIR/vg" || { cat "$DIR/vg"; fail "valgrind reported errors"; }
grep -q 'keyspace freed: 51 keys freed' "$DIR/kv.out" || fail "keys freed at exit"
echo PASS
