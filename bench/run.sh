#!/usr/bin/env bash
# bench/run.sh — weft-echo against the peer echo servers, under one load
# generator, in one run; writes docs/benchmarks.md and docs/img/*.png.
#
# What it measures, per server, connection level and message size:
#   - closed-loop echo (weft-load echo, depth 1): messages/s, latency
#     p50/p99/p99.9, server CPU seconds per 10^6 messages (utime+stime from
#     /proc/PID/stat around the run / verified messages), peak RSS (VmHWM);
#   - one pipelined run (depth 16) at 1000 connections, 64 B;
#   - system calls per message on one fixed run (1000 conns, 64 B, depth 1):
#     strace -c -f -p attached for a fixed window of a steady run;
#   - an open-loop run (weft-load rate) at 10,000 connections at half the
#     best peer's closed-loop rate there: p99/p99.9 without coordinated omission;
#   - weft only: idle floods of 10,000 and ~19,000 connections, memory per
#     connection from the VmRSS delta.
# Every server is started on its own port, waited for ("listening on"), and
# stopped by its PID. Rounds are interleaved and the tables show medians.
# Client and server share the machine's CPUs; nothing is pinned by the script.
#
# usage: bench/run.sh [--quick] [--rounds N] [--duration S] [--servers LIST]
#                     [--levels LIST] [--sizes LIST] [--out FILE] [--no-plots]
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [options]

Runs weft-echo and the peer echo servers (bench/peers) under weft-load on
loopback and writes a report with tables and plots. Builds what it needs in
build-bench/ first. Bounded: every run stops by itself.

  --quick          smoke run (< 2 minutes): short runs, levels 100 and 2000,
                   64 B only, small floods; writes build-bench/quick/ unless
                   --out is given
  --rounds N       rounds, interleaved across servers; tables show medians
                   (default 1; use 5 for comparison claims)
  --duration S     seconds per closed-/open-loop run (default 2; fractions ok)
  --servers LIST   comma-separated, from: weft weft1 libuv2 libuv1 libevent epoll-et
                   epoll-lt poll select threads (default: all)
  --levels LIST    connection counts (default 10,100,1000,10000)
  --sizes LIST     message sizes in bytes (default 64,4096)
  --out FILE       report to write (default docs/benchmarks.md); only the part
                   between <!-- run.sh:begin --> and <!-- run.sh:end --> is
                   replaced, the rest of an existing file is kept. Plots go to
                   img/ next to it.
  --no-plots       no gnuplot images
  -h, --help       this text

Environment: BUILD (default build-bench), PORT_BASE (default 17100).
EOF
}

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
T_START=$SECONDS

ALL_SERVERS="weft weft1 libuv2 libuv1 libevent epoll-et epoll-lt poll select threads"

# ---- options ---------------------------------------------------------------
QUICK=0 ROUNDS=1 DURATION="" SERVERS="" LEVELS="" SIZES="" OUT="" PLOTS=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=${2:?--rounds needs N}; shift ;;
    --duration) DURATION=${2:?--duration needs S}; shift ;;
    --servers) SERVERS=${2:?--servers needs a list}; shift ;;
    --levels) LEVELS=${2:?--levels needs a list}; shift ;;
    --sizes) SIZES=${2:?--sizes needs a list}; shift ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    --no-plots) PLOTS=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    : "${DURATION:=0.5}" "${LEVELS:=100,2000}" "${SIZES:=64}" "${OUT:=build-bench/quick/benchmarks.md}"
    SYSCALL_CONNS=1000 SYSCALL_WINDOW=0.5 PIPE_CONNS=1000 OPEN_CONNS=2000
    FLOODS="2000 4000:4" FLOOD_HOLD=1
else
    : "${DURATION:=2}" "${LEVELS:=10,100,1000,10000}" "${SIZES:=64,4096}" "${OUT:=docs/benchmarks.md}"
    SYSCALL_CONNS=1000 SYSCALL_WINDOW=2 PIPE_CONNS=1000 OPEN_CONNS=10000
    FLOODS="10000 19000:4" FLOOD_HOLD=2
