#!/usr/bin/env bash
# bench/http.sh — weft-http against nginx, under the same load generator
# (wrk), in one run. It measures and records: every wrk run of every round
# goes into one JSON result file (bench/results/, see bench/lib.sh), and
# bench/render.py renders the tables (medians, ratios, the goal) from it.
#
# Servers (SERVERS, default "weft weft-nopin nginx"):
#   weft        weft-http with its default worker placement (pinned)
#   weft-nopin  weft-http --no-pin
#   nginx       nginx as close to weft-http as it goes (below), nginx's
#               default placement: no worker_cpu_affinity
#   nginx-pin   the same with worker_cpu_affinity auto
# Cases (CASES, default "both onecore"):
#   both     WORKERS workers each (default nproc), wrk -t$THREADS (default 2),
#            nothing pinned by the script
#   onecore  2 workers each, every server confined to ONECORE_SERVER_CPUS
#            (taskset, default 0,1), wrk -t1 pinned to ONECORE_LOAD_CPU
#            (default 1): the load generator shares a core with the server
# For each case the servers start once (each on its own loopback port), are
# warmed up (wrk, 2 s), then ROUNDS rounds run every server at every
# connection count in CONNS, the order of the servers reversed every other
# round; then they are stopped by PID.
#
# usage: bench/http.sh            (environment variables below override)
#   BUILD=build-bench  WORKERS=$(nproc)  CONNS="100 1000"  DURATION=10
#   ROUNDS=3  THREADS=2  SERVERS="weft weft-nopin nginx"  CASES="both onecore"
#   ONECORE_SERVER_CPUS=0,1  ONECORE_LOAD_CPU=1  PORT_BASE=18080  GOAL=1.1
#   RESULTS=bench/results  OUT= (also render into this markdown file, between
#   <!-- http.sh:begin --> and <!-- http.sh:end -->)
# Needs: nginx (nginx-light), wrk, curl, taskset, python3, cmake, a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ARGV=("$0" "$@")
T_START=$SECONDS
BUILD=${BUILD:-build-bench}
WORKERS=${WORKERS:-$(nproc)}
CONNS=${CONNS:-"100 1000"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
SERVERS=${SERVERS:-"weft weft-nopin nginx"}
CASES=${CASES:-"both onecore"}
ONECORE_SERVER_CPUS=${ONECORE_SERVER_CPUS:-0,1}
ONECORE_LOAD_CPU=${ONECORE_LOAD_CPU:-1}
PORT_BASE=${PORT_BASE:-18080}
GOAL=${GOAL:-1.1}
RESULTS=${RESULTS:-bench/results}
OUT=${OUT:-}

for t in nginx wrk curl taskset python3 cmake; do
    command -v "$t" >/dev/null || die "$t is required"
done
for s in $SERVERS; do [[ " weft weft-nopin nginx nginx-pin " == *" $s "* ]] || die "unknown server $s"; done
for c in $CASES; do [[ " both onecore " == *" $c "* ]] || die "unknown case $c"; done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target weft-http >/dev/null
HTTP="$BUILD/examples/http/weft-http"
NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*/||')

TMPD=$(mktemp -d /tmp/weft-bench-http.XXXXXX)
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
ulimit -n 20000 2>/dev/null || true
result_begin http "$RESULTS" "${ARGV[@]}"

# nginx_conf DIR WORKERS PORT PIN — bench/lib.sh's nginx (plain HTTP), with
# worker_cpu_affinity auto when PIN=1.
nginx_conf() {
    nginx_conf_write "$1" "$2" "$3" "" "$([ "$4" = 1 ] && echo "worker_cpu_affinity auto;")" ""
}

# server_cmd ID PORT WORKERS — sets CMD (nginx: writes its config under TMPD).
server_cmd() {
    local d=$TMPD/$1-$2
    case $1 in
    weft) CMD=("$HTTP" --port "$2" --workers "$3" --stats-socket '' -q) ;;
    weft-nopin) CMD=("$HTTP" --port "$2" --workers "$3" --no-pin --stats-socket '' -q) ;;
    nginx | nginx-pin)
        nginx_conf "$d" "$3" "$2" "$([ "$1" = nginx-pin ] && echo 1 || echo 0)"
        CMD=(nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;')
        ;;
    esac
}

server_label() {
    case $1 in
    weft) echo "weft-http" ;;
    weft-nopin) echo "weft-http --no-pin" ;;
    nginx) echo "nginx $NGINX_VERSION" ;;
    nginx-pin) echo "nginx $NGINX_VERSION (worker_cpu_affinity auto)" ;;
    esac
}

