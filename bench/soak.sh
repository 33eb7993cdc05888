#!/usr/bin/env bash
# bench/soak.sh — weft-echo at its default settings for a bounded time under
# steady verified load, connection churn and a rotation of faults, sampled
# every second (RSS, fds, open connections, CPU, throughput), then plotted.
# Not part of `make test`; see docs/reliability.md, "Soak".
#
# usage: bench/soak.sh [--minutes N] [--build DIR] [--out DIR] [--plot PNG]
#                      [--rate R] [--no-plot]
#   --minutes N   length of the run (default 30; 1 .. 1440)
#   --build DIR   build tree with tools/weft-echo and tools/weft-load (default build)
#   --out DIR     where the samples and the summary go (default bench/results)
#   --plot PNG    the plot (default docs/img/soak.png; needs gnuplot, gnuplot-nox)
#   --rate R      steady load, messages/s over 64 connections (default 2000)
#   --no-plot     samples and summary only
#
# What runs, all on loopback, every part bounded in count and time:
#   - weft-echo with no option but --port 0 and a private admin socket;
#   - steady: `weft-load rate` at --rate over 64 connections, 128 B messages,
#     in 60 s rounds (each round verifies every byte; a round that fails is
#     counted and printed);
#   - churn: `weft-load churn --close-rst`, 4 concurrent cycles, 2,000
#     cycles per 30 s slot;
#   - faults, one per 60 s slot in turn: 500 idle connections held 20 s and
#     checked (`weft-load flood`); 50 slow consumers that fill their buffers,
#     never read and hold 75 s (the server's 60 s output stall closes them);
#     500 connections that send a partial message and reset; a process
#     holding 300 connections killed with SIGKILL.
#   The fault side runs at SCHED_IDLE (chrt -i 0) where available, nice 19
#   otherwise: on a small machine it must not take the CPU the server needs.
#
# Samples: OUT/soak-UTCSTART-COMMIT[-dirty].tsv, one line a second:
#   t_s rss_kib fds open accepted cpu_pct bytes_out_per_s
# with '#' lines before them (command, commit, machine). The summary (also
# printed) goes to the same name with .txt: RSS, fds and open connections
# over the run, the steady rounds' results, and a verdict.
#
# Verdict (exit status): 0 when the server stayed up, every steady round was
# verified clean, the fd count and open connections returned to their
# starting values after the load stopped, and RSS in the last fifth of the
# run is within 10% + 16 MiB of RSS in the second fifth (after warm-up);
# 1 otherwise; 2 on bad arguments or a missing build.
set -u
cd "$(dirname "$0")/.." || exit 2
root=$PWD
. bench/lib.sh

minutes=30
build=$root/build
outdir=$root/bench/results
plot=$root/docs/img/soak.png
rate=2000
do_plot=1
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) minutes=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --build) build=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --out) outdir=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --plot) plot=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --rate) rate=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --no-plot) do_plot=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/soak.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[[ $minutes =~ ^[0-9]+$ ]] && [ "$minutes" -ge 1 ] && [ "$minutes" -le 1440 ] ||
    { echo "bench/soak.sh: --minutes: expected 1 .. 1440, got '$minutes'" >&2; exit 2; }
[[ $rate =~ ^[0-9]+$ ]] && [ "$rate" -ge 1 ] && [ "$rate" -le 1000000 ] ||
    { echo "bench/soak.sh: --rate: expected 1 .. 1000000, got '$rate'" >&2; exit 2; }
echo_bin=$build/tools/weft-echo
load_bin=$build/tools/weft-load
[ -x "$echo_bin" ] && [ -x "$load_bin" ] ||
    { echo "bench/soak.sh: no $echo_bin or $load_bin (build first: make build)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench/soak.sh: needs python3 (the fault clients)" >&2; exit 2; }
if [ $do_plot -eq 1 ] && ! command -v gnuplot >/dev/null; then
    echo "bench/soak.sh: needs gnuplot for the plot (apt-get install gnuplot-nox), or --no-plot" >&2
    exit 2
fi

T_START=$SECONDS
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX") || exit 2
trap cleanup EXIT
trap 'exit 1' INT TERM
duration=$((minutes * 60))

# The fault side's scheduling: SCHED_IDLE when chrt can set it, else nice 19.
if chrt -i 0 true 2>/dev/null; then idle=(chrt -i 0); else idle=(nice -n 19); fi

