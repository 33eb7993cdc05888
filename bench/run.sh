#!/usr/bin/env bash
# bench/run.sh — weft-echo against the peer echo servers, under one load
# generator, in one run. It measures and records; it computes no figure.
# Every run of every round goes into one JSON result file (bench/results/,
# see bench/lib.sh), and bench/render.py turns that file into the markdown
# tables and plots (docs/benchmarks.md), each figure the median of the rounds.
#
# What it measures, per server (the cases, --cases):
#   closed     closed-loop echo (weft-load echo, depth 1) at every level and
#              size: messages/s, latency, server CPU (utime+stime from
#              /proc/PID/stat around the run), peak RSS (VmHWM);
#   pipelined  depth 16 at PIPE_CONNS connections, 64 B;
#   onecore    the load generator with one thread, pinned (taskset) to one of
#              the two CPUs the server is confined to: the case in which a
#              server that pins its workers shares a core with its client;
#   syscalls   system calls per message (strace -c -f -p, attached for a fixed
#              window of a steady closed-loop run; messages counted on the
#              kernel side from tcpi_bytes_sent);
#   open       open loop (weft-load rate) at half the best peer's closed-loop
#              median: latency without coordinated omission;
#   floods     weft only: idle connections held, memory per connection.
# Rounds are interleaved: each round runs every server once per case, and the
# order of the servers is reversed every other round. Each run gets a fresh
# server on its own port, waited for ("listening on") and stopped by its PID.
#
# usage: see --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [options]

Runs weft-echo and the peer echo servers (bench/peers) under weft-load on
loopback, writes every run to a JSON result file, then renders the tables and
plots from it with bench/render.py. Builds what it needs in build-bench/ first.
Bounded: every run stops by itself.

  --quick          smoke run (about 2 minutes): 1 round, short runs, levels 100
                   and 2000, 64 B only, small floods; results and report go to
                   build-bench/quick/ unless --results/--out are given. One
                   round is not a figure: the report says so.
  --rounds N       interleaved rounds (default 3; a figure needs 3 or more)
  --duration S     seconds per closed-/open-loop run (default 2; fractions ok)
  --servers LIST   comma-separated, from: weft weft-uring weft-nopin weft-cpu weft-poll
                   weft1 libuv2 libuv1 libevent epoll-et epoll-lt poll select threads
                   (default: all; weft-cpu is weft-echo --pin cpu, each worker
                   on one CPU as before issue 15; weft-poll is --io poll;
                   weft-uring is --io uring)
  --baseline REV   also run weft-echo built from commit REV (server weft-base,
                   2 workers), interleaved with the rest: old against new in
                   the same run
  --cases LIST     comma-separated, from: closed pipelined onecore syscalls
                   open floods (default: all)
  --levels LIST    connection counts (default 10,100,1000,10000)
  --sizes LIST     message sizes in bytes (default 64,4096)
  --onecore-levels LIST   connection counts of the one-core case (default 100,1000)
  --results DIR    where the result file goes (default bench/results)
  --out FILE       report to render (default docs/benchmarks.md); only the part
                   between <!-- run.sh:begin --> and <!-- run.sh:end --> is
                   replaced. Plots go to img/ next to it.
  --no-render      write the result file only
  --no-plots       render without gnuplot images
  -h, --help       this text

Environment: BUILD (default build-bench), PORT_BASE (default 17100),
ONECORE_SERVER_CPUS (default 0,1), ONECORE_LOAD_CPU (default 1).
Rendering again later: bench/render.py --out docs/benchmarks.md RESULT.json
EOF
}

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
T_START=$SECONDS
ARGV=("$0" "$@")

ALL_SERVERS="weft weft-uring weft-nopin weft-cpu weft-poll weft1 libuv2 libuv1 libevent epoll-et epoll-lt poll select threads"
ALL_CASES="closed pipelined onecore syscalls open floods"

# ---- options ---------------------------------------------------------------
QUICK=0 ROUNDS="" DURATION="" SERVERS="" LEVELS="" SIZES="" OUT="" RESULTS="" PLOTS=1 RENDER=1
CASES="" BASELINE="" ONECORE_LEVELS=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=${2:?--rounds needs N}; shift ;;
    --duration) DURATION=${2:?--duration needs S}; shift ;;
    --servers) SERVERS=${2:?--servers needs a list}; shift ;;
    --baseline) BASELINE=${2:?--baseline needs a commit}; shift ;;
    --cases) CASES=${2:?--cases needs a list}; shift ;;
    --levels) LEVELS=${2:?--levels needs a list}; shift ;;
    --sizes) SIZES=${2:?--sizes needs a list}; shift ;;
    --onecore-levels) ONECORE_LEVELS=${2:?--onecore-levels needs a list}; shift ;;
    --results) RESULTS=${2:?--results needs a directory}; shift ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    --no-render) RENDER=0 ;;
    --no-plots) PLOTS=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

