#!/bin/sh
# tests/st_status_page.sh — the built-in status page (GET / on the metrics
# port) in headless Chromium: it loads with no console message at all (no
# script error, no CSP violation, no failed load), shows the server's live
# numbers (the accepted count the JSON endpoint reports, one row per worker,
# the connections by state: 5 held idle, the latency histogram) and updates
# itself (several samples rendered).
#
# usage: st_status_page.sh WEFT_ECHO WEFT_LOAD
set -u
fail() { echo "st_status_page: FAIL: $*" >&2; exit 1; }
CHROME=$(command -v chromium || command -v chromium-browser) || fail "chromium not found (Debian package chromium)"
DIR=$(mktemp -d /tmp/weft-st-page.XXXXXX) || exit 2
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$DIR"; }
trap cleanup EXIT
ECHO=$1 LOAD=$2
. "$(dirname "$0")/srvlib.sh"
mport=$(free_port)
"$ECHO" --port 0 --workers 2 --stats-socket '' --stats-interval 200 --metrics-port "$mport" \
    >"$DIR/out" 2>"$DIR/err" &
PIDS=$!
port=$(wait_port "$DIR/out") || fail "weft-echo did not start: $(cat "$DIR/out" "$DIR/err")"
"$LOAD" echo --port "$port" --conns 7 --duration 1 >/dev/null 2>&1 || fail "weft-load failed"
# Five idle connections, held while the page loads.
python3 -c '
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(5)]
time.sleep(60)
' "$port" &
PIDS="$PIDS $!"
# Settled (bounded): all 12 accepted and the 5 held ones counted idle.
i=0
while :; do
    curl -sf "http://127.0.0.1:$mport/stats.json" -o "$DIR/before.json" || fail "GET /stats.json"
    python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["total"]; sys.exit(not (t["accepted"] == 12 and t["conns_by_state"]["idle"] == 5))' \
        "$DIR/before.json" && break
    i=$((i + 1))
    [ $i -lt 100 ] || fail "12 accepted and 5 idle never showed: $(cat "$DIR/before.json")"
    sleep 0.1
done
acc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["accepted"])' "$DIR/before.json")
seq0=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seq"])' "$DIR/before.json")
curl -sf -D "$DIR/head" "http://127.0.0.1:$mport/" -o /dev/null || fail "GET /"
grep -qi '^content-type: text/html' "$DIR/head" || fail "GET /: $(cat "$DIR/head")"
grep -qi "^content-security-policy: default-src 'none'" "$DIR/head" || fail "GET /: no CSP"

HOME="$DIR" timeout 90 "$CHROME" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$DIR/profile" --enable-logging=stderr --v=0 \
    --virtual-time-budget=4000 --dump-dom "http://127.0.0.1:$mport/" >"$DIR/dom.html" 2>"$DIR/chrome.err" ||
    fail "chromium exited $?: $(tail -5 "$DIR/chrome.err")"
if grep -q 'CONSOLE' "$DIR/chrome.err"; then
    fail "console messages: $(grep CONSOLE "$DIR/chrome.err")"
fi
python3 - "$DIR/dom.html" "$acc" "$seq0" <<'PY' || exit 1
import re, sys
dom, acc, seq0 = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3])
def fail(msg):
    print("st_status_page: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)
def cell(i):
    m = re.search(r'id="%s"[^>]*>([^<]*)<' % i, dom)
    return m.group(1) if m else None
if cell("state") != "live":
    fail("state is %r, not live" % cell("state"))
if cell("accepted") is None or int(cell("accepted").replace(",", "")) != acc:
    fail("the page shows %r accepted, the JSON %d" % (cell("accepted"), acc))
seq = int((cell("seq") or "0").replace(",", ""))
if seq <= seq0:
    fail("the page shows sample %d, not newer than %d" % (seq, seq0))
body = lambda t: re.search(r'<table[^>]*id="%s".*?<tbody>(.*?)</tbody>' % t, dom, re.S).group(1)
if body("workers").count("<tr>") != 2:
    fail("want 2 worker rows: %s" % body("workers"))
states = re.search(r'<tr>(?:<td[^>]*>)all</td>(.*?)</tr>', body("states"))
if body("states").count("<tr>") != 3 or not states:
    fail("want 2 worker rows and 'all' in the states table: %s" % body("states"))
idle = re.findall(r'<td[^>]*>([^<]*)</td>', states.group(1))
if not idle or idle[0] != "5":
    fail("the states table shows %r idle, not the 5 held: %s" % (idle[:1], body("states")))
if body("hist").count("<tr>") != 23:
    fail("want 23 histogram rows")
pts = re.search(r'id="spark_acc"[^>]*points="([^"]*)"', dom) or re.search(r'points="([^"]*)"[^>]*id="spark_acc"', dom)
if not pts or len(pts.group(1).split()) < 2:
    fail("the rate history has fewer than 2 samples: the page did not update")
print("st_status_page: live, %d accepted as the JSON says, sample %d > %d, 2 workers, 5 idle by state, 23 buckets, %d samples drawn, no console message: ok"
      % (acc, seq, seq0, len(pts.group(1).split())))
PY
srv=${PIDS%% *}
kill "${PIDS#* }" 2>/dev/null
kill -TERM "$srv"
wait "$srv" || fail "weft-echo exited $? after SIGTERM"
PIDS=
