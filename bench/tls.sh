#!/usr/bin/env bash
# bench/tls.sh — weft-http against nginx over TLS (issue 16's acceptance), in
# one run. It measures and records: every run of every round goes into one
# JSON result file (bench/results/tls-*.json, see bench/lib.sh), and
# bench/render.py renders the tables (medians, ratios weft/nginx, the goals).
#
# Both servers get the same ECDSA P-256 certificate (made here with openssl,
# self-signed, in the temp dir), answer GET / with "hello, world\n" from
# memory, run 2 workers, log nothing per request, speak TLS 1.2 and 1.3 with
# the same TLS 1.2 ciphers (weft's list, server preference), a session cache
# and session tickets. See --help for the cases.
#
# usage: see --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/tls.sh [--quick] [-h|--help]

weft-http against nginx, both over TLS with one ECDSA P-256 certificate and
the same response, 2 workers each. Writes every run to a JSON result file in
RESULTS and prints the tables bench/render.py makes from it. Builds weft-http
(Release) in BUILD first. Bounded: every run stops by itself.

Cases (CASES, default "keepalive onecore handshake fullhs idle"):
  keepalive  keep-alive requests/s over https at each count in CONNS
             (wrk -tTHREADS -cN -dDURATION --latency)
  onecore    the same with wrk -t1 pinned to ONECORE_LOAD_CPU and each
             server confined to ONECORE_SERVER_CPUS (taskset)
  handshake  new TLS handshakes/s: wrk -H 'Connection: close' at HS_CONNS
             connections, so every request is a new connection; the servers'
             own counters (weft-http /stats, nginx stub_status) give the
             connections accepted, and weft's how many handshakes resumed
             (wrk offers each connection's last session: mostly resumptions)
  fullhs     full TLS handshakes/s: THREADS `openssl s_time -new` clients
             side by side (a new connection, no session offered, GET / and
             the answer, one after the other), DURATION seconds
  idle       memory per idle TLS connection: a fresh server, its RSS (the sum
             over all its processes), then bench/tls_idle.py opens IDLE_CONNS
             connections (a full handshake, one request and its answer each)
             and holds them; (RSS with them open - RSS before) / IDLE_CONNS
Rounds are interleaved: each round runs every server once per case and
count, the order of the servers reversed every other round.

  --quick      smoke run (about 75 s): ROUNDS=1 DURATION=2 IDLE_CONNS=500
               CONNS=100, results in BUILD/quick/results (one round is not a
               figure: the report says so)
  -h, --help   this text

Environment (defaults): BUILD=build-bench WORKERS=2 CONNS="100 1000"
  DURATION=10 ROUNDS=3 THREADS=2 HS_CONNS=100 IDLE_CONNS=5000
  SERVERS="weft nginx" (also: weft-nopin) CASES="keepalive onecore handshake fullhs idle"
  ONECORE_SERVER_CPUS=0,1 ONECORE_LOAD_CPU=1 PORT_BASE=18440
  RESULTS=bench/results OUT= (also render into this markdown file, between
  <!-- tls.sh:begin --> and <!-- tls.sh:end -->)
Needs: nginx (with the ssl and stub_status modules), wrk, curl, openssl,
taskset, ps, python3, cmake, a C compiler.
EOF
}

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
ARGV=("$0" "$@")
T_START=$SECONDS
QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
BUILD=${BUILD:-build-bench}
if [ "$QUICK" = 1 ]; then
    # 100 connections only: 1,000 TLS handshakes can take longer than 2 s on
    # a busy small machine, and a run that completes no request fails.
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2} IDLE_CONNS=${IDLE_CONNS:-500} CONNS=${CONNS:-100}
    RESULTS=${RESULTS:-$BUILD/quick/results}