BUILD=${BUILD:-build-bench}
if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=1}" "${DURATION:=0.5}" "${LEVELS:=100,2000}" "${SIZES:=64}" "${ONECORE_LEVELS:=100}"
    : "${OUT:=$BUILD/quick/benchmarks.md}" "${RESULTS:=$BUILD/quick/results}"
    SYSCALL_CONNS=1000 SYSCALL_WINDOW=0.5 PIPE_CONNS=1000 OPEN_CONNS=2000
    FLOODS="2000 4000:4" FLOOD_HOLD=1
else
    : "${ROUNDS:=3}" "${DURATION:=2}" "${LEVELS:=10,100,1000,10000}" "${SIZES:=64,4096}"
    : "${ONECORE_LEVELS:=100,1000}" "${OUT:=docs/benchmarks.md}" "${RESULTS:=bench/results}"
    SYSCALL_CONNS=1000 SYSCALL_WINDOW=2 PIPE_CONNS=1000 OPEN_CONNS=10000
    FLOODS="10000 19000:4" FLOOD_HOLD=2
fi
: "${SERVERS:=${ALL_SERVERS// /,}}" "${CASES:=${ALL_CASES// /,}}"
PIPE_DEPTH=16
ONECORE_SERVER_CPUS=${ONECORE_SERVER_CPUS:-0,1}
ONECORE_LOAD_CPU=${ONECORE_LOAD_CPU:-1}
SERVERS=${SERVERS//,/ } LEVELS=${LEVELS//,/ } SIZES=${SIZES//,/ } CASES=${CASES//,/ }
ONECORE_LEVELS=${ONECORE_LEVELS//,/ }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds: not a positive integer: $ROUNDS"
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration: not a number: $DURATION"
for s in $SERVERS; do
    [[ " $ALL_SERVERS " == *" $s "* ]] || die "--servers: unknown server '$s' (known: $ALL_SERVERS)"
done
for c in $CASES; do
    [[ " $ALL_CASES " == *" $c "* ]] || die "--cases: unknown case '$c' (known: $ALL_CASES)"
done
for n in $LEVELS $SIZES $ONECORE_LEVELS; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad level or size: $n"; done
sort_words() { tr ' ' '\n' <<<"$1" | grep . | sort -n -u | tr '\n' ' '; }
LEVELS=$(sort_words "$LEVELS") SIZES=$(sort_words "$SIZES") ONECORE_LEVELS=$(sort_words "$ONECORE_LEVELS")
has_case() { [[ " $CASES " == *" $1 "* ]]; }

PORT_NEXT=${PORT_BASE:-17100}
DUR_INT=${DURATION%.*}
RUN_LIMIT=$((DUR_INT + 60)) # outer bound on one weft-load run, seconds

for tool in ss awk sed timeout cmake git python3; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
HAVE_STRACE=0
command -v strace >/dev/null && HAVE_STRACE=1
HAVE_TASKSET=0
command -v taskset >/dev/null && HAVE_TASKSET=1

TMPD=$(mktemp -d /tmp/weft-bench.XXXXXX)
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- limits, build -----------------------------------------------------------
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
ulimit -n "$HARD_NOFILE"
NOFILE=$(ulimit -n)
FD_SPARE=64              # descriptors a process needs besides its connections
SELECT_MAX=$((1024 - 8)) # FD_SETSIZE less stdio, listener and spares

result_begin echo "$RESULTS" "${ARGV[@]}"
log "load average before: $RESULT_LOAD_BEFORE; fd limit $NOFILE"
log "building in $BUILD"
cmake -S . -B "$BUILD" -DWEFT_BUILD_BENCH=ON -DWEFT_BUILD_TESTS=OFF >"$TMPD/cmake.log" 2>&1 ||
    { cat "$TMPD/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD" -j"$(nproc)" --target weft-echo weft-load peer-threads peer-select \
    peer-poll peer-epoll-lt peer-epoll-et peer-libuv peer-libevent >>"$TMPD/cmake.log" 2>&1 ||
    { tail -n 30 "$TMPD/cmake.log" >&2; die "build failed"; }
B=$ROOT/$BUILD
LOADGEN=$B/tools/weft-load

# --baseline REV: weft-echo from another commit, built from `git archive` in
# its own folder (no worktree, nothing in the checkout changes).
BASE_SHA="" BASE_ECHO=""
if [ -n "$BASELINE" ]; then
    BASE_SHA=$(git rev-parse --verify "$BASELINE^{commit}" 2>/dev/null) ||
        die "--baseline: not a commit: $BASELINE"
    BASE_DIR=$B/baseline-${BASE_SHA:0:12}
    BASE_ECHO=$BASE_DIR/build/tools/weft-echo
    if [ ! -x "$BASE_ECHO" ]; then
        log "building weft-echo at ${BASE_SHA:0:12} in $BASE_DIR"
        rm -rf "$BASE_DIR"
        mkdir -p "$BASE_DIR/src"
        git archive "$BASE_SHA" | tar -x -C "$BASE_DIR/src"
        { cmake -S "$BASE_DIR/src" -B "$BASE_DIR/build" -DWEFT_BUILD_TESTS=OFF \
            -DWEFT_BUILD_EXAMPLES=OFF && cmake --build "$BASE_DIR/build" -j"$(nproc)" \
            --target weft-echo; } >"$TMPD/base.log" 2>&1 ||
            { tail -n 30 "$TMPD/base.log" >&2; die "--baseline: build failed"; }
    fi
    SERVERS="$SERVERS weft-base"
fi

# ---- servers -------------------------------------------------------------------
# server_cmd ID PORT [EXTRA...] — sets CMD to the server's command line.
server_cmd() {
    local id=$1 port=$2
    shift 2
    case $id in
    weft) CMD=("$B/tools/weft-echo" --port "$port" --workers 2 --io epoll -q "$@") ;;
    weft-uring) CMD=("$B/tools/weft-echo" --port "$port" --workers 2 --io uring -q "$@") ;;
    weft-nopin) CMD=("$B/tools/weft-echo" --port "$port" --workers 2 --no-pin -q "$@") ;;
    weft-cpu) CMD=("$B/tools/weft-echo" --port "$port" --workers 2 --pin cpu -q "$@") ;;
    weft-poll) CMD=("$B/tools/weft-echo" --port "$port" --workers 2 --io poll -q "$@") ;;
    weft-base) CMD=("$BASE_ECHO" --port "$port" --workers 2 -q "$@") ;;
    weft1) CMD=("$B/tools/weft-echo" --port "$port" --workers 1 -q "$@") ;;
    libuv2) CMD=("$B/bench/peers/peer-libuv" --port "$port" --threads 2) ;;
    libuv1) CMD=("$B/bench/peers/peer-libuv" --port "$port" --threads 1) ;;
    libevent) CMD=("$B/bench/peers/peer-libevent" --port "$port" --threads 2) ;;
    *) CMD=("$B/bench/peers/peer-$id" --port "$port") ;;
    esac
}

