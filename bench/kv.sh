#!/usr/bin/env bash
# bench/kv.sh — weft-kv against redis-server, same load generator, same run.
#
# Builds weft-kv (Release), then ROUNDS times, in alternating order so drift
# in the machine's state hits both alike: starts redis-server (Debian's, no
# persistence: --save '' --appendonly no) or weft-kv in the foreground on
# its own loopback port, drives it with redis-benchmark -t ping,set,get at
# every connection count in CONNS, without pipelining (-n N) and with -P 16
# (-n NP), over KEYS random keys (-r), and stops it by PID. Every
# redis-benchmark row of every round goes into one JSON result file
# (bench/results/, see bench/lib.sh); bench/render.py renders from it the
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
#   KEYS=100000  KV_PORT=16380  REDIS_PORT=16379  GOAL=1.0
#   RESULTS=bench/results  OUT= (also render into this markdown file, between
#   <!-- kv.sh:begin --> and <!-- kv.sh:end -->)
#   PIN=1 (default): weft-kv pins its workers (weft's default); PIN=0 lets
#   them float like redis-server's thread (--no-pin)

# Needs: redis-server, redis-benchmark, redis-cli (redis-server,
# redis-tools), python3, cmake and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ARGV=("$0" "$@")
T_START=$SECONDS
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
RESULTS=${RESULTS:-bench/results}

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

TMPD=$(mktemp -d /tmp/weft-bench-kv.XXXXXX)
TMP=$TMPD
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
result_begin kv "$RESULTS" "${ARGV[@]}"

# start_server NAME: in the background, PID in SPID; waits for PING.
start_server() {
    case $1 in
    weft-kv)
        pin=
        [ "$PIN" = 1 ] || pin=--no-pin
        KV_CMD=("$KV" --bind 127.0.0.1 --port "$KV_PORT" --workers "$WORKERS" ${pin:+"$pin"} -q
            --stats-socket "$TMP/admin.sock")
        "${KV_CMD[@]}" >"$TMP/server.log" 2>&1 &
        SPID=$!
        PORT=$KV_PORT
        ;;
    redis-server)
        REDIS_CMD=(redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no
            --daemonize no --dir "$TMP" --logfile "$TMP/server.log" --maxclients 10000)
        "${REDIS_CMD[@]}" &
        SPID=$!
        PORT=$REDIS_PORT
        ;;
    esac
    PIDS_STARTED+=("$SPID")
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
    stop_pid "$SPID" 10
    forget_pid "$SPID"
    SPID=
}

# One server, every connection count and pipeline depth: one run recorded
# per redis-benchmark row (test), with what redis-benchmark reported.
bench_server() {
    local name=$1 c p n rc
    start_server "$name"
    for c in $CONNS; do
        for p in 1 16; do
            n=$N
            [ "$p" = 1 ] || n=$NP
            log "round $round: $name -c $c -P $p -n $n"
            rc=0
            timeout 600 redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$c" -n "$n" -P "$p" \
                -r "$KEYS" -t ping,set,get --csv >"$TMP/csv" 2>"$TMP/err" || rc=$?
            local tags
            tags=$(printf '"round":%s,"server":%s,"conns":%s,"pipeline":%s,"requests":%s' "$round" \
                "$(json_str "$name")" "$c" "$p" "$n")
            if [ "$rc" != 0 ] || ! grep -q '^"[A-Z]' "$TMP/csv"; then
                result_run "{$tags,\"test\":\"all\",\"status\":\"FAILED\",\"reason\":$(
                    json_str "redis-benchmark exit $rc: $(tail -n 2 "$TMP/err" | tr '\n' ' ' | cut -c1-160)")}"
                log "  FAILED: redis-benchmark exit $rc"
                continue
            fi
            # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
            # "p95_latency_ms","p99_latency_ms","max_latency_ms"
            local test rps avg min p50 p95 p99 max
            while IFS=, read -r test rps avg min p50 p95 p99 max; do
                result_run "{$tags,\"test\":$(json_str "$test"),\"status\":\"ok\",\"reason\":\"\",$(
                    printf '"rps":%s,"latency_ms":{"avg":%s,"min":%s,"p50":%s,"p95":%s,"p99":%s,"max":%s}}' \
                        "$(json_num "$rps")" "$(json_num "$avg")" "$(json_num "$min")" "$(json_num "$p50")" \
                        "$(json_num "$p95")" "$(json_num "$p99")" "$(json_num "$max")")"
            done < <(sed -n 's/"//g; /^[A-Z_]*,[0-9]/p' "$TMP/csv")
        done
    done
    stop_server
}

log "weft-kv ($WORKERS workers, PIN=$PIN) vs redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="weft-kv redis-server"; else order="redis-server weft-kv"; fi
    for s in $order; do
        bench_server "$s"
    done
done

result_end "$(
    printf '"settings":{"rounds":%s,"conns":[%s],"n":%s,"np":%s,"keys":%s,"workers":%s,"pin":%s,' \
        "$ROUNDS" "$(tr ' ' '\n' <<<"$CONNS" | grep . | paste -sd,)" "$N" "$NP" "$KEYS" "$WORKERS" "$PIN"
    printf '"goal":%s,"load":%s},' "$GOAL" \
        "$(json_str "redis-benchmark -c C -n $N|$NP -P 1|16 -r $KEYS -t ping,set,get --csv")"
    printf '"servers":{"weft-kv":{"label":"weft-kv (%s workers%s)","command":%s},' "$WORKERS" \
        "$([ "$PIN" = 1 ] || echo ", --no-pin")" "$(json_str "$(shell_quote "${KV_CMD[@]}" | sed "s|$TMP|TMP|g")")"
    printf '"redis-server":{"label":%s,"command":%s}},"server_ids":["weft-kv","redis-server"]' \
        "$(json_str "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')")" \
        "$(json_str "$(shell_quote "${REDIS_CMD[@]}" | sed "s|$TMP|TMP|g")")"
)"
log "wrote $RESULT_FILE"
python3 bench/render.py "$RESULT_FILE"
[ -z "$OUT" ] || python3 bench/render.py --out "$OUT" "$RESULT_FILE"
