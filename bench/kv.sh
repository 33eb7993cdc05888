#!/usr/bin/env bash
# bench/kv.sh — weft-kv against redis-server, same load generator, same run.
#
# Builds weft-kv (Release), then ROUNDS times, in alternating order so drift
# in the machine's state hits both alike: starts redis-server (Debian's, no
# persistence: --save '' --appendonly no) or weft-kv in the foreground on
# its own loopback port, drives it with redis-benchmark -t ping,set,get at
# every connection count in CONNS, without pipelining (-n N) and with -P 16
# (-n NP), over KEYS random keys (-r), and stops it by PID. Reports the
# median requests/s per server, test, connection count and pipeline depth
# as a markdown table with the ratio weft-kv / redis-server, and whether
# weft-kv reached GOAL x redis-server's requests/s in every row.
#
# redis-server runs one thread for commands; weft-kv runs WORKERS workers.
# redis-benchmark (one thread) shares the machine's CPUs with either.
#
# usage: bench/kv.sh            (environment variables below override)
#   BUILD=build-bench  WORKERS=$(nproc)  CONNS="50 1000"  ROUNDS=3
#   N=200000 (requests per test, no pipelining)  NP=2000000 (with -P 16)
#   KEYS=100000  KV_PORT=16380  REDIS_PORT=16379  GOAL=1.0  OUT= (also
#   write the table to this file)
#   PIN=1 (default): weft-kv pins its workers (weft's default); PIN=0 lets
#   them float like redis-server's thread (--no-pin)

# Needs: redis-server, redis-benchmark, redis-cli (redis-server,
# redis-tools), python3, cmake and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
WORKERS=${WORKERS:-$(nproc)}
CONNS=${CONNS:-"50 1000"}
ROUNDS=${ROUNDS:-3}
N=${N:-200000}
NP=${NP:-2000000}
KEYS=${KEYS:-100000}
KV_PORT=${KV_PORT:-16380}
REDIS_PORT=${REDIS_PORT:-16379}
GOAL=${GOAL:-1.0}
PIN=${PIN:-1}
OUT=${OUT:-}

for t in redis-server redis-benchmark redis-cli python3 cmake; do
    command -v "$t" >/dev/null || { echo "bench/kv.sh: $t is required" >&2; exit 1; }
done
# 1,000 connections need more than the usual 1024 fds, in the servers and
# in redis-benchmark; children inherit the raised limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need_fds=$(( $(echo "$CONNS" | tr ' ' '\n' | sort -n | tail -1) + 64 ))
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need_fds" ] ||
    { echo "bench/kv.sh: need $need_fds open files, the limit is $(ulimit -n)" >&2; exit 1; }

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target weft-kv >/dev/null
KV="$BUILD/examples/kv/weft-kv"

TMP=$(mktemp -d /tmp/weft-bench-kv.XXXXXX)
SPID=
cleanup() {
    if [ -n "$SPID" ]; then
        kill -TERM "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
log() { printf '[%4ds] %s\n' "$SECONDS" "$*" >&2; }

# start_server NAME: in the background, PID in SPID; waits for PING.
start_server() {
    case $1 in
    weft-kv)
        pin=
        [ "$PIN" = 1 ] || pin=--no-pin
        "$KV" --bind 127.0.0.1 --port "$KV_PORT" --workers "$WORKERS" $pin -q \
            --stats-socket "$TMP/admin.sock" >"$TMP/server.log" 2>&1 &
        SPID=$!
        PORT=$KV_PORT
        ;;
    redis-server)
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
            --daemonize no --dir "$TMP" --logfile "$TMP/server.log" --maxclients 10000 &
        SPID=$!
        PORT=$REDIS_PORT
        ;;
    esac
    for _ in $(seq 100); do
        [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench/kv.sh: $1 did not start:" >&2
    cat "$TMP/server.log" >&2
    exit 1
}

stop_server() {
    kill -TERM "$SPID"
    local i
    for i in $(seq 100); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SPID" 2>/dev/null && kill -KILL "$SPID"
    wait "$SPID" 2>/dev/null || true
    SPID=
}

# One server, every connection count and pipeline depth: rows appended to
# $TMP/results as "server,conns,pipeline,test,rps".
bench_server() {
    local name=$1 c p n
    start_server "$name"
    for c in $CONNS; do
        for p in 1 16; do
            n=$N
            [ "$p" = 1 ] || n=$NP
            log "round $round: $name -c $c -P $p -n $n"
            timeout 600 redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$c" -n "$n" -P "$p" \
                -r "$KEYS" -t ping,set,get --csv >"$TMP/csv" 2>"$TMP/err" ||
                { cat "$TMP/err" >&2; exit 1; }
            # "test","rps","avg_latency_ms",...: keep test and rps.
            sed -n 's/^"\([A-Z_]*\)","\([0-9.]*\)".*/\1,\2/p' "$TMP/csv" |
                sed "s/^/$name,$c,$p,/" >>"$TMP/results"
        done
    done
    stop_server
}

: >"$TMP/results"
log "weft-kv ($WORKERS workers, PIN=$PIN) vs redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="weft-kv redis-server"; else order="redis-server weft-kv"; fi
    for s in $order; do
        bench_server "$s"
    done
done

python3 - "$TMP/results" "$GOAL" "$ROUNDS" >"$TMP/table" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    server, c, p, test, rps = line.strip().split(",")
    rows[(server, int(c), int(p), test)].append(float(rps))
goal, rounds = float(sys.argv[2]), sys.argv[3]
keys = sorted({(c, p, t) for (_, c, p, t) in rows}, key=lambda k: (k[1], k[0], k[2]))
print("| connections | pipeline | test | weft-kv req/s | redis-server req/s | ratio |")
print("|---:|---:|---|---:|---:|---:|")
met = True
for c, p, t in keys:
    w = statistics.median(rows[("weft-kv", c, p, t)])
    r = statistics.median(rows[("redis-server", c, p, t)])
    ratio = w / r if r else float("inf")
    met &= ratio >= goal
    print(f"| {c} | {'-P 16' if p > 1 else 'none'} | {t} | {w:,.0f} | {r:,.0f} | {ratio:.2f} |")
print()
print(f"Medians of {rounds} rounds. Goal {goal:.1f}x redis-server in every row: "
      + ("met." if met else "NOT met."))
PY
cat "$TMP/table"
[ -z "$OUT" ] || cp "$TMP/table" "$OUT"