# server_label ID — the name shown in tables and plots.
server_label() {
    case $1 in
    weft) echo "weft (2 workers)" ;;
    weft-uring) echo "weft io_uring (2 workers)" ;;
    weft-nopin) echo "weft --no-pin (2 workers)" ;;
    weft-cpu) echo "weft --pin cpu (2 workers)" ;;
    weft-poll) echo "weft --io poll (2 workers)" ;;
    weft-base) echo "weft @ ${BASE_SHA:0:7} (2 workers)" ;;
    weft1) echo "weft (1 worker)" ;;
    libuv2) echo "libuv (2 loops)" ;;
    libuv1) echo "libuv (1 loop)" ;;
    libevent) echo "libevent (2 workers)" ;;
    epoll-et) echo "epoll ET (1 thread)" ;;
    epoll-lt) echo "epoll LT (1 thread)" ;;
    poll) echo "poll (1 thread)" ;;
    select) echo "select (1 thread)" ;;
    threads) echo "thread per conn" ;;
    esac
}

# start_server ID PORT CPUS [EXTRA...] — starts it in the background (under
# taskset -c CPUS unless CPUS is empty), sets SPID, and waits (up to 10 s)
# for its "listening on" line. Returns 1 if it exits or does not get there;
# SLOG is its output.
start_server() {
    local id=$1 port=$2 cpus=$3 i
    shift 3
    server_cmd "$id" "$port" "$@"
    [ -n "$cpus" ] && CMD=(taskset -c "$cpus" "${CMD[@]}")
    SLOG=$TMPD/server.$port.log
    : >"$SLOG" # exists before the first grep (the child opens it asynchronously)
    "${CMD[@]}" >"$SLOG" 2>&1 &
    SPID=$!
    PIDS_STARTED+=("$SPID")
    for ((i = 0; i < 200; i++)); do
        if grep -qs 'listening on' "$SLOG"; then
            # A figure for io_uring must come from io_uring, not its fallback.
            ! grep -s 'falling back' "$SLOG" >&2 || die "$id is not on the backend it names"
            return 0
        fi
        kill -0 "$SPID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# stop_server — stops SPID (SIGTERM, SIGKILL after 10 s) and forgets it.
stop_server() {
    stop_pid "$SPID" 10
    forget_pid "$SPID"
}

# servers_in_order ROUND — the servers, reversed on even rounds, so that no
# server always runs right after the same neighbour.
servers_in_order() {
    if (($1 % 2)); then echo "$SERVERS"; else tr ' ' '\n' <<<"$SERVERS" | grep . | tac | tr '\n' ' '; fi
}

# ---- one run ---------------------------------------------------------------------
# na_reason SERVER CONNS [KIND] — why SERVER cannot run CONNS connections (or
# this kind of run) here, or "".
na_reason() {
    if [ "$1" = select ] && (($2 > SELECT_MAX)); then
        echo "select: FD_SETSIZE"
    elif (($2 + FD_SPARE > NOFILE)); then
        echo "fd limit $NOFILE"
    elif [ "${3:-}" = onecore ] && [ "$HAVE_TASKSET" = 0 ]; then
        echo "taskset not installed"
    elif [ "${3:-}" = onecore ] && (($(nproc) < 2)); then
        echo "needs 2 CPUs"
    elif [ "${3:-}" = syscalls ] && [ "$HAVE_STRACE" = 0 ]; then
        echo "strace not installed"
    fi
}

# run_tags KIND ROUND ID CONNS SIZE DEPTH — the members every run record starts with.
run_tags() {
    printf '"kind":"%s","round":%s,"server":%s,"conns":%s,"size":%s,"depth":%s' \
        "$1" "$2" "$(json_str "$3")" "$4" "$5" "$6"
}

# record_na KIND ROUND ID CONNS SIZE DEPTH STATUS REASON — a run that did not happen.
record_na() {
    result_run "{$(run_tags "$1" "$2" "$3" "$4" "$5" "$6"),\"status\":\"$7\",\"reason\":$(json_str "$8")}"
    log "  $1 $3 conns=$4 size=$5 depth=$6: $7 ($8)"
}

# CLOSED holds "server conns size depth msgs_per_s" of every ok closed-loop
# run: the open-loop rate is taken from it (best_peer).
CLOSED=$TMPD/closed.tsv
: >"$CLOSED"

# run_load KIND ROUND ID CONNS SIZE DEPTH [RATE] — one weft-load run against a
# fresh server: KIND closed (echo), open (rate RATE) or onecore (echo with one
# load thread pinned to ONECORE_LOAD_CPU, the server confined to
# ONECORE_SERVER_CPUS). Records the run with weft-load's whole JSON report.
run_load() {
    local kind=$1 round=$2 id=$3 conns=$4 size=$5 depth=$6 rate=${7:-}
    local na out=$TMPD/load.out err=$TMPD/load.err rc=0 c0 c1 hwm status=ok reason="" msgs
    local scpus="" load=("$LOADGEN") threads=2 lcpu=""
    na=$(na_reason "$id" "$conns" "$kind")
    [ -n "$na" ] && { record_na "$kind" "$round" "$id" "$conns" "$size" "$depth" na "$na"; return; }
    if [ "$kind" = onecore ]; then
        scpus=$ONECORE_SERVER_CPUS lcpu=$ONECORE_LOAD_CPU threads=1
        load=(taskset -c "$lcpu" "$LOADGEN")
    fi
    next_port
    if ! start_server "$id" "$PORT" "$scpus"; then
        reason="server did not start: $(tail -n1 "$SLOG" | cut -c1-120)"
        stop_server
        record_na "$kind" "$round" "$id" "$conns" "$size" "$depth" FAILED "$reason"
        return
    fi
    if [ "$kind" = open ]; then load+=(rate --rate "$rate"); else load+=(echo --depth "$depth"); fi
    load+=(--port "$PORT" --conns "$conns" --size "$size" --threads "$threads"
        --duration "$DURATION" --json)
    c0=$(cpu_ticks "$SPID")
    timeout --kill-after=5 "$RUN_LIMIT" "${load[@]}" >"$out" 2>"$err" || rc=$?
    c1=$(cpu_ticks "$SPID")
    hwm=$(proc_status_kib "$SPID" VmHWM)
    if ! kill -0 "$SPID" 2>/dev/null; then
        status=FAILED reason="server exited during the run: $(tail -n1 "$SLOG" | cut -c1-120)"
    elif [ "$rc" != 0 ]; then
        status=FAILED reason=$(load_failure "$out" "$err" "$rc")
    fi
    stop_server
    msgs=$(jget "$out" msgs_per_s)
    result_run "{$(run_tags "$kind" "$round" "$id" "$conns" "$size" "$depth"),$(
        printf '"rate":%s,"load_threads":%s,"load_cpu":%s,"server_cpus":%s,' "$(json_num "$rate")" \
            "$threads" "$([ -n "$lcpu" ] && json_str "$lcpu" || echo null)" \
            "$([ -n "$scpus" ] && json_str "$scpus" || echo null)"
        printf '"status":"%s","reason":%s,"load_rc":%s,' "$status" "$(json_str "$reason")" "$rc"
        printf '"server_cpu_ticks":%s,"hwm_kib":%s,"load":%s' \
            "$(json_num "$([ -n "$c0" ] && [ -n "$c1" ] && echo $((c1 - c0)))")" "$(json_num "$hwm")" \
            "$(json_obj_file "$out")"
    )}"
    if [ "$kind" = closed ] && [ "$status" = ok ] && [ -n "$msgs" ]; then
        printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$conns" "$size" "$depth" "$msgs" >>"$CLOSED"
    fi
    log "  $kind $id conns=$conns size=$size depth=$depth${rate:+ rate=$rate}: $status ${msgs:-} msg/s${reason:+ ($reason)}"
}

