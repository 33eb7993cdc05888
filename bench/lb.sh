#!/usr/bin/env bash
# bench/lb.sh — weft-lb against HAProxy and nginx as reverse proxies, in one
# run, in front of the same backends (two weft-http, BACKEND_WORKERS workers
# each), under the same load generator (wrk). Every wrk run of every round
# goes into one JSON result file (bench/results/, see bench/lib.sh), and
# bench/render.py renders the tables (medians, ratios, the goal) from it.
#
# Proxies (SERVERS, default "weft-lb haproxy nginx"), WORKERS threads or
# processes each (default 2):
#   weft-lb   weft-lb --workers N, round robin, its keep-alive pool
#   haproxy   HAProxy (Debian's 2.6), nbthread N, mode http, http-reuse safe,
#             roundrobin, no logging
#   nginx     nginx worker_processes N, proxy_pass to an upstream with
#             keepalive 64, proxy_http_version 1.1, no logging
# Cases (CASES, default "keepalive newconn"):
#   keepalive  wrk -t$THREADS -cN over keep-alive client connections
#   newconn    the same with "Connection: close": one connection per request
# The proxies and the backends start once (each on its own loopback port),
# are warmed up (wrk, 2 s), then ROUNDS rounds run every proxy at every
# connection count in CONNS, the order of the proxies reversed every other
# round. Before that, on the fresh processes, IDLE idle client connections,
# each having made one keep-alive request, are opened to each proxy in turn
# and its RSS (all its processes) is read before and after: memory per idle
# client connection. Then every process is stopped by PID.
#
# usage: bench/lb.sh            (environment variables below override)
#   BUILD=build-bench  WORKERS=2  BACKEND_WORKERS=2  CONNS="100 1000"
#   DURATION=10  ROUNDS=3  THREADS=2  SERVERS="weft-lb haproxy nginx"
#   CASES="keepalive newconn"  IDLE=2000  PORT_BASE=18180  GOAL=1.1
#   RESULTS=bench/results  OUT= (also render into this markdown file, between
#   <!-- lb.sh:begin --> and <!-- lb.sh:end -->)
# Needs: haproxy, nginx (nginx-light), wrk, curl, python3, cmake, a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ARGV=("$0" "$@")
T_START=$SECONDS
BUILD=${BUILD:-build-bench}
WORKERS=${WORKERS:-2}
BACKEND_WORKERS=${BACKEND_WORKERS:-2}
CONNS=${CONNS:-"100 1000"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
SERVERS=${SERVERS:-"weft-lb haproxy nginx"}
CASES=${CASES:-"keepalive newconn"}
IDLE=${IDLE:-2000}
PORT_BASE=${PORT_BASE:-18180}
GOAL=${GOAL:-1.1}
RESULTS=${RESULTS:-bench/results}
OUT=${OUT:-}

for t in haproxy nginx wrk curl python3 cmake; do
    command -v "$t" >/dev/null || die "$t is required (apt-get install haproxy nginx-light wrk curl)"
done
for s in $SERVERS; do [[ " weft-lb haproxy nginx " == *" $s "* ]] || die "unknown proxy $s"; done
for c in $CASES; do [[ " keepalive newconn " == *" $c "* ]] || die "unknown case $c"; done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target weft-http weft-lb >/dev/null
HTTP="$BUILD/examples/http/weft-http"
LB="$BUILD/examples/lb/weft-lb"
HAPROXY_VERSION=$(haproxy -v | awk 'NR == 1 {print $3}') # awk reads it all: no SIGPIPE
NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*/||')

TMPD=$(mktemp -d /tmp/weft-bench-lb.XXXXXX)
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
ulimit -n 20000 2>/dev/null || true
result_begin lb "$RESULTS" "${ARGV[@]}"

B1=$((PORT_BASE + 1))
B2=$((PORT_BASE + 2))

haproxy_conf() {
    cat >"$1" <<EOF
global
    nbthread $2
    maxconn 9000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse safe
frontend fe
    bind 127.0.0.1:$3
    default_backend be
backend be
    balance roundrobin
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
EOF
}

nginx_conf() {
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<EOF
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    upstream be {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$3 backlog=4096;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF
}

# server_cmd ID PORT — sets CMD (haproxy and nginx: their config under TMPD).
server_cmd() {
    case $1 in
    weft-lb)
        CMD=("$LB" --listen "127.0.0.1:$2" --workers "$WORKERS" --stats-socket '' -q
            --backend "127.0.0.1:$B1" --backend "127.0.0.1:$B2")
        ;;
    haproxy)
        haproxy_conf "$TMPD/haproxy.cfg" "$WORKERS" "$2"
        CMD=(haproxy -f "$TMPD/haproxy.cfg" -db)
        ;;
    nginx)
        nginx_conf "$TMPD/nginx" "$WORKERS" "$2"
        CMD=(nginx -p "$TMPD/nginx" -c "$TMPD/nginx/nginx.conf" -e "$TMPD/nginx/error.log" -g 'daemon off;')
        ;;
    esac
}

