#!/bin/sh
# tests/it_ops_cli.sh — what an operator meets first, on every program:
# --version (the one version, from CMake's project(VERSION)), --config FILE
# (the command-line names, command line over file, FILE:LINE errors),
# --print-config, and log lines with a timestamp, the program, its pid and
# the level (--log-level, --log-format).
#
# usage: it_ops_cli.sh VERSION TOOL... -- SERVER...
# TOOLs (weft-load, weft-stat) get the --version check only. Every server
# it starts listens on 127.0.0.1 port 0 and is stopped by its PID.
set -u
fail() { echo "it_ops_cli: FAIL: $*" >&2; exit 1; }
DIR=$(mktemp -d /tmp/weft-it-ops.XXXXXX) || exit 2
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$DIR"; }
trap cleanup EXIT
run() {
    timeout 10 "$@" >"$DIR/out" 2>"$DIR/err"
    rc=$?
}
# Start PROG ARGS... on a free port and wait for its banner; its pid in $a,
# its streams in $DIR/l.out and $DIR/l.err.
start_srv() {
    # Gone first: the background shell may create the files after we look.
    rm -f "$DIR/l.out" "$DIR/l.err"
    "$@" --port 0 --workers 1 --stats-socket '' >"$DIR/l.out" 2>"$DIR/l.err" &
    a=$!
    PIDS=$a
    i=0
    while [ $i -lt 100 ] && ! grep -q "listening on" "$DIR/l.out"; do sleep 0.1; i=$((i + 1)); done
}
# Stop the server start_srv started (PROG named in the failure) with SIGTERM.
stop_srv() {
    kill -TERM "$a"
    wait "$a" || fail "$(basename "$1") exited $? after SIGTERM"
    PIDS=
}
serve_once() {
    start_srv "$@"
    stop_srv "$1"
}

# A connection closed by the idle timeout: the log line names its peer
# (address and port, as the client saw its own end).
peer_in_close_log() {
    start_srv "$1" --idle-timeout 200
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\)[, ].*/\1/p' "$DIR/l.out" | head -n 1)
    [ -n "$port" ] || fail "no port in the banner: $(cat "$DIR/l.out")"
    lport=$(timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1])
s.settimeout(5)
s.recv(1)  # the idle close
' "$port") || fail "no idle close from $(basename "$1")"
    i=0
    while [ $i -lt 50 ] && ! grep -q "closing a connection from" "$DIR/l.err"; do sleep 0.1; i=$((i + 1)); done
    stop_srv "$1"
    grep -q "warn: worker 0: closing a connection from 127\.0\.0\.1:$lport: timeout$" "$DIR/l.err" ||
        fail "the idle close does not name the peer 127.0.0.1:$lport: $(cat "$DIR/l.err")"
}

VERSION=$1
shift
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    name=$(basename "$1")
    run "$1" --version
    [ $rc -eq 0 ] || fail "$name --version exited $rc"
    [ "$(cat "$DIR/out")" = "$name $VERSION" ] || fail "$name --version: '$(cat "$DIR/out")', want '$name $VERSION'"
    shift