# run_flood ROUND CONNS SOURCES — weft only: hold CONNS idle connections, each
# proven to echo once; records the server's VmRSS before and its highest
# VmRSS while they are held.
run_flood() {
    local round=$1 conns=$2 sources=$3 na out=$TMPD/flood.out err=$TMPD/flood.err rc=0
    local rss0 rss max=0 i hwm status=ok reason=""
    local args=(flood --conns "$conns" --hold "$FLOOD_HOLD" --json)
    ((sources > 0)) && args+=(--sources "$sources")
    na=$(na_reason weft "$conns")
    [ -n "$na" ] && { record_na flood "$round" weft "$conns" 64 1 na "$na"; return; }
    next_port
    if ! start_server weft "$PORT" ""; then
        reason="server did not start: $(tail -n1 "$SLOG" | cut -c1-120)"
        stop_server
        record_na flood "$round" weft "$conns" 64 1 FAILED "$reason"
        return
    fi
    sleep 0.2
    rss0=$(proc_status_kib "$SPID" VmRSS)
    timeout --kill-after=5 "$RUN_LIMIT" "$LOADGEN" "${args[@]}" --port "$PORT" >"$out" 2>"$err" &
    local lpid=$!
    PIDS_STARTED+=("$lpid")
    # Sample the server's RSS while the connections are held (bounded).
    for ((i = 0; i < RUN_LIMIT * 10; i++)); do
        kill -0 "$lpid" 2>/dev/null || break
        rss=$(proc_status_kib "$SPID" VmRSS)
        [ -n "$rss" ] && ((rss > max)) && max=$rss
        sleep 0.1
    done
    wait "$lpid" || rc=$?
    forget_pid "$lpid"
    hwm=$(proc_status_kib "$SPID" VmHWM)
    if ! kill -0 "$SPID" 2>/dev/null; then
        status=FAILED reason="server exited during the run"
    elif [ "$rc" != 0 ]; then
        status=FAILED reason=$(load_failure "$out" "$err" "$rc")
    fi
    stop_server
    result_run "{$(run_tags flood "$round" weft "$conns" 64 1),$(
        printf '"sources":%s,"hold_s":%s,"status":"%s","reason":%s,"load_rc":%s,' "$sources" \
            "$FLOOD_HOLD" "$status" "$(json_str "$reason")" "$rc"
        printf '"rss_before_kib":%s,"rss_max_kib":%s,"hwm_kib":%s,"load":%s' "$(json_num "$rss0")" \
            "$(json_num "$max")" "$(json_num "$hwm")" "$(json_obj_file "$out")"
    )}"
    log "  flood weft conns=$conns sources=$sources: $status, VmRSS $rss0 -> $max kB${reason:+ ($reason)}"
}