fi
: "${SERVERS:=${ALL_SERVERS// /,}}"
PIPE_DEPTH=16
SERVERS=${SERVERS//,/ } LEVELS=${LEVELS//,/ } SIZES=${SIZES//,/ }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds: not a positive integer: $ROUNDS"
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration: not a number: $DURATION"
for s in $SERVERS; do
    [[ " $ALL_SERVERS " == *" $s "* ]] || die "--servers: unknown server '$s' (known: $ALL_SERVERS)"
done
for n in $LEVELS $SIZES; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad level or size: $n"; done
LEVELS=$(tr ' ' '\n' <<<"$LEVELS" | sort -n -u | tr '\n' ' ')
SIZES=$(tr ' ' '\n' <<<"$SIZES" | sort -n -u | tr '\n' ' ')

BUILD=${BUILD:-build-bench}
PORT_NEXT=${PORT_BASE:-17100}
OUT_DIR=$(dirname "$OUT")
IMG_DIR=$OUT_DIR/img
DUR_INT=${DURATION%.*}
RUN_LIMIT=$((DUR_INT + 60)) # outer bound on one weft-load run, seconds

for tool in ss awk sed timeout cmake; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
HAVE_STRACE=0
command -v strace >/dev/null && HAVE_STRACE=1
HAVE_GNUPLOT=0
command -v gnuplot >/dev/null && HAVE_GNUPLOT=1

TMPD=$(mktemp -d /tmp/weft-bench.XXXXXX)
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- limits, build -----------------------------------------------------------
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
ulimit -n "$HARD_NOFILE"
NOFILE=$(ulimit -n)
FD_SPARE=64 # descriptors a process needs besides its connections
SELECT_MAX=$((1024 - 8)) # FD_SETSIZE less stdio, listener and spares

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE; fd limit $NOFILE"
log "building in $BUILD"
cmake -S . -B "$BUILD" -DWEFT_BUILD_BENCH=ON -DWEFT_BUILD_TESTS=OFF >"$TMPD/cmake.log" 2>&1 ||
    { cat "$TMPD/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD" -j"$(nproc)" --target weft-echo weft-load peer-threads peer-select \
    peer-poll peer-epoll-lt peer-epoll-et peer-libuv peer-libevent >>"$TMPD/cmake.log" 2>&1 ||
    { tail -n 30 "$TMPD/cmake.log" >&2; die "build failed"; }
B=$ROOT/$BUILD
LOADGEN=$B/tools/weft-load

# ---- servers -------------------------------------------------------------------
# server_cmd ID PORT [EXTRA...] — sets CMD to the server's command line.
server_cmd() {
    local id=$1 port=$2
    shift 2
    case $id in
    weft) CMD=("$B/tools/weft-echo" --port "$port" --workers 2 -q "$@") ;;
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

# start_server ID PORT [EXTRA...] — starts it in the background, sets SPID,
# and waits (up to 10 s) for its "listening on" line. Returns 1 if it exits
# or does not get there; SLOG is its output.
start_server() {
    local id=$1 port=$2 i
    shift 2
    server_cmd "$id" "$port" "$@"
    SLOG=$TMPD/server.$port.log
    : >"$SLOG" # exists before the first grep (the child opens it asynchronously)
    "${CMD[@]}" >"$SLOG" 2>&1 &
    SPID=$!
    PIDS_STARTED+=("$SPID")
    for ((i = 0; i < 200; i++)); do
        grep -qs 'listening on' "$SLOG" && return 0
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

# ---- results ---------------------------------------------------------------------
# One row per run in RESULTS (tab-separated):
#   round kind server conns size depth status msgs_per_s p50_us p99_us p999_us
#   cpu_s_per_M hwm_kib extra reason
# kind: echo (closed loop), open (open loop; extra = offered rate),
#       flood (weft only; p50/p99 = connect time, extra = bytes per connection).
# status: ok | FAILED | na.
RESULTS=$TMPD/results.tsv
SYSCALLS=$TMPD/syscalls.tsv
: >"$RESULTS"
: >"$SYSCALLS"

record() { # round kind server conns size depth status msgs p50 p99 p999 cpu hwm extra reason
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$RESULTS"
}

# load_failure OUT ERR RC — why a weft-load run failed, in one line.
load_failure() {
    local why
    why=$(jget "$1" failure)
    [ -z "$why" ] && why=$(grep -v '^$' "$2" 2>/dev/null | tail -n1 | cut -c1-160)
    [ -z "$why" ] && why="weft-load exit status $3"
    [ "$3" = 124 ] && why="weft-load did not finish within ${RUN_LIMIT}s; $why"
    printf '%s' "${why//$'\t'/ }"
}

# na_reason SERVER CONNS — why SERVER cannot serve CONNS connections, or "".
na_reason() {
    if [ "$1" = select ] && (($2 > SELECT_MAX)); then
        echo "select: FD_SETSIZE"
    elif (($2 + FD_SPARE > NOFILE)); then
        echo "fd limit $NOFILE"
    fi
}

# run_closed ROUND SERVER CONNS SIZE DEPTH — one closed-loop echo run.
# run_open ROUND SERVER CONNS RATE — one open-loop run (64 B).
run_closed() { run_load echo "$1" "$2" "$3" "$4" "$5" ""; }
run_open() { run_load open "$1" "$2" "$3" 64 1 "$4"; }

run_load() {
    local kind=$1 round=$2 id=$3 conns=$4 size=$5 depth=$6 rate=$7
    local na out err rc c0 c1 hwm msgs all cpu why args
    na=$(na_reason "$id" "$conns")
    if [ -n "$na" ]; then
        record "$round" "$kind" "$id" "$conns" "$size" "$depth" na "" "" "" "" "" "" "$rate" "$na"
        log "  $kind $id conns=$conns size=$size depth=$depth: n/a ($na)"
        return
    fi
    next_port
    if ! start_server "$id" "$PORT"; then
        why="server did not start: $(tail -n1 "$SLOG" | cut -c1-120)"
        record "$round" "$kind" "$id" "$conns" "$size" "$depth" FAILED "" "" "" "" "" "" "$rate" "$why"
        stop_server
        return
    fi
    if [ "$kind" = open ]; then
        args=(rate --rate "$rate")
    else
        args=(echo --depth "$depth")
    fi
    args+=(--port "$PORT" --conns "$conns" --size "$size" --duration "$DURATION" --json)
    out=$TMPD/load.out err=$TMPD/load.err
    c0=$(cpu_ticks "$SPID")
    rc=0
    timeout --kill-after=5 "$RUN_LIMIT" "$LOADGEN" "${args[@]}" >"$out" 2>"$err" || rc=$?
    c1=$(cpu_ticks "$SPID")
    hwm=$(proc_status_kib "$SPID" VmHWM)
    msgs=$(jget "$out" msgs_per_s)
    all=$(jget "$out" messages_verified)
    cpu=""
    if [ -n "$c0" ] && [ -n "$c1" ] && [ -n "$all" ] && [ "$all" != 0 ]; then
        cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" -v n="$all" \
            'BEGIN { printf "%.3f", (b - a) / hz / n * 1e6 }')
    fi
    local status=ok reason=""
    if ! kill -0 "$SPID" 2>/dev/null; then
        status=FAILED reason="server exited during the run: $(tail -n1 "$SLOG" | cut -c1-120)"
    elif [ "$rc" != 0 ]; then
        status=FAILED reason=$(load_failure "$out" "$err" "$rc")
    fi
    stop_server
    record "$round" "$kind" "$id" "$conns" "$size" "$depth" "$status" "$msgs" \
        "$(jget "$out" latency_us.p50)" "$(jget "$out" latency_us.p99)" \
        "$(jget "$out" latency_us.p999)" "$cpu" "$hwm" "$rate" "$reason"
    log "  $kind $id conns=$conns size=$size depth=$depth${rate:+ rate=$rate}: $status ${msgs:-} msg/s${reason:+ ($reason)}"
}

# run_flood ROUND CONNS SOURCES — weft only: hold CONNS idle connections, each
# proven to echo once; memory per connection from the VmRSS delta.
run_flood() {
    local round=$1 conns=$2 sources=$3 na out err rc rss0 rss max=0 i why per
    local args=(flood --conns "$conns" --hold "$FLOOD_HOLD" --json)
    na=$(na_reason weft "$conns")
    if [ -n "$na" ]; then
        record "$round" flood weft "$conns" 64 "$sources" na "" "" "" "" "" "" "" "$na"
        return
    fi
    ((sources > 0)) && args+=(--sources "$sources")
    next_port
    if ! start_server weft "$PORT"; then
        record "$round" flood weft "$conns" 64 "$sources" FAILED "" "" "" "" "" "" "" \
            "server did not start: $(tail -n1 "$SLOG" | cut -c1-120)"
        stop_server
        return
    fi
    out=$TMPD/flood.out err=$TMPD/flood.err
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
    rc=0
    wait "$lpid" || rc=$?
    forget_pid "$lpid"
    local hwm status=ok reason=""
    hwm=$(proc_status_kib "$SPID" VmHWM)
    if ! kill -0 "$SPID" 2>/dev/null; then
        status=FAILED reason="server exited during the run"
    elif [ "$rc" != 0 ]; then
        status=FAILED reason=$(load_failure "$out" "$err" "$rc")
    fi
    stop_server
    per=$(awk -v a="$rss0" -v b="$max" -v n="$conns" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
    record "$round" flood weft "$conns" 64 "$sources" "$status" "" \
        "$(jget "$out" connect_us.p50)" "$(jget "$out" connect_us.p99)" "" "" "$hwm" "$per" "$reason"
    log "  flood weft conns=$conns sources=$sources: $status ${per} B/conn${reason:+ ($reason)}"
}

# run_syscalls SERVER — system calls per message on a steady closed-loop run
# (SYSCALL_CONNS connections, 64 B, depth 1). strace -c -f -p attaches to every
# thread of the server for SYSCALL_WINDOW seconds in the middle of the run.
# Messages in the same window: the sum of tcpi_bytes_sent over the server's
# sockets (ss), read right after strace has attached and right before it is
# told to detach, / 64. For weft, its admin socket's bytes_out over the same
# two moments is recorded too (weft runs with --stats-interval 100 here, so
# its snapshots lag by up to 0.1 s).
# SYSCALLS row: server status msgs window total wait read write ctl other
#               other_top admin_msgs reason
run_syscalls() {
    local id=$1 conns=$SYSCALL_CONNS na i rc=0 b0 b1 a0="" a1="" msgs admin="" split
    local t_att t_det s0 s1 win
    local tout=$TMPD/strace.out terr=$TMPD/strace.err out=$TMPD/sys.out err=$TMPD/sys.err
    sysrow() { local IFS=$'\t'; printf '%s\n' "$*" >>"$SYSCALLS"; }
    na=$(na_reason "$id" "$conns")
    [ "$HAVE_STRACE" = 1 ] || na="strace not installed"
    if [ -n "$na" ]; then
        sysrow "$id" na "" "" "" "" "" "" "" "" "" "" "$na"
        return
    fi
    next_port
    local extra=()
    [[ $id == weft* ]] && extra=(--stats-interval 100)
    if ! start_server "$id" "$PORT" "${extra[@]}"; then
        sysrow "$id" FAILED "" "" "" "" "" "" "" "" "" "" "server did not start"
        stop_server
        return
    fi
    # Long enough for the connect phase, a settle, the window and a margin.
    local dur
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
    # Messages/s between the two ss reads (each timed at its midpoint) times
    # the traced window [attached, SIGINT]: ss takes tens of ms over 1000
    # sockets, so the raw difference would miss the ends of the window.
    msgs=$(awk -v a="$b0" -v b="$b1" -v s0="$s0" -v s1="$s1" -v ta="$t_att" -v td="$t_det" '
        BEGIN { split(s0, x, " "); split(s1, y, " ")
                dt = (y[1] + y[2]) / 2 - (x[1] + x[2]) / 2
                if (dt > 0) printf "%.0f", (b - a) / 64 / dt * (td - ta) }')
    if [ -n "$a0" ] && [ -n "$a1" ]; then
        # The same from weft's own snapshots: bytes_out over their sample times.
        admin=$(awk -v a="$a0" -v b="$a1" -v ta="$t_att" -v td="$t_det" '
            BEGIN { split(a, x, " "); split(b, y, " ")
                    if (y[1] > x[1]) printf "%.0f", (y[2] - x[2]) / 64 / (y[1] - x[1]) * (td - ta) }')
    fi
    win=$(awk -v ta="$t_att" -v td="$t_det" 'BEGIN { printf "%.2f", td - ta }')
    if ! grep -q 'attached' "$terr" || ! grep -q total "$tout" 2>/dev/null; then
        sysrow "$id" FAILED "$msgs" "$SYSCALL_WINDOW" "" "" "" "" "" "" "" "$admin" \
            "strace: $(head -n1 "$terr" | cut -c1-120)"
        return
    fi
    split=$(strace_split "$tout")
    local status=ok reason=""
    if [ "$rc" != 0 ]; then
        status=FAILED reason=$(load_failure "$out" "$err" "$rc")
    fi
    # shellcheck disable=SC2086
    sysrow "$id" "$status" "$msgs" "$win" $split "$admin" "$reason"
    log "  syscalls $id: $msgs messages in ${win}s traced, calls: $split${admin:+ (admin socket: $admin msgs)}"
}

CLK_TCK=$(getconf CLK_TCK)

# ---- the suite ---------------------------------------------------------------------
log "servers: $SERVERS; levels: $LEVELS; sizes: $SIZES; duration ${DURATION}s; rounds $ROUNDS"
for ((r = 1; r <= ROUNDS; r++)); do
    log "round $r/$ROUNDS: closed loop"
    for size in $SIZES; do
        for conns in $LEVELS; do
            for id in $SERVERS; do run_closed "$r" "$id" "$conns" "$size" 1; done
        done
    done
    log "round $r/$ROUNDS: pipelined (depth $PIPE_DEPTH)"
    for id in $SERVERS; do run_closed "$r" "$id" "$PIPE_CONNS" 64 "$PIPE_DEPTH"; done
done

log "system calls per message (one run per server)"
for id in $SERVERS; do run_syscalls "$id"; done

# ---- medians -------------------------------------------------------------------------
# MED row: kind server conns size depth n_ok n_total status msgs p50 p99 p999
#          cpu hwm extra reason (status ok | partial | FAILED | na)
MED=$TMPD/medians.tsv
medians() {
    awk -F'\t' -v OFS='\t' '
        function med(key, col,   n, i, j, v, a, t) {
            n = 0
            for (i = 1; i <= cnt[key]; i++) {
                v = val[key, i, col]
                if (v != "") a[++n] = v + 0
            }
            if (n == 0) return ""
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        {
            key = $2 OFS $3 OFS $4 OFS $5 OFS $6
            if (!(key in total)) order[++nk] = key
            total[key]++
            if ($7 == "ok") {
                cnt[key]++
                for (c = 8; c <= 14; c++) val[key, cnt[key], c] = $c
            } else if ($7 == "na") {
                na[key]++; reason[key] = $15
            } else {
                failed[key]++; if (reason[key] == "") reason[key] = $15
            }
            if (extra[key] == "") extra[key] = $14
        }
        END {
            for (k = 1; k <= nk; k++) {
                key = order[k]
                ok = cnt[key] + 0
                st = (ok == total[key]) ? "ok" : (ok > 0 ? "partial" : (na[key] == total[key] ? "na" : "FAILED"))
                line = key OFS ok OFS total[key] OFS st
                for (c = 8; c <= 13; c++) line = line OFS med(key, c)
                x = med(key, 14); if (x == "") x = extra[key]
                print line, x, reason[key]
            }
        }' "$RESULTS" >"$MED"
}
medians

# get KIND SERVER CONNS SIZE DEPTH COLUMN — one field of the MED row.
get() {
    awk -F'\t' -v k="$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5" -v c="$6" \
        '($1 "\t" $2 "\t" $3 "\t" $4 "\t" $5) == k { print $c; exit }' "$MED"
}
C_NOK=6 C_NTOT=7 C_ST=8 C_MSGS=9 C_P50=10 C_P99=11 C_P999=12 C_CPU=13 C_HWM=14 C_EXTRA=15 C_WHY=16

# best_peer SIZE CONNS DEPTH — "id msgs" of the peer with the highest median
# closed-loop messages/s there (ok or partial), or nothing.
best_peer() {
    awk -F'\t' -v s="$1" -v n="$2" -v d="$3" '
        $1 == "echo" && $2 !~ /^weft/ && $3 == n && $4 == s && $5 == d && $9 != "" &&
        ($8 == "ok" || $8 == "partial") && $9 + 0 > best { best = $9 + 0; id = $2 }
        END { if (id != "") print id, best }' "$MED"
}

# ---- open loop, floods ------------------------------------------------------------
OPEN_RATE="" OPEN_BASIS=""
if read -r bp bm < <(best_peer 64 "$OPEN_CONNS" 1); then
    OPEN_BASIS="$bp at $OPEN_CONNS connections"
else
    # The level was not run: use the best peer at any level, 64 B.
    read -r bp bm _ < <(awk -F'\t' '$1 == "echo" && $2 !~ /^weft/ && $4 == 64 && $5 == 1 &&
        $9 != "" && $9 + 0 > b { b = $9 + 0; id = $2; n = $3 } END { if (id != "") print id, b, n }' "$MED") || true
    [ -n "${bp:-}" ] && OPEN_BASIS="$bp (no closed-loop run at $OPEN_CONNS connections)"
fi
if [ -n "${bm:-}" ]; then
    OPEN_RATE=$(awk -v m="$bm" 'BEGIN { printf "%.0f", m / 2 }')
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS: open loop at $OPEN_RATE msg/s, $OPEN_CONNS connections"
        for id in $SERVERS; do run_open "$r" "$id" "$OPEN_CONNS" "$OPEN_RATE"; done
    done
else
    log "open loop skipped: no peer closed-loop result to take the rate from"
fi
if [[ " $SERVERS " == *" weft "* ]]; then
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS: floods (weft)"
        for f in $FLOODS; do
            run_flood "$r" "${f%%:*}" "$([[ $f == *:* ]] && echo "${f#*:}" || echo 0)"
        done
    done
fi
medians
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - T_START))
log "measurements done in ${ELAPSED}s; load average after: $LOAD_AFTER"

# ---- formatting ------------------------------------------------------------------------
fmt_rate() { # 1234567.8 -> 1,234,568 (mawk has no %' flag)
    [ -z "$1" ] && { printf '–'; return; }
    awk -v v="$1" 'BEGIN { s = sprintf("%.0f", v); o = ""
        while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
        printf "%s%s", s, o }'
}
fmt_ms() { # microseconds in, milliseconds out
    [ -z "$1" ] && { printf '–'; return; }
    awk -v v="$1" 'BEGIN { m = v / 1000; if (m < 10) printf "%.3f", m; else if (m < 100) printf "%.1f", m; else printf "%.0f", m }'
}
fmt_num() { [ -z "$1" ] && { printf '–'; return; }; awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'; }
fmt_mib() { [ -z "$1" ] && { printf '–'; return; }; awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'; }
fmt_ratio() {
    if [ -z "$1" ] || [ -z "$2" ]; then printf '–'; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else printf "–" }'
}
md_escape() { sed 's/|/\\|/g' <<<"$1" | cut -c1-90; }

# status_cell KIND ID CONNS SIZE DEPTH — "" when there is a value to show,
# otherwise the n/a or FAILED text for the cell.
status_cell() {
    local st why
    st=$(get "$@" $C_ST)
    why=$(md_escape "$(get "$@" $C_WHY)")
    case $st in
    "") printf 'not run' ;;
    na) printf 'n/a (%s)' "$why" ;;
    FAILED) printf 'FAILED: %s' "$why" ;;
    esac
}

# value_cell KIND ID CONNS SIZE DEPTH COL FORMATTER — the formatted median,
# with "(k/n failed)" when some rounds failed, or the status text.
value_cell() {
    local s col=$6 f=$7 v nok ntot
    s=$(status_cell "$1" "$2" "$3" "$4" "$5")
    if [ -n "$s" ]; then printf '%s' "$s"; return; fi
    v=$(get "$1" "$2" "$3" "$4" "$5" "$col")
    "$f" "$v"
    nok=$(get "$1" "$2" "$3" "$4" "$5" $C_NOK)
    ntot=$(get "$1" "$2" "$3" "$4" "$5" $C_NTOT)
    if [ "$nok" != "$ntot" ]; then
        printf ' (%s/%s failed: %s)' "$((ntot - nok))" "$ntot" "$(md_escape "$(get "$1" "$2" "$3" "$4" "$5" $C_WHY)")"
    fi
}
f_cpu() { fmt_num "$1" '%.2f'; }

# detail_table KIND CONNS SIZE DEPTH — one row per server.
detail_table() {
    local id s
    echo "| server | messages/s | p50 ms | p99 ms | p99.9 ms | server CPU s / 10⁶ msgs | peak RSS MiB |"
    echo "|---|--:|--:|--:|--:|--:|--:|"
    for id in $SERVERS; do
        s=$(status_cell "$1" "$id" "$2" "$3" "$4")
        if [ -n "$s" ]; then
            echo "| $(server_label "$id") | $s | | | | | |"
            continue
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(server_label "$id")" \
            "$(value_cell "$1" "$id" "$2" "$3" "$4" $C_MSGS fmt_rate)" \
            "$(fmt_ms "$(get "$1" "$id" "$2" "$3" "$4" $C_P50)")" \
            "$(fmt_ms "$(get "$1" "$id" "$2" "$3" "$4" $C_P99)")" \
            "$(fmt_ms "$(get "$1" "$id" "$2" "$3" "$4" $C_P999)")" \
            "$(f_cpu "$(get "$1" "$id" "$2" "$3" "$4" $C_CPU)")" \
            "$(fmt_mib "$(get "$1" "$id" "$2" "$3" "$4" $C_HWM)")"
    done
}

cmdline() { # quote a command line for the page, with the build dir relative
    local a out=""
    for a in "$@"; do out+="${out:+ }${a#"$ROOT/"}"; done
    printf '%s' "$out"
}

# ---- plots ---------------------------------------------------------------------------
# plot_data KIND SIZE DEPTH COL FILE [SCALE] — level rows x server columns.
plot_data() {
    local id conns v st
    {
        printf 'conns'
        for id in $SERVERS; do printf '\t"%s"' "$(server_label "$id")"; done
        echo
        for conns in $LEVELS; do
            printf '%s' "$conns"
            for id in $SERVERS; do
                v=$(get "$1" "$id" "$conns" "$2" "$3" "$4")
                st=$(get "$1" "$id" "$conns" "$2" "$3" $C_ST)
                if [ -z "$v" ] || [ "$st" = FAILED ] || [ "$st" = na ]; then
                    printf '\tNaN'
                else
                    awk -v v="$v" -v s="${6:-1}" 'BEGIN { printf "\t%g", v * s }'
                fi
            done
            echo
        done
    } >"$5"
}

PLOTS_MADE=()
if [ "$PLOTS" = 1 ] && [ "$HAVE_GNUPLOT" = 1 ]; then
    mkdir -p "$IMG_DIR"
    TERM_PNG=png
    gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo && TERM_PNG=pngcairo
    nserv=$(wc -w <<<"$SERVERS")
    for size in $SIZES; do
        for spec in "throughput:$C_MSGS:1:messages/s (closed loop, depth 1):0" \
            "latency-p99:$C_P99:0.001:p99 latency, ms (closed loop, depth 1):1" \
            "rss:$C_HWM:0.0009765625:peak RSS, MiB:0"; do
            IFS=: read -r name col scale ylab logy <<<"$spec"
            dat=$TMPD/$name-$size.dat
            plot_data echo "$size" 1 "$col" "$dat" "$scale"
            png=$IMG_DIR/$name-$size.png
            if gnuplot -e "datafile='$dat'; outfile='$png'; term='$TERM_PNG'; ncol=$((nserv + 1)); ylab='$ylab'; ttl='$ylab vs connections, $size B messages'; logy=$logy" \
                bench/plot.gp 2>"$TMPD/gnuplot.err"; then
                PLOTS_MADE+=("$name-$size")
            else
                log "gnuplot failed for $png: $(head -n1 "$TMPD/gnuplot.err")"
            fi
        done
    done
fi

# ---- the report -------------------------------------------------------------------------
GEN=$TMPD/generated.md
{
    MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
    MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    DIRTY=$(git status --porcelain 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
    BTYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[^=]*=//p' "$B/CMakeCache.txt" 2>/dev/null)
    CC_ID=$(sed -n 's/^CMAKE_C_COMPILER:[^=]*=//p' "$B/CMakeCache.txt" 2>/dev/null)
    echo "## Results"
    echo
    echo "Generated by \`bench/run.sh$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u '+%Y-%m-%d %H:%M UTC'), in ${ELAPSED} s of measuring."
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| machine | $(nproc) CPUs ($MODEL), $MEM, Linux $(uname -r) |"
    echo "| load average (1, 5, 15 min) | before: $LOAD_BEFORE; after: $LOAD_AFTER |"
    echo "| source | weft $REV$DIRTY, $BTYPE build, $(basename "${CC_ID:-cc}") |"
    echo "| settings | rounds $ROUNDS (interleaved; medians shown), ${DURATION} s per run, levels ${LEVELS% }, sizes ${SIZES% } B, fd limit $NOFILE |"
    echo
    echo "**What shares the machine.** The load generator (weft-load, 2 threads) and the"
    echo "server run on the same $(nproc) CPUs over loopback; the script pins nothing."
    echo "weft-echo pins its two workers to CPUs 0 and 1 (its default); the peers do not pin."
    echo "So every figure is a server *and* a client competing for the same cores: read the"
    echo "ratios between servers, not the absolute numbers, as the result. A load average"
    echo "well above 0 before the run means other work shared the machine too."
    echo
    echo "**What is measured.** messages/s: verified echoed messages inside weft-load's"
    echo "window (every byte is checked). Latency: from send to verified reply, closed loop"
    echo "(so it is service time under this load, not the latency of an open system; see the"
    echo "open-loop run). Server CPU: utime+stime of the server process (all threads) from"
    echo "/proc/PID/stat before and after the weft-load run, over every verified message of"
    echo "the run including the connect phase. Peak RSS: VmHWM of the server after the run."
    echo "Each run gets a fresh server on its own port. A run whose weft-load exits non-zero"
    echo "is shown as FAILED with its reason; a server that cannot serve a level as n/a."
    echo
    echo "### Servers"
    echo
    echo "| server | command |"
    echo "|---|---|"
    for id in $SERVERS; do
        server_cmd "$id" PORT
        echo "| $(server_label "$id") | \`$(cmdline "${CMD[@]}")\` |"
    done
    echo
    echo "Load: \`$(cmdline "$LOADGEN") echo --port PORT --conns N --size S --depth D --duration $DURATION --json\`"
    echo "(2 client threads, the default)."
    echo
    echo "### Messages/s, closed loop, depth 1 (medians)"
    for size in $SIZES; do
        echo
        echo "**$size B messages**"
        echo
        printf '| server |'
        for conns in $LEVELS; do printf ' %s conns |' "$conns"; done
        echo
        printf '|---|'
        for conns in $LEVELS; do printf -- '--:|'; done
        echo
        for id in $SERVERS; do
            printf '| %s |' "$(server_label "$id")"
            for conns in $LEVELS; do printf ' %s |' "$(value_cell echo "$id" "$conns" "$size" 1 $C_MSGS fmt_rate)"; done
            echo
        done
    done
    echo
    echo "### Ratios: weft to the others (messages/s, closed loop, depth 1)"
    echo
    printf '| size | conns | weft msg/s | best peer | weft / best peer | weft (1 worker) / best peer | weft / libevent | weft / libuv (2) | weft / libuv (1) | weft / epoll ET |\n'
    printf '|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|\n'
    for size in $SIZES; do
        for conns in $LEVELS; do
            w=$(get echo weft "$conns" "$size" 1 $C_MSGS)
            [ "$(get echo weft "$conns" "$size" 1 $C_ST)" = FAILED ] && w=""
            bp="" bm=""
            read -r bp bm < <(best_peer "$size" "$conns" 1) || true
            w1=$(get echo weft1 "$conns" "$size" 1 $C_MSGS)
            [ "$(get echo weft1 "$conns" "$size" 1 $C_ST)" = FAILED ] && w1=""
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "$conns" "$(fmt_rate "$w")" \
                "$([ -n "$bp" ] && echo "$(server_label "$bp") $(fmt_rate "$bm")" || echo –)" \
                "$(fmt_ratio "$w" "$bm")" "$(fmt_ratio "$w1" "$bm")" \
                "$(fmt_ratio "$w" "$(get echo libevent "$conns" "$size" 1 $C_MSGS)")" \
                "$(fmt_ratio "$w" "$(get echo libuv2 "$conns" "$size" 1 $C_MSGS)")" \
                "$(fmt_ratio "$w" "$(get echo libuv1 "$conns" "$size" 1 $C_MSGS)")" \
                "$(fmt_ratio "$w" "$(get echo epoll-et "$conns" "$size" 1 $C_MSGS)")"
        done
    done
    echo
    echo "Ratios use medians; above 1× weft is faster. A ratio is left out (–) where either side failed or did not run."
    echo
    if [ ${#PLOTS_MADE[@]} -gt 0 ]; then
        echo "### Plots"
        echo
        for p in "${PLOTS_MADE[@]}"; do echo "![$p](img/$p.png)"; done
        echo
    fi
    echo "### Details per size and level (closed loop, depth 1, medians)"
    for size in $SIZES; do
        for conns in $LEVELS; do
            echo
            echo "**$size B, $conns connections**"
            echo
            detail_table echo "$conns" "$size" 1
        done
    done
    echo
    echo "### Pipelined: depth $PIPE_DEPTH, $PIPE_CONNS connections, 64 B (medians)"
    echo
    echo "Each connection keeps $PIPE_DEPTH messages in flight, so one read can carry many messages."
    echo
    detail_table echo "$PIPE_CONNS" 64 "$PIPE_DEPTH"
    echo
    echo "### System calls per message ($SYSCALL_CONNS connections, 64 B, depth 1; one run per server)"
    echo
    echo "\`strace -c -f -p PID\` attaches to every thread of the running server for about"
    echo "${SYSCALL_WINDOW} s in the middle of a steady closed-loop run (weft-load echo, ${SYSCALL_CONNS} connections,"
    echo "all connected before strace attaches, so accepts and registrations are outside the"
    echo "window). Messages echoed inside the traced window are counted on the kernel side, the"
    echo "same way for every server: the sum of \`tcpi_bytes_sent\` over the server's sockets"
    echo "(\`ss -ti\`) is read just after strace reports it has attached and just before it is"
    echo "told to detach; that difference / 64 over the time between the two reads gives the"
    echo "server's message rate while traced, and the rate times the traced window (from"
    echo "\"attached\" to SIGINT) gives the messages. The rate is needed because one \`ss\` read"
    echo "over 1000 busy sockets takes tens of milliseconds, which a raw difference would drop"
    echo "from both ends of the window. weft-load's own count is not used: it covers its whole"
    echo "measuring window, which cannot be lined up with the moment strace attaches. For weft,"
    echo "the same figure computed from its admin socket (\`bytes_out\` over the snapshots' own"
    echo "sample times; weft runs with \`--stats-interval 100\` in this run) is shown as a"
    echo "cross-check; the admin queries themselves add the few accept4/close/read/write calls"
    echo "of the stats thread. strace slows the traced server several times over, so these runs"
    echo "give calls per message, not speed; the window column is the traced time in seconds."
    echo
    echo "\"wait\" is epoll_wait/epoll_pwait, or poll/select for the servers built on those; \"read\""
    echo "is read/readv/recvfrom/recvmsg; \"write\" is write/writev/sendto/sendmsg."
    echo
    echo "| server | traced s | messages in window | syscalls / msg | wait | read | write | epoll_ctl | other | busiest other calls (count) |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    for id in $SERVERS; do
        row=$(awk -F'\t' -v id="$id" '$1 == id { print; exit }' "$SYSCALLS")
        if [ -z "$row" ]; then echo "| $(server_label "$id") | not run | | | | | | | | |"; continue; fi
        IFS=$'\t' read -r _ st msgs win tot w rd wr ctl oth top admin why <<<"$row"
        if [ "$st" = na ]; then echo "| $(server_label "$id") | n/a ($(md_escape "$why")) | | | | | | | | |"; continue; fi
        if [ -z "$tot" ]; then echo "| $(server_label "$id") | FAILED: $(md_escape "$why") | | | | | | | | |"; continue; fi
        per() { awk -v c="$1" -v m="$msgs" 'BEGIN { if (m > 0) printf "%.3f", c / m; else printf "–" }'; }
        label=$(server_label "$id")
        [ "$st" = FAILED ] && label="$label (load FAILED: $(md_escape "$why"))"
        msgcell=$(fmt_rate "$msgs")
        [ -n "$admin" ] && msgcell="$msgcell (admin socket: $(fmt_rate "$admin"))"
        echo "| $label | $win | $msgcell | $(per "$tot") | $(per "$w") | $(per "$rd") | $(per "$wr") | $(per "$ctl") | $(per "$oth") | ${top//,/, } |"
    done
    echo
    echo "### Open loop: $OPEN_CONNS connections, 64 B"
    echo
    if [ -n "$OPEN_RATE" ]; then
        echo "\`weft-load rate --rate $OPEN_RATE --conns $OPEN_CONNS --size 64 --duration $DURATION\`: messages"
        echo "are sent on a fixed schedule at half of the best peer's closed-loop rate ($OPEN_BASIS),"
        echo "and latency is measured from each message's scheduled send time."
        echo
        echo "| server | achieved msg/s | p50 ms | p99 ms | p99.9 ms | server CPU s / 10⁶ msgs |"
        echo "|---|--:|--:|--:|--:|--:|"
        for id in $SERVERS; do
            s=$(status_cell open "$id" "$OPEN_CONNS" 64 1)
            if [ -n "$s" ]; then echo "| $(server_label "$id") | $s | | | | |"; continue; fi
            printf '| %s | %s | %s | %s | %s | %s |\n' "$(server_label "$id")" \
                "$(value_cell open "$id" "$OPEN_CONNS" 64 1 $C_MSGS fmt_rate)" \
                "$(fmt_ms "$(get open "$id" "$OPEN_CONNS" 64 1 $C_P50)")" \
                "$(fmt_ms "$(get open "$id" "$OPEN_CONNS" 64 1 $C_P99)")" \
                "$(fmt_ms "$(get open "$id" "$OPEN_CONNS" 64 1 $C_P999)")" \
                "$(f_cpu "$(get open "$id" "$OPEN_CONNS" 64 1 $C_CPU)")"
        done
    else
        echo "Not run: no peer closed-loop result to take the rate from."
    fi
    echo
    if [[ " $SERVERS " == *" weft "* ]]; then
        echo "### Idle floods (weft only)"
        echo
        echo "\`weft-load flood --conns N --hold $FLOOD_HOLD [--sources K]\`: N connections opened as fast as"
        echo "allowed, held idle, then each proven to echo once. Memory per connection: the"
        echo "server's highest VmRSS while they are held less its VmRSS before, over N (user"
        echo "space only; kernel socket memory is not in RSS)."
        echo
        echo "| connections | client source addresses | result | bytes per connection | peak RSS MiB | connect p50 ms | connect p99 ms |"
        echo "|--:|--:|---|--:|--:|--:|--:|"
        for f in $FLOODS; do
            n=${f%%:*} k=0
            [[ $f == *:* ]] && k=${f#*:}
            s=$(status_cell flood weft "$n" 64 "$k")
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$([ "$k" = 0 ] && echo 1 || echo "$k")" \
                "${s:-ok}" "$(fmt_num "$(get flood weft "$n" 64 "$k" $C_EXTRA)" '%.0f')" \
                "$(fmt_mib "$(get flood weft "$n" 64 "$k" $C_HWM)")" \
                "$(fmt_ms "$(get flood weft "$n" 64 "$k" $C_P50)")" \
                "$(fmt_ms "$(get flood weft "$n" 64 "$k" $C_P99)")"
        done
        echo
    fi
    echo "### Raw results"
    echo
    echo "<details><summary>every run (tab-separated: round kind server conns size depth status msgs/s p50_us p99_us p999_us cpu_s_per_1e6 hwm_kib extra reason)</summary>"
    echo
    echo '```'
    cat "$RESULTS"
    echo '```'
    echo
    echo "</details>"
} >"$GEN"

# Splice the generated part between the markers; keep everything else.
BEGIN_MARK='<!-- run.sh:begin -->'
END_MARK='<!-- run.sh:end -->'
mkdir -p "$OUT_DIR"
if [ ! -f "$OUT" ]; then
    {
        echo "# Benchmarks"
        echo
        echo "Produced by \`bench/run.sh\` (see \`bench/run.sh --help\`). The part between the"
        echo "run.sh markers is regenerated on every run; text outside them is kept."
        echo
        echo "$BEGIN_MARK"
        echo "$END_MARK"
    } >"$OUT"
fi
if ! grep -qF "$BEGIN_MARK" "$OUT" || ! grep -qF "$END_MARK" "$OUT"; then
    printf '\n%s\n%s\n' "$BEGIN_MARK" "$END_MARK" >>"$OUT"
fi
awk -v gen="$GEN" -v b="$BEGIN_MARK" -v e="$END_MARK" '
    $0 == b { print; while ((getline l < gen) > 0) print l; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$OUT" >"$TMPD/out.md"
cp "$TMPD/out.md" "$OUT"
log "wrote $OUT${PLOTS_MADE:+ and ${#PLOTS_MADE[@]} plots in $IMG_DIR} in $((SECONDS - T_START))s"
