#!/bin/sh
# tests/st_prometheus.sh — every server's Prometheus text passes
# `promtool check metrics` (Debian package prometheus) with no complaint,
# and carries what Prometheus users expect: latency histograms
# (_bucket{le}, cumulative, +Inf equal to _count, _sum), process_* figures
# that match /proc, and weft_build_info{version,io}. The text comes from
# the admin socket (weft-stat --prometheus) and over HTTP (GET /metrics).
# contrib/prometheus passes `promtool check config` and `check rules`, and
# every weft metric its rules name is one weft-echo exports.
#
# usage: st_prometheus.sh SOURCE_DIR VERSION WEFT_STAT WEFT_LOAD SERVER...
set -u
fail() { echo "st_prometheus: FAIL: $*" >&2; exit 1; }
command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus)"
DIR=$(mktemp -d /tmp/weft-st-prom.XXXXXX) || exit 2
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$DIR"; }
trap cleanup EXIT
SRC=$1 VERSION=$2 STAT=$3 LOAD=$4
shift 4
. "$(dirname "$0")/srvlib.sh"

promtool check config "$SRC/contrib/prometheus/prometheus.yml" >"$DIR/lint" 2>&1 ||
    fail "promtool check config: $(cat "$DIR/lint")"
promtool check rules "$SRC/contrib/prometheus/weft-rules.yml" >"$DIR/lint" 2>&1 ||
    fail "promtool check rules: $(cat "$DIR/lint")"

# check_text FILE WHAT: promtool, and the shapes promtool does not check.
check_text() {
    promtool check metrics <"$1" >"$DIR/lint" 2>&1 || fail "$2: promtool: $(cat "$DIR/lint")"
    [ ! -s "$DIR/lint" ] || fail "$2: promtool complains: $(cat "$DIR/lint")"
    for m in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
        process_open_fds process_max_fds process_start_time_seconds; do
        grep -q "^$m [0-9]" "$1" || fail "$2: no $m"
        grep -q "^# TYPE $m " "$1" || fail "$2: no TYPE for $m"
    done
    grep -Eq "^weft_build_info\{version=\"$VERSION\",io=\"(epoll|poll|uring)\"\} 1$" "$1" ||
        fail "$2: weft_build_info: $(grep build_info "$1")"
    grep -q '^# TYPE weft_turn_latency_seconds histogram$' "$1" || fail "$2: turn latency is no histogram"
    grep -q '^# TYPE weft_handler_latency_seconds histogram$' "$1" || fail "$2: handler latency is no histogram"
    grep -q '^# TYPE weft_connections gauge$' "$1" || fail "$2: no connection-state gauge"
    for st in idle reading writing handshake connecting draining lingering; do
        grep -Eq "^weft_connections\{worker=\"0\",state=\"$st\"\} [0-9]+$" "$1" ||
            fail "$2: no weft_connections{worker=\"0\",state=\"$st\"}"
    done
    # Per series: buckets non-decreasing in le order, +Inf == _count, 23 buckets.
    awk -v what="$2" '
        /^weft_(turn|handler)_latency_seconds_bucket/ {
            split($0, a, "le=\""); split(a[2], b, "\""); key = $1; sub(/,le=.*/, "", key)
            if (key in last && $2 + 0 < last[key]) { print what ": " key " decreases at le=" b[1]; bad = 1 }
            last[key] = $2 + 0; n[key]++
            if (b[1] == "+Inf") inf[key] = $2 + 0
        }
        /^weft_(turn|handler)_latency_seconds_count/ {
            key = $1; sub(/_count\{/, "_bucket{", key); sub(/\}$/, "", key); cnt[key] = $2 + 0
        }
        END {
            for (k in n) {
                if (n[k] != 23) { print what ": " k " has " n[k] " buckets"; bad = 1 }
                if (!(k in cnt) || cnt[k] != inf[k]) { print what ": " k " +Inf != _count"; bad = 1 }
            }
            exit bad
        }' "$1" >"$DIR/shape" || fail "$(cat "$DIR/shape")"
}

for prog in "$@"; do
    name=$(basename "$prog")
    mport=$(free_port)
    rm -f "$DIR/out"
    "$prog" --port 0 --workers 2 --stats-socket "$DIR/s.sock" --stats-interval 100 \
        --metrics-port "$mport" >"$DIR/out" 2>"$DIR/err" &
    pid=$!
    PIDS=$pid
    port=$(wait_port "$DIR/out") || fail "$name did not start: $(cat "$DIR/out" "$DIR/err")"
    # Some traffic, so that the turn histogram is not all zeros (echo servers only).
    [ "$name" = weft-echo ] && "$LOAD" echo --port "$port" --conns 4 --duration 1 >/dev/null 2>&1
    sleep 0.3
    "$STAT" --socket "$DIR/s.sock" --prometheus >"$DIR/admin.prom" || fail "$name: weft-stat --prometheus"
    check_text "$DIR/admin.prom" "$name (admin socket)"
    curl -sf "http://127.0.0.1:$mport/metrics" -D "$DIR/head" -o "$DIR/http.prom" || fail "$name: GET /metrics"
    grep -qi '^content-type: text/plain; version=0.0.4' "$DIR/head" || fail "$name: Content-Type: $(cat "$DIR/head")"
    check_text "$DIR/http.prom" "$name (GET /metrics)"
    # The figures are this process's.
    fds=$(ls /proc/$pid/fd | wc -l)
    got=$(sed -n 's/^process_open_fds //p' "$DIR/http.prom")
    [ "$got" -ge $((fds - 4)) ] && [ "$got" -le $((fds + 4)) ] || fail "$name: process_open_fds $got, /proc says $fds"
    start=$(sed -n 's/^process_start_time_seconds \([0-9]*\).*/\1/p' "$DIR/http.prom")
    now=$(date +%s)
    [ "$start" -le "$now" ] && [ "$start" -ge $((now - 60)) ] || fail "$name: process_start_time_seconds $start, now $now"
    rss=$(sed -n 's/^process_resident_memory_bytes //p' "$DIR/http.prom")
    [ "$rss" -gt 1000000 ] || fail "$name: process_resident_memory_bytes $rss"
    if [ "$name" = weft-echo ]; then
        grep -Eq '^weft_turn_latency_seconds_count\{worker="[01]"\} [1-9]' "$DIR/http.prom" ||
            fail "$name: no turn recorded under load"
    fi
    kill -TERM "$pid"
    wait "$pid" || fail "$name exited $? after SIGTERM"
    PIDS=
    if [ "$name" = weft-echo ]; then
        for m in $(grep -o '\b\(weft\|process\)_[a-z_]*' "$SRC/contrib/prometheus/weft-rules.yml" | sort -u); do
            grep -q "^$m[{ ]" "$DIR/http.prom" || fail "weft-rules.yml names $m, which weft-echo does not export"
        done
    fi
    echo "st_prometheus: $name: promtool clean on the admin socket and GET /metrics; histograms, process_*, build_info: ok"
done