# ---- the fault clients (python3, stdlib only) ---------------------------------
cat >"$TMPD/fault.py" <<'EOF'
import os, signal, socket, struct, sys, time
kind, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s
if kind == "slow":
    # Fill the server's send path and never read: its output stall closes us.
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    chunk = b"x" * 65536
    end = time.monotonic() + hold
    while time.monotonic() < end:
        for s in socks:
            try:
                s.send(chunk)
            except (BlockingIOError, ConnectionError, OSError):
                pass
        time.sleep(0.5)
    for s in socks:
        s.close()
elif kind == "reset":
    for _ in range(n):
        s = conn()
        s.sendall(b"half a message")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
elif kind == "vanish":
    pid = os.fork()
    if pid == 0:
        socks = [conn() for _ in range(n)]
        for i, s in enumerate(socks):
            if i % 2:
                s.sendall(b"unread echo")
        os.write(1, b"up\n")
        time.sleep(60)
        os._exit(0)
    time.sleep(hold)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
EOF

# ---- the server ---------------------------------------------------------------
sock=$TMPD/admin.sock
"$echo_bin" --port 0 --stats-socket "$sock" >"$TMPD/server.out" 2>"$TMPD/server.err" &
srv=$!
PIDS_STARTED+=("$srv")
port=
for ((i = 0; i < 100; i++)); do
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\),.*/\1/p' "$TMPD/server.out" | head -n1)
    [ -n "$port" ] && [ -S "$sock" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$TMPD/server.err" >&2; die "weft-echo did not start"; }
log "weft-echo pid $srv on port $port, admin socket $sock; $minutes min"

# admin FIELD... — the fields of one snapshot, space-separated (empty if unreachable).
admin() {
    printf 'stats\nquit\n' | timeout 3 nc -U "$sock" 2>/dev/null |
        awk -v want="$*" '{ v[$1] = $2 }
            END { n = split(want, k, " "); o = ""
                  for (i = 1; i <= n; i++) { if (!(k[i] in v)) exit; o = o (i > 1 ? " " : "") v[k[i]] }
                  print o }'
}
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

fds_start=$(fds_of "$srv")
rss_start=$(proc_status_kib "$srv" VmRSS)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
tag=${commit:0:12}
[ -n "$(git status --porcelain 2>/dev/null)" ] && tag+=-dirty
stamp=$(date -u '+%Y%m%dT%H%M%SZ')
mkdir -p "$outdir"
samples=$outdir/soak-$stamp-$tag.tsv
summary=${samples%.tsv}.txt
{
    echo "# bench/soak.sh --minutes $minutes --rate $rate (build $build)"
    echo "# commit $commit$([ "${tag%-dirty}" != "$tag" ] && echo ' (dirty tree)')"
    echo "# started $(date -u '+%Y-%m-%dT%H:%M:%SZ'), $(nproc) CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# weft-echo --port 0 (port $port), every other setting at its default"
    printf 't_s\trss_kib\tfds\topen\taccepted\tcpu_pct\tbytes_out_per_s\n'
} >"$samples"

end_at=$((SECONDS + duration))
deadline() { [ $SECONDS -lt $end_at ]; }

# ---- the load, each part a bounded loop in its own subshell -------------------
# child CMD... — run CMD as this subshell's current child and wait for it; a
# TERM to the subshell (cleanup) passes to the child, so nothing outlives us.
child() {
    "$@" &
    CHILD=$!
    wait "$CHILD"
}
child_trap() { trap '[ -n "${CHILD:-}" ] && kill -TERM "$CHILD" 2>/dev/null; exit 1' TERM; }
steady() {
    local r=0 left
    child_trap
    while deadline; do
        left=$((end_at - SECONDS))
        [ $left -gt 60 ] && left=60
        [ $left -lt 2 ] && break
        r=$((r + 1))
        if child "$load_bin" rate --port "$port" --conns 64 --rate "$rate" --size 128 \
            --duration "$left" --json >"$TMPD/steady-$r.json" 2>"$TMPD/steady-$r.err"; then
            echo "$r ok"
        else
            echo "$r FAILED $(tail -n1 "$TMPD/steady-$r.err")"
        fi
    done >"$TMPD/steady.log"
}
churn() {
    local t0
    child_trap
    while deadline; do
        t0=$SECONDS
        child "${idle[@]}" "$load_bin" churn --close-rst --port "$port" --conns 4 --count 2000 \
            --duration 25 --json >>"$TMPD/churn.jsonl" 2>>"$TMPD/churn.err" || echo "churn round failed" >>"$TMPD/churn.err"
        while deadline && [ $((SECONDS - t0)) -lt 30 ]; do sleep 1; done
    done
}
faults() {
    local slot=0 t0
    child_trap
    while deadline && [ $((end_at - SECONDS)) -gt 90 ]; do
        t0=$SECONDS
        case $((slot % 4)) in
        0) child "${idle[@]}" "$load_bin" flood --port "$port" --conns 500 --hold 20 --json \
            >>"$TMPD/flood.jsonl" 2>>"$TMPD/faults.err" || echo "flood check failed" >>"$TMPD/faults.err" ;;
        1) child "${idle[@]}" python3 "$TMPD/fault.py" slow "$port" 50 75 2>>"$TMPD/faults.err" ;;
        2) child "${idle[@]}" python3 "$TMPD/fault.py" reset "$port" 500 2>>"$TMPD/faults.err" ;;
        3) child "${idle[@]}" python3 "$TMPD/fault.py" vanish "$port" 300 5 >/dev/null 2>>"$TMPD/faults.err" ;;
        esac
        echo "$((SECONDS - T_START)) $((slot % 4))" >>"$TMPD/faults.log"
        slot=$((slot + 1))
        while deadline && [ $((SECONDS - t0)) -lt 60 ]; do sleep 1; done
    done
}
steady &
PIDS_STARTED+=($!)
churn &
PIDS_STARTED+=($!)
faults &
PIDS_STARTED+=($!)

