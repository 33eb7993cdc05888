# bench/lib.sh — helpers for bench/run.sh (sourced, not run).
#
# Everything here works on processes this script started, by PID. Nothing is
# found or stopped by name. Each function says what it promises.

# log MSG... — progress line on stderr, with the seconds since the start.
log() { printf '[%5ds] %s\n' "$((SECONDS - ${T_START:-0}))" "$*" >&2; }

# die MSG... — print and exit non-zero (the EXIT trap cleans up).
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# PIDS_STARTED holds every background PID this script started; cleanup
# stops the ones still alive (TERM, then KILL after a bounded wait).
PIDS_STARTED=()

# stop_pid PID [GRACE_S] — SIGTERM, wait up to GRACE_S (default 8) for the
# process to exit, then SIGKILL. Returns 0 once it is gone. Only for children
# of this shell (so `wait` reaps them and the PID cannot be reused under us).
stop_pid() {
    local pid=$1 grace=${2:-8} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop in ${grace}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# cleanup — stop everything still running that this script started.
cleanup() {
    local pid
    for pid in "${PIDS_STARTED[@]:-}"; do
        [ -n "$pid" ] && stop_pid "$pid" 3
    done
    [ -n "${TMPD:-}" ] && [ -d "$TMPD" ] && rm -rf "$TMPD"
    return 0
}

# port_free PORT — true when nothing listens on 127.0.0.1:PORT.
port_free() {
    ! ss -ltnH "( sport = :$1 )" 2>/dev/null | grep -q .
}

# next_port — sets PORT to the next free port from PORT_NEXT upwards (each
# server gets its own port, so TIME_WAIT of one run never meets the next).
next_port() {
    local i
    for ((i = 0; i < 2000; i++)); do
        PORT=$PORT_NEXT
        PORT_NEXT=$((PORT_NEXT + 1))
        port_free "$PORT" && return 0
    done
    die "no free port found from $PORT_NEXT"
}

# cpu_ticks PID — utime+stime of the whole process (all threads, living and
# exited) in clock ticks, from /proc/PID/stat; empty when the process is gone.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    # Fields after the ")" of comm: state is field 3, utime 14, stime 15.
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# proc_status_kib PID FIELD — a kB field of /proc/PID/status (VmHWM, VmRSS).
proc_status_kib() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

# jget FILE KEY — a scalar from weft-load's one-line JSON. KEY is "name" for a
# top-level field or "object.name" for a field of a flat nested object
# (latency_us.p99). Strings come back without quotes. Empty when absent.
jget() {
    local f=$1 k=$2 src
    [ -s "$f" ] || return 0
    if [[ $k == *.* ]]; then
        src=$(sed -n "s/.*\"${k%%.*}\":{\([^}]*\)}.*/\1/p" "$f" | head -n1)
        k=${k#*.}
    else
        src=$(head -n1 "$f")
    fi
    sed -n "s/.*\"$k\":\"\([^\"]*\)\".*/\1/p; t; s/.*\"$k\":\([^,}\"]*\).*/\1/p" \
        <<<"$src" | head -n1
}

# conns_established PORT — server-side established TCP connections on PORT.
conns_established() {
    ss -tnH state established "( sport = :$1 )" 2>/dev/null | wc -l
}

# bytes_sent_sum PORT — sum of tcpi_bytes_sent over the server's sockets on
# PORT: what the server has written to its connections, read from the kernel
# at this instant (the same for every server, whatever calls it uses).
bytes_sent_sum() {
    ss -tinH state established "( sport = :$1 )" 2>/dev/null |
        grep -o 'bytes_sent:[0-9]*' | awk -F: '{ s += $2 } END { printf "%.0f\n", s }'
}

# weft_admin_stat PORT "NAME..." — fields of one snapshot from weft-echo's
# admin socket (/tmp/weft-PORT.sock), space-separated in the order asked;
# empty when there is no socket, no nc, or a field is missing.
weft_admin_stat() {
    command -v nc >/dev/null || return 0
    [ -S "/tmp/weft-$1.sock" ] || return 0
    printf 'stats\nquit\n' | timeout 3 nc -U "/tmp/weft-$1.sock" 2>/dev/null |
        awk -v want="$2" '{ v[$1] = $2 }
            END { n = split(want, k, " "); o = ""
                  for (i = 1; i <= n; i++) { if (!(k[i] in v)) exit; o = o (i > 1 ? " " : "") v[k[i]] }
                  print o }' || true
}

# strace_split FILE — reads a `strace -c` summary and prints
# "total wait read write ctl other other_top": calls in each class, and the
# three busiest calls of the "other" class as name:count,...
#   wait  = epoll_wait/epoll_pwait/epoll_pwait2 (poll/ppoll/select/pselect6 for
#           the servers that use those instead)
#   read  = read/readv/recvfrom/recvmsg/recvmmsg
#   write = write/writev/sendto/sendmsg/sendmmsg
#   ctl   = epoll_ctl
strace_split() {
    awk '
        /^-+ / { sep++; next }
        sep == 1 && NF >= 5 {
            name = $NF; calls = $4
            if (name ~ /^(epoll_wait|epoll_pwait|epoll_pwait2|poll|ppoll|select|pselect6)$/) w += calls
            else if (name ~ /^(read|readv|recvfrom|recvmsg|recvmmsg)$/) r += calls
            else if (name ~ /^(write|writev|sendto|sendmsg|sendmmsg)$/) wr += calls
            else if (name == "epoll_ctl") c += calls
            else { o += calls; on[name] = calls }
            t += calls
        }
        END {
            top = ""
            for (k = 0; k < 3; k++) {
                best = ""; bv = -1
                for (n in on) if (on[n] > bv) { bv = on[n]; best = n }
                if (best == "") break
                top = top (top == "" ? "" : ",") best ":" bv
                delete on[best]
            }
            if (top == "") top = "-"
            printf "%d %d %d %d %d %d %s\n", t, w, r, wr, c, o, top
        }' "$1"
}

# forget_pid PID — drop PID from PIDS_STARTED once it has been reaped (so
# cleanup never signals a PID that may have been reused).
forget_pid() {
    local keep=() p
    for p in "${PIDS_STARTED[@]:-}"; do
        if [ -n "$p" ] && [ "$p" != "$1" ]; then keep+=("$p"); fi
    done
    PIDS_STARTED=("${keep[@]:-}")
}
