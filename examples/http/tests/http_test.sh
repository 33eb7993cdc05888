#!/bin/sh
# examples/http/tests/http_test.sh — weft-http against real clients.
#
#   usage: http_test.sh raw|curl|ab|wrk|h2load WEFT-HTTP HTTP_IT
#
# Starts weft-http on a free loopback port (--port 0, the port read from its
# first line), runs one client, checks what it reports, and stops the server
# by its PID with SIGTERM: the server must exit 0 within 10 s. Nothing else
# is signalled. A missing client fails the test, naming the Debian package.
#
#   raw     http_it: every status, keep-alive/close rules, HEAD framing,
#           bodies skipped, heads split at every byte, 100 and 1000
#           pipelined requests in one write
#   curl    one curl run fetching several URLs reuses one connection;
#           /stats is JSON with "total"; HEAD; 404
#   ab      ab -k -n 2000 -c 20: 2000 complete, 0 failed, 2000 keep-alive
#   wrk     wrk -t2 -c50 -d2s with wrk_check.lua: every response is 200 with
#           the right body, no socket error or timeout, and the server's
#           http_2xx counter agrees (no 4xx/5xx); no rate is asserted
#   h2load  h2load --h1 -n 2000 -c 10: 2000 succeeded, 0 failed/errored
#   static  --root: a 100 MB file byte-exact, ranges (206, 416), 304,
#           HEAD, index.html, Content-Type, and every way out of the root
#           (.., %2e%2e, a symlink out) a 404, with nothing of it sent
set -u
MODE=$1
HTTP=$2
HTTP_IT=$3
TESTS=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d /tmp/weft-http-test-XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
    echo "http_test $MODE: FAIL: $*" >&2
    [ -s "$DIR/server.err" ] && sed 's/^/  server: /' "$DIR/server.err" >&2
    exit 1
}
# Running, not a zombie (kill -0 succeeds on a child that exited unwaited).
alive() {
    # One read: the process may exit (and be reaped) between two looks.
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    case $st in *") Z "*) return 1 ;; esac
    return 0
}
need() {
    command -v "$1" >/dev/null 2>&1 || fail "$1 not found: install the Debian package '$2'"
}

case $MODE in
raw) ;;
curl) need curl curl ;;
ab) need ab apache2-utils ;;
wrk)
    need wrk wrk
    need curl curl
    need python3 python3
    ;;
h2load) need h2load nghttp2-client ;;
static)
    need curl curl
    ROOT=$DIR/root
    mkdir -p "$ROOT/sub" "$DIR/secret"
    # 100 MB of a pattern, fast to make and to check with cmp.
    head -c 1048576 /dev/urandom >"$DIR/mb"
    for _ in $(seq 100); do cat "$DIR/mb"; done >"$ROOT/big.bin"
    echo '<p>home</p>' >"$ROOT/index.html"
    echo 'in sub' >"$ROOT/sub/index.html"
    echo 'body{}' >"$ROOT/site.css"
    echo 'top secret' >"$DIR/secret/key"
    ln -s "$DIR/secret" "$ROOT/out"     # a symlink out of the root
    ln -s big.bin "$ROOT/inside"         # one that stays inside
    EXTRA="--root $ROOT"
    ;;
*) fail "unknown mode" ;;
esac

# --stats-interval 100: /stats has a sample soon; no admin socket file.
# shellcheck disable=SC2086
"$HTTP" --port 0 --workers 2 --stats-interval 100 --stats-socket '' ${EXTRA:-} \
    >"$DIR/server.out" 2>"$DIR/server.err" &
PID=$!
PORT=
i=0
while [ $i -lt 100 ]; do
    PORT=$(sed -n 's|.*listening on 127.0.0.1:\([0-9]*\),.*|\1|p' "$DIR/server.out")
    [ -n "$PORT" ] && break
    alive "$PID" || fail "weft-http exited at start"
    sleep 0.1
    i=$((i + 1))
done
[ -n "$PORT" ] || fail "weft-http did not report its port"
URL="http://127.0.0.1:$PORT"

case $MODE in
raw)
    "$HTTP_IT" "$PORT" all || fail "http_it"
    ;;
