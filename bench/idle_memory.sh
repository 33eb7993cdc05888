#!/usr/bin/env bash
# bench/idle_memory.sh — user-space memory per idle connection.
#
# Starts a server, reads its RSS with no connection, opens N connections
# (each proven to echo once), reads the RSS again, and reports
# (RSS_with_N - RSS_idle) / N. Kernel socket memory is not in RSS and is
# not counted. usage: bench/idle_memory.sh [N] [-- server command...]
# Default server: weft-echo from the bench build with 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
BUILD=${BUILD:-build-bench}
PORT=${PORT:-7311}
cmake -S . -B "$BUILD" -DWEFT_BUILD_BENCH=ON -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target weft-echo idle_conns >/dev/null
shift || true
if [ "${1:-}" = "--" ]; then shift; SERVER=("$@"); else
    SERVER=("$BUILD/tools/weft-echo" --port "$PORT" --workers 2 -q); fi
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
"${SERVER[@]}" >/dev/null &
SPID=$!
trap 'kill $SPID 2>/dev/null || true' EXIT
sleep 0.5
R0=$(rss $SPID)
"$BUILD/bench/idle_conns" 127.0.0.1 "$PORT" "$N" 30 > /tmp/idle_conns.$$ &
CPID=$!
for _ in $(seq 300); do grep -q ready /tmp/idle_conns.$$ 2>/dev/null && break; sleep 0.1; done
grep -q ready /tmp/idle_conns.$$ || { echo "clients did not get ready"; exit 1; }
sleep 1
R1=$(rss $SPID)
FDS=$(ls /proc/$SPID/fd | wc -l)
kill $CPID; wait $CPID || true
rm -f /tmp/idle_conns.$$
echo "server: ${SERVER[*]}"
echo "connections: $N (server fds open: $FDS)"
echo "rss_idle_kib: $R0"
echo "rss_with_conns_kib: $R1"
awk -v a="$R0" -v b="$R1" -v n="$N" 'BEGIN { printf "bytes_per_idle_conn: %.1f\n", (b - a) * 1024 / n }'
