#!/usr/bin/env bash
# bench/device_scaling.sh — how weft scales past two cores, against libuv
# (N loops, SO_REUSEPORT) and libevent (memcached shape, N workers), on a
# machine with many cores. Closed-loop 64-byte echo at 1,000 and 10,000
# connections, for each worker count: the server is pinned to CPUs
# 0..W-1 and the load generator to the remaining CPUs (at least two).
#
# usage: bench/device_scaling.sh BUNDLE_DIR OUT_DIR [WORKERS...]
#   BUNDLE_DIR holds bin/ (weft-echo, weft-load, peer-libuv, peer-libevent)
#   and lib/ (their shared libraries), made by bench/device_bundle.sh.
# Writes OUT_DIR/scaling.jsonl (one weft-load JSON per run, tagged) and
# OUT_DIR/scaling.md (a table). Bounded: about 14 s per run.
set -uo pipefail
B=$(cd "$1" && pwd)
OUT=$2
shift 2
LEVELS=(${WORKERS_LIST:-})
[ $# -gt 0 ] && LEVELS=("$@")
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(2 4 8 14)
CONNS=(${CONNS_LIST:-1000 10000})
DUR=${DURATION:-6}
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$OUT"
NCPU=$(nproc)
{
    echo "# machine"
    echo "cpus: $NCPU"
    uname -a
    grep -m1 "model name" /proc/cpuinfo || true
    echo "fd limit: $(ulimit -n)"
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
PIN=$(command -v taskset || true)
port=7400
: >"$OUT/scaling.jsonl"

start_server() { # name workers cpus
    local name=$1 w=$2 cpus=$3
    port=$((port + 1))
    case $name in
    weft) set -- "$B/bin/weft-echo" --port "$port" --workers "$w" --cpus "$cpus" -q \
        --stats-interval 1000 --idle-timeout 0 ;;
    libuv) set -- "$B/bin/peer-libuv" --port "$port" --threads "$w" ;;
    libevent) set -- "$B/bin/peer-libevent" --port "$port" --threads "$w" ;;
    esac
    if [ -n "$PIN" ] && [ "$name" != weft ]; then set -- "$PIN" -c "$cpus" "$@"; fi
    "$@" >"$OUT/server.log" 2>&1 &
    SPID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$OUT/server.log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server $name did not start:"
    cat "$OUT/server.log"
    return 1
}

stop_server() {
    kill -TERM "$SPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

for w in "${LEVELS[@]}"; do
    [ "$w" -lt "$NCPU" ] || { echo "skip W=$w: only $NCPU cpus"; continue; }
    scpus="0-$((w - 1))"
    lfirst=$w
    [ $((NCPU - w)) -lt 2 ] && lfirst=$((NCPU - 2))
    lcpus="$lfirst-$((NCPU - 1))"
    lthreads=$((NCPU - lfirst))
    for name in weft libuv libevent; do
        for c in "${CONNS[@]}"; do
            start_server "$name" "$w" "$scpus" || continue
            t0=$(cpu_ticks "$SPID")
            load=("$B/bin/weft-load" echo --port "$port" --conns "$c" --size 64 --depth 1
                --threads "$lthreads" --duration "$DUR" --warmup 1 --timeout 10 --json)
            [ -n "$PIN" ] && load=("$PIN" -c "$lcpus" "${load[@]}")
            res=$(timeout $((DUR + 40)) "${load[@]}" 2>"$OUT/load.err")
            rc=$?
            t1=$(cpu_ticks "$SPID")
            stop_server
            printf '{"server":"%s","workers":%d,"conns":%d,"rc":%d,"server_cpu_ticks":%d,"load_cpus":"%s","result":%s}\n' \
                "$name" "$w" "$c" "$rc" $((t1 - t0)) "$lcpus" "${res:-null}" >>"$OUT/scaling.jsonl"
            echo "W=$w $name conns=$c rc=$rc $(echo "$res" | grep -o '"msgs_per_s":[0-9.]*' | head -1)"
            [ $rc -ne 0 ] && tail -3 "$OUT/load.err"
        done
    done
done
echo done