# run_syscalls ROUND SERVER — system calls per message on a steady closed-loop
# run (SYSCALL_CONNS connections, 64 B, depth 1). strace -c -f -p attaches to
# every thread of the server for SYSCALL_WINDOW seconds in the middle of the
# run. Messages in the same window, the same way for every server: the sum of
# tcpi_bytes_sent over the server's sockets (ss) right after strace has
# attached and right before it is told to detach, as a rate (each read timed
# at its midpoint: one ss read over 1000 busy sockets takes tens of ms) times
# the traced window. For weft, its admin socket's bytes_out over the same two
# moments is recorded too (weft runs with --stats-interval 100 here).
run_syscalls() {
    local round=$1 id=$2 conns=$SYSCALL_CONNS na i rc=0 b0 b1 a0="" a1="" msgs="" admin="" split
    local t_att t_det s0 s1 win status=ok reason="" extra=() dur
    local tout=$TMPD/strace.out terr=$TMPD/strace.err out=$TMPD/sys.out err=$TMPD/sys.err
    na=$(na_reason "$id" "$conns" syscalls)
    [ -n "$na" ] && { record_na syscalls "$round" "$id" "$conns" 64 1 na "$na"; return; }
    next_port
    [[ $id == weft* ]] && extra=(--stats-interval 100)
    if ! start_server "$id" "$PORT" "" "${extra[@]}"; then
        stop_server
        record_na syscalls "$round" "$id" "$conns" 64 1 FAILED "server did not start"
        return
    fi
    # Long enough for the connect phase, a settle, the window and a margin.
    dur=$(awk -v w="$SYSCALL_WINDOW" 'BEGIN { printf "%.1f", w + 2.5 }')
    timeout --kill-after=5 "$RUN_LIMIT" "$LOADGEN" echo --port "$PORT" --conns "$conns" \
        --size 64 --depth 1 --duration "$dur" --json >"$out" 2>"$err" &
    local lpid=$!
    PIDS_STARTED+=("$lpid")
    for ((i = 0; i < 200; i++)); do
        (($(conns_established "$PORT") >= conns)) && break
        kill -0 "$lpid" 2>/dev/null || break
        sleep 0.05
    done
    sleep 0.5 # steady state
    : >"$terr"
    strace -c -f -p "$SPID" -o "$tout" 2>"$terr" &
    local spid=$!
    PIDS_STARTED+=("$spid")
    for ((i = 0; i < 1000; i++)); do
        grep -q 'attached' "$terr" && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.005
    done
    t_att=$EPOCHREALTIME
    s0=$EPOCHREALTIME b0=$(bytes_sent_sum "$PORT") s0="$s0 $EPOCHREALTIME"
    [[ $id == weft* ]] && a0=$(weft_admin_stat "$PORT" "uptime_seconds bytes_out")
    sleep "$SYSCALL_WINDOW"
    [[ $id == weft* ]] && a1=$(weft_admin_stat "$PORT" "uptime_seconds bytes_out")
    s1=$EPOCHREALTIME b1=$(bytes_sent_sum "$PORT") s1="$s1 $EPOCHREALTIME"
    t_det=$EPOCHREALTIME
    kill -INT "$spid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    wait "$lpid" || rc=$?
    forget_pid "$lpid"
    forget_pid "$spid"
    stop_server
    msgs=$(awk -v a="$b0" -v b="$b1" -v s0="$s0" -v s1="$s1" -v ta="$t_att" -v td="$t_det" '
        BEGIN { split(s0, x, " "); split(s1, y, " ")
                dt = (y[1] + y[2]) / 2 - (x[1] + x[2]) / 2
                if (dt > 0 && b > a) printf "%.0f", (b - a) / 64 / dt * (td - ta) }')
    if [ -n "$a0" ] && [ -n "$a1" ]; then
        admin=$(awk -v a="$a0" -v b="$a1" -v ta="$t_att" -v td="$t_det" '
            BEGIN { split(a, x, " "); split(b, y, " ")
                    if (y[1] > x[1]) printf "%.0f", (y[2] - x[2]) / 64 / (y[1] - x[1]) * (td - ta) }')
    fi
    win=$(awk -v ta="$t_att" -v td="$t_det" 'BEGIN { printf "%.3f", td - ta }')
    local calls=null top=null
    if ! grep -q 'attached' "$terr" || ! grep -q total "$tout" 2>/dev/null; then
        status=FAILED reason="strace: $(head -n1 "$terr" | cut -c1-120)"
    else
        split=$(strace_split "$tout")
        local t w rd wr ctl oth tp re
        read -r t w rd wr ctl oth tp re <<<"$split"
        calls="{\"total\":$t,\"wait\":$w,\"read\":$rd,\"read_errors\":$re,\"write\":$wr,\"epoll_ctl\":$ctl,\"other\":$oth}"
        top=$(json_str "$tp")
        if [ "$rc" != 0 ]; then
            status=FAILED reason=$(load_failure "$out" "$err" "$rc")
        elif [ -z "$msgs" ]; then
            # The servers' bytes_sent sum fell: some connection closed (its
            # count went with it) inside the window, so it gives no count.
            status=FAILED reason="no kernel-side message count: tcpi_bytes_sent fell in the traced window"
        fi
    fi
    result_run "{$(run_tags syscalls "$round" "$id" "$conns" 64 1),$(
        printf '"status":"%s","reason":%s,"load_rc":%s,"traced_s":%s,' "$status" \
            "$(json_str "$reason")" "$rc" "$(json_num "$win")"
        printf '"messages":%s,"messages_admin":%s,"calls":%s,"other_top":%s,"load":%s' \
            "$(json_num "$msgs")" "$(json_num "$admin")" "$calls" "$top" "$(json_obj_file "$out")"
    )}"
    log "  syscalls $id: $status, ${msgs:-?} messages in ${win}s traced, calls: ${split:-}${admin:+ (admin socket: $admin msgs)}"
}

