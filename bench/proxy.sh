#!/usr/bin/env bash
# bench/proxy.sh — weft-proxy (examples/proxy) against HAProxy in TCP mode,
# each in front of the same weft-echo, under the same load generator
# (weft-load echo, which checks every byte it gets back), in one run. It
# measures and records: every run of every round goes into one JSON result
# file (bench/results/, see bench/lib.sh), and bench/render.py renders the
# table (medians, ratios) from it.
#
# Servers (SERVERS, default "weft-proxy haproxy direct"), each started once:
#   weft-proxy  weft-proxy --workers WORKERS --backend 127.0.0.1:ECHO,
#               its default placement
#   haproxy     Debian's haproxy, mode tcp, nbthread WORKERS, one server (the
#               same weft-echo), no logging, HAProxy's default placement
#               (no cpu-map)
#   direct      no proxy: weft-load straight to the weft-echo, to show what
#               the hop costs
# The backend is one weft-echo with 2 workers (its default placement) that
# every proxy forwards to, started before them and stopped after them.
# Each server is warmed up (weft-load, 100 connections, 2 s), then ROUNDS
# rounds run every server at every connection count in CONNS, the order of
# the servers reversed every other round:
#   weft-load echo --conns N --size SIZE --depth 1 --threads 2 --duration S --json
# A run whose weft-load exits non-zero (a mismatched byte, a connection
# lost, fewer connections than asked) is FAILED, with weft-load's reason.
# CPU: utime+stime of the proxy and of the backend around each run.
#
# usage: bench/proxy.sh            (environment variables below override)
#   BUILD=build-bench  WORKERS=2  CONNS="100 1000"  SIZE=64  DURATION=5
#   ROUNDS=3  SERVERS="weft-proxy haproxy direct"  PORT_BASE=19100
#   RESULTS=bench/results  OUT= (also render into this markdown file, between
#   <!-- proxy.sh:begin --> and <!-- proxy.sh:end -->)
# Needs: haproxy, ss, python3, cmake, a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ARGV=("$0" "$@")
T_START=$SECONDS

case ${1:-} in
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
"") ;;
*) die "no arguments (settings are environment variables; see --help)" ;;
esac

BUILD=${BUILD:-build-bench}
WORKERS=${WORKERS:-2}
CONNS=${CONNS:-"100 1000"}
SIZE=${SIZE:-64}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"weft-proxy haproxy direct"}
PORT_NEXT=${PORT_BASE:-19100}
RESULTS=${RESULTS:-bench/results}
OUT=${OUT:-}
RUN_LIMIT=$((${DURATION%.*} + 60)) # outer bound on one weft-load run, seconds

for t in haproxy ss python3 cmake; do
    command -v "$t" >/dev/null || die "$t is required"
done
for s in $SERVERS; do [[ " weft-proxy haproxy direct " == *" $s "* ]] || die "unknown server $s"; done
for n in $WORKERS $CONNS $SIZE $ROUNDS; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $n"; done
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DURATION: not a number: $DURATION"
ulimit -n 20000 2>/dev/null || true
for n in $CONNS; do
    # The proxy holds two descriptors per connection; the load generator and
    # the backend one each.
    ((2 * n + 64 <= $(ulimit -n))) || die "$n connections need $((2 * n + 64)) descriptors; the limit is $(ulimit -n)"
done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target weft-echo weft-proxy weft-load >/dev/null
ECHO=$BUILD/tools/weft-echo PROXY=$BUILD/examples/proxy/weft-proxy LOADGEN=$BUILD/tools/weft-load
HAPROXY_VERSION=$(haproxy -v 2>&1 | awk 'NR == 1 { print $3 }')

TMPD=$(mktemp -d /tmp/weft-bench-proxy.XXXXXX)
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
result_begin proxy "$RESULTS" "${ARGV[@]}"

# haproxy_conf FILE PORT BACKEND_PORT — TCP mode, WORKERS threads, one
# server, no logging; maxconn kept under the fd limit (two per connection).
haproxy_conf() {
    cat >"$1" <<EOF
global
    nbthread $WORKERS
    maxconn $((($(ulimit -n) - 100) / 2))
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend fe
    bind 127.0.0.1:$2
    default_backend be
backend be
    server echo 127.0.0.1:$3
EOF
}

# server_cmd ID PORT — sets CMD (haproxy: writes its config under TMPD).
server_cmd() {
    case $1 in
    echo) CMD=("$ECHO" --port "$2" --workers 2 --stats-socket '' -q) ;;
    weft-proxy) CMD=("$PROXY" --port "$2" --workers "$WORKERS" --backend "127.0.0.1:$ECHO_PORT"
        --stats-socket '' -q) ;;
    haproxy)
        haproxy_conf "$TMPD/haproxy.cfg" "$2" "$ECHO_PORT"
        CMD=(haproxy -db -f "$TMPD/haproxy.cfg")
        ;;
    esac
}

server_label() {
    case $1 in
    weft-proxy) echo "weft-proxy ($WORKERS workers)" ;;
    haproxy) echo "HAProxy $HAPROXY_VERSION (mode tcp, nbthread $WORKERS)" ;;
    direct) echo "no proxy (weft-echo directly)" ;;
    esac
}

# start ID — starts it on the next free port; sets PORT_OF[id], SPID_OF[id]
# and adds its command line to COMMANDS; waits (up to 10 s) until the port
# listens. Dies if it does not.
declare -A PORT_OF SPID_OF
COMMANDS=""
start() {
    local id=$1 i
    next_port
    PORT_OF[$id]=$PORT
    server_cmd "$id" "$PORT"
    COMMANDS+="${COMMANDS:+,}$(json_str "$id"):$(json_str "$(shell_quote "${CMD[@]}" | sed "s|$TMPD|TMP|g")")"
    "${CMD[@]}" >"$TMPD/$id.log" 2>&1 &
    SPID_OF[$id]=$!
    PIDS_STARTED+=("$!")
    for ((i = 0; i < 200; i++)); do
        port_free "$PORT" || return 0
        kill -0 "${SPID_OF[$id]}" 2>/dev/null || break
        sleep 0.05
    done
    die "$id did not start: $(tail -n 5 "$TMPD/$id.log")"
}

