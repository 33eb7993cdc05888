#!/bin/sh
# tests/it_cli.sh — every server program's command line, through weft_main
# (core/program.c): help, version, usage errors, a port in use, the I/O
# backend. Each program gets the same checks.
#
# usage: it_cli.sh WEFT_STAT PROGRAM...
# Every server it starts listens on 127.0.0.1 and is stopped by its PID.
set -u
fail() { echo "it_cli: FAIL: $*" >&2; exit 1; }
DIR=$(mktemp -d /tmp/weft-it-cli.XXXXXX) || exit 2
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$DIR"; }
trap cleanup EXIT

# Run "$@" with a time limit; status in $rc, streams in $DIR/out, $DIR/err.
run() {
    timeout 10 "$@" >"$DIR/out" 2>"$DIR/err"
    rc=$?
}

# Wait for the "listening on 127.0.0.1:PORT," line of a server's stdout file.
wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        p=$(sed -n 's|.*listening on 127\.0\.0\.1:\([0-9][0-9]*\),.*|\1|p' "$1")
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

STAT=$1
shift
for prog in "$@"; do
    name=$(basename "$prog")
    # Fresh output files: a server's child creates them after we look.
    rm -f "$DIR/a.out" "$DIR/a.err" "$DIR/p.out"

    run "$prog" --help
    [ $rc -eq 0 ] || fail "$name --help exited $rc"
    for opt in bind port workers cpus no-pin max-conns ring-size read-budget output-high-wm \
        output-low-wm input-cap output-cap pool-max sndbuf idle-timeout input-stall \
        output-stall close-linger stats-interval stats-socket metrics-port io quiet version; do
        grep -q -- "--$opt" "$DIR/out" || fail "$name --help does not list --$opt"
    done
    grep -q "^usage: $name " "$DIR/out" || fail "$name --help has no usage line"
    grep -q "(default " "$DIR/out" || fail "$name --help shows no defaults"

    run "$prog" --version
    [ $rc -eq 0 ] || fail "$name --version exited $rc"
    grep -q "^$name [0-9]" "$DIR/out" || fail "$name --version printed: $(cat "$DIR/out")"

    # Usage errors: exit 2, one line that names the option and the rule.
    for bad in "--no-such-option" "--port 70000" "--cpus 0,0" "--cpus 1023" "--io kqueue" "--pin core" \
        "--ring-size 1000" "extra-argument"; do
        # shellcheck disable=SC2086
        run "$prog" $bad --port 0 --stats-socket ''
        [ $rc -eq 2 ] || fail "$name $bad exited $rc, not 2"
        [ -s "$DIR/err" ] || fail "$name $bad said nothing on stderr"
        [ ! -s "$DIR/out" ] || fail "$name $bad printed on stdout: $(cat "$DIR/out")"
    done
    run "$prog" --port 70000
    grep -q "expected a number from 0 to 65535" "$DIR/err" || fail "$name --port 70000: $(cat "$DIR/err")"
    run "$prog" --cpus 0,0
    grep -q "each CPU once" "$DIR/err" || fail "$name --cpus 0,0: $(cat "$DIR/err")"
    run "$prog" --cpus 1023
    grep -q "affinity mask" "$DIR/err" || fail "$name --cpus 1023: $(cat "$DIR/err")"
    WEFT_IO=nope timeout 10 "$prog" --port 0 --stats-socket '' >"$DIR/out" 2>"$DIR/err"
    [ $? -eq 2 ] && grep -q WEFT_IO "$DIR/err" || fail "$name with WEFT_IO=nope: $(cat "$DIR/err")"

    # A server on a free port, on the poll backend; its banner says so.
    "$prog" --port 0 --workers 1 --io poll --stats-socket "$DIR/s.sock" --stats-interval 100 \
        >"$DIR/a.out" 2>"$DIR/a.err" &
    a=$!
    PIDS="$PIDS $a"
    port=$(wait_port "$DIR/a.out") || fail "$name did not report its port: $(cat "$DIR/a.out" "$DIR/a.err")"
    grep -q "1 worker (io poll)" "$DIR/a.out" || fail "$name banner: $(head -1 "$DIR/a.out")"
    # ... and so do its statistics.
    run "$STAT" --socket "$DIR/s.sock" --once
    grep -q " io poll " "$DIR/out" || fail "weft-stat of $name: $(head -1 "$DIR/out") $(cat "$DIR/err")"

    # The same port again: exit 1 with exactly one line, that says why.
    run "$prog" --port "$port" --workers 1 --stats-socket ''
    [ $rc -eq 1 ] || fail "$name on a port in use exited $rc"
    [ "$(wc -l <"$DIR/err")" -eq 1 ] || fail "$name on a port in use said: $(cat "$DIR/err")"
    grep -q "Address already in use" "$DIR/err" || fail "$name on a port in use: $(cat "$DIR/err")"

    kill -TERM "$a"
    wait "$a"
    st=$?
    [ $st -eq 0 ] || fail "$name exited $st after SIGTERM"
    grep -q "^$name: stopped: " "$DIR/a.out" || fail "$name printed no stopped line"
    PIDS=
    # Placement: by node unless CPUs are named; --cpus pins, --pin overrides.
    "$prog" --port 0 --workers 1 --cpus 0 --stats-socket '' >"$DIR/p.out" 2>&1 &
    pp=$!
    PIDS="$pp"
    wait_port "$DIR/p.out" >/dev/null || fail "$name --cpus 0 did not start"
    grep -q "worker 0 on cpu 0" "$DIR/p.out" || fail "$name --cpus 0: $(cat "$DIR/p.out")"
    one=$(grep -l '^Cpus_allowed_list:[[:space:]]*0$' /proc/$pp/task/*/status | wc -l)
    [ "$one" -eq 1 ] || fail "$name --cpus 0: $one threads on CPU 0 alone, want the worker"
    kill -TERM "$pp"
    wait "$pp"
    grep -q "worker 0 on cpu" "$DIR/a.out" && fail "$name pinned a worker to one CPU by default"
    PIDS=
    echo "it_cli: $name: help, version, 8 usage errors, port in use, --io poll, placement, SIGTERM: ok"
done