server_label() {
    case $1 in
    weft-lb) echo "weft-lb" ;;
    haproxy) echo "HAProxy $HAPROXY_VERSION" ;;
    nginx) echo "nginx $NGINX_VERSION" ;;
    esac
}

# wait_hello PORT PID WHAT — until GET / on PORT says hello (bounded).
wait_hello() {
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(curl -s "http://127.0.0.1:$1/" 2>/dev/null)" = "hello, world" ] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    die "$3 did not start: $(tail -n 5 "$TMPD/$3.log" 2>/dev/null)"
}

declare -A PORT_OF SPID_OF
start_all() {
    local id port=$((PORT_BASE + 10)) b
    for b in $B1 $B2; do
        "$HTTP" --port "$b" --workers "$BACKEND_WORKERS" --stats-socket '' -q >"$TMPD/backend-$b.log" 2>&1 &
        PIDS_STARTED+=("$!")
        wait_hello "$b" "$!" "backend-$b"
    done
    COMMANDS=""
    for id in $SERVERS; do
        port=$((port + 1))
        PORT_OF[$id]=$port
        server_cmd "$id" "$port"
        COMMANDS+="${COMMANDS:+,}$(json_str "$id"):$(json_str "$(shell_quote "${CMD[@]}" | sed "s|$TMPD|TMP|g")")"
        "${CMD[@]}" >"$TMPD/$id.log" 2>&1 &
        SPID_OF[$id]=$!
        PIDS_STARTED+=("$!")
        wait_hello "$port" "$!" "$id"
    done
}

# measure CASE ROUND ID CONNS — one wrk run, recorded with what wrk reported.
measure() {
    local case=$1 round=$2 id=$3 c=$4 out=$TMPD/wrk.out rc=0 load=()
    load=(wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --latency)
    [ "$case" = newconn ] && load+=(-H "Connection: close")
    load+=("http://127.0.0.1:${PORT_OF[$id]}/")
    timeout $((${DURATION%.*} + 60)) "${load[@]}" >"$out" 2>&1 || rc=$?
    wrk_record "$out" "$rc" "$(printf '"case":"%s","round":%s,"server":%s,"conns":%s,"wrk_threads":%s,' \
        "$case" "$round" "$(json_str "$id")" "$c" "$THREADS")"
    log "  round $round  $case  $id  c=$c  ${WRK_RPS:-?} req/s  p99 ${WRK_P99:-?} ms  errors ${WRK_ERRS:-?} $WRK_REASON"
}

