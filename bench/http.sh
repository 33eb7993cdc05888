#!/usr/bin/env bash
# bench/http.sh — weft-http against nginx, same load generator, same run.
#
# Builds weft-http (Release), writes an nginx config into a temp dir (the
# same number of workers as weft, `return 200 "hello, world\n";` from
# memory, access_log off, loopback only), starts both servers in the
# foreground, and drives each with wrk --latency at every connection count,
# ROUNDS times, interleaved (the order alternates each round) so drift in
# the machine's state hits both alike. Reports the median requests/s and
# the median p99 latency per server and connection count as a markdown
# table, and whether weft-http reached GOAL x nginx's requests/s with a p99
# no worse. Stops only the servers it started, by PID.
#
# usage: bench/http.sh            (environment variables below override)
#   BUILD=build-bench  WORKERS=$(nproc)  CONNS="100 1000"  DURATION=10
#   ROUNDS=3  THREADS=2 (wrk threads)  WEFT_PORT=18080  NGINX_PORT=18081
#   PIN=1 (pin weft workers and nginx workers to CPUs alike; 0: neither)
#   GOAL=1.1
# Needs: nginx (nginx-light), wrk, cmake and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
WORKERS=${WORKERS:-$(nproc)}
CONNS=${CONNS:-"100 1000"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
WEFT_PORT=${WEFT_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
PIN=${PIN:-1}
GOAL=${GOAL:-1.1}

for t in nginx wrk cmake; do
    command -v "$t" >/dev/null || { echo "bench/http.sh: $t is required" >&2; exit 1; }
done
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target weft-http >/dev/null
HTTP="$BUILD/examples/http/weft-http"

TMP=$(mktemp -d /tmp/weft-bench-http.XXXXXX)
WPID=
NPID=
cleanup() {
    for p in $WPID $NPID; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $WPID $NPID; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- servers -----------------------------------------------------------------
# nginx as close to weft-http as it goes: same workers, no logging, no limit
# on requests per keep-alive connection (nginx's default of 1000 would make
# wrk reconnect; weft-http has no such limit), a response from memory.
AFFINITY=
[ "$PIN" = 1 ] && AFFINITY="worker_cpu_affinity auto;"
cat >"$TMP/nginx.conf" <<EOF
worker_processes $WORKERS;
$AFFINITY
pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / { return 200 "hello, world\n"; }
    }
}
EOF
ulimit -n 20000 2>/dev/null || true
WEFT_ARGS=(--port "$WEFT_PORT" --workers "$WORKERS" --stats-socket '' -q)
[ "$PIN" = 1 ] || WEFT_ARGS+=(--no-pin)
"$HTTP" "${WEFT_ARGS[@]}" >"$TMP/weft.log" 2>&1 &
WPID=$!
nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/error.log" -g 'daemon off;' >"$TMP/nginx.log" 2>&1 &
NPID=$!
for _ in $(seq 50); do
    if curl -sf "http://127.0.0.1:$WEFT_PORT/" >/dev/null 2>&1 &&
        curl -sf "http://127.0.0.1:$NGINX_PORT/" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
[ "$(curl -s "http://127.0.0.1:$WEFT_PORT/")" = "hello, world" ] ||
    { echo "weft-http did not start: $(cat "$TMP/weft.log")" >&2; exit 1; }
[ "$(curl -s "http://127.0.0.1:$NGINX_PORT/")" = "hello, world" ] ||
    { echo "nginx did not start: $(cat "$TMP/error.log" "$TMP/nginx.log")" >&2; exit 1; }

port_of() { [ "$1" = weft ] && echo "$WEFT_PORT" || echo "$NGINX_PORT"; }

# wrk's latency figure in ms ("812.00us", "2.15ms", "1.02s").
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# One wrk run: appends "rps p99_ms errors" to $TMP/<server>.<conns>.
measure() {
    local srv=$1 c=$2 out="$TMP/wrk.out"
    wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --latency "http://127.0.0.1:$(port_of "$srv")/" >"$out" 2>&1
    local rps p99 errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    errs=$(awk '/Socket errors:/ {sub(/.*errors:/, ""); gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) s += $i}
                /Non-2xx/ {s += $NF} END {print s + 0}' "$out")
    if [ -z "$rps" ] || [ -z "$p99" ]; then
        echo "wrk failed against $srv: $(cat "$out")" >&2
        exit 1
    fi
    echo "$rps $(to_ms "$p99") $errs" >>"$TMP/$srv.$c"
    printf '  round %d  %-5s  c=%-5s  %10.0f req/s  p99 %8.3f ms  errors %s\n' "$round" "$srv" "$c" \
        "$rps" "$(to_ms "$p99")" "$errs" >&2
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Warm both up (page faults, pools, accept paths) before measuring.
for srv in weft nginx; do
    wrk -t"$THREADS" -c100 -d2s "http://127.0.0.1:$(port_of "$srv")/" >/dev/null 2>&1
done
echo "bench/http.sh: $ROUNDS rounds x {$CONNS} connections x ${DURATION}s, $WORKERS workers each" >&2
for round in $(seq "$ROUNDS"); do
    for c in $CONNS; do
        if [ $((round % 2)) = 1 ]; then order="weft nginx"; else order="nginx weft"; fi
        for srv in $order; do measure "$srv" "$c"; done
    done
done

# ---- report --------------------------------------------------------------------
echo "| connections | server | requests/s (median) | p99 latency ms (median) | requests/s per round | errors |"
echo "|---:|---|---:|---:|---|---:|"
verdict=""
met=1
for c in $CONNS; do
    for srv in weft nginx; do
        f="$TMP/$srv.$c"
        rps=$(cut -d' ' -f1 "$f" | median)
        p99=$(cut -d' ' -f2 "$f" | median)
        all=$(cut -d' ' -f1 "$f" | awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1}')
        errs=$(cut -d' ' -f3 "$f" | awk '{s += $1} END {print s + 0}')
        name=$([ "$srv" = weft ] && echo weft-http || echo "nginx $(nginx -v 2>&1 | sed 's|.*/||')")
        printf '| %s | %s | %.0f | %.3f | %s | %s |\n' "$c" "$name" "$rps" "$p99" "$all" "$errs"
        eval "${srv}_rps=$rps ${srv}_p99=$p99"
    done
    # shellcheck disable=SC2154 # set by the eval above
    line=$(awk -v wr="$weft_rps" -v nr="$nginx_rps" -v wp="$weft_p99" -v np="$nginx_p99" -v g="$GOAL" -v c="$c" 'BEGIN {
        ok = (wr >= g * nr && wp <= np)
        printf "%s at %s connections: weft-http %.0f req/s = %.2fx nginx (%.0f), p99 %.3f ms vs %.3f ms\n",
            ok ? "MET" : "NOT MET", c, wr, wr / nr, nr, wp, np
        exit !ok }') || met=0
    verdict="$verdict- $line"$'\n'
done
echo
printf 'Goal (>= %sx nginx requests/s with p99 no worse):\n%s' "$GOAL" "$verdict"
[ $met = 1 ] && echo "Overall: goal met." || echo "Overall: goal not met."