done
[ $# -gt 0 ] && shift
for prog in "$@"; do
    name=$(basename "$prog")
    run "$prog" --version
    [ $rc -eq 0 ] || fail "$name --version exited $rc"
    grep -q "^$name [0-9.]*\( (weft $VERSION)\)\{0,1\}$" "$DIR/out" || fail "$name --version: $(cat "$DIR/out")"
    grep -q "$VERSION" "$DIR/out" || fail "$name --version does not say $VERSION: $(cat "$DIR/out")"

    # The file sets, the command line overrides; print-config shows both.
    cat >"$DIR/c.conf" <<CONF
# a comment line
  port = 0        # trailing comment
workers = 1
idle-timeout=4321
stats-socket = ''
shutdown-timeout = 1500
log-format = logfmt
CONF
    run "$prog" --config "$DIR/c.conf" --shutdown-timeout 2500 --print-config
    [ $rc -eq 0 ] || fail "$name --print-config exited $rc: $(cat "$DIR/err")"
    grep -qx "idle-timeout = 4321" "$DIR/out" || fail "$name: the file's idle-timeout not set: $(cat "$DIR/out")"
    grep -qx "shutdown-timeout = 2500" "$DIR/out" || fail "$name: the command line did not override the file"
    grep -qx "workers = 1" "$DIR/out" || fail "$name: workers from the file"
    grep -qx "stats-socket = ''" "$DIR/out" || fail "$name: an empty quoted value"
    grep -qx "log-format = logfmt" "$DIR/out" || fail "$name: log-format from the file"
    # What --print-config prints is a config file that gives the same settings.
    cp "$DIR/out" "$DIR/round.conf"
    run "$prog" --config "$DIR/round.conf" --print-config
    cmp -s "$DIR/out" "$DIR/round.conf" || fail "$name: --print-config does not read back the same"

    # Bad files: one line on stderr naming FILE:LINE, exit 2, nothing on stdout.
    printf 'workers = 1\n\nport = 70000\n' >"$DIR/b1.conf"
    printf '# ok\nport 7000\n' >"$DIR/b2.conf"
    printf 'no-such-option = 1\n' >"$DIR/b3.conf"
    printf "stats-socket = 'open\n" >"$DIR/b4.conf"
    printf 'config = other.conf\n' >"$DIR/b5.conf"
    for f in b1:3 b2:2 b3:1 b4:1 b5:1; do
        run "$prog" --config "$DIR/${f%%:*}.conf"
        [ $rc -eq 2 ] || fail "$name --config ${f%%:*}.conf exited $rc, not 2"
        [ "$(wc -l <"$DIR/err")" -eq 1 ] || fail "$name ${f%%:*}.conf: not one line: $(cat "$DIR/err")"
        grep -q "$DIR/${f%%:*}.conf:${f#*:}: " "$DIR/err" || fail "$name ${f%%:*}.conf: no FILE:LINE: $(cat "$DIR/err")"
        [ ! -s "$DIR/out" ] || fail "$name ${f%%:*}.conf printed on stdout"
    done
    run "$prog" --config "$DIR/missing.conf"
    [ $rc -eq 2 ] && grep -q "missing.conf: No such file" "$DIR/err" || fail "$name: a missing file: $rc $(cat "$DIR/err")"
    for bad in "--log-level loud" "--log-format json" "--config" "--config $DIR/c.conf --config $DIR/c.conf"; do
        # shellcheck disable=SC2086
        run "$prog" $bad
        [ $rc -eq 2 ] || fail "$name $bad exited $rc, not 2"
        [ "$(wc -l <"$DIR/err")" -eq 1 ] || fail "$name $bad: not one line: $(cat "$DIR/err")"
    done

    # Log lines: timestamp, program[pid], level; logfmt when asked.
    serve_once "$prog" -v
    grep -Eq "^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{3}Z $name\[$a\] debug: " \
        "$DIR/l.err" || fail "$name: no timestamped debug line: $(head -3 "$DIR/l.err")"
    serve_once "$prog" --log-level debug --log-format logfmt
    grep -Eq "^ts=20[0-9-]{8}T[0-9:.]{12}Z level=debug prog=$name pid=$a msg=\"" "$DIR/l.err" ||
        fail "$name: no logfmt line: $(head -3 "$DIR/l.err")"
    [ "$name" = weft-echo ] && peer_in_close_log "$prog"
    run "$prog" --port 0 --workers 1 --stats-socket '' --log-level error --print-config
    grep -qx "log-level = error" "$DIR/out" || fail "$name --log-level error"
    echo "it_ops_cli: $name: version, config file, print-config, 9 bad inputs, log lines: ok"
done