# rss_kib PID — the resident memory of PID and its children (nginx's
# workers), in KiB.
rss_kib() {
    local total=0 p
    for p in $1 $(pgrep -P "$1" 2>/dev/null || true); do
        total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# idle_memory ID — IDLE clients each make one keep-alive request and stay
# open; the proxy's RSS before and after, recorded.
idle_memory() {
    local id=$1 before after ready
    before=$(rss_kib "${SPID_OF[$id]}")
    python3 - "${PORT_OF[$id]}" "$IDLE" >"$TMPD/idle.out" 2>&1 <<'EOF' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
    socks.append(s)
for s in socks:
    got = b""
    while b"hello, world\n" not in got:
        d = s.recv(4096)
        if not d:
            sys.exit("closed early")
        got += d
print("ready", flush=True)
time.sleep(30)
EOF
    local cpid=$!
    PIDS_STARTED+=("$cpid")
    for _ in $(seq 300); do grep -q ready "$TMPD/idle.out" && break; sleep 0.1; done
    ready=$(grep -c ready "$TMPD/idle.out" || true)
    sleep 1
    after=$(rss_kib "${SPID_OF[$id]}")
    stop_pid "$cpid" 2
    forget_pid "$cpid"
    local status=ok per
    [ "$ready" = 1 ] || status=FAILED
    per=$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
    result_run "$(printf '{"case":"idle","server":%s,"conns":%s,"status":"%s","rss_before_kib":%s,"rss_after_kib":%s,"bytes_per_conn":%s}' \
        "$(json_str "$id")" "$IDLE" "$status" "$before" "$after" "$per")"
    log "  idle  $id  $IDLE connections: RSS $before -> $after KiB, $per bytes each ($status)"
}

log "starting two weft-http backends and $SERVERS"
start_all
# memory first, on fresh processes: after the load runs, memory freed by
# them would be reused and hide the cost of a connection
for id in $SERVERS; do idle_memory "$id"; done
for id in $SERVERS; do
    wrk -t"$THREADS" -c100 -d2s "http://127.0.0.1:${PORT_OF[$id]}/" >/dev/null 2>&1 || true
done
for case in $CASES; do
    for round in $(seq "$ROUNDS"); do
        order=$SERVERS
        ((round % 2)) || order=$(tr ' ' '\n' <<<"$SERVERS" | grep . | tac | tr '\n' ' ')
        for c in $CONNS; do
            for id in $order; do measure "$case" "$round" "$id" "$c"; done
        done
    done
done

CASES_JSON=""
for case in $CASES; do
    if [ "$case" = newconn ]; then
        title="New connections: one request per client connection (Connection: close)"
        load_desc="wrk -t$THREADS -cN -d${DURATION}s --latency -H 'Connection: close' URL"
    else
        title="Keep-alive clients: proxies with $WORKERS workers, two weft-http backends with $BACKEND_WORKERS workers each"
        load_desc="wrk -t$THREADS -cN -d${DURATION}s --latency URL"
    fi
    CASES_JSON+="${CASES_JSON:+,}\"$case\":{\"title\":$(json_str "$title"),\"load\":$(json_str "$load_desc"),\"commands\":{$COMMANDS}}"
done
# shellcheck disable=SC2086 # word lists
result_end "$(
    printf '"settings":{"rounds":%s,"duration_s":%s,"conns":[%s],"workers":%s,"wrk_threads":%s,' \
        "$ROUNDS" "$DURATION" "$(tr ' ' '\n' <<<"$CONNS" | grep . | paste -sd,)" "$WORKERS" "$THREADS"
    printf '"goal":%s,"refs":["haproxy","nginx"],"idle":%s,"cases":%s,"case":{%s},"wrk":%s},' "$GOAL" "$IDLE" \
        "$(json_list $CASES)" "$CASES_JSON" "$(json_str "$(wrk -v 2>&1 | head -n1 | cut -c1-60)")"
    printf '"servers":%s,"server_ids":%s' "$(server_labels_json)" "$(json_list $SERVERS)"
)"
log "wrote $RESULT_FILE"
python3 bench/render.py "$RESULT_FILE"
[ -z "$OUT" ] || python3 bench/render.py --out "$OUT" "$RESULT_FILE"
