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
# The acceptance command: systemd-socket-activate passes the socket, weft-echo serves it.
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate not found (Debian package systemd)"
. "$(dirname "$0")/srvlib.sh"
port=$(free_port)
systemd-socket-activate -l "127.0.0.1:$port" "$ECHO" --workers 1 --stats-socket '' \
    >"$DIR/sa.out" 2>&1 &
sa=$!
trap 'kill $sa 2>/dev/null; rm -rf "$DIR"' EXIT
got=$(python3 - "$port" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
s.sendall(b"activated\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(100)
    if not chunk:
        break
    data += chunk
print(data.decode().strip())
PY
)
[ "$got" = activated ] || fail "systemd-socket-activate weft-echo echoed '$got': $(cat "$DIR/sa.out")"
grep -q "listening on 127.0.0.1:$port," "$DIR/sa.out" || fail "weft-echo did not serve the passed socket: $(cat "$DIR/sa.out")"
kill -TERM $sa
wait $sa
grep -q "^weft-echo: stopped: 1 connections accepted" "$DIR/sa.out" || fail "after SIGTERM: $(cat "$DIR/sa.out")"
echo "it_units: weft-echo.socket and weft-echo.service verify clean; weft-echo.conf parses; systemd-socket-activate -l 127.0.0.1:$port weft-echo serves: ok"