# start_servers CASE — every server for CASE on its own port; sets PORT_OF[id]
# and COMMANDS (a JSON object of the command lines); waits for each to answer.
declare -A PORT_OF SPID_OF
start_servers() {
    local id port=$PORT_BASE workers=$WORKERS cpus="" i
    [ "$1" = onecore ] && workers=2 cpus=$ONECORE_SERVER_CPUS
    COMMANDS=""
    for id in $SERVERS; do
        port=$((port + 1))
        PORT_OF[$id]=$port
        server_cmd "$id" "$port" "$workers"
        [ -n "$cpus" ] && CMD=(taskset -c "$cpus" "${CMD[@]}")
        COMMANDS+="${COMMANDS:+,}$(json_str "$id"):$(json_str "$(shell_quote "${CMD[@]}" | sed "s|$TMPD|TMP|g")")"
        "${CMD[@]}" >"$TMPD/$id.log" 2>&1 &
        SPID_OF[$id]=$!
        PIDS_STARTED+=("$!")
    done
    for id in $SERVERS; do
        for ((i = 0; i < 50; i++)); do
            [ "$(curl -s "http://127.0.0.1:${PORT_OF[$id]}/" 2>/dev/null)" = "hello, world" ] && break
            kill -0 "${SPID_OF[$id]}" 2>/dev/null || break
            sleep 0.1
        done
        [ "$(curl -s "http://127.0.0.1:${PORT_OF[$id]}/")" = "hello, world" ] ||
            die "$id did not start: $(cat "$TMPD/$id.log" "$TMPD"/"$id"-*/error.log 2>/dev/null | tail -n 5)"
    done
}

stop_servers() {
    local id
    for id in $SERVERS; do
        stop_pid "${SPID_OF[$id]}" 10
        forget_pid "${SPID_OF[$id]}"
    done
}

# measure CASE ROUND ID CONNS — one wrk run, recorded with what wrk reported.
measure() {
    wrk_measure "$1" "$4" "http://127.0.0.1:${PORT_OF[$3]}/"
    wrk_record "$@"
}

CASES_JSON=""
for case in $CASES; do
    log "case $case: starting $SERVERS"
    start_servers "$case"
    for id in $SERVERS; do
        wrk -t"$THREADS" -c100 -d2s "http://127.0.0.1:${PORT_OF[$id]}/" >/dev/null 2>&1 || true
    done
    for round in $(seq "$ROUNDS"); do
        order=$SERVERS
        ((round % 2)) || order=$(tr ' ' '\n' <<<"$SERVERS" | grep . | tac | tr '\n' ' ')
        for c in $CONNS; do
            for id in $order; do measure "$case" "$round" "$id" "$c"; done
        done
    done
    stop_servers
    if [ "$case" = onecore ]; then
        title="One load thread: wrk -t1 on CPU $ONECORE_LOAD_CPU, servers with 2 workers on CPUs $ONECORE_SERVER_CPUS"
        load_desc="taskset -c $ONECORE_LOAD_CPU wrk -t1 -cN -d${DURATION}s --latency URL"
    else
        title="Load on every CPU: wrk -t$THREADS, servers with $WORKERS workers"
        load_desc="wrk -t$THREADS -cN -d${DURATION}s --latency URL"
    fi
    CASES_JSON+="${CASES_JSON:+,}\"$case\":{\"title\":$(json_str "$title"),\"load\":$(json_str "$load_desc"),\"commands\":{$COMMANDS}}"
done

servers_json() {
    local id out=""
    for id in $SERVERS; do
        out+="${out:+,}$(json_str "$id"):{\"label\":$(json_str "$(server_label "$id")")}"
    done
    printf '{%s}' "$out"
}
# shellcheck disable=SC2086 # word lists
result_end "$(
    printf '"settings":{"rounds":%s,"duration_s":%s,"conns":[%s],"workers":%s,"wrk_threads":%s,' \
        "$ROUNDS" "$DURATION" "$(tr ' ' '\n' <<<"$CONNS" | grep . | paste -sd,)" "$WORKERS" "$THREADS"
    printf '"goal":%s,"cases":%s,"case":{%s},"wrk":%s},' "$GOAL" "$(json_list $CASES)" "$CASES_JSON" \
        "$(json_str "$(wrk -v 2>&1 | head -n1 | cut -c1-60)")"
    printf '"servers":%s,"server_ids":%s' "$(servers_json)" "$(json_list $SERVERS)"
)"
log "wrote $RESULT_FILE"
python3 bench/render.py "$RESULT_FILE"
[ -z "$OUT" ] || python3 bench/render.py --out "$OUT" "$RESULT_FILE"
