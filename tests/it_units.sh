#!/bin/sh
# tests/it_units.sh — the systemd units in contrib/systemd pass
# `systemd-analyze verify` with no complaint at all (it exits 0 on many
# warnings, so any output fails the test), pointed at the binary just built
# and at the man page in docs/man.
#
# usage: it_units.sh SOURCE_DIR WEFT_ECHO
set -u
fail() { echo "it_units: FAIL: $*" >&2; exit 1; }
SRC=$1
ECHO=$2
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (Debian package systemd)"
DIR=$(mktemp -d /tmp/weft-it-units.XXXXXX) || exit 2
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/man/man1"
cp "$SRC/docs/man/weft-echo.1" "$DIR/man/man1/"
sed "s|/usr/local/bin/weft-echo|$ECHO|" "$SRC/contrib/systemd/weft-echo.service" >"$DIR/weft-echo.service"
cp "$SRC/contrib/systemd/weft-echo.socket" "$DIR/"
grep -q "^ExecStart=$ECHO " "$DIR/weft-echo.service" || fail "ExecStart does not run /usr/local/bin/weft-echo"
MANPATH="$DIR/man" systemd-analyze verify "$DIR/weft-echo.socket" "$DIR/weft-echo.service" \
    >"$DIR/out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "systemd-analyze verify exited $rc: $(cat "$DIR/out")"
[ ! -s "$DIR/out" ] || fail "systemd-analyze verify complained: $(cat "$DIR/out")"
for k in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes Type=notify; do
    grep -qx "$k" "$DIR/weft-echo.service" || fail "weft-echo.service lacks $k"
done
# The sample config file is one weft-echo accepts.
"$ECHO" --config "$SRC/contrib/systemd/weft-echo.conf" --print-config >"$DIR/out" 2>&1 ||
    fail "contrib/systemd/weft-echo.conf: $(cat "$DIR/out")"
echo "it_units: weft-echo.socket and weft-echo.service verify clean; weft-echo.conf parses: ok"