fi
WORKERS=${WORKERS:-2}
CONNS=${CONNS:-"100 1000"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
HS_CONNS=${HS_CONNS:-100}
IDLE_CONNS=${IDLE_CONNS:-5000}
IDLE_OPEN_LIMIT=${IDLE_OPEN_LIMIT:-180} # seconds to open them all before the run fails
SERVERS=${SERVERS:-"weft nginx"}
CASES=${CASES:-"keepalive onecore handshake fullhs idle"}
ONECORE_SERVER_CPUS=${ONECORE_SERVER_CPUS:-0,1}
ONECORE_LOAD_CPU=${ONECORE_LOAD_CPU:-1}
PORT_NEXT=${PORT_BASE:-18440}
RESULTS=${RESULTS:-bench/results}
OUT=${OUT:-}
GOAL=1.0 # the issue's: >= 1.0x nginx for requests/s and handshakes/s, <= nginx for memory

for t in nginx wrk curl openssl taskset ps ss awk python3 cmake; do
    command -v "$t" >/dev/null || die "$t is required"
done
for s in $SERVERS; do [[ " weft weft-nopin nginx " == *" $s "* ]] || die "unknown server $s"; done
[[ " $SERVERS " == *" nginx "* ]] || die "SERVERS must include nginx (the reference)"
for c in $CASES; do
    [[ " keepalive onecore handshake fullhs idle " == *" $c "* ]] || die "unknown case $c"
done
for n in $ROUNDS $THREADS $HS_CONNS $IDLE_CONNS $WORKERS $CONNS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: $n"
done
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION: whole seconds, at least 1: $DURATION"
has_case() { [[ " $CASES " == *" $1 "* ]]; }

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null ||
    die "cmake configure of $BUILD failed"
cmake --build "$BUILD" -j "$(nproc)" --target weft-http >/dev/null ||
    die "building weft-http in $BUILD failed (cmake --build $BUILD --target weft-http says why)"
HTTP="$BUILD/examples/http/weft-http"
NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*/||')

TMPD=$(mktemp -d /tmp/weft-bench-tls.XXXXXX)
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
ulimit -n "$HARD_NOFILE"
(($(ulimit -n) >= IDLE_CONNS + 64)) || ! has_case idle ||
    die "IDLE_CONNS=$IDLE_CONNS needs a larger fd limit than $(ulimit -n)"
result_begin tls "$RESULTS" "${ARGV[@]}"

# One certificate for both: ECDSA P-256, self-signed, for 127.0.0.1, so that
# curl and the idle client verify it (the certificate is its own CA).
CERT=$TMPD/cert.pem KEY=$TMPD/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KEY" -out "$CERT" \
    -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$TMPD/openssl.log" 2>&1 ||
    die "openssl req failed: $(tail -n 3 "$TMPD/openssl.log")"
CERT_DESC=$(openssl x509 -in "$CERT" -noout -text |
    sed -n 's/^ *Public Key Algorithm: //p; s/^ *ASN1 OID: //p; s/^ *Signature Algorithm: //p' |
    sort -u | paste -sd' ')
# weft's TLS 1.2 list (core/tls_ctx.c), given to nginx too; TLS 1.3 suites
# are OpenSSL's defaults for both.
TLS12_CIPHERS="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

# nginx_conf DIR WORKERS PORT — nginx as close to weft-http over TLS as it
# goes: bench/lib.sh's nginx (bench/http.sh's) and TLS 1.2/1.3, the same
# certificate and 1.2 ciphers (server preference, as weft), a shared session
# cache and tickets (weft has both). stub_status answers /nginx_status, for
# the handshake case's count of accepted connections; nothing else asks it.
nginx_conf() {
    nginx_conf_write "$1" "$2" "$3" ssl "" "$(
        cat <<EOF
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $TLS12_CIPHERS;
        ssl_prefer_server_ciphers on;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
        location = /nginx_status { stub_status; }
EOF
    )"
}

# server_cmd ID PORT — sets CMD (nginx: writes its config under TMPD).
server_cmd() {
    local d=$TMPD/$1-$2
    case $1 in
    weft | weft-nopin)
        CMD=("$HTTP" --port "$2" --workers "$WORKERS" --tls-cert "$CERT" --tls-key "$KEY" --stats-socket '' -q)
        if [ "$1" = weft-nopin ]; then CMD+=(--no-pin); fi
        ;;
    nginx)
        nginx_conf "$d" "$WORKERS" "$2"
        CMD=(nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;')
        ;;
    esac
}
declare -A LABEL=([weft]="weft-http" [weft-nopin]="weft-http --no-pin" [nginx]="nginx $NGINX_VERSION")

# https_get ID PATH — the body of GET PATH from server ID, verified against
# the certificate; empty on any failure.
https_get() {
    curl -s --max-time 5 --cacert "$CERT" "https://127.0.0.1:${PORT_OF[$1]}$2" 2>/dev/null || true
}

