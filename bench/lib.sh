# shellcheck shell=bash
# bench/lib.sh — helpers for bench/run.sh, bench/http.sh and bench/kv.sh (sourced, not run).
#
# Everything here works on processes this script started, by PID. Nothing is
# found or stopped by name. Each function says what it promises.

# log MSG... — progress line on stderr, with the seconds since the start.
log() { printf '[%5ds] %s\n' "$((SECONDS - ${T_START:-0}))" "$*" >&2; }

# die MSG... — print and exit non-zero (the EXIT trap cleans up).
die() { printf 'bench/%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

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

# load_failure OUT ERR RC — why a weft-load run failed, in one line: its JSON
# report's "failure", else the last line it printed on stderr, else its exit
# status (124: it ran past RUN_LIMIT seconds, the caller's bound on one run).
load_failure() {
    local why
    why=$(jget "$1" failure)
    [ -z "$why" ] && why=$(grep -v '^$' "$2" 2>/dev/null | tail -n1 | cut -c1-160)
    [ -z "$why" ] && why="weft-load exit status $3"
    [ "$3" = 124 ] && why="weft-load did not finish within ${RUN_LIMIT}s; $why"
    printf '%s' "$why"
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
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^bytes_sent:/) { split($i, a, ":"); s += a[2] } }
             END { printf "%.0f\n", s }'
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
# "total wait read write ctl other other_top read_errors": calls in each
# class, the three busiest calls of the "other" class as name:count,..., and
# how many calls of the read class failed (EAGAIN: a read that found nothing)
#   wait  = epoll_wait/epoll_pwait/epoll_pwait2 (poll/ppoll/select/pselect6 for
#           the servers that use those instead; io_uring_enter for weft on
#           io_uring, where that one call also submits the turn's sends)
#   read  = read/readv/recvfrom/recvmsg/recvmmsg
#   write = write/writev/sendto/sendmsg/sendmmsg
#   ctl   = epoll_ctl
strace_split() {
    awk '
        /^-+ / { sep++; next }
        sep == 1 && NF >= 5 {
            name = $NF; calls = $4; errs = (NF >= 6) ? $5 : 0
            if (name ~ /^(epoll_wait|epoll_pwait|epoll_pwait2|poll|ppoll|select|pselect6|io_uring_enter)$/) w += calls
            else if (name ~ /^(read|readv|recvfrom|recvmsg|recvmmsg)$/) { r += calls; re += errs }
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
            printf "%d %d %d %d %d %d %s %d\n", t, w, r, wr, c, o, top, re
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

# ---- wrk -----------------------------------------------------------------------

# to_ms V — wrk's latency figure ("812.00us", "2.15ms", "1.02s") in ms.
to_ms() {
    [ -n "$1" ] || return 0
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# wrk_parse FILE — what `wrk --latency` printed to FILE: sets WRK_RPS
# (Requests/sec), WRK_REQS (requests completed), WRK_ERRS (socket errors
# plus non-2xx answers) and WRK_P50, WRK_P75, WRK_P90, WRK_P99 (ms); each
# empty when wrk did not print it.
wrk_parse() {
    local f=$1 p
    WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$f")
    WRK_REQS=$(awk '/requests in/ {print $1}' "$f")
    for p in 50 75 90 99; do
        printf -v "WRK_P$p" '%s' "$(to_ms "$(awk -v p="$p%" '$1 == p {print $2}' "$f")")"
    done
    WRK_ERRS=$(awk '/Socket errors:/ {sub(/.*errors:/, ""); gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) s += $i}
                    /Non-2xx/ {s += $NF} END {print s + 0}' "$f")
}

# wrk_measure CASE CONNS URL [WRK_ARGS...] — one `wrk --latency` run of
# DURATION seconds at CONNS connections, THREADS threads; for CASE onecore
# one thread pinned to ONECORE_LOAD_CPU (taskset). Sets WRK_* (wrk_parse),
# WRK_THREADS, WRK_CPU (empty when not pinned), STATUS (FAILED when wrk
# failed or completed no request, else ok) and REASON. Needs TMPD.
wrk_measure() {
    local case=$1 c=$2 url=$3 out=$TMPD/wrk.out rc=0 load=()
    shift 3
    WRK_THREADS=$THREADS WRK_CPU=""
    if [ "$case" = onecore ]; then WRK_CPU=$ONECORE_LOAD_CPU WRK_THREADS=1 load=(taskset -c "$WRK_CPU"); fi
    load+=(wrk -t"$WRK_THREADS" -c"$c" -d"${DURATION}s" --latency "$@" "$url")
    timeout $((${DURATION%.*} + 60)) "${load[@]}" >"$out" 2>&1 || rc=$?
    wrk_parse "$out"
    STATUS=ok REASON=""
    if [ "$rc" != 0 ] || [ -z "$WRK_RPS" ]; then
        STATUS=FAILED REASON="wrk exit $rc: $(tail -n 2 "$out" | tr '\n' ' ' | cut -c1-160)"
    elif [ "${WRK_REQS:-0}" = 0 ]; then
        STATUS=FAILED REASON="no request completed in ${DURATION}s"
    fi
}

# wrk_record OUT RC MEMBERS — one run from wrk's output in file OUT (its exit
# status RC): records MEMBERS (the run's own, '"k":v,' each) and what wrk
# reported (status, reason, rps, requests, errors, latency_ms p50..p99).
# Sets WRK_RPS, WRK_P99, WRK_ERRS and WRK_REASON for the caller's log line.
wrk_record() {
    local out=$1 rc=$2 p50 p75 p90 p99 reqs status=ok p
    WRK_REASON=""
    WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    reqs=$(awk '/requests in/ {print $1}' "$out")
    for p in 50 75 90 99; do
        eval "p$p=\$(to_ms \"\$(awk '\$1 == \"$p%\" {print \$2}' \"\$out\")\")"
    done
    WRK_P99=$p99
    WRK_ERRS=$(awk '/Socket errors:/ {sub(/.*errors:/, ""); gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) s += $i}
                /Non-2xx/ {s += $NF} END {print s + 0}' "$out")
    if [ "$rc" != 0 ] || [ -z "$WRK_RPS" ]; then
        status=FAILED WRK_REASON="wrk exit $rc: $(tail -n 2 "$out" | tr '\n' ' ' | cut -c1-160)"
    fi
    result_run "$(
        printf '{%s"status":"%s","reason":%s,"rps":%s,"requests":%s,"errors":%s,' "$3" "$status" \
            "$(json_str "$WRK_REASON")" "$(json_num "$WRK_RPS")" "$(json_num "$reqs")" "$(json_num "$WRK_ERRS")"
        printf '"latency_ms":{"p50":%s,"p75":%s,"p90":%s,"p99":%s}}' "$(json_num "$p50")" \
            "$(json_num "$p75")" "$(json_num "$p90")" "$(json_num "$p99")"
    )"
}

# wrk_record_run CASE ROUND ID CONNS [EXTRA] — the last wrk_measure as one run
# of the result file (EXTRA: more JSON members, "name":value,...), and a log line.
wrk_record_run() {
    local case=$1 round=$2 id=$3 c=$4 extra=${5:-}
    result_run "$(
        printf '{"case":"%s","round":%s,"server":%s,"conns":%s,"wrk_threads":%s,"load_cpu":%s,' "$case" \
            "$round" "$(json_str "$id")" "$c" "$WRK_THREADS" "$([ -n "$WRK_CPU" ] && json_str "$WRK_CPU" || echo null)"
        printf '"status":"%s","reason":%s,"rps":%s,"requests":%s,"errors":%s,' "$STATUS" \
            "$(json_str "$REASON")" "$(json_num "$WRK_RPS")" "$(json_num "$WRK_REQS")" "$(json_num "$WRK_ERRS")"
        printf '"latency_ms":{"p50":%s,"p75":%s,"p90":%s,"p99":%s}%s}' "$(json_num "$WRK_P50")" \
            "$(json_num "$WRK_P75")" "$(json_num "$WRK_P90")" "$(json_num "$WRK_P99")" "${extra:+,$extra}"
    )"
    log "  round $round  $case  $id  c=$c  ${WRK_RPS:-?} req/s  p99 ${WRK_P99:-?} ms  errors ${WRK_ERRS:-?} $REASON"
}

# nginx_conf_write DIR WORKERS PORT LISTEN MAIN SERVER — DIR/nginx.conf: an
# nginx as close to weft-http as it goes: WORKERS workers, no logging, no
# limit on requests per keep-alive connection (nginx's default of 1000 would
# make wrk reconnect; weft-http has no such limit), GET / answered with
# "hello, world\n" from memory on 127.0.0.1:PORT. LISTEN: more parameters of
# the listen directive ("ssl"); MAIN: more lines of the main context; SERVER:
# more lines of the server block (each may be empty). With ROOT: the files
# under ROOT instead of the answer from memory, with sendfile on (nginx's
# other defaults kept: no open_file_cache, no tcp_nopush).
nginx_conf_write() {
    local loc='return 200 "hello, world\n";' sf=""
    [ -n "${7:-}" ] && loc="root $7;" sf="sendfile on;"
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<EOF
worker_processes $2;
$5
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    $sf
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    server {
        listen 127.0.0.1:$3${4:+ $4} backlog=4096;
$6
        location / { $loc }
    }
}
EOF
}

# ---- result files ------------------------------------------------------------
# Every benchmark script (run.sh, http.sh, kv.sh) writes one JSON result file
# per invocation: what tree it measured (commit, dirty or not), on what
# machine, with what command, and every run of every round as it came out.
# bench/render.py turns result files into the markdown tables and plots;
# nothing here computes a figure.

# json_str S — S as a JSON string (quotes, backslashes and control
# characters escaped).
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/}
    s=$(tr -d '\000-\010\013\014\016-\037' <<<"$s")
    printf '"%s"' "$s"
}