# ---- the sampler ------------------------------------------------------------
hz=$(getconf CLK_TCK)
t0=$SECONDS
prev_ticks=$(cpu_ticks "$srv")
prev_t=$(date +%s.%N)
while deadline; do
    sleep 1
    kill -0 "$srv" 2>/dev/null || { log "weft-echo exited during the soak"; break; }
    now=$(date +%s.%N)
    ticks=$(cpu_ticks "$srv")
    cpu=$(awk -v a="$prev_ticks" -v b="$ticks" -v t0="$prev_t" -v t1="$now" -v hz="$hz" \
        'BEGIN { printf "%.1f", (b - a) / hz / (t1 - t0) * 100 }')
    prev_ticks=$ticks
    prev_t=$now
    read -r open accepted bps <<<"$(admin open accepted bytes_out_per_second)"
    printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\n' $((SECONDS - t0)) "$(proc_status_kib "$srv" VmRSS)" \
        "$(fds_of "$srv")" "${open:-}" "${accepted:-}" "$cpu" "${bps:-}" >>"$samples"
done
wait "${PIDS_STARTED[@]:1}" 2>/dev/null
PIDS_STARTED=("$srv")

# After the load: every connection gone and the fds back where they began?
alive=1
kill -0 "$srv" 2>/dev/null || alive=0
open_end=-
fds_end=-
for ((i = 0; i < 150 && alive; i++)); do
    open_end=$(admin open)
    fds_end=$(fds_of "$srv")
    [ "$open_end" = 0 ] && [ "$fds_end" -eq "$fds_start" ] && break
    sleep 0.2
done
rss_end=$(proc_status_kib "$srv" VmRSS)
counters=$(printf 'stats\nquit\n' | timeout 3 nc -U "$sock" 2>/dev/null |
    grep -E '^(accepted|bytes_out|closed_[a-z_]+|rejected_max|accept_emfile|bp_pauses|pool_pauses) ' |
    grep -v _per_second |
    awk '$2 != 0 { printf "%s%s %s", sep, $1, $2; sep = ", " }')
stopped=-
if [ $alive -eq 1 ]; then
    stop_pid "$srv" 10
    wait "$srv" 2>/dev/null
    stopped=$(cat "$TMPD/server.out" "$TMPD/server.err" | grep -c 'weft-echo: stopped:')
fi
PIDS_STARTED=()

