#!/usr/bin/env python3
"""tests/it_tls.py — TLS in the data plane, with real clients and servers.

usage: it_tls.py [--valgrind] WEFT_ECHO WEFT_HTTP WEFT_PROXY WEFT_STAT [WEFT_LB]

With --valgrind every weft server runs under valgrind memcheck (leaks:
definite and indirect are errors) and must stop with "ERROR SUMMARY: 0
errors"; the checks that lean on timing (s_client's ticket wait, idle
counts, the ALPN and SNI rounds) are left to the plain run.

Certificates are made here with `openssl req`/`openssl x509` (ECDSA P-256,
one test CA). Every server listens on 127.0.0.1 with a port the kernel
picks and is stopped by its PID. The checks:

  echo     TLS 1.3 and 1.2 (Python's ssl, i.e. OpenSSL) echo 1 MiB byte-exact
  s_client TLS 1.3 and 1.2 handshakes and resumption (-sess_out/-sess_in),
           a resumed 1.3 connection given a new ticket (one-use tickets),
           TLS 1.1 refused with the protocol_version alert
  attacks  garbage, a truncated ClientHello, an empty and a half-sent
           stalled handshake: each closed, counted as tls_handshake, the
           stalled ones by the handshake timeout; a client open across
           them is not disturbed
  idle     50 idle TLS connections hold no ring (rings_in_use 0)
  http     weft-http: ALPN http/1.1 chosen, h2 alone refused (alert 120),
           curl --cacert, wrk over https
  sni      two certificates on one listener, chosen by the name
  reload   admin tls-reload: new connections get the new certificate, one
           opened before still echoes; a bad key is refused and the old one
           kept; SIGHUP: the successor serves the files as they are, the
           connections open before still echo, the old process drains
  outbound weft-proxy --backend-tls to `openssl s_server -rev`: verified
           (by name and by IP address), and refused with the wrong CA
           (closed as tls_verify)
  lb       weft-lb terminating TLS in front of a plain weft-http, and weft-lb
           speaking TLS to a TLS weft-http (verified; the wrong CA: 502/503)
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

VG = len(sys.argv) > 1 and sys.argv[1] == "--valgrind"
ARGS = sys.argv[2:] if VG else sys.argv[1:]
ECHO, HTTP, PROXY, STAT = ARGS[:4]
LB = ARGS[4] if len(ARGS) > 4 else None
SLOW = 12.0 if VG else 1.0  # how much longer things may take under valgrind
DIR = tempfile.mkdtemp(prefix="weft-it-tls.")
PROCS = []


SOCKS = []  # every server's admin socket and stderr file, for a failure's report


def fail(msg):
    print("it_tls: FAIL: " + msg, file=sys.stderr)
    for sock, err in SOCKS:
        try:
            r = subprocess.run([STAT, "--socket", sock, "--json"], capture_output=True, timeout=5)
            total = json.loads(r.stdout)["total"]
            print("  %s: closed_by %s" % (sock, {k: v for k, v in total["closed_by"].items() if v}),
                  file=sys.stderr)
        except Exception:  # the server is gone: its log says why
            pass
        print("  %s:\n%s" % (err, open(err).read()[-1500:]), file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def path(name):
    return os.path.join(DIR, name)


def sh(*args, inp=None, timeout=20):
    r = subprocess.run(args, input=inp, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


# ---- certificates ---------------------------------------------------------------


def make_ca(name):
    rc, out = sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", path(name + ".key"),
                 "-out", path(name + ".pem"), "-days", "2", "-subj", "/CN=" + name)
    check(rc == 0, "openssl req (CA): " + out)


def make_cert(name, ca, subj, san):
    key, csr, pem, ext = (path(name + s) for s in (".key", ".csr", ".pem", ".ext"))
    rc, out = sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", subj)
    check(rc == 0, "openssl req: " + out)
    with open(ext, "w") as f:
        f.write("subjectAltName=" + san + "\n")
    rc, out = sh("openssl", "x509", "-req", "-in", csr, "-CA", path(ca + ".pem"), "-CAkey",
                 path(ca + ".key"), "-CAcreateserial", "-out", pem, "-days", "2", "-extfile", ext)
    check(rc == 0, "openssl x509: " + out)


# ---- servers ----------------------------------------------------------------------


def start(prog, *args, env=None):
    """Start prog with args (and env added to the environment); returns
    (process, port, stderr path, admin socket)."""
    n = len(PROCS)
    out, err, sock = path("s%d.out" % n), path("s%d.err" % n), path("s%d.sock" % n)
    cmd = [prog, "--workers", "2", "--stats-interval", "100", "--stats-socket", sock] + list(args)
    if VG:
        cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
               "--error-exitcode=99", "--log-file=" + path("vg%d.log" % n)] + cmd
    p = subprocess.Popen(cmd, stdout=open(out, "w"), stderr=open(err, "w"),
                         env=dict(os.environ, **(env or {})))
    p.vglog = path("vg%d.log" % n) if VG else None
    PROCS.append(p)
    SOCKS.append((sock, err))
    for _ in range(int(100 * SLOW)):
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(out).read())
        if m:
            return p, int(m.group(1)), err, sock
        if p.poll() is not None:
            fail("%s exited %d: %s" % (prog, p.returncode, open(err).read()))
        time.sleep(0.05)
    fail(prog + " printed no listening line")


def stats(sock):
    rc, out = sh(STAT, "--socket", sock, "--json")
    check(rc == 0, "weft-stat --json: " + out)
    return json.loads(out)


def closed_by(sock, reason):
    return stats(sock)["total"]["closed_by"][reason]


def wait_for(what, fn, secs=5.0):
    """Poll fn until it is true (a bound against hangs, not a timing claim)."""
    end = time.time() + secs * SLOW
    while time.time() < end:
        if fn():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10 * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("a server did not stop on SIGTERM")
    log = open(p.vglog).read() if p.vglog else ""
    check(p.returncode == 0, "a server exited %d %s" % (p.returncode, log[-3000:]))
    check(not VG or "ERROR SUMMARY: 0 errors" in log, "valgrind: " + log[-3000:])


# ---- clients ----------------------------------------------------------------------


def client_ctx(version=None, ca="ca"):
    ctx = ssl.create_default_context(cafile=path(ca + ".pem"))
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_connect(port, name="localhost", version=None, ca="ca"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return client_ctx(version, ca).wrap_socket(raw, server_hostname=name)


def echo_exact(port, version, nbytes=(1 << 18) if VG else (1 << 20)):
    """Send nbytes and read them back, both at once, from one thread: an
    SSLSocket must not be used by two threads at a time (OpenSSL's SSL
    object is not thread-safe), so sends and receives interleave here."""
    s = tls_connect(port, version=version)
    s.setblocking(False)
    data = os.urandom(nbytes)
    got = bytearray()
    off = 0
    while len(got) < nbytes:
        r, w, _ = select.select([s], [s] if off < nbytes else [], [], 20 * SLOW)
        check(r or w, "TLS echo stalled at %d of %d bytes" % (len(got), nbytes))
        if w and off < nbytes:
            try:
                off += s.send(data[off:off + 16384])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
        while True:
            try:
                chunk = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            check(chunk, "TLS %s echo: EOF after %d of %d bytes" % (s.version(), len(got), nbytes))
            got += chunk
    check(bytes(got) == data, "TLS %s echo: the bytes differ" % s.version())
    s.close()


def s_client(port, *args, line=b"ping\n"):
    """openssl s_client: send line, keep stdin open until the echo of line
    (or, with no line, the end of the handshake) is in its output, so the
    session tickets have arrived too, then close stdin. Its whole output."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                          "-CAfile", path("ca.pem")] + list(args),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = bytearray()

    def pump():
        while True:
            chunk = p.stdout.read1(4096)
            if not chunk:
                return
            out.extend(chunk)

    def seen():  # the echo comes after the session block's last "---"
        if line.strip():
            return line.strip() in bytes(out).split(b"---")[-1]
        return b"Verify return code" in out

    reader = threading.Thread(target=pump)
    reader.start()
    p.stdin.write(line)
    p.stdin.flush()
    end = time.time() + 20 * SLOW
    while time.time() < end and p.poll() is None and not seen():
        time.sleep(0.02)
    time.sleep(0.05)  # the rest of its lines after the one seen
    p.stdin.close()
    p.wait(10 * SLOW)
    reader.join()
    return out.decode(errors="replace")


