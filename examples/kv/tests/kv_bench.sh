#!/bin/sh
# kv_bench.sh — redis-benchmark (Debian: redis-tools) runs unmodified
# against weft-kv: -t ping,set,get -n 20000, without and with -P 16 (16
# pipelined requests per connection). Asserts that each run completes and
# prints a requests-per-second rate for every test (PING_INLINE,
# PING_MBULK, SET, GET), that redis-benchmark printed no warning (it warns
# when CONFIG GET fails), and that the key it wrote is there. Rates are
# printed, not asserted: bench/kv.sh measures.
#
# usage: kv_bench.sh PATH-TO-WEFT-KV
KV=$1
KV_WRAP=
. "$(dirname "$0")/lib.sh"
need redis-benchmark redis-tools
need redis-cli redis-tools

kv_start --workers 2

for pipe in 1 16; do
    timeout 120 redis-benchmark -h 127.0.0.1 -p "$KV_PORT" -t ping,set,get -n 20000 -P $pipe -q \
        >"$DIR/bench" 2>&1
    rc=$?
    # -q rewrites a progress line with '\r'; keep the final figures.
    tr '\r' '\n' <"$DIR/bench" | grep 'requests per second' >"$DIR/rates"
    echo "-P $pipe:"
    cat "$DIR/rates"
    [ $rc -eq 0 ] || fail "redis-benchmark -P $pipe: exit $rc: $(cat "$DIR/bench")"
    for t in PING_INLINE PING_MBULK SET GET; do
        grep -Eq "^ *$t: [0-9.]+ requests per second" "$DIR/rates" ||
            fail "redis-benchmark -P $pipe printed no rate for $t: $(cat "$DIR/bench")"
    done
    grep -qi 'warning\|error' "$DIR/bench" && fail "redis-benchmark -P $pipe: $(cat "$DIR/bench")"
done
got=$(timeout 10 redis-cli -h 127.0.0.1 -p "$KV_PORT" get key:__rand_int__)
# Its values are 3 random bytes (-d 3) unless told otherwise.
[ ${#got} -eq 3 ] || fail "the benchmark's key holds [$got], want 3 bytes"

kv_stop
[ "$KV_RC" -eq 0 ] || fail "exit status $KV_RC after SIGTERM"
echo PASS
