#!/usr/bin/env python3
"""bench/tls_idle.py — open N idle TLS connections to an HTTP server and hold them.

    bench/tls_idle.py --port P --cafile CERT [--conns N] [--open-timeout S] [--hold S]

For bench/tls.sh's idle-memory case. Each connection, one after the other:
TCP connect to 127.0.0.1:P, a full TLS handshake (Python's ssl, that is
OpenSSL; the certificate verified against --cafile for 127.0.0.1, ALPN
http/1.1, no session reused), one `GET /` and its whole answer read (the
head and Content-Length bytes of body). Then all of them are held, idle,
until SIGTERM or SIGINT, or --hold seconds have passed.

Output on stdout, one line each:
    ready {"opened": N, ...}     once every connection is open (the time to
                                 measure the server); nothing more is sent
    done {"opened": N, ...}      when it stops holding
On a failure (a connection refused, a handshake or answer that fails, more
than --open-timeout seconds to open them all) it prints
    failed {"opened": K, "error": "..."}
and exits 1. Loopback only; the soft fd limit is raised to the hard one.
Standard library only.
"""
import argparse
import json
import resource
import signal
import socket
import ssl
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: weft-bench-tls-idle\r\n\r\n"
MAX_HEAD = 16384


def read_answer(s, deadline):
    """Reads one HTTP answer (head and Content-Length body); returns its status
    code. Raises on a short, malformed or late answer."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise ValueError("answer head longer than %d bytes" % MAX_HEAD)
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the answer's head ended")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the answer's body ended")
        body += chunk
    return status


def main():
    ap = argparse.ArgumentParser(description="Open N idle TLS connections (one request each) and hold them.")
    ap.add_argument("--port", type=int, required=True, help="server port on 127.0.0.1")
    ap.add_argument("--cafile", required=True, help="PEM certificate to verify the server against")
    ap.add_argument("--conns", type=int, default=5000, help="connections to open (default 5000)")
    ap.add_argument("--open-timeout", type=float, default=120,
                    help="seconds to open them all before giving up (default 120)")
    ap.add_argument("--hold", type=float, default=120,
                    help="most seconds to hold them once open (default 120)")
    a = ap.parse_args()
    if not 0 < a.port < 65536 or a.conns < 1 or a.open_timeout <= 0 or a.hold <= 0:
        ap.error("--port 1-65535, --conns >= 1, --open-timeout and --hold > 0")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and a.conns + 32 > hard:
        ap.error("--conns %d needs more descriptors than the hard limit (%d)" % (a.conns, hard))

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    conns, versions, resumed = [], {}, 0
    t0 = time.monotonic()
    deadline = t0 + a.open_timeout

    def report(word, **extra):
        d = {"opened": len(conns), "conns": a.conns, "open_s": round(time.monotonic() - t0, 3),
             "versions": versions, "resumed": resumed}
        d.update(extra)
        print(word, json.dumps(d, sort_keys=True), flush=True)

    try:
        for _ in range(a.conns):
            if stop:
                raise InterruptedError("stopped by a signal while opening")
            if time.monotonic() > deadline:
                raise TimeoutError("not all open after %g s" % a.open_timeout)
            raw = socket.create_connection(("127.0.0.1", a.port),
                                           timeout=max(0.01, deadline - time.monotonic()))
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            conns.append(s)
            s.sendall(REQUEST)
            status = read_answer(s, deadline)
            if status != 200:
                raise ValueError("answer status %d" % status)
            v = s.version()
            versions[v] = versions.get(v, 0) + 1
            resumed += bool(s.session_reused)
    except (OSError, ValueError, InterruptedError) as e:
        report("failed", error=f"{type(e).__name__}: {e}"[:200])
        return 1

    report("ready")
    held_from = time.monotonic()
    while not stop and time.monotonic() - held_from < a.hold:
        time.sleep(0.05)
    report("done", held_s=round(time.monotonic() - held_from, 3))
    for s in conns:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