# ---- summary and verdict ----------------------------------------------------------
rounds=$(wc -l <"$TMPD/steady.log")
failed=$(grep -c FAILED "$TMPD/steady.log")
p99s=$(for f in "$TMPD"/steady-*.json; do jget "$f" latency_us.p99; done | sort -n | awk '{ a[NR] = sprintf("%.0f", $1) } END { if (NR) printf "%s .. %s (median %s)", a[1], a[NR], a[int((NR + 1) / 2)] }')
churn_cycles=$(awk -F'"cycles":' 'NF > 1 { split($2, a, /[,}]/); s += a[1] } END { print s + 0 }' "$TMPD/churn.jsonl" 2>/dev/null)
nfault=$(wc -l <"$TMPD/faults.log" 2>/dev/null || echo 0)
stats=$(awk -F'\t' -v n="$(($(grep -vc '^#' "$samples") - 1))" '
    !/^#/ && $1 != "t_s" && $2 != "" {
        i++; t[i] = $1; r[i] = $2; f[i] = $3; o[i] = $4; c[i] = $6
        if ($2 > rmax) rmax = $2
        if ($3 > fmax) fmax = $3
        if ($4 > omax) omax = $4
        cs += $6
    }
    function med(lo, hi,   k, m, v, j, tmp) {
        m = 0
        for (k = lo; k <= hi; k++) v[++m] = r[k]
        for (k = 2; k <= m; k++) { tmp = v[k]; for (j = k - 1; j >= 1 && v[j] > tmp; j--) v[j + 1] = v[j]; v[j + 1] = tmp }
        return m ? v[int((m + 1) / 2)] : 0
    }
    END {
        q = int(i / 5)
        printf "%d %d %d %d %d %d %.1f\n", i, med(q + 1, 2 * q), med(4 * q + 1, i), rmax, fmax, omax, i ? cs / i : 0
    }' "$samples")
read -r nsamples rss_q2 rss_q5 rss_max fds_max open_max cpu_avg <<<"$stats"

verdict=pass
why=()
[ $alive -eq 1 ] || { verdict=FAIL; why+=("weft-echo exited during the soak"); }
[ "$failed" -eq 0 ] && [ "$rounds" -gt 0 ] || { verdict=FAIL; why+=("$failed of $rounds steady rounds failed"); }
[ "$open_end" = 0 ] || { verdict=FAIL; why+=("open connections after the load: $open_end (want 0)"); }
[ "$fds_end" = "$fds_start" ] || { verdict=FAIL; why+=("fds after the load: $fds_end (started at $fds_start)"); }
rss_limit=$((rss_q2 + rss_q2 / 10 + 16384))
[ "$rss_q5" -le "$rss_limit" ] || { verdict=FAIL; why+=("RSS grew: median $rss_q5 KiB in the last fifth against $rss_q2 KiB in the second (limit $rss_limit)"); }
{
    echo "bench/soak.sh --minutes $minutes --rate $rate: commit $tag, $(nproc) CPUs, load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "samples: $samples ($nsamples, one a second)"
    echo "RSS KiB: $rss_start at the start, median $rss_q2 in the second fifth, median $rss_q5 in the last fifth, max $rss_max, $rss_end after the load"
    echo "fds: $fds_start at the start, max $fds_max, $fds_end after the load; open connections: max $open_max, $open_end after the load"
    echo "server CPU: $cpu_avg% of one CPU on average"
    echo "steady: $rounds rounds of weft-load rate ($rate msg/s, 64 conns, 128 B), $failed failed; p99 us per round: ${p99s:--}"
    [ "$failed" -gt 0 ] && grep FAILED "$TMPD/steady.log" | head -n 5 | sed 's/^/  round /'
    echo "churn: $churn_cycles cycles (connect, echo, RST)$(grep -c . "$TMPD/churn.err" 2>/dev/null | awk '$1 > 0 { printf ", %d stderr lines", $1 }')"
    echo "faults: $nfault slots (flood 500 idle, 50 slow consumers, 500 resets, 300 vanished, in turn)$(grep -c 'failed' "$TMPD/faults.err" 2>/dev/null | awk '$1 > 0 { printf ", %d failed checks", $1 }')"
    echo "server counters (non-zero): $counters"
    echo "server stopped cleanly: $([ "$stopped" = 1 ] && echo yes || echo no)"
    echo "verdict: $verdict"
    for w in "${why[@]}"; do echo "  - $w"; done
} | tee "$summary"

if [ $do_plot -eq 1 ]; then
    mkdir -p "$(dirname "$plot")"
    gnuplot -e "samples='$samples'; out='$plot'; title='weft-echo soak, $minutes min, commit ${tag}'" \
        "$root/bench/soak.gp" && log "plot: $plot"
fi
[ "$verdict" = pass ]