# best_peer SIZE CONNS DEPTH — "id median" of the peer (not weft) with the
# highest median closed-loop messages/s there, or nothing.
best_peer() {
    awk -F'\t' -v s="$1" -v n="$2" -v d="$3" '
        $1 !~ /^weft/ && $2 == n && $3 == s && $4 == d { v[$1] = v[$1] " " $5 }
        END {
            for (id in v) {
                k = split(v[id], a, " ")
                for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
                m = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
                if (m > best) { best = m; bid = id }
            }
            if (bid != "") print bid, best
        }' "$CLOSED"
}

CLK_TCK=$(getconf CLK_TCK)

# ---- the suite ---------------------------------------------------------------------
log "servers: $SERVERS; cases: $CASES; levels: $LEVELS; sizes: $SIZES; duration ${DURATION}s; rounds $ROUNDS"
for ((r = 1; r <= ROUNDS; r++)); do
    order=$(servers_in_order "$r")
    if has_case closed; then
        log "round $r/$ROUNDS: closed loop"
        for size in $SIZES; do
            for conns in $LEVELS; do
                for id in $order; do run_load closed "$r" "$id" "$conns" "$size" 1; done
            done
        done
    fi
    if has_case pipelined; then
        log "round $r/$ROUNDS: pipelined (depth $PIPE_DEPTH)"
        for id in $order; do run_load closed "$r" "$id" "$PIPE_CONNS" 64 "$PIPE_DEPTH"; done
    fi
    if has_case onecore; then
        log "round $r/$ROUNDS: one load thread on CPU $ONECORE_LOAD_CPU, server on CPUs $ONECORE_SERVER_CPUS"
        for conns in $ONECORE_LEVELS; do
            for id in $order; do run_load onecore "$r" "$id" "$conns" 64 1; done
        done
    fi
