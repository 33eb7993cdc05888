#!/usr/bin/env bash
# bench/http.sh — weft-http against nginx, under the same load generator
# (wrk), in one run. It measures and records: every wrk run of every round
# goes into one JSON result file (bench/results/, see bench/lib.sh), and
# bench/render.py renders the tables (medians, ratios, the goal) from it.
#
# Servers (SERVERS, default "weft weft-nopin nginx"):
#   weft        weft-http with its default worker placement (--pin node)
#   weft-nopin  weft-http --no-pin
#   nginx       nginx as close to weft-http as it goes (below), nginx's
#               default placement: no worker_cpu_affinity
#   nginx-pin   the same with worker_cpu_affinity auto
# Cases (CASES, default "both onecore"; "static" on demand):
#   both     WORKERS workers each (default nproc), wrk -t$THREADS (default 2),
#            nothing pinned by the script
#   onecore  2 workers each, every server confined to ONECORE_SERVER_CPUS
#            (taskset, default 0,1), wrk -t1 pinned to ONECORE_LOAD_CPU
#            (default 1): the load generator shares a core with the server
#   static   as "both", but a file of STATIC_BYTES random bytes (default 1 MiB)
#            served from disk at STATIC_CONNS connections (default 100):
#            weft-http --root DIR (sendfile) against nginx with sendfile on
#            and root DIR; before the runs each server's copy is compared
#            with the file (cmp). Goal: STATIC_GOAL (default 1.0) x nginx.
# For each case the servers start once (each on its own loopback port), are
# warmed up (wrk, 2 s), then ROUNDS rounds run every server at every
# connection count in CONNS, the order of the servers reversed every other
# round; then they are stopped by PID.
#
# usage: bench/http.sh            (environment variables below override)
#   BUILD=build-bench  WORKERS=$(nproc)  CONNS="100 1000"  DURATION=10
#   ROUNDS=3  THREADS=2  SERVERS="weft weft-nopin nginx"  CASES="both onecore"
#   ONECORE_SERVER_CPUS=0,1  ONECORE_LOAD_CPU=1  PORT_BASE=18080  GOAL=1.1
#   STATIC_BYTES=1048576  STATIC_CONNS=100  STATIC_GOAL=1.0
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
STATIC_BYTES=${STATIC_BYTES:-1048576}
STATIC_CONNS=${STATIC_CONNS:-100}
STATIC_GOAL=${STATIC_GOAL:-1.0}
RESULTS=${RESULTS:-bench/results}
OUT=${OUT:-}
PORT_NEXT=$((PORT_BASE + 1))

for t in nginx wrk curl taskset python3 cmake; do
    command -v "$t" >/dev/null || die "$t is required"
done
for s in $SERVERS; do [[ " weft weft-nopin nginx nginx-pin " == *" $s "* ]] || die "unknown server $s"; done
for c in $CASES; do [[ " both onecore static " == *" $c "* ]] || die "unknown case $c"; done
for n in $STATIC_BYTES $STATIC_CONNS $CONNS; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $n"; done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target weft-http >/dev/null
HTTP="$BUILD/examples/http/weft-http"
NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*/||')

TMPD=$(mktemp -d /tmp/weft-bench-http.XXXXXX)
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
ulimit -n 20000 2>/dev/null || true
result_begin http "$RESULTS" "${ARGV[@]}"
# The static case's file: random bytes, so a wrong range or a stale buffer
# cannot match by chance.
WWW=$TMPD/www STATIC_NAME=static.bin
mkdir -p "$WWW"
head -c "$STATIC_BYTES" /dev/urandom >"$WWW/$STATIC_NAME"
# nginx's workers run as another user when it starts as root: they need to
# pass through TMPD (not list it) and read the file.
chmod a+x "$TMPD" && chmod 755 "$WWW" && chmod 644 "$WWW/$STATIC_NAME"

