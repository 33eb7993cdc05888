#!/usr/bin/env python3
"""tests/it_tls.py — TLS in the data plane, with real clients and servers.

usage: it_tls.py [--valgrind] WEFT_ECHO WEFT_HTTP WEFT_PROXY WEFT_STAT

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
  reload   SIGHUP: new connections get the new certificate, one opened
           before still echoes; a bad key is refused and the old one kept
  outbound weft-proxy --backend-tls to `openssl s_server -rev`: verified
           (by name and by IP address), and refused with the wrong CA
           (closed as tls_verify)
"""
import json
import os
import re
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
ECHO, HTTP, PROXY, STAT = sys.argv[2:6] if VG else sys.argv[1:5]
SLOW = 12.0 if VG else 1.0  # how much longer things may take under valgrind
DIR = tempfile.mkdtemp(prefix="weft-it-tls.")
PROCS = []


def fail(msg):
    print("it_tls: FAIL: " + msg, file=sys.stderr)
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


def start(prog, *args):
    """Start prog with args; returns (process, port, stderr path, admin socket)."""
    n = len(PROCS)
    out, err, sock = path("s%d.out" % n), path("s%d.err" % n), path("s%d.sock" % n)
    cmd = [prog, "--workers", "2", "--stats-interval", "100", "--stats-socket", sock] + list(args)
    if VG:
        cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
               "--error-exitcode=99", "--log-file=" + path("vg%d.log" % n)] + cmd
    p = subprocess.Popen(cmd, stdout=open(out, "w"), stderr=open(err, "w"))
    p.vglog = path("vg%d.log" % n) if VG else None
    PROCS.append(p)
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
    s = tls_connect(port, version=version)
    data = os.urandom(nbytes)
    t = threading.Thread(target=s.sendall, args=(data,))
    t.start()
    got = bytearray()
    while len(got) < nbytes:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    t.join()
    check(bytes(got) == data, "TLS %s echo: %d of %d bytes, or different" %
          (s.version(), len(got), nbytes))
    s.close()


def s_client(port, *args, line=b"ping\n"):
    """openssl s_client with stdin open for a moment, so tickets arrive."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                          "-CAfile", path("ca.pem")] + list(args),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    p.stdin.write(line)
    p.stdin.flush()
    time.sleep(0.4)
    p.stdin.close()
    out = p.stdout.read().decode(errors="replace")
    p.wait(10)
    return out


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
                             path("srv.key"), "--tls-handshake-timeout", str(int(800 * SLOW)))
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


def check_reload():
    cur_pem, cur_key = path("cur.pem"), path("cur.key")
    shutil.copy(path("srv.pem"), cur_pem)
    shutil.copy(path("srv.key"), cur_key)
    p, port, err, _ = start(ECHO, "--port", "0", "--tls-cert", cur_pem, "--tls-key", cur_key)
    before = tls_connect(port)
    check(peer_subject(before).get("organizationName") is None, "first certificate")
    shutil.copy(path("rot.pem"), cur_pem)
    shutil.copy(path("rot.key"), cur_key)
    p.send_signal(signal.SIGHUP)
    wait_for("the reload", lambda: "TLS certificates reloaded" in open(err).read())
    after = tls_connect(port)
    check(peer_subject(after).get("organizationName") == "rotated",
          "after SIGHUP: %s" % peer_subject(after))
    for s in (before, after):
        s.sendall(b"still here")
        check(s.recv(64) == b"still here", "a connection across the reload")
    # A key that does not match: refused, the running certificate stays.
    shutil.copy(path("other.key"), cur_key)
    p.send_signal(signal.SIGHUP)
    wait_for("the refused reload", lambda: "TLS reload failed" in open(err).read())
    s = tls_connect(port)
    check(peer_subject(s).get("organizationName") == "rotated", "after a bad reload")
    for c in (before, after, s):
        c.close()
    stop(p)


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
    print("it_tls: ok")


try:
    main()
finally:
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(DIR, ignore_errors=True)
