#!/bin/sh
# chat_help.sh — weft-chat's command line: what --help says, and that a bad
# command line is refused with a message and a non-zero exit.
#
#   --help / -h   exit 0, nothing on stderr, a usage line, every chat
#                 command of the protocol, the chat's own options with
#                 their defaults (--max-line 4096, --output-cap 262144,
#                 --sndbuf 0) and the server options it shares with
#                 weft-echo (--port with the chat's default 7070, --workers)
#   --version     exit 0, "weft-chat VERSION"
#   --bogus, --max-line 10, --port 70000, an extra argument, --db-sync
#                 sometimes, --history 501, a database that cannot be
#                 opened: exit non-zero, nothing on stdout, stderr naming
#                 what is wrong
#
# usage: chat_help.sh PATH-TO-WEFT-CHAT
CHAT=$1
DIR=$(mktemp -d "${TMPDIR:-/tmp}/weft-chat-help.XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT
fail() {
    echo "FAIL: $*"
    for f in out err; do
        [ -s "$DIR/$f" ] && { echo "---- std$f"; cat "$DIR/$f"; }
    done
    exit 1
}

# run ARGS...: weft-chat with ARGS (bounded: it must not start serving); RC.
run() {
    timeout 10 "$CHAT" "$@" >"$DIR/out" 2>"$DIR/err"
    RC=$?
}

# has PATTERN: stdout has a line matching the extended regex PATTERN.
has() { grep -Eq -- "$1" "$DIR/out" || fail "--help lacks /$1/"; }

for h in --help -h; do
    run $h
    [ "$RC" -eq 0 ] || fail "$h: exit $RC, want 0"
    [ -s "$DIR/err" ] && fail "$h: wrote to stderr"
    [ "$(head -n 1 "$DIR/out")" = "usage: weft-chat [options]" ] || fail "$h: first line"
    for c in '/register NAME PASSWORD' '/login NAME PASSWORD' '/nick NAME' '/join ROOM' \
        '/leave' '/who' '/msg NAME TEXT' '/history \[ROOM\] \[N\]' '/quit'; do
        has "^  $c "
    done
    has '^  --max-line BYTES .*\(default 4096\)'
    has '^  --db PATH .*'
    has '\(default weft-chat.db\)'
    has '^  --db-sync MODE '
    has '^  --history N .*\(default 50'
    has '^  --allow-guests '
    has '^  --login-fail-limit N '
    has '^  --output-cap BYTES '
    has '\(default 262144\)'
    has '^  --sndbuf BYTES .*\(default 0'
    has '^  --port N .*\(default 7070\)'
    has '^  --workers N '
    has '^  -h, --help '
done

run --version
[ "$RC" -eq 0 ] || fail "--version: exit $RC"
grep -Eqx 'weft-chat [0-9]+\.[0-9]+\.[0-9]+' "$DIR/out" || fail "--version: $(cat "$DIR/out")"

# refused ARGS... -- PATTERN: a non-zero exit, nothing on stdout, PATTERN on stderr.
refused() {
    args=
    while [ "$1" != -- ]; do
        args="$args $1"
        shift
    done
    # shellcheck disable=SC2086
    run $args
    [ "$RC" -ne 0 ] || fail "'$args': exit 0, want non-zero"
    [ "$RC" -ne 124 ] || fail "'$args': still running after 10 s (it started serving)"
    [ -s "$DIR/out" ] && fail "'$args': wrote to stdout"
    grep -Eq -- "$2" "$DIR/err" || fail "'$args': stderr lacks /$2/"
    echo "refused:$args (exit $RC)"
}
refused --bogus -- "unrecognized option '--bogus'"
refused --max-line 10 -- "--max-line '10'.*64"
refused --port 70000 -- "--port '70000'.*65535"
refused --port 0 extra -- "unexpected argument 'extra'"
refused --db-sync sometimes -- "--db-sync 'sometimes'.*normal or full"
refused --history 501 -- "--history '501'.*500"
refused --port 0 --db "$DIR/no/such/dir/chat.db" -- "cannot open the database"
echo PASS