# nginx_conf DIR WORKERS PORT PIN [ROOT] — an nginx as close to weft-http as
# it goes: the same workers, no logging, no limit on requests per keep-alive
# connection (nginx's default of 1000 would make wrk reconnect; weft-http has
# no such limit), a response from memory; worker_cpu_affinity auto when PIN=1.
# With ROOT: the files under ROOT instead, with sendfile on (nginx's other
# defaults kept: no open_file_cache, no tcp_nopush).
nginx_conf() {
    nginx_conf_write "$1" "$2" "$3" "" "$([ "$4" = 1 ] && echo "worker_cpu_affinity auto;")" "" "${5:-}"
}

# server_cmd ID PORT WORKERS [ROOT] — sets CMD (nginx: writes its config
# under TMPD); with ROOT the server serves the files under it.
server_cmd() {
    local d=$TMPD/$1-$2 root=()
    [ -n "${4:-}" ] && root=(--root "$4")
    case $1 in
    weft) CMD=("$HTTP" --port "$2" --workers "$3" "${root[@]}" --stats-socket '' -q) ;;
    weft-nopin) CMD=("$HTTP" --port "$2" --workers "$3" --no-pin "${root[@]}" --stats-socket '' -q) ;;
    nginx | nginx-pin)
        nginx_conf "$d" "$3" "$2" "$([ "$1" = nginx-pin ] && echo 1 || echo 0)" "${4:-}"
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

# answers CASE ID — true when server ID gives the right response for CASE:
# "hello, world", or (static) the file, byte for byte.
answers() {
    local url=http://127.0.0.1:${PORT_OF[$2]}/
    if [ "$1" = static ]; then
        curl -sf "$url$STATIC_NAME" 2>/dev/null | cmp -s - "$WWW/$STATIC_NAME"
    else
        [ "$(curl -s "$url" 2>/dev/null)" = "hello, world" ]
    fi
}

# start_servers CASE — every server for CASE on its own port; sets PORT_OF[id]
# and COMMANDS (a JSON object of the command lines); waits for each to answer.
declare -A PORT_OF SPID_OF
start_servers() {
    local id workers=$WORKERS cpus="" docroot="" i
    [ "$1" = onecore ] && workers=2 cpus=$ONECORE_SERVER_CPUS
    [ "$1" = static ] && docroot=$WWW
    COMMANDS=""
    for id in $SERVERS; do
        next_port # the next free one from PORT_BASE (others may share the machine)
        PORT_OF[$id]=$PORT
        server_cmd "$id" "$PORT" "$workers" "$docroot"
        [ -n "$cpus" ] && CMD=(taskset -c "$cpus" "${CMD[@]}")
        COMMANDS+="${COMMANDS:+,}$(json_str "$id"):$(json_str "$(shell_quote "${CMD[@]}" | sed "s|$TMPD|TMP|g")")"
        "${CMD[@]}" >"$TMPD/$id.log" 2>&1 &
        SPID_OF[$id]=$!
        PIDS_STARTED+=("$!")
    done
    for id in $SERVERS; do
        for ((i = 0; i < 50; i++)); do
            answers "$1" "$id" && break
            kill -0 "${SPID_OF[$id]}" 2>/dev/null || break
            sleep 0.1
        done
        answers "$1" "$id" ||
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
    local case=$1 round=$2 id=$3 c=$4 out=$TMPD/wrk.out rc=0 load=() lcpu="" threads=$THREADS path=""
    if [ "$case" = onecore ]; then lcpu=$ONECORE_LOAD_CPU threads=1 load=(taskset -c "$lcpu"); fi
    [ "$case" = static ] && path=$STATIC_NAME
    load+=(wrk -t"$threads" -c"$c" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT_OF[$id]}/$path")
    timeout $((${DURATION%.*} + 60)) "${load[@]}" >"$out" 2>&1 || rc=$?
    wrk_record "$out" "$rc" "$(printf '"case":"%s","round":%s,"server":%s,"conns":%s,"wrk_threads":%s,"load_cpu":%s,' \
        "$case" "$round" "$(json_str "$id")" "$c" "$threads" "$([ -n "$lcpu" ] && json_str "$lcpu" || echo null)")"
    log "  round $round  $case  $id  c=$c  ${WRK_RPS:-?} req/s  p99 ${WRK_P99:-?} ms  errors ${WRK_ERRS:-?} $WRK_REASON"
}