# json_num V — V when it is a number, otherwise null.
json_num() {
    if [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then printf '%s' "$1"; else printf null; fi
}

# json_list WORD... — the words as a JSON list of strings.
json_list() {
    local w out=""
    for w in "$@"; do out+="${out:+,}$(json_str "$w")"; done
    printf '[%s]' "$out"
}

# json_obj_file FILE — FILE's first line when it is one JSON object (as
# weft-load --json prints it), otherwise null.
json_obj_file() {
    local l=""
    [ -s "$1" ] && l=$(head -n1 "$1")
    if [[ $l == '{'*'}' ]]; then printf '%s' "$l"; else printf null; fi
}

# shell_quote WORD... — the words as one shell command line.
shell_quote() {
    local w out=""
    for w in "$@"; do
        if [[ $w =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+="${out:+ }$w"; else out+="${out:+ }'${w//\'/\'\\\'\'}'"; fi
    done
    printf '%s' "$out"
}

# server_labels_json — {"ID":{"label":...},...} for every ID in SERVERS, the
# label from the calling script's server_label ID.
server_labels_json() {
    local id out=""
    for id in $SERVERS; do
        out+="${out:+,}$(json_str "$id"):{\"label\":$(json_str "$(server_label "$id")")}"
    done
    printf '{%s}' "$out"
}

# result_begin SUITE DIR COMMAND... — starts a result file for SUITE in DIR:
# sets RESULT_FILE (named by the UTC start time and the commit), notes the
# start, the load average and the tree's state. Runs are added with
# result_run and the file is written by result_end. Needs TMPD.
result_begin() {
    RESULT_SUITE=$1
    local dir=$2
    shift 2
    RESULT_CMD=$(shell_quote "$@")
    RESULT_STARTED=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
    RESULT_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    RESULT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    # The result files of earlier invocations are outputs, not the measured tree.
    RESULT_DIRTY_PATHS=$(git status --porcelain -- . ':!bench/results' 2>/dev/null | cut -c4- |
        head -n 20 | tr '\n' ' ')
    local tag=${RESULT_COMMIT:0:12}
    [ -n "$RESULT_DIRTY_PATHS" ] && tag+=-dirty
    mkdir -p "$dir"
    RESULT_FILE=$dir/$RESULT_SUITE-$(date -u -d "$RESULT_STARTED" '+%Y%m%dT%H%M%SZ')-$tag.json
    RESULT_RUNS=$TMPD/result-runs.jsonl
    : >"$RESULT_RUNS"
}

# result_run JSON — adds one run (a JSON object on one line) to the result.
result_run() { printf '%s\n' "$1" >>"$RESULT_RUNS"; }

# result_machine — the machine as a JSON object.
result_machine() {
    local model mem
    model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
    mem=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
    printf '{"cpus":%s,"model":%s,"mem_gib":%s,"kernel":%s,"load_before":%s,"load_after":%s,"fd_limit":%s}' \
        "$(nproc)" "$(json_str "$model")" "$(json_num "$mem")" "$(json_str "$(uname -r)")" \
        "$(json_str "$RESULT_LOAD_BEFORE")" "$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")" \
        "$(json_num "$(ulimit -n)")"
}

# result_end EXTRA — writes RESULT_FILE: the tree, the machine, the command,
# EXTRA (more top-level members, "name":value,... or empty) and every run.
# Checks that the file is valid JSON (python3); dies if not.
result_end() {
    local dirty=false
    [ -n "$RESULT_DIRTY_PATHS" ] && dirty=true
    # shellcheck disable=SC2086 # the paths are words
    {
        printf '{"schema":"weft-bench/1","suite":%s,"command":%s,' "$(json_str "$RESULT_SUITE")" \
            "$(json_str "$RESULT_CMD")"
        printf '"started":%s,"finished":%s,' "$(json_str "$RESULT_STARTED")" \
            "$(json_str "$(date -u '+%Y-%m-%dT%H:%M:%SZ')")"
        printf '"source":{"commit":%s,"dirty":%s,"dirty_paths":%s},' "$(json_str "$RESULT_COMMIT")" \
            "$dirty" "$(json_list $RESULT_DIRTY_PATHS)"
        printf '"machine":%s,' "$(result_machine)"
        [ -n "${1:-}" ] && printf '%s,' "$1"
        printf '"runs":[\n'
        sed '$!s/$/,/' "$RESULT_RUNS"
        printf ']}\n'
    } >"$RESULT_FILE"
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$RESULT_FILE" ||
        die "$RESULT_FILE is not valid JSON"
}
