#!/bin/sh
# bench/reload.sh — issue 18's reload acceptance run: while weft-load keeps
# CONNS long-lived echo connections busy and a churn load opens and closes
# connections, send RELOADS SIGHUPs to the current weft-echo, one every
# GAP seconds; then print weft-load's verdicts (failed connects, mismatches)
# and which weft-echo processes are left (the newest only).
#
# usage: bench/reload.sh [BUILD_DIR] [CONNS] [RELOADS] [GAP]   (build 1000 5 3.5)
set -eu
B=${1:-build}/tools
CONNS=${2:-1000} RELOADS=${3:-5} GAP=${4:-3.5}
DUR=$(python3 -c "print(int($RELOADS * $GAP + 5))")
D=$(mktemp -d /tmp/weft-reload.XXXXXX)
"$B/weft-echo" --port 0 --workers 2 --stats-socket "$D/admin.sock" --stats-interval 200 \
    --drain-timeout 60000 >"$D/out" 2>"$D/err" &
cur=$!
trap 'kill $cur 2>/dev/null; rm -rf "$D"' EXIT
sleep 0.5
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$D/out" | head -1)
"$B/weft-load" echo --port "$PORT" --conns "$CONNS" --duration "$DUR" --json >"$D/echo.json" 2>"$D/echo.err" &
l1=$!
"$B/weft-load" churn --port "$PORT" --conns 8 --duration "$DUR" --json >"$D/churn.json" 2>"$D/churn.err" &
l2=$!
sleep 1
t0=$(date +%s.%N)
i=0
while [ $i -lt "$RELOADS" ]; do
    kill -HUP "$cur"
    sleep "$GAP"
    next=$(grep -o "successor pid [0-9]*" "$D/err" | tail -1 | awk '{print $3}')
    [ -n "$next" ] && [ "$next" != "$cur" ] || { echo "reload $i failed: $(tail -3 "$D/err")"; exit 1; }
    cur=$next
    i=$((i + 1))
done
t1=$(date +%s.%N)
wait $l1 || true
wait $l2 || true
python3 - "$D" "$RELOADS" "$t0" "$t1" <<'PY'
import json, sys
d, n, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
print("%s reloads in %.1f s" % (n, t1 - t0))
for m in ("echo", "churn"):
    r = json.load(open("%s/%s.json" % (d, m)))
    c, e = r["connections"], r["errors"]
    print("%-5s connections established %d, failed %d; messages verified %d; mismatches %d, "
          "resets %d, timeouts %d, peer closed %d; ok %s"
          % (m, c["established"], c["failed"], r["messages_verified"], e["mismatches"],
             e["resets"], e["timeouts"], e["peer_closed"], r["ok"]))
PY
sleep 1
echo "weft-echo processes left: $(pgrep -f "^$B/weft-echo .*$D/admin.sock" | tr '\n' ' ')(newest: $cur)"
printf 'stats\nquit\n' | python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect('$D/admin.sock'); s.sendall(sys.stdin.read().encode())
out = b''
while True:
    b = s.recv(4096)
    if not b: break
    out += b
print('admin socket: ' + [l for l in out.decode().splitlines() if l.startswith('uptime')][0])"