CASES_JSON=""
for case in $CASES; do
    log "case $case: starting $SERVERS"
    start_servers "$case"
    conns=$CONNS path="" goal=$GOAL goal_p99=true extra=""
    if [ "$case" = static ]; then
        conns=$STATIC_CONNS path=$STATIC_NAME goal=$STATIC_GOAL goal_p99=false
        extra=",\"file_bytes\":$STATIC_BYTES"
    fi
    for id in $SERVERS; do
        wrk -t"$THREADS" -c100 -d2s "http://127.0.0.1:${PORT_OF[$id]}/$path" >/dev/null 2>&1 || true
    done
    for round in $(seq "$ROUNDS"); do
        order=$SERVERS
        ((round % 2)) || order=$(tr ' ' '\n' <<<"$SERVERS" | grep . | tac | tr '\n' ' ')
        for c in $conns; do
            for id in $order; do measure "$case" "$round" "$id" "$c"; done
        done
    done
    # The static file once more from each server after the load: still the
    # same bytes.
    if [ "$case" = static ]; then
        for id in $SERVERS; do answers static "$id" || die "$id: the file came back different after the runs"; done
    fi
    stop_servers
    if [ "$case" = static ]; then
        title="A $STATIC_BYTES-byte file from disk: wrk -t$THREADS, servers with $WORKERS workers"
        load_desc="wrk -t$THREADS -cN -d${DURATION}s --latency URL/$STATIC_NAME"
    elif [ "$case" = onecore ]; then
        title="One load thread: wrk -t1 on CPU $ONECORE_LOAD_CPU, servers with 2 workers on CPUs $ONECORE_SERVER_CPUS"
        load_desc="taskset -c $ONECORE_LOAD_CPU wrk -t1 -cN -d${DURATION}s --latency URL"
    else
        title="Load on every CPU: wrk -t$THREADS, servers with $WORKERS workers"
        load_desc="wrk -t$THREADS -cN -d${DURATION}s --latency URL"
    fi
    CASES_JSON+="${CASES_JSON:+,}\"$case\":{\"title\":$(json_str "$title"),\"load\":$(json_str "$load_desc"),"
    CASES_JSON+="\"conns\":[$(tr ' ' '\n' <<<"$conns" | grep . | paste -sd,)],\"goal\":$goal,\"goal_p99\":$goal_p99$extra,"
    conf=""
    [[ " $SERVERS " == *" nginx "* ]] && conf=$(sed "s|$TMPD|TMP|g" "$TMPD/nginx-${PORT_OF[nginx]}/nginx.conf")
    CASES_JSON+="\"nginx_conf\":$(json_str "$conf"),\"commands\":{$COMMANDS}}"
done

# shellcheck disable=SC2086 # word lists
result_end "$(
    printf '"settings":{"rounds":%s,"duration_s":%s,"conns":[%s],"workers":%s,"wrk_threads":%s,' \
        "$ROUNDS" "$DURATION" "$(tr ' ' '\n' <<<"$CONNS" | grep . | paste -sd,)" "$WORKERS" "$THREADS"
    printf '"goal":%s,"cases":%s,"case":{%s},"wrk":%s},' "$GOAL" "$(json_list $CASES)" "$CASES_JSON" \
        "$(json_str "$(wrk -v 2>&1 | head -n1 | cut -c1-60)")"
    printf '"servers":%s,"server_ids":%s' "$(server_labels_json)" "$(json_list $SERVERS)"
)"
log "wrote $RESULT_FILE"
python3 bench/render.py "$RESULT_FILE"
[ -z "$OUT" ] || python3 bench/render.py --out "$OUT" "$RESULT_FILE"