# start_server ID [CPUS] — ID on the next free port (confined to CPUS with
# taskset when given); sets PORT_OF[ID], SPID_OF[ID], CMDLINE_OF[ID]; waits
# until it answers over TLS, dies if it does not.
declare -A PORT_OF SPID_OF CMDLINE_OF TLS_OF
start_server() {
    local id=$1 cpus=${2:-} i
    next_port
    PORT_OF[$id]=$PORT
    server_cmd "$id" "$PORT"
    [ -n "$cpus" ] && CMD=(taskset -c "$cpus" "${CMD[@]}")
    CMDLINE_OF[$id]=$(shell_quote "${CMD[@]}" | sed "s|$TMPD|TMP|g")
    "${CMD[@]}" >"$TMPD/$id.log" 2>&1 &
    SPID_OF[$id]=$!
    PIDS_STARTED+=("$!")
    for ((i = 0; i < 100; i++)); do
        [ "$(https_get "$id" /)" = "hello, world" ] && break
        kill -0 "${SPID_OF[$id]}" 2>/dev/null || break
        sleep 0.1
    done
    [ "$(https_get "$id" /)" = "hello, world" ] ||
        die "$id did not start: $(cat "$TMPD/$id.log" "$TMPD"/"$id"-*/error.log 2>/dev/null | tail -n 5)"
    # What a client negotiates with it (once per server: the same every time).
    [ -n "${TLS_OF[$id]:-}" ] || TLS_OF[$id]=$(timeout 5 openssl s_client -connect "127.0.0.1:$PORT" \
        -alpn http/1.1 </dev/null 2>/dev/null | sed -n 's/^New, \(.*\), Cipher is \(.*\)$/\1 \2/p; s/^Server Temp Key: /key exchange /p;
            s/^ALPN protocol: /ALPN /p' | paste -sd';' | sed 's/;/; /g')
}

stop_server() {
    stop_pid "${SPID_OF[$1]}" 10
    forget_pid "${SPID_OF[$1]}"
}

# rss_tree_kib PID — VmRSS of PID and of its children (nginx: the master
# and its workers; weft-http: one process), in kB, and the process count.
rss_tree_kib() {
    local p sum=0 n=0 r
    for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
        r=$(proc_status_kib "$p" VmRSS)
        [ -n "$r" ] && sum=$((sum + r)) n=$((n + 1))
    done
    echo "$sum $n"
}

# server_counters ID — "accepted handshakes resumed" from the server's own
# counters (weft-http: GET /stats, a snapshot sampled every second; nginx:
# stub_status, no TLS counters: "accepted - -"). Empty on failure.
server_counters() {
    case $1 in
    nginx) https_get "$1" /nginx_status | awk 'NR == 3 { print $1, "-", "-" }' ;;
    *) https_get "$1" /stats | python3 -c '
import json, sys
t = json.load(sys.stdin)["total"]
print(t["accepted"], t["tls_handshakes"], t["tls_resumed"])' 2>/dev/null || true ;;
    esac
}

# delta A B LESS — B - A - LESS when A and B are counts; nothing otherwise.
delta() {
    if [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]]; then echo $(($2 - $1 - $3)); fi
}

# stime_measure ID — full TLS handshakes: THREADS `openssl s_time -new`
# clients side by side for DURATION seconds, each a new connection, a full
# handshake (no session offered), GET / and the answer read to the close,
# one after the other. Sets STIME_CONNS (connections, summed), STIME_S (wall
# seconds, from the start to the last client's end), STIME_RATE, STATUS and
# REASON.
stime_measure() {
    local id=$1 i pids=() t0 rc=0 bad=0
    t0=$EPOCHREALTIME
    for ((i = 0; i < THREADS; i++)); do
        timeout $((DURATION + 60)) openssl s_time -connect "127.0.0.1:${PORT_OF[$id]}" -new \
            -time "$DURATION" -www / >"$TMPD/stime.$i" 2>&1 &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || rc=$? bad=$((bad + 1)); done
    STIME_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    STIME_CONNS=$(cat "$TMPD"/stime.* | awk '/connections in [0-9]+ real seconds/ { s += $1; n++ }
                                          END { if (n) print s }')
    STATUS=ok REASON="" STIME_RATE=""
    if ((bad > 0)) || [ -z "$STIME_CONNS" ] || [ "$STIME_CONNS" = 0 ]; then
        STATUS=FAILED REASON="$bad of $THREADS s_time exited non-zero (last $rc): $(
            tail -qn 1 "$TMPD"/stime.* | tr '\n' ' ' | cut -c1-120)"
    else
        STIME_RATE=$(awk -v n="$STIME_CONNS" -v t="$STIME_S" 'BEGIN { printf "%.1f", n / t }')
    fi
    rm -f "$TMPD"/stime.*
}