# pid_of ID / port_of ID — the process and port a server's load goes to
# (direct: the backend itself).
pid_of() { if [ "$1" = direct ]; then echo "${SPID_OF[echo]}"; else echo "${SPID_OF[$1]}"; fi; }
port_of() { if [ "$1" = direct ]; then echo "$ECHO_PORT"; else echo "${PORT_OF[$1]}"; fi; }

# measure ROUND ID CONNS — one weft-load run through ID, recorded with
# weft-load's whole JSON report and the CPU both processes used.
measure() {
    local round=$1 id=$2 c=$3 out=$TMPD/load.out err=$TMPD/load.err rc=0 pid epid
    local p0 p1 e0 e1 status=ok reason="" msgs p99
    pid=$(pid_of "$id") epid=${SPID_OF[echo]}
    p0=$(cpu_ticks "$pid") e0=$(cpu_ticks "$epid")
    timeout --kill-after=5 "$RUN_LIMIT" "$LOADGEN" echo --port "$(port_of "$id")" --conns "$c" \
        --size "$SIZE" --depth 1 --threads 2 --duration "$DURATION" --json >"$out" 2>"$err" || rc=$?
    p1=$(cpu_ticks "$pid") e1=$(cpu_ticks "$epid")
    if ! kill -0 "$pid" 2>/dev/null || ! kill -0 "$epid" 2>/dev/null; then
        status=FAILED reason="a server exited during the run: $(tail -n1 "$TMPD/$id.log" | cut -c1-120)"
    elif [ "$rc" != 0 ]; then
        status=FAILED reason=$(load_failure "$out" "$err" "$rc")
    fi
    msgs=$(jget "$out" msgs_per_s) p99=$(jget "$out" latency_us.p99)
    local pcpu=null ecpu=null phwm=null
    # CPU only where both readings exist (a process gone has none).
    if [ "$id" != direct ] && [ -n "$p0" ] && [ -n "$p1" ]; then pcpu=$((p1 - p0)); fi
    if [ -n "$e0" ] && [ -n "$e1" ]; then ecpu=$((e1 - e0)); fi
    [ "$id" != direct ] && phwm=$(json_num "$(proc_status_kib "$pid" VmHWM)")
    result_run "$(
        printf '{"round":%s,"server":%s,"conns":%s,"size":%s,"depth":1,"load_threads":2,' "$round" \
            "$(json_str "$id")" "$c" "$SIZE"
        printf '"status":"%s","reason":%s,"load_rc":%s,' "$status" "$(json_str "$reason")" "$rc"
        printf '"proxy_cpu_ticks":%s,"backend_cpu_ticks":%s,"proxy_hwm_kib":%s,"load":%s}' \
            "$pcpu" "$ecpu" "$phwm" "$(json_obj_file "$out")"
    )"
    log "  round $round  $id  c=$c  ${msgs:-?} msg/s  p99 ${p99:-?} us  $status${reason:+ ($reason)}"
}

log "load average before: $RESULT_LOAD_BEFORE; servers: $SERVERS; conns: $CONNS; ${DURATION}s runs; $ROUNDS rounds"
start echo
ECHO_PORT=${PORT_OF[echo]}
for id in $SERVERS; do [ "$id" = direct ] || start "$id"; done
for id in $SERVERS; do
    "$LOADGEN" echo --port "$(port_of "$id")" --conns 100 --size "$SIZE" --duration 2 >/dev/null 2>&1 ||
        die "$id: the warm-up run failed: $("$LOADGEN" echo --port "$(port_of "$id")" --conns 10 \
            --duration 0.5 2>&1 | tail -n 2)"
done
for round in $(seq "$ROUNDS"); do
    order=$SERVERS
    ((round % 2)) || order=$(tr ' ' '\n' <<<"$SERVERS" | grep . | tac | tr '\n' ' ')
    for c in $CONNS; do
        for id in $order; do measure "$round" "$id" "$c"; done
    done
done
for id in $SERVERS echo; do
    [ "$id" = direct ] && continue
    stop_pid "${SPID_OF[$id]}" 10
    forget_pid "${SPID_OF[$id]}"
done
log "measurements done; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# shellcheck disable=SC2086 # word lists
result_end "$(
    printf '"settings":{"rounds":%s,"duration_s":%s,"conns":[%s],"size":%s,"depth":1,"workers":%s,' \
        "$ROUNDS" "$DURATION" "$(tr ' ' '\n' <<<"$CONNS" | grep . | paste -sd,)" "$SIZE" "$WORKERS"
    printf '"load":%s,"commands":{%s},"haproxy_cfg":%s},"clk_tck":%s,' \
        "$(json_str "weft-load echo --port PORT --conns N --size $SIZE --depth 1 --threads 2 --duration $DURATION --json")" \
        "$COMMANDS" "$(json_str "$(sed "s|$TMPD|TMP|g" "$TMPD/haproxy.cfg" 2>/dev/null)")" "$(getconf CLK_TCK)"
    printf '"servers":%s,"server_ids":%s' "$(server_labels_json)" "$(json_list $SERVERS)"
)"
log "wrote $RESULT_FILE"
python3 bench/render.py "$RESULT_FILE"
[ -z "$OUT" ] || python3 bench/render.py --out "$OUT" "$RESULT_FILE"