curl)
    # Several URLs in one run: one connection, reused (num_connects 1, then 0).
    curl -sS --max-time 10 -w '%{http_code} %{num_connects}\n' -o /dev/null "$URL/" \
        -o /dev/null "$URL/nope" -o /dev/null "$URL/" -o /dev/null "$URL/?a=b" >"$DIR/out" 2>"$DIR/err" || fail "curl: $(cat "$DIR/err")"
    [ "$(tr '\n' ' ' <"$DIR/out")" = "200 1 404 0 200 0 200 0 " ] ||
        fail "keep-alive reuse: got $(tr '\n' ' ' <"$DIR/out")"
    [ "$(curl -sS --max-time 10 "$URL/")" = "hello, world" ] || fail "GET / body"
    # HEAD: the headers of GET, no body.
    curl -sS --max-time 10 -I "$URL/" >"$DIR/head" || fail "curl -I"
    grep -q '^HTTP/1.1 200 OK' "$DIR/head" || fail "HEAD status: $(cat "$DIR/head")"
    grep -qi '^Content-Length: 13' "$DIR/head" || fail "HEAD Content-Length: $(cat "$DIR/head")"
    # /stats: 503 until the first sample, then JSON with "total".
    i=0
    while :; do
        code=$(curl -sS --max-time 10 -o "$DIR/stats" -w '%{http_code} %{content_type}' "$URL/stats")
        [ "$code" = "503 text/plain" ] && [ $i -lt 50 ] && { sleep 0.1; i=$((i + 1)); continue; }
        break
    done
    [ "$code" = "200 application/json" ] || fail "/stats: $code"
    grep -q '"total"' "$DIR/stats" || fail "/stats has no \"total\": $(head -c 300 "$DIR/stats")"
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$DIR/stats" 2>/dev/null ||
        { command -v python3 >/dev/null && fail "/stats is not valid JSON"; }
    grep -q '"http_2xx"' "$DIR/stats" || fail "/stats lacks the http_2xx counter"
    code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X BREW "$URL/")
    [ "$code" = 501 ] || fail "BREW: $code"
    code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -d 'x=1' "$URL/")
    [ "$code" = 405 ] || fail "POST /: $code"
    ;;
ab)
    ab -k -n 2000 -c 20 -s 10 "$URL/" >"$DIR/out" 2>&1 || fail "ab: $(tail -5 "$DIR/out")"
    grep -Eq '^Complete requests: +2000$' "$DIR/out" || fail "ab: $(grep -i complete "$DIR/out")"
    grep -Eq '^Failed requests: +0$' "$DIR/out" || fail "ab: $(grep -i failed "$DIR/out")"
    grep -Eq '^Keep-Alive requests: +2000$' "$DIR/out" || fail "ab: $(grep -i keep-alive "$DIR/out")"
    grep -q '^Non-2xx' "$DIR/out" && fail "ab: $(grep '^Non-2xx' "$DIR/out")"
    ;;