# handshake_run CASE ROUND ID — new TLS handshakes per second.
#   handshake  wrk with "Connection: close": a new connection, so a new TLS
#              handshake, per request. wrk keeps an SSL's session across its
#              reconnects, so it offers resumption.
#   fullhs     stime_measure: full handshakes only.
# The server's counters before and after (read 1.1 s after the load, so
# that weft's 1 s snapshot is taken after it) say how many connections it
# accepted and, for weft, how many handshakes resumed a session.
handshake_run() {
    local case=$1 round=$2 id=$3 c0 c1 a0 h0 r0 a1 h1 r1 acc hs res counts
    sleep 1.1
    c0=$(server_counters "$id")
    if [ "$case" = handshake ]; then
        wrk_measure handshake "$HS_CONNS" "https://127.0.0.1:${PORT_OF[$id]}/" -H "Connection: close"
    else
        stime_measure "$id"
    fi
    sleep 1.1
    c1=$(server_counters "$id")
    read -r a0 h0 r0 <<<"$c0"
    read -r a1 h1 r1 <<<"$c1"
    # One accepted connection between the two readings is the first
    # reading's own (curl), not the load's: hence the - 1 (within +-1 for
    # weft, whose snapshot may be taken just before or after it).
    acc=$(delta "$a0" "$a1" 1) hs=$(delta "$h0" "$h1" 1) res=$(delta "$r0" "$r1" 0)
    counts="\"accepted\":$(json_num "$acc"),\"tls_handshakes\":$(json_num "$hs"),\"tls_resumed\":$(json_num "$res")"
    if [ "$case" = handshake ]; then
        wrk_record_run handshake "$round" "$id" "$HS_CONNS" "$counts"
    else
        result_run "$(
            printf '{"case":"fullhs","round":%s,"server":%s,"conns":%s,"status":"%s","reason":%s,' \
                "$round" "$(json_str "$id")" "$THREADS" "$STATUS" "$(json_str "$REASON")"
            printf '"rps":%s,"requests":%s,"elapsed_s":%s,%s}' "$(json_num "$STIME_RATE")" \
                "$(json_num "$STIME_CONNS")" "$(json_num "$STIME_S")" "$counts"
        )"
        log "  round $round  fullhs  $id  ${THREADS} clients  ${STIME_RATE:-?} handshakes/s $REASON"
    fi
    log "    accepted ${acc:-?} connections; handshakes ${hs:--}, resumed ${res:--}"
}

# idle_run ROUND ID — a fresh server; RSS before; IDLE_CONNS idle TLS
# connections opened and held by bench/tls_idle.py; RSS with them open.
idle_run() {
    local round=$1 id=$2 out=$TMPD/idle.out rss0 rss1="" n0 n1="" i cpid status=ok reason="" line=""
    start_server "$id"
    sleep 0.5 # the first handshake's allocations (start_server made one) settle
    read -r rss0 n0 <<<"$(rss_tree_kib "${SPID_OF[$id]}")"
    : >"$out"
    timeout --kill-after=5 $((IDLE_OPEN_LIMIT + 60)) python3 bench/tls_idle.py --port "${PORT_OF[$id]}" \
        --cafile "$CERT" --conns "$IDLE_CONNS" --open-timeout "$IDLE_OPEN_LIMIT" --hold 60 >"$out" 2>&1 &
    cpid=$!
    PIDS_STARTED+=("$cpid")
    for ((i = 0; i < (IDLE_OPEN_LIMIT + 10) * 10; i++)); do
        grep -q '^\(ready\|failed\) ' "$out" && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    if grep -q '^ready ' "$out"; then
        sleep 1 # the last answers flushed, buffers released
        read -r rss1 n1 <<<"$(rss_tree_kib "${SPID_OF[$id]}")"
        line=$(sed -n 's/^ready //p' "$out" | head -n1)
        kill -0 "${SPID_OF[$id]}" 2>/dev/null || status=FAILED reason="server exited with the connections open"
    else
        status=FAILED reason="client: $(tail -n 2 "$out" | tr '\n' ' ' | cut -c1-160)"
    fi
    stop_pid "$cpid" 10
    forget_pid "$cpid"
    stop_server "$id"
    [[ $line == '{'*'}' ]] || line=null
    result_run "$(
        printf '{"case":"idle","round":%s,"server":%s,"conns":%s,"status":"%s","reason":%s,' "$round" \
            "$(json_str "$id")" "$IDLE_CONNS" "$status" "$(json_str "$reason")"
        printf '"rss_before_kib":%s,"rss_after_kib":%s,"processes":%s,"client":%s}' "$(json_num "$rss0")" \
            "$(json_num "${rss1:-}")" "$(json_num "${n1:-$n0}")" "$line"
    )"
    log "  round $round  idle  $id  $IDLE_CONNS conns: RSS ${rss0:-?} -> ${rss1:-?} kB over ${n1:-$n0} processes $reason"
}

