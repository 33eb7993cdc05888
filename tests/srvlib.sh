# tests/srvlib.sh — shell helpers for the tests that start servers (sourced).

# A TCP port nobody listens on now, for a listener that takes no port 0.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The port of the "listening on 127.0.0.1:PORT," banner line in FILE, within
# 10 s; prints it, or returns 1.
wait_port() {
    _i=0
    while [ $_i -lt 100 ]; do
        _p=$(sed -n 's|.*listening on 127\.0\.0\.1:\([0-9][0-9]*\),.*|\1|p' "$1" 2>/dev/null)
        [ -n "$_p" ] && { echo "$_p"; return 0; }
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}