def closed_by_server(s, secs=5.0):
    """The server closes s within secs (EOF or reset): True."""
    s.settimeout(secs)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def client_hello():
    """The first flight of a real TLS client, from a memory BIO."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def peer_subject(s):
    return dict(x[0] for x in s.getpeercert()["subject"])


# ---- the checks ----------------------------------------------------------------------


def check_echo_and_attacks():
    p, port, _, sock = start(ECHO, "--port", "0", "--tls-cert", path("srv.pem"), "--tls-key",
                             path("srv.key"), "--tls-handshake-timeout", str(int(3000 * SLOW)))
    echo_exact(port, ssl.TLSVersion.TLSv1_3)
    echo_exact(port, ssl.TLSVersion.TLSv1_2)

    for ver in () if VG else ("-tls1_3", "-tls1_2"):
        name = "TLSv1.3" if ver == "-tls1_3" else "TLSv1.2"
        out = s_client(port, ver, "-sess_out", path("sess" + ver))
        check("New, " + name in out and "Verify return code: 0 (ok)" in out and "ping" in out,
              "s_client %s: %s" % (ver, out[-600:]))
        out = s_client(port, ver, "-sess_in", path("sess" + ver), "-msg", line=b"again\n")
        check("Reused, " + name in out and "again" in out,
              "s_client %s resumption: %s" % (ver, out[-600:]))
        # A 1.3 ticket is used once (RFC 8446, C.4): a resumed 1.3
        # connection gets a new one, or the client's next is a full handshake.
        check(ver != "-tls1_3" or "NewSessionTicket" in out,
              "s_client -tls1_3: no new ticket after a resumption: %s" % out[-600:])
    # The snapshot is published every stats interval: wait for the counts.
    want = (2, 0) if VG else (6, 2)
    wait_for("the handshakes counted", lambda: (lambda t: (t["tls_handshakes"], t["tls_resumed"])
                                               == want)(stats(sock)["total"]))

    # A client in the middle of its work sees nothing of the attacks below.
    good = tls_connect(port)
    good.sendall(b"before")
    check(good.recv(64) == b"before", "the good connection's first echo")

    out = s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    check("alert protocol version" in out, "TLS 1.1 was not refused: " + out[-600:])
    wait_for("the TLS 1.1 close counted", lambda: closed_by(sock, "tls_handshake") == 1)

    # Garbage, and a ClientHello cut short by the client's close.
    for i, junk in enumerate((b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", client_hello()[:40])):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(junk)
        if i == 1:
            s.shutdown(socket.SHUT_WR)
        check(closed_by_server(s), "attack %d: the server kept the connection" % i)
        s.close()
    wait_for("garbage and truncated closes", lambda: closed_by(sock, "tls_handshake") == 3)

    # Stalled: nothing at all, and half a ClientHello: the handshake timeout.
    stalled = []
    for junk in (b"", client_hello()[:60]):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if junk:
            s.sendall(junk)
        stalled.append(s)
    for s in stalled:
        check(closed_by_server(s, 10 * SLOW), "a stalled handshake was not closed")
        s.close()
    wait_for("stalled closes", lambda: closed_by(sock, "tls_handshake") == 5)
    good.sendall(b"after the attacks")
    check(good.recv(64) == b"after the attacks", "the good connection after the attacks")
    good.close()

    if VG:
        stop(p)
        return
    # Idle TLS connections hold no ring: plaintext and ciphertext rings are
    # borrowed only while they hold bytes.
    idle = []
    for _ in range(50):
        s = tls_connect(port)
        s.sendall(b"x")
        check(s.recv(1) == b"x", "idle connection echo")
        idle.append(s)
    wait_for("50 open", lambda: stats(sock)["listeners"][0]["open"] == 50)
    time.sleep(0.3)  # a few stats intervals: a sample after the last echo
    st = stats(sock)
    check(st["listeners"][0]["open"] == 50, "idle connections closed")
    check(st["total"]["rings_in_use"] == 0,
          "50 idle TLS connections hold %d rings" % st["total"]["rings_in_use"])
    for s in idle:
        s.close()
    stop(p)


def check_http():
    p, port, _, sock = start(HTTP, "--port", "0", "--tls-cert", path("srv.pem"), "--tls-key",
                             path("srv.key"))
    out = s_client(port, "-alpn", "h2,http/1.1", line=b"")
    check("ALPN protocol: http/1.1" in out, "ALPN: " + out[-600:])
    out = s_client(port, "-alpn", "h2", line=b"")
    check("no application protocol" in out, "ALPN h2 alone was not refused: " + out[-600:])
    # Connection: close: the answer, then close_notify (a ragged EOF would
    # raise SSLEOFError here, with suppress_ragged_eofs off).
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = client_ctx().wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except ssl.SSLEOFError:
        fail("weft-http closed without close_notify")
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"hello, world\n"), "answer %r" % got)
    s.close()
    if shutil.which("curl"):
        rc, out = sh("curl", "-sS", "--cacert", path("ca.pem"), "-o", "/dev/null", "-w",
                     "%{http_code}", "https://localhost:%d/" % port)
        check(rc == 0 and out.strip() == "200", "curl --cacert: %d %s" % (rc, out))
    if shutil.which("wrk"):
        rc, out = sh("wrk", "-t1", "-c8", "-d1s", "https://127.0.0.1:%d/" % port, timeout=30)
        m = re.search(r"(\d+) requests in", out)
        check(rc == 0 and m and int(m.group(1)) > 0, "wrk over https: " + out)
        check("Non-2xx" not in out and "Socket errors" not in out, "wrk errors: " + out)
    stop(p)


def check_sni():
    spec = "127.0.0.1:0,tls-cert=%s,tls-key=%s,tls-cert=%s,tls-key=%s" % (
        path("srv.pem"), path("srv.key"), path("other.pem"), path("other.key"))
    p, port, _, _ = start(ECHO, "--listen", spec)
    for name, cn in (("localhost", "localhost"), ("other.test", "other.test")):
        s = tls_connect(port, name=name)
        check(peer_subject(s).get("commonName") == cn, "SNI %s: got %s" % (name, peer_subject(s)))
        s.close()
    stop(p)


def admin(sock, command):
    a = socket.socket(socket.AF_UNIX)
    a.settimeout(10 * SLOW)
    a.connect(sock)
    a.sendall(command + b"\nquit\n")
    answer = b""
    while True:
        chunk = a.recv(4096)
        if not chunk:
            break
        answer += chunk
    a.close()
    return answer


def tls_reload(sock, err, count, what):
    """The admin command tls-reload; waits for the count-th outcome line."""
    answer = admin(sock, b"tls-reload")
    check(answer.startswith(b"ok: TLS reload requested"), "tls-reload answered %r" % answer)
    wait_for(what, lambda: open(err).read().count(what) == count)


def check_reload():
    cur_pem, cur_key = path("cur.pem"), path("cur.key")
    shutil.copy(path("srv.pem"), cur_pem)
    shutil.copy(path("srv.key"), cur_key)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(path("notify"))
    notify.settimeout(30 * SLOW)
    p, port, err, sock = start(ECHO, "--port", "0", "--tls-cert", cur_pem, "--tls-key", cur_key,
                               "--drain-timeout", "3000", env={"NOTIFY_SOCKET": path("notify")})
    before = tls_connect(port)
    check(peer_subject(before).get("organizationName") is None, "first certificate")
    # In this process (admin tls-reload): new connections get the new
    # certificate, an open one keeps going.
    shutil.copy(path("rot.pem"), cur_pem)
    shutil.copy(path("rot.key"), cur_key)
    tls_reload(sock, err, 1, "TLS certificates reloaded")
    after = tls_connect(port)
    check(peer_subject(after).get("organizationName") == "rotated",
          "after tls-reload: %s" % peer_subject(after))
    for c in (before, after):
        c.sendall(b"still here")
        check(c.recv(64) == b"still here", "a connection across the reload")
    # A key that does not match: refused, the running certificate stays.
    shutil.copy(path("other.key"), cur_key)
    tls_reload(sock, err, 1, "TLS reload failed")
    c = tls_connect(port)
    check(peer_subject(c).get("organizationName") == "rotated", "after a bad reload")
    c.close()
    shutil.copy(path("srv.pem"), cur_pem)
    shutil.copy(path("srv.key"), cur_key)
    if VG:  # a successor would be started from valgrind's own binary
        for c in (before, after):
            c.close()
        stop(p)
        return
    # SIGHUP (docs/operations.md): a successor with the files as they are
    # now takes the listener; the connections open stay with this process
    # until they end.
    p.send_signal(signal.SIGHUP)
    succ = None
    while succ is None:
        msg = notify.recv(4096).decode()
        m = re.search(r"MAINPID=(\d+)", msg)
        if m and int(m.group(1)) != p.pid:
            succ = int(m.group(1))
    try:
        new = tls_connect(port)
        check(peer_subject(new).get("organizationName") is None, "the successor's certificate")
        for c in (before, after, new):
            c.sendall(b"after SIGHUP")
            check(c.recv(64) == b"after SIGHUP", "a connection across SIGHUP")
            c.close()
        p.wait(30 * SLOW)  # drained and gone
        check(p.returncode == 0, "the old process exited %d" % p.returncode)
    finally:
        os.kill(succ, signal.SIGTERM)
        for _ in range(int(200 * SLOW)):
            try:
                os.kill(succ, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(succ, signal.SIGKILL)
            fail("the successor did not stop on SIGTERM")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check_outbound():
    bport = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % bport, "-cert",
                            path("srv.pem"), "-key", path("srv.key"), "-rev"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    PROCS.append(srv)
    wait_for("s_server", lambda: socket.socket().connect_ex(("127.0.0.1", bport)) == 0)
    backend = "127.0.0.1:%d" % bport
    for ca, sni, ok in (("ca", "localhost", True), ("ca", None, True), ("wrongca", None, False)):
        args = ["--port", "0", "--backend", backend, "--backend-tls", "--backend-ca",
                path(ca + ".pem")]
        if sni:
            args += ["--backend-sni", sni]
        p, port, _, sock = start(PROXY, *args)
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"hello backend\n")
        if ok:
            got = b""
            while not got.endswith(b"\n"):
                chunk = c.recv(256)
                check(chunk, "the proxy closed (ca %s, sni %s)" % (ca, sni))
                got += chunk
            check(got.strip() == b"dnekcab olleh", "s_server -rev answered %r" % got)
        else:
            check(closed_by_server(c), "a backend that does not verify was kept")
            wait_for("tls_verify counted", lambda: closed_by(sock, "tls_verify") == 1)
        c.close()
        stop(p)
    srv.kill()


def https_get(port, name="localhost", path="/"):
    """GET path over TLS (verified against the test CA): (status, body)."""
    s = tls_connect(port, name=name)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path.encode(),
                                                                                name.encode()))
    return read_answer(s)


def http_get(port, path="/"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    return read_answer(s)


def read_answer(s):
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        got += chunk
    s.close()
    m = re.match(rb"HTTP/1\.1 (\d+)", got)
    return (int(m.group(1)) if m else 0), got.split(b"\r\n\r\n", 1)[-1]


def check_lb():
    plain, pport, _, _ = start(HTTP, "--port", "0")
    tls_be, tport, _, _ = start(HTTP, "--port", "0", "--tls-cert", path("srv.pem"), "--tls-key",
                                path("srv.key"))
    # Terminating TLS in front of a plain backend.
    spec = "127.0.0.1:0,tls-cert=%s,tls-key=%s,alpn=http/1.1" % (path("srv.pem"), path("srv.key"))
    lb, lport, _, _ = start(LB, "--listen", spec, "--backend", "127.0.0.1:%d" % pport)
    st, body = https_get(lport)
    check(st == 200 and body == b"hello, world\n", "weft-lb terminating TLS: %d %r" % (st, body))
    stop(lb)
    # TLS to the backend: verified by IP address (the certificate carries
    # 127.0.0.1), by name with sni=, and refused with the wrong CA.
    for opts, ok in ((",tls,verify=%s" % path("ca.pem"), True),
                     (",tls,sni=localhost,verify=%s" % path("ca.pem"), True),
                     (",tls,verify=%s" % path("wrongca.pem"), False)):
        lb, lport, _, sock = start(LB, "--port", "0", "--retries", "0", "--backend",
                                   "127.0.0.1:%d%s" % (tport, opts))
        st, body = http_get(lport)
        if ok:
            check(st == 200 and body == b"hello, world\n", "weft-lb to a TLS backend (%s): %d %r"
                  % (opts, st, body))
        else:
            check(st in (502, 503), "weft-lb to a backend that does not verify: %d" % st)
            wait_for("tls_verify counted", lambda: closed_by(sock, "tls_verify") >= 1)
        stop(lb)
    stop(plain)
    stop(tls_be)


def main():
    make_ca("ca")
    make_ca("wrongca")
    make_cert("srv", "ca", "/CN=localhost", "DNS:localhost,IP:127.0.0.1")
    make_cert("other", "ca", "/CN=other.test", "DNS:other.test")
    make_cert("rot", "ca", "/O=rotated/CN=localhost", "DNS:localhost,IP:127.0.0.1")
    check_echo_and_attacks()
    if not VG:
        check_http()
        check_sni()
    check_reload()
    check_outbound()
    if LB and not VG:
        check_lb()
    print("it_tls: ok")


try:
    main()
finally:
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(DIR, ignore_errors=True)