wrk)
    # wrk_check.lua looks at every response (status 200, body exactly
    # "hello, world\n") and prints one "checked:" line with wrk's own error
    # counts. wrk exits 0 even when it cannot load the script: the line
    # must be there.
    timeout 30 wrk -t2 -c50 -d2s -s "$TESTS/wrk_check.lua" "$URL/" >"$DIR/out" 2>&1 ||
        fail "wrk: $(cat "$DIR/out")"
    line=$(grep '^checked: ' "$DIR/out") || fail "wrk did not run wrk_check.lua: $(cat "$DIR/out")"
    val() { echo "$line" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
    n=$(val requests)
    [ "$n" -gt 0 ] || fail "wrk completed no request: $line"
    [ "$(val good)" = "$n" ] && [ "$(val bad)" = 0 ] || fail "wrong answers: $line"
    for e in connect read write status timeout; do
        [ "$(val $e)" = 0 ] || fail "wrk counted $e errors: $line"
    done
    grep -q 'Non-2xx' "$DIR/out" && fail "wrk: $(grep 'Non-2xx' "$DIR/out")"
    # The server counted every one of them as a 2xx, and no other status:
    # at least the n wrk completed, at most one more per connection (the
    # answers in flight when wrk stopped) and the /stats polls below.
    polls=0
    seq0=
    while :; do
        polls=$((polls + 1))
        [ $polls -le 100 ] || fail "/stats: no new sample in 10 s"
        curl -sS --max-time 10 -o "$DIR/stats" "$URL/stats" 2>/dev/null
        seq=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seq"])' \
            "$DIR/stats" 2>/dev/null) || { sleep 0.1; continue; }
        [ -n "$seq0" ] || seq0=$seq
        [ "$seq" -ge $((seq0 + 2)) ] && break # sampled after wrk's last answer
        sleep 0.1
    done
    set -- $(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["counters"]
print(c["http_2xx"], c["http_4xx"], c["http_5xx"])' "$DIR/stats")
    [ "$2" = 0 ] && [ "$3" = 0 ] || fail "the server answered non-2xx: 4xx=$2 5xx=$3"
    [ "$1" -ge "$n" ] && [ "$1" -le $((n + 50 + polls)) ] ||
        fail "the server counted $1 2xx answers for wrk's $n (and $polls /stats)"
    echo "wrk: $n requests, every answer 200 with the right body; the server counted $1 2xx"
    ;;
static)
    get() { curl -sS --max-time 30 --path-as-is "$@"; }
    code() { curl -sS --max-time 30 --path-as-is -o "$DIR/body" -w '%{http_code}' "$@"; }
    get -o "$DIR/got" "$URL/big.bin" || fail "GET big.bin"
    cmp -s "$DIR/got" "$ROOT/big.bin" || fail "the 100 MB file differs"
    get -o "$DIR/got" -r 1000-1999 "$URL/big.bin"
    dd if="$ROOT/big.bin" of="$DIR/want" bs=1000 skip=1 count=1 2>/dev/null
    cmp -s "$DIR/got" "$DIR/want" || fail "range 1000-1999"
    get -o "$DIR/got" -r -10 "$URL/big.bin"
    tail -c 10 "$ROOT/big.bin" | cmp -s - "$DIR/got" || fail "suffix range -10"
    [ "$(code -r 99999999999- "$URL/big.bin")" = 416 ] || fail "an unsatisfiable range"
    get -D "$DIR/h" -o /dev/null -r 5- "$URL/site.css"
    grep -qi '^Content-Range: bytes 5-6/7' "$DIR/h" || fail "Content-Range: $(cat "$DIR/h")"
    grep -q '^HTTP/1.1 206' "$DIR/h" || fail "206: $(head -1 "$DIR/h")"
    get -I "$URL/site.css" >"$DIR/h"
    grep -qi '^Content-Type: text/css' "$DIR/h" && grep -qi '^Last-Modified: ' "$DIR/h" &&
        grep -qi '^Content-Length: 7' "$DIR/h" || fail "HEAD site.css: $(cat "$DIR/h")"
    [ "$(code -z "$(date -u -R -d '+1 day')" "$URL/site.css")" = 304 ] || fail "If-Modified-Since"
    [ "$(code -z "$(date -u -R -d '-1 day')" "$URL/site.css")" = 200 ] || fail "modified since"
    [ "$(get "$URL/")" = "<p>home</p>" ] || fail "/ is index.html"
    [ "$(get "$URL/sub/")" = "in sub" ] && [ "$(get "$URL/sub")" = "in sub" ] || fail "sub/"
    [ "$(code "$URL/inside")" = 200 ] || fail "a symlink inside the root"
    for bad in /out/key /../secret/key /sub/../../secret/key /%2e%2e/secret/key \
        /sub/%2E%2E/%2e%2e/secret/key /nope /sub/nope "/big.bin%00" /..; do
        c=$(code "$URL$bad")
        [ "$c" = 404 ] || fail "$bad: $c"
        grep -q secret "$DIR/body" && fail "$bad: the secret was sent"
    done
    echo "static: 100 MB byte-exact, ranges, 304, HEAD, index, escapes refused"
    ;;
h2load)
    timeout 60 h2load --h1 -n 2000 -c 10 "$URL/" >"$DIR/out" 2>&1 || fail "h2load: $(tail -5 "$DIR/out")"
    grep -Eq '^requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored' \
        "$DIR/out" || fail "h2load: $(grep '^requests:' "$DIR/out")"
    grep -Eq '^status codes: 2000 2xx' "$DIR/out" || fail "h2load: $(grep '^status codes' "$DIR/out")"
    ;;
esac

# Orderly stop: SIGTERM, exit status 0 within 10 s.
kill -TERM "$PID"
i=0
while alive "$PID" && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
alive "$PID" && fail "weft-http did not stop within 10 s of SIGTERM"
wait "$PID"
rc=$?
PID=
[ $rc -eq 0 ] || fail "weft-http exited $rc after SIGTERM"
grep -q 'weft-http: stopped' "$DIR/server.out" || fail "no 'stopped' line"
echo "http_test $MODE: ok"