done
if has_case syscalls; then
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS: system calls per message"
        for id in $(servers_in_order "$r"); do run_syscalls "$r" "$id"; done
    done
fi

OPEN_RATE="" OPEN_BASIS=""
if has_case open; then
    if read -r bp bm < <(best_peer 64 "$OPEN_CONNS" 1); then
        OPEN_BASIS="$bp at $OPEN_CONNS connections"
    else
        # The level was not run: the best peer at any level, 64 B.
        for n in $LEVELS; do
            if read -r p m < <(best_peer 64 "$n" 1) && awk -v a="$m" -v b="${bm:-0}" 'BEGIN { exit !(a > b) }'; then
                bp=$p bm=$m OPEN_BASIS="$p at $n connections (no closed-loop run at $OPEN_CONNS)"
            fi
        done
    fi
    if [ -n "${bm:-}" ]; then
        OPEN_RATE=$(awk -v m="$bm" 'BEGIN { printf "%.0f", m / 2 }')
        for ((r = 1; r <= ROUNDS; r++)); do
            log "round $r/$ROUNDS: open loop at $OPEN_RATE msg/s, $OPEN_CONNS connections"
            for id in $(servers_in_order "$r"); do run_load open "$r" "$id" "$OPEN_CONNS" 64 1 "$OPEN_RATE"; done
        done
    else
        log "open loop skipped: no peer closed-loop result to take the rate from"
    fi