# in_order ROUND — the servers, reversed on even rounds.
in_order() {
    if (($1 % 2)); then echo "$SERVERS"; else tr ' ' '\n' <<<"$SERVERS" | grep . | tac | tr '\n' ' '; fi
}

# loaded_phase NAME CPUS — start every server (confined to CPUS if given),
# warm each up, run the rounds of the cases in this phase, stop them.
loaded_phase() {
    local phase=$1 cpus=$2 id round c case=keepalive
    [ "$phase" = onecore ] && case=onecore
    log "$phase: starting $SERVERS${cpus:+ on CPUs $cpus}"
    for id in $SERVERS; do start_server "$id" "$cpus"; done
    COMMANDS_JSON+="${COMMANDS_JSON:+,}\"$phase\":{"
    for id in $SERVERS; do
        COMMANDS_JSON+="$(json_str "$id"):$(json_str "${CMDLINE_OF[$id]//${PORT_OF[$id]}/PORT}"),"
        timeout 30 wrk -t"$THREADS" -c100 -d2s "https://127.0.0.1:${PORT_OF[$id]}/" >/dev/null 2>&1 || true
    done
    COMMANDS_JSON="${COMMANDS_JSON%,}}"
    for round in $(seq "$ROUNDS"); do
        if [ "$phase" = onecore ] || has_case keepalive; then
            for c in $CONNS; do
                for id in $(in_order "$round"); do
                    wrk_measure "$case" "$c" "https://127.0.0.1:${PORT_OF[$id]}/"
                    wrk_record_run "$case" "$round" "$id" "$c"
                done
            done
        fi
        for c in handshake fullhs; do
            if [ "$phase" != loaded ] || ! has_case $c; then continue; fi
            for id in $(in_order "$round"); do handshake_run $c "$round" "$id"; done
        done
    done
    for id in $SERVERS; do stop_server "$id"; done
}

COMMANDS_JSON=""
log "servers: $SERVERS; cases: $CASES; rounds $ROUNDS; ${DURATION}s per wrk run; load average $RESULT_LOAD_BEFORE"
if has_case keepalive || has_case handshake || has_case fullhs; then loaded_phase loaded ""; fi
if has_case onecore; then loaded_phase onecore "$ONECORE_SERVER_CPUS"; fi
if has_case idle; then
    for round in $(seq "$ROUNDS"); do
        for id in $(in_order "$round"); do idle_run "$round" "$id"; done
    done
    COMMANDS_JSON+="${COMMANDS_JSON:+,}\"idle\":{"
    for id in $SERVERS; do COMMANDS_JSON+="$(json_str "$id"):$(json_str "${CMDLINE_OF[$id]//${PORT_OF[$id]}/PORT}"),"; done
    COMMANDS_JSON="${COMMANDS_JSON%,}}"
fi

servers_json() {
    local id out=""
    for id in $SERVERS; do
        out+="${out:+,}$(json_str "$id"):{\"label\":$(json_str "${LABEL[$id]}"),\"tls\":$(json_str "${TLS_OF[$id]:-}")}"
    done
    printf '{%s}' "$out"
}
# shellcheck disable=SC2086 # word lists
result_end "$(
    printf '"settings":{"quick":%s,"rounds":%s,"duration_s":%s,"conns":[%s],"workers":%s,' \
        "$([ "$QUICK" = 1 ] && echo true || echo false)" "$ROUNDS" "$DURATION" \
        "$(tr ' ' '\n' <<<"$CONNS" | grep . | paste -sd,)" "$WORKERS"
    printf '"wrk_threads":%s,"handshake_conns":%s,"idle_conns":%s,"goal":%s,"cases":%s,' "$THREADS" \
        "$HS_CONNS" "$IDLE_CONNS" "$GOAL" "$(json_list $CASES)"
    printf '"onecore":{"server_cpus":%s,"load_cpu":%s},"certificate":%s,"commands":{%s},' \
        "$(json_str "$ONECORE_SERVER_CPUS")" "$(json_str "$ONECORE_LOAD_CPU")" "$(json_str "$CERT_DESC")" \
        "$COMMANDS_JSON"
    printf '"wrk":%s,"openssl":%s},' "$(json_str "$(wrk -v 2>&1 | head -n1 | cut -c1-60)")" \
        "$(json_str "$(openssl version)")"
    printf '"servers":%s,"server_ids":%s' "$(servers_json)" "$(json_list $SERVERS)"
)"
log "wrote $RESULT_FILE"
python3 bench/render.py "$RESULT_FILE"
[ -z "$OUT" ] || python3 bench/render.py --out "$OUT" "$RESULT_FILE"