fi
if has_case floods && [[ " $SERVERS " == *" weft "* ]]; then
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS: floods (weft)"
        for f in $FLOODS; do
            run_flood "$r" "${f%%:*}" "$([[ $f == *:* ]] && echo "${f#*:}" || echo 0)"
        done
    done
fi
ELAPSED=$((SECONDS - T_START))
log "measurements done in ${ELAPSED}s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the result file -----------------------------------------------------------------
servers_json() {
    local id out=""
    for id in $SERVERS; do
        server_cmd "$id" PORT
        out+="${out:+,}$(json_str "$id"):{\"label\":$(json_str "$(server_label "$id")"),\"command\":$(
            json_str "$(shell_quote "${CMD[@]#"$ROOT/"}")")}"
    done
    printf '{%s}' "$out"
}
floods_json() {
    local f out=""
    for f in $FLOODS; do
        out+="${out:+,}{\"conns\":${f%%:*},\"sources\":$([[ $f == *:* ]] && echo "${f#*:}" || echo 0)}"
    done
    printf '[%s]' "$out"
}
# shellcheck disable=SC2086 # word lists
SETTINGS=$(
    printf '"settings":{"quick":%s,"rounds":%s,"duration_s":%s,"cases":%s,' \
        "$([ "$QUICK" = 1 ] && echo true || echo false)" "$ROUNDS" "$DURATION" "$(json_list $CASES)"
    printf '"levels":[%s],"sizes":[%s],' "$(tr ' ' '\n' <<<"$LEVELS" | grep . | paste -sd,)" \
        "$(tr ' ' '\n' <<<"$SIZES" | grep . | paste -sd,)"
    printf '"pipelined":{"conns":%s,"size":64,"depth":%s},' "$PIPE_CONNS" "$PIPE_DEPTH"
    printf '"onecore":{"levels":[%s],"size":64,"depth":1,"server_cpus":%s,"load_cpu":%s,"load_threads":1},' \
        "$(tr ' ' '\n' <<<"$ONECORE_LEVELS" | grep . | paste -sd,)" "$(json_str "$ONECORE_SERVER_CPUS")" \
        "$(json_str "$ONECORE_LOAD_CPU")"
    printf '"syscalls":{"conns":%s,"size":64,"depth":1,"window_s":%s},' "$SYSCALL_CONNS" "$SYSCALL_WINDOW"
    printf '"open":{"conns":%s,"size":64,"rate":%s,"basis":%s},' "$OPEN_CONNS" "$(json_num "$OPEN_RATE")" \
        "$(json_str "$OPEN_BASIS")"
    printf '"floods":%s,"flood_hold_s":%s,"load_threads":2,"elapsed_s":%s},' "$(floods_json)" \
        "$FLOOD_HOLD" "$ELAPSED"
    printf '"build":{"dir":%s,"type":%s,"compiler":%s,"baseline":%s},' "$(json_str "$BUILD")" \
        "$(json_str "$(sed -n 's/^CMAKE_BUILD_TYPE:[^=]*=//p' "$B/CMakeCache.txt")")" \
        "$(json_str "$("$(sed -n 's/^CMAKE_C_COMPILER:[^=]*=//p' "$B/CMakeCache.txt")" --version | head -n1)")" \
        "$([ -n "$BASE_SHA" ] && json_str "$BASE_SHA" || echo null)"
    printf '"clk_tck":%s,"load_command":%s,"servers":%s,"server_ids":%s' "$CLK_TCK" \
        "$(json_str "${LOADGEN#"$ROOT/"} echo|rate --port PORT --conns N --size S [--depth D | --rate R] --threads T --duration $DURATION --json")" \
        "$(servers_json)" "$(json_list $SERVERS)"
)
result_end "$SETTINGS"
log "wrote $RESULT_FILE"

if [ "$RENDER" = 1 ]; then
    render=(python3 bench/render.py --out "$OUT")
    [ "$PLOTS" = 1 ] || render+=(--no-plots)
    "${render[@]}" "$RESULT_FILE"
    log "rendered $OUT from $RESULT_FILE"
fi
log "done in $((SECONDS - T_START))s"
