"""lb_test.py - weft-lb against real backends, one case per run.

    usage: python3 lb_test.py CASE WEFT-LB [WEFT-HTTP]

Each case starts its own backends (lb_backend.py, which misbehaves on
purpose by path; weft-http for tcp mode) and weft-lb on free loopback
ports, drives them with socket clients, reads weft-lb's admin socket
(`backends json`, `stats json`) and stops everything by PID (weft-lb with
SIGTERM, insisting on exit status 0). Every wait is bounded.

  dist      smooth weighted round robin, weights 1:2:3: with one worker
            12,000 requests land exactly 2,000/4,000/6,000 and every
            window of 6 consecutive picks is exactly 1:2:3 (no bursts);
            with two workers within 3%; leastconn sends a slow backend
            proportionally fewer; random2 honours weights roughly; a
            backup gets nothing while a primary is up, everything after
  failover  clients keep sending GETs while a backend is killed: none
            sees an error (retried); it is marked down within
            fall x interval (+ a margin), back within rise x interval +
            one interval after a restart, and takes requests again;
            --observe-5xx N marks a backend down after N 5xx in a row
  retry     a refused connect is retried elsewhere (GET and POST); a GET
            the backend resets is retried, a POST is not (502); a
            response timeout is 504 and not retried; --retries 0 gives 502
  pool      requests reuse pooled backend connections (backend counts
            its connections); the reuse race (a pooled connection closed
            as it is reused) is retried transparently; --pool-size 0
            opens one connection per request; pooled connections close
            after --pool-idle-timeout
  queue     maxconn=1 with a slow backend: a second request waits and is
            served, one over the queue timeout gets 503, maxqueue=0
            refuses at once; counted per backend
  http      edge cases: chunked with trailers and extensions passed
            intact, 103 then 200, Expect: 100-continue, big bodies both
            ways (Content-Length and chunked) intact, 40 MB to a client
            that does not read (backpressure: no close, RSS bounded), HEAD, 204, a
            close-delimited answer, huge response head 502, early close
            502, reset 502, slow head 504; hop-by-hop headers removed,
            X-Forwarded-For appended, Host kept; pipelined requests
            answered in order; keep-alive and Connection: close
  smuggle   a corpus of bad requests each gets 400 (or 431/501/505) and
            a close, counted; oversized heads 431; a slowloris head 408;
            garbage 400; the backend never sees any of them
  admin     drain, disable, enable, weight, add, remove; errors for bad
            commands; --config FILE and SIGHUP re-reading its backends
  tcp       tcp mode: round robin over weft-http backends, a refused
            backend skipped (retried), health checks by connect
  cli       --help names every option; bad options (sni= without tls ...) exit 2
  chaos     8 clients send random valid and invalid requests (pipelined,
            cut short, reset) to misbehaving backends for 5 s: weft-lb
            stays up, answers after, leaves nothing in flight, exits 0
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASE = sys.argv[1] if len(sys.argv) > 1 else "?"
LB = sys.argv[2] if len(sys.argv) > 2 else None
HTTPD = sys.argv[3] if len(sys.argv) > 3 else None
PROCS = []  # started and not yet stopped: a failure kills them
TMP = tempfile.mkdtemp(prefix="weft-lb-test.")


def fail(msg):
    print("lb_test %s: FAIL: %s" % (CASE, msg), flush=True)
    for p in PROCS:
        p.kill()
        p.wait()
    shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- processes ------------------------------------------------------------------


def read_line_until(p, pred, secs=10):
    """Lines of p's stdout until pred(line) returns a value (bounded)."""
    out = []
    deadline = time.time() + secs
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out.append(line)
        v = pred(line)
        if v is not None:
            return v
    fail("no startup line; output was: %r" % "".join(out))


class Backend:
    def __init__(self, name, port=0):
        self.name = name
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "lb_backend.py"), name, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        PROCS.append(self.p)
        self.port = read_line_until(
            self.p, lambda ln: int(ln.split()[1]) if ln.startswith("port ") else None
        )
        self.addr = "127.0.0.1:%d" % self.port

    def stop(self):
        self.p.kill()
        self.p.wait()
        PROCS.remove(self.p)


class Lb:
    n = 0

    def __init__(self, *args, expect_start=True):
        Lb.n += 1
        self.sock = os.path.join(TMP, "lb%d.sock" % Lb.n)
        cmd = [LB, "--listen", "127.0.0.1:0", "--stats-socket", self.sock]
        cmd += ["--stats-interval", "100"] + [str(a) for a in args]
        self.log = open(os.path.join(TMP, "lb%d.err" % Lb.n), "w+")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        PROCS.append(self.p)

        def port_of(ln):
            if "listening on 127.0.0.1:" in ln:
                return int(ln.split("127.0.0.1:")[1].split()[0].rstrip(","))
            return None

        self.port = read_line_until(self.p, port_of)
        threading.Thread(target=self.p.stdout.read, daemon=True).start()
        time.sleep(0.05)

    def admin(self, cmd):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(self.sock)
        s.sendall(cmd.encode() + b"\nquit\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        return out.decode()

    def backends(self):
        return {b["name"]: b for b in json.loads(self.admin("backends json"))["backends"]}

    def counters(self):
        """The handler counters of the latest snapshot (lb_*), summed."""
        deadline = time.time() + 3
        while time.time() < deadline:
            out = self.admin("stats")
            vals = {}
            for ln in out.splitlines():
                parts = ln.split()
                if len(parts) == 2 and parts[0].startswith("user_lb_"):
                    vals[parts[0][5:]] = int(parts[1])
            if vals:
                return vals
            time.sleep(0.1)
        fail("no lb_ counters in stats: %r" % out)

    def counter_at_least(self, name, n, secs=3):
        deadline = time.time() + secs
        v = None
        while time.time() < deadline:
            v = self.counters().get(name, 0)
            if v >= n:
                return v
            time.sleep(0.1)
        fail("counter %s is %r, expected at least %d" % (name, v, n))

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(15)
        except subprocess.TimeoutExpired:
            fail("weft-lb did not stop within 15 s of SIGTERM")
        PROCS.remove(self.p)
        check(rc == 0, "weft-lb exited %d; stderr: %s" % (rc, self.stderr()))


# ---- an HTTP client on a raw socket --------------------------------------------


class Client:
    """One keep-alive client connection; responses parsed strictly."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        self.buf += d

    def closed(self, secs=3):
        """Whether the server closes the connection (EOF or reset) within secs."""
        self.s.settimeout(secs)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def response(self, head_request=False):
        """(status, headers dict lower-case -> list, body); 1xx heads in self.info."""
        self.info = []
        while True:
            while b"\r\n\r\n" not in self.buf:
                self.fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for ln in lines[1:]:
                k, v = ln.split(":", 1)
                hdrs.setdefault(k.strip().lower(), []).append(v.strip())
            if 100 <= status < 200:
                self.info.append((status, hdrs))
                continue
            break
        if head_request or status in (204, 304):
            return status, hdrs, b""
        if "chunked" in [v.lower() for v in hdrs.get("transfer-encoding", [])]:
            body = b""
            self.raw_chunked = b""
            while True:
                while b"\r\n" not in self.buf:
                    self.fill()
                ln, self.buf = self.buf.split(b"\r\n", 1)
                self.raw_chunked += ln + b"\r\n"
                size = int(ln.split(b";")[0], 16)
                if size == 0:
                    while True:
                        while b"\r\n" not in self.buf:
                            self.fill()
                        t, self.buf = self.buf.split(b"\r\n", 1)
                        self.raw_chunked += t + b"\r\n"
                        if not t:
                            return status, hdrs, body
                while len(self.buf) < size + 2:
                    self.fill()
                body += self.buf[:size]
                self.raw_chunked += self.buf[: size + 2]
                self.buf = self.buf[size + 2 :]
        if "content-length" in hdrs:
            n = int(hdrs["content-length"][0])
            while len(self.buf) < n:
                self.fill()
            body, self.buf = self.buf[:n], self.buf[n:]
            return status, hdrs, body
        try:
            while True:
                self.fill()
        except EOFError:
            pass
        body, self.buf = self.buf, b""
        return status, hdrs, body

    def request(self, method="GET", path="/", headers=None, body=b"", close=False):
        h = "%s %s HTTP/1.1\r\nHost: test\r\n" % (method, path)
        for k, v in (headers or {}).items():
            h += "%s: %s\r\n" % (k, v)
        if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in (headers or {})):
            h += "Content-Length: %d\r\n" % len(body)
        if close:
            h += "Connection: close\r\n"
        self.send(h.encode() + b"\r\n" + body)
        return self.response(head_request=method == "HEAD")

    def close(self):
        self.s.close()


def get(port, path="/", **kw):
    c = Client(port)
    try:
        return c.request(path=path, close=True, **kw)
    finally:
        c.close()


def raw(port, data, secs=5):
    """Send data, read until the server closes (bounded): the bytes read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=secs)
    s.sendall(data)
    return read_to_close(s, secs)


def read_to_close(s, secs):
    """What s reads until the peer closes or resets it, or secs pass; closes s."""
    out = b""
    deadline = time.time() + secs
    try:
        while time.time() < deadline:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def wait_for(pred, secs, what):
    t0 = time.time()
    while time.time() - t0 < secs:
        if pred():
            return time.time() - t0
        time.sleep(0.02)
    fail("%s: not within %.1f s" % (what, secs))


# ---- cases ------------------------------------------------------------------------


def picks(lb, n, path="/", conns=1):
    """The backend names that answered n GETs over `conns` keep-alive connections."""
    out = []
    cs = [Client(lb.port) for _ in range(conns)]
    for i in range(n):
        st, h, b = cs[i % conns].request(path=path)
        check(st == 200, "GET %s: status %d" % (path, st))
        out.append(h["x-backend"][0])
    for c in cs:
        c.close()
    return out


def case_dist():
    bs = [Backend(n) for n in ("a", "b", "c")]
    lb = Lb("--workers", 1, "--backend", bs[0].addr + ",name=a",
            "--backend", bs[1].addr + ",weight=2,name=b", "--backend", bs[2].addr + ",weight=3,name=c")
    got = picks(lb, 12000, conns=4)
    counts = {n: got.count(n) for n in "abc"}
    check(counts == {"a": 2000, "b": 4000, "c": 6000}, "one worker, 1:2:3 over 12000: %r" % counts)
    for i in range(0, 12000, 6):
        w = got[i : i + 6]
        check(sorted(w) == list("abbccc"), "picks %d..%d are %r, not 1:2:3" % (i, i + 5, w))
    # smooth: never more than two of c in a row, never two a's in a window
    run = max(len(r) for r in "".join(got).replace("a", " ").replace("b", " ").split())
    check(run <= 2, "a run of %d picks of c: bursts" % run)
    lb.stop()

    lb = Lb("--workers", 2, "--backend", bs[0].addr + ",name=a",
            "--backend", bs[1].addr + ",weight=2,name=b", "--backend", bs[2].addr + ",weight=3,name=c")
    got = picks(lb, 12000, conns=8)
    for n, want in (("a", 2000), ("b", 4000), ("c", 6000)):
        check(abs(got.count(n) - want) <= want * 0.03, "two workers: %s got %d of ~%d" % (n, got.count(n), want))
    st = lb.backends()
    check(st["c"]["requests"] == got.count("c"), "backends json requests %r vs %d" % (st["c"], got.count("c")))
    lb.stop()

    # leastconn: requests to "slow" take 100 ms at the backend, to "fast" none;
    # 16 concurrent clients: the slow one, holding requests longer, gets fewer
    slow, fast = Backend("slow"), Backend("fast")
    for algo, factor in (("leastconn", 3), ("random2", 2)):
        lb = Lb("--workers", 1, "--balance", algo, "--backend", slow.addr + ",name=slow",
                "--backend", fast.addr + ",name=fast")
        counts = concurrent_picks(lb, "/slow?ms=100&only=slow", 16, 20)
        check(counts["slow"] * factor < counts["fast"], "%s: the slow backend got %r" % (algo, counts))
        lb.stop()

    # random2 with weights 1:3: about a quarter to the first
    lb = Lb("--workers", 1, "--balance", "random2", "--backend", bs[0].addr + ",name=a",
            "--backend", bs[1].addr + ",weight=3,name=b")
    got = picks(lb, 2000)
    check(300 <= got.count("a") <= 700, "random2 1:3 gave a %d of 2000" % got.count("a"))
    lb.stop()

    # backup: nothing while a primary is up; everything once none is
    lb = Lb("--workers", 1, "--backend", bs[0].addr + ",name=a", "--backend", bs[1].addr + ",name=b,backup")
    got = picks(lb, 50)
    check(got.count("b") == 0, "backup used while the primary is up: %r" % got)
    lb.admin("disable a")
    got = picks(lb, 50)
    check(got.count("b") == 50, "backup not used with no primary: %r" % got)
    lb.stop()


def concurrent_picks(lb, path, nclients, each):
    """nclients keep-alive clients sending `each` GETs at once: answers per backend."""
    counts = {}
    lock = threading.Lock()
    errors = []

    def loop():
        try:
            c = Client(lb.port)
            for _ in range(each):
                st, h, _ = c.request(path=path)
                with lock:
                    counts[h["x-backend"][0]] = counts.get(h["x-backend"][0], 0) + 1
            c.close()
        except Exception as e:  # reported below, in the main thread
            errors.append(repr(e))

    ts = [threading.Thread(target=loop) for _ in range(nclients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not errors, "clients failed: %r" % errors[:3])
    return counts

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def statuses(lb, n, path, method="GET", body=b""):
    out = []
    for _ in range(n):
        c = Client(lb.port)
        st, _, _ = c.request(method=method, path=path, body=body, close=True)
        out.append(st)
        c.close()
    return out


def case_failover():
    a, b = Backend("a"), Backend("b")
    interval, rise, fall = 0.2, 2, 2
    lb = Lb("--workers", 2, "--health-check", "/health", "--health-interval", "200ms",
            "--rise", rise, "--fall", fall, "--backend", a.addr + ",name=a", "--backend", b.addr + ",name=b")
    stop = threading.Event()
    errors, served = [], {"a": 0, "b": 0}
    lock = threading.Lock()

    def loop():
        c = None
        while not stop.is_set():
            try:
                c = c or Client(lb.port)
                st, h, _ = c.request(path="/")
                if st != 200:
                    errors.append(st)
                with lock:
                    served[h["x-backend"][0]] += 1
            except Exception as e:
                errors.append(repr(e))
                c = None

    ts = [threading.Thread(target=loop) for _ in range(8)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    a_port = a.port
    a.stop()
    t_down = wait_for(lambda: not lb.backends()["a"]["up"], fall * interval + 1.0, "a marked down")
    time.sleep(0.5)
    a = Backend("a", a_port)
    t_up = wait_for(lambda: lb.backends()["a"]["up"], rise * interval + interval + 0.5, "a back up")
    with lock:
        before = served["a"]
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join(10)
    check(not errors, "clients saw errors during the failover: %r" % errors[:5])
    check(served["a"] > before, "a took no requests after coming back: %r" % served)
    print("failover: down after %.3f s, up after %.3f s, served %r" % (t_down, t_up, served))
    check("backend a down" in lb.stderr() and "backend a up" in lb.stderr(), "transitions not logged")
    lb.stop()

    # --observe-5xx 2: two 5xx in a row from a mark it down; b's 200s do not
    lb = Lb("--workers", 1, "--health-check", "/health", "--health-interval", "10s", "--observe-5xx", 2,
            "--backend", a.addr + ",name=a", "--backend", b.addr + ",name=b")
    got = statuses(lb, 4, "/status?code=503&only=a")
    check(sorted(got) == [200, 200, 503, 503], "5xx from a: %r" % got)
    check(not lb.backends()["a"]["up"] and lb.backends()["b"]["up"], "observe-5xx: %r" % lb.backends())
    check(statuses(lb, 3, "/status?code=503&only=a") == [200] * 3, "a still used after its 5xx run")
    lb.stop()


def case_retry():
    a, b = Backend("a"), Backend("b")
    dead = "127.0.0.1:%d" % free_port()
    lb = Lb("--workers", 1, "--backend", dead + ",name=dead", "--backend", a.addr + ",name=a")
    check(statuses(lb, 6, "/") == [200] * 6, "GETs with a refused backend")
    check(statuses(lb, 4, "/echo", "POST", b"x" * 1000) == [200] * 4, "POSTs with a refused backend")
    st = lb.backends()
    check(st["dead"]["failures"] == 5 and st["dead"]["retries"] == 5, "dead backend counters %r" % st["dead"])
    lb.counter_at_least("lb_retries", 5)
    lb.stop()

    lb = Lb("--workers", 1, "--retries", 0, "--backend", dead + ",name=dead", "--backend", a.addr + ",name=a")
    check(sorted(statuses(lb, 4, "/")) == [200, 200, 502, 502], "--retries 0 with a refused backend")
    lb.stop()

    lb = Lb("--workers", 1, "--response-timeout", "700ms", "--backend", a.addr + ",name=a",
            "--backend", b.addr + ",name=b")
    check(statuses(lb, 4, "/reset?only=a") == [200] * 4, "GET reset by a: retried on b")
    check(sorted(statuses(lb, 4, "/early-close?only=a")) == [200] * 4, "GET closed by a: retried on b")
    got = statuses(lb, 4, "/reset?only=a", "POST", b"body")
    check(sorted(got) == [200, 200, 502, 502], "POST reset by a must not be retried: %r" % got)
    t0 = time.time()
    got = statuses(lb, 2, "/slow?ms=4000&only=a")
    check(sorted(got) == [200, 504], "response timeout: %r" % got)
    check(time.time() - t0 < 3, "the 504 came after %.2f s" % (time.time() - t0))
    st = lb.backends()
    check(st["b"]["responses"][1] == 4 + 4 + 2 + 1, "b answered %r" % st["b"])
    lb.counter_at_least("lb_504", 1)
    lb.counter_at_least("lb_502", 2)
    lb.stop()


def backend_count(b):
    st, _, body = get(b.port, "/count")
    return dict(kv.split("=") for kv in body.decode().split())


def case_pool():
    a = Backend("a")
    lb = Lb("--workers", 1, "--health-check", "/health", "--health-interval", "5s", "--backend", a.addr + ",name=a")
    c0 = int(backend_count(a)["conns"])
    check(statuses(lb, 50, "/") == [200] * 50, "50 GETs")
    c1 = int(backend_count(a)["conns"])
    check(c1 - c0 - 1 <= 2, "50 requests opened %d backend connections (pool not reused)" % (c1 - c0 - 1))
    check(lb.backends()["a"]["reused"] >= 48, "reused %r" % lb.backends()["a"])
    # the reuse race: the pooled connection is closed by the backend as it is reused
    cl = Client(lb.port)
    st, _, _ = cl.request(path="/race")
    check(st == 200, "GET /race")
    for _ in range(3):
        st, h, body = cl.request(path="/")
        check(st == 200, "a request on a connection closed as it was reused: %d" % st)
        st, _, _ = cl.request(path="/race")
    cl.close()
    bs = lb.backends()["a"]
    check(bs["up"] and bs["failures"] == 0, "the reuse race counted as a failure: %r" % bs)
    lb.stop()

    lb = Lb("--workers", 1, "--pool-size", 0, "--backend", a.addr + ",name=a")
    c0 = int(backend_count(a)["conns"])
    statuses(lb, 20, "/")
    c1 = int(backend_count(a)["conns"])
    check(c1 - c0 - 1 == 20, "--pool-size 0: %d connections for 20 requests" % (c1 - c0 - 1))
    lb.stop()

    lb = Lb("--workers", 1, "--pool-idle-timeout", "200ms", "--backend", a.addr + ",name=a")
    statuses(lb, 3, "/")
    check(lb.backends()["a"]["idle"] == 1, "one idle pooled connection: %r" % lb.backends()["a"])
    wait_for(lambda: lb.backends()["a"]["idle"] == 0, 1.0, "the idle connection closed")
    lb.stop()


def in_flight(lb, name):
    """Until backend `name` has a request in flight (bounded)."""
    wait_for(lambda: lb.backends()[name]["active"] >= 1, 3, "a request in flight at %s" % name)


def case_queue():
    a = Backend("a")
    lb = Lb("--workers", 1, "--queue-timeout", "400ms", "--backend", a.addr + ",name=a,maxconn=1")
    res = {}

    def one(key, path):
        c = Client(lb.port)
        t0 = time.time()
        st, _, _ = c.request(path=path, close=True)
        res[key] = (st, time.time() - t0)
        c.close()

    t1 = threading.Thread(target=one, args=("slow", "/slow?ms=300"))
    t1.start()
    in_flight(lb, "a")
    one("queued", "/")
    t1.join(5)
    check(res["slow"][0] == 200 and res["queued"][0] == 200, "queued behind a slow one: %r" % res)
    bs = lb.backends()["a"]
    check(bs["queued"] == 1 and bs["queue_timeouts"] == 0, "the second request did not wait: %r %r" % (res, bs))
    t1 = threading.Thread(target=one, args=("slow", "/slow?ms=1500"))
    t1.start()
    in_flight(lb, "a")
    one("expired", "/")
    t1.join(5)
    check(res["expired"][0] == 503 and 0.3 < res["expired"][1] < 1.2, "queue timeout: %r" % res)
    bs = lb.backends()["a"]
    check(bs["queued"] == 2 and bs["queue_timeouts"] == 1, "queue counters %r" % bs)
    lb.stop()

    lb = Lb("--workers", 1, "--backend", a.addr + ",name=a,maxconn=1,maxqueue=0")
    t1 = threading.Thread(target=one, args=("slow", "/slow?ms=800"))
    t1.start()
    in_flight(lb, "a")
    one("refused", "/")
    t1.join(5)
    check(res["refused"][0] == 503 and res["refused"][1] < 0.3, "maxqueue=0: %r" % res)
    lb.stop()


def lb_rss_kib(lb):
    with open("/proc/%d/status" % lb.p.pid) as f:
        return int([ln for ln in f if ln.startswith("VmRSS:")][0].split()[1])


def case_http():
    a = Backend("a")
    # a response timeout the Python backend meets on a busy machine, /slow-head's does not
    lb = Lb("--workers", 2, "--response-timeout", "1500ms", "--backend", a.addr + ",name=a")
    c = Client(lb.port)
    st, h, body = c.request(path="/chunked")
    want = b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nX-Sum: 12\r\n\r\n"
    check(st == 200 and body == b"hello, world" and c.raw_chunked == want,
          "chunked with trailers: %d %r %r" % (st, body, getattr(c, "raw_chunked", None)))
    st, h, body = c.request(path="/1xx")
    check(st == 200 and body == b"after hints" and [i[0] for i in c.info] == [103], "103 then 200: %r" % c.info)
    # Expect: 100-continue: the body only after the 100
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    while b"\r\n\r\n" not in c.buf:
        c.fill()
    check(c.buf.startswith(b"HTTP/1.1 100 Continue\r\n"), "no 100 Continue: %r" % c.buf)
    c.buf = c.buf.split(b"\r\n\r\n", 1)[1]
    c.send(b"hello")
    st, h, body = c.response()
    check(st == 200 and body == b"5 " + hashlib.sha256(b"hello").hexdigest().encode(), "100-continue echo %r" % body)
    n = 5 * 1000 * 1000
    st, h, body = c.request(path="/big?n=%d" % n)
    pat = bytes(range(256)) * (n // 256 + 1)
    check(st == 200 and body == pat[:n], "5 MB response: %d bytes" % len(body))
    up = os.urandom(3 * 1000 * 1000)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(up[i : i + 70000]), up[i : i + 70000]) for i in range(0, len(up), 70000))
    st, h, body = c.request(method="POST", path="/echo", headers={"Transfer-Encoding": "chunked"},
                            body=chunked + b"0\r\n\r\n")
    check(body == b"%d %s" % (len(up), hashlib.sha256(up).hexdigest().encode()), "3 MB chunked upload: %r" % body)
    st, h, body = c.request(method="POST", path="/echo", body=up)
    check(body == b"%d %s" % (len(up), hashlib.sha256(up).hexdigest().encode()), "3 MB upload: %r" % body)
    # backpressure: 40 MB to a client that reads nothing for a second. Past
    # output_cap (4 MB) the proxy would close it; paused, it holds a few MB
    n = 40 * 1000 * 1000
    c.send(b"GET /big?n=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
    time.sleep(1.0)
    rss = lb_rss_kib(lb)
    st, h, body = c.response()
    check(st == 200 and len(body) == n and body[:256] == bytes(range(256)), "40 MB to a slow reader: %d %r %r" % (len(body), h, body[:100]))
    check(rss < 64 * 1024, "weft-lb held %d KiB while its client did not read" % rss)
    st, h, body = c.request(method="HEAD", path="/")
    check(st == 200 and body == b"" and h["content-length"] == ["2"], "HEAD %r" % h)
    st, h, body = c.request(path="/status?code=204")
    check(st == 204, "204")
    st, h, body = c.request(path="/headers", headers={
        "Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "TE": "trailers",
        "Upgrade": "h2c", "X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https", "X-Keep": "yes"})
    seen = body.decode().lower()
    for gone in ("\r\nconnection:", "\r\nx-hop:", "\r\nkeep-alive:", "\r\nte:", "\r\nupgrade:", "https"):
        check(gone not in seen, "%r reached the backend: %r" % (gone, seen))
    for kept in ("\r\nhost: test\r\n", "\r\nx-keep: yes\r\n", "\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\n",
                 "\r\nx-forwarded-proto: http\r\n"):
        check(kept in seen, "%r missing at the backend: %r" % (kept, seen))
    # pipelined: answered in order
    c.send(b"".join(b"GET /status?code=%d HTTP/1.1\r\nHost: t\r\n\r\n" % code for code in (200, 201, 202, 203)))
    got = [c.response()[0] for _ in range(4)]
    check(got == [200, 201, 202, 203], "pipelined answers %r" % got)
    st, h, body = c.request(path="/close-delimited")
    check(st == 200 and body == b"until the close" and h.get("connection") == ["close"], "close-delimited %r %r" % (h, body))
    check(c.closed(), "the client stays open after a close-delimited answer")
    c.close()
    for path, want in (("/huge-headers", 502), ("/early-close", 502), ("/reset", 502), ("/slow-head?ms=3000", 504)):
        st, h, body = get(lb.port, path)
        check(st == want and h.get("connection") == ["close"] and body, "%s: %d %r" % (path, st, body))
    # Connection: close, and HTTP/1.0
    c = Client(lb.port)
    st, h, _ = c.request(path="/", close=True)
    check(st == 200 and h.get("connection") == ["close"] and c.closed(), "Connection: close")
    out = raw(lb.port, b"GET / HTTP/1.0\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 200") and b"Connection: close" in out, "HTTP/1.0: %r" % out)
    c = Client(lb.port)
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, _ = c.response()
    check(st == 200 and h.get("connection") == ["keep-alive"] and not c.closed(0.3), "HTTP/1.0 keep-alive %r" % h)
    c.close()
    lb.stop()


SMUGGLE = [
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1234567890123456789\r\n\r\n"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    (501, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    (501, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n"),
    (400, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  folded\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\nHost: t\r\n\tX-A: 1\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\nHost: t\rX-A: 1\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\nHost: t\r\nX-A\r\n\r\n"),
    (400, b"GET / HTTP/1.1\r\nHost: t\r\n: empty\r\n\r\n"),
    (400, b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n"),
    (400, b"GET / HTTP/1.1 x\r\nHost: t\r\n\r\n"),
    (400, b"GET foo HTTP/1.1\r\nHost: t\r\n\r\n"),
    (400, b"GET / HTTP/1.x\r\nHost: t\r\n\r\n"),
    (505, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
    (501, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    (400, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40)) + b"\r\n\r\n"),
    (431, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"),
    (431, b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n"),
]

BAD_CHUNKS = [
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
]


def case_smuggle():
    a = Backend("a")
    lb = Lb("--workers", 2, "--header-timeout", "500ms", "--backend", a.addr + ",name=a")
    before = int(backend_count(a)["reqs"])
    want = {}
    for status, req in SMUGGLE:
        out = raw(lb.port, req)
        check(out.startswith(b"HTTP/1.1 %d " % status) and b"Connection: close\r\n" in out,
              "%r: got %r, want %d and a close" % (req[:80], out[:100], status))
        want[status] = want.get(status, 0) + 1
    after = int(backend_count(a)["reqs"])
    check(after == before + 1, "the backend saw %d of the bad requests" % (after - before - 1))
    for req in BAD_CHUNKS:
        out = raw(lb.port, req)
        check(out.startswith(b"HTTP/1.1 400 ") and b"Connection: close\r\n" in out,
              "bad chunks %r: got %r" % (req[-40:], out[:80]))
        want[400] += 1
    # slowloris: a head a byte at a time, never finished: 408 after the header timeout
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    t0 = time.time()
    s.sendall(b"GET / HTTP/1.1\r\n")
    try:
        for i in range(30):
            s.sendall(b"X")
            time.sleep(0.1)
    except OSError:
        pass
    out = read_to_close(s, 5)
    check(out.startswith(b"HTTP/1.1 408 ") and time.time() - t0 < 4, "slowloris: %r after %.1f s" % (out[:60], time.time() - t0))
    k = lb.counters()
    check(k.get("lb_400") == want[400] + want[505], "lb_400 %r, want %d" % (k, want[400] + want[505]))
    check(k.get("lb_431") == want[431] and k.get("lb_501") == want[501], "lb_431/501 %r" % k)
    lb.counter_at_least("lb_408", 1)
    check(statuses(lb, 2, "/") == [200, 200], "good requests after the bad ones")
    lb.stop()


def case_admin():
    a, b, c3 = Backend("a"), Backend("b"), Backend("c")
    lb = Lb("--workers", 1, "--backend", a.addr + ",name=a", "--backend", b.addr + ",name=b")
    check(lb.admin("drain a").startswith("ok: a draining"), "drain a")
    check(set(picks(lb, 6)) == {"b"}, "drained a still takes requests")
    check(lb.backends()["a"]["state"] == "draining", "state draining")
    lb.admin("enable a")
    lb.admin("disable b")
    check(set(picks(lb, 6)) == {"a"}, "disabled b still takes requests")
    lb.admin("enable b")
    check(lb.admin("weight a 3").startswith("ok: a weight 3"), "weight a 3")
    got = picks(lb, 8)
    check(got.count("a") == 6 and got.count("b") == 2, "weight 3:1 gave %r" % got)
    check(lb.admin("add %s,name=c,weight=2" % c3.addr).startswith("ok: added"), "add c")
    got = picks(lb, 12)
    check(got.count("c") == 4, "added c (2 of 6) got %r" % got)
    check(lb.admin("remove c").startswith("ok: c removed"), "remove c")
    check("c" not in lb.backends() and "c" not in picks(lb, 8), "removed c still there")
    for cmd, err in (("drain nope", "no backend"), ("weight a x", "usage"), ("weight a 999", "usage"),
                     ("add bogus", "expected HOST:PORT"), ("add %s,name=a" % c3.addr, "exists"),
                     ("add 1.2.3.4:5,verify=none", "options of a tls backend")):
        out = lb.admin(cmd)
        check(out.startswith("error:") and err in out, "%r answered %r" % (cmd, out))
    check("drain NAME" in lb.admin("help"), "help lists the commands")
    lb.stop()

    conf = os.path.join(TMP, "lb.conf")
    with open(conf, "w") as f:
        f.write("# weft-lb test\nworkers = 1\nbalance = roundrobin\nbackend = %s,name=a\nretries=1\n" % a.addr)
    lb = Lb("--config", conf)
    check(set(picks(lb, 4)) == {"a"}, "config: one backend")
    with open(conf, "w") as f:
        f.write("workers = 1\nbackend = %s,name=a\nbackend = %s,name=b\n" % (a.addr, b.addr))
    lb.p.send_signal(signal.SIGHUP)
    wait_for(lambda: "b" in lb.backends(), 2, "SIGHUP added b")
    check(sorted(picks(lb, 4)) == ["a", "a", "b", "b"], "after SIGHUP: a and b")
    with open(conf, "w") as f:
        f.write("backend = %s,name=b,weight=2\n" % b.addr)
    lb.p.send_signal(signal.SIGHUP)
    wait_for(lambda: "a" not in lb.backends(), 2, "SIGHUP removed a")
    check(set(picks(lb, 4)) == {"b"} and lb.backends()["b"]["weight"] == 2, "after the second SIGHUP")
    lb.stop()
    with open(conf, "w") as f:
        f.write("backend = %s\nbalance = sideways\n" % a.addr)
    p = subprocess.run([LB, "--config", conf], capture_output=True, text=True, timeout=10)
    check(p.returncode == 2 and "lb.conf:2: balance" in p.stderr, "bad config line: %d %r" % (p.returncode, p.stderr))


def case_tcp():
    a, b = Backend("a"), Backend("b")
    dead = "127.0.0.1:%d" % free_port()
    lb = Lb("--mode", "tcp", "--workers", 1, "--backend", a.addr + ",name=a", "--backend", b.addr + ",name=b",
            "--backend", dead + ",name=dead")
    got = [get(lb.port, "/")[1]["x-backend"][0] for _ in range(6)]
    check(sorted(got) == ["a", "a", "a", "b", "b", "b"], "tcp round robin with a dead backend: %r" % got)
    st = lb.backends()
    check(st["dead"]["failures"] == 2 and st["dead"]["retries"] == 2, "dead counters %r" % st["dead"])
    # a keep-alive connection stays on its backend
    c = Client(lb.port)
    names = {c.request(path="/")[1]["x-backend"][0] for _ in range(5)}
    check(len(names) == 1, "one tcp connection, several backends: %r" % names)
    c.close()
    lb.stop()
    lb = Lb("--mode", "tcp", "--workers", 1, "--health-check", "/", "--health-interval", "200ms",
            "--backend", a.addr + ",name=a", "--backend", b.addr + ",name=b")
    b.stop()
    wait_for(lambda: not lb.backends()["b"]["up"], 1.5, "tcp check marks b down")
    bs = lb.backends()["b"]
    check(bs["check_transitions"] == 1 and bs["check_failures"] >= 2, "tcp checks: %r" % bs)
    got = {get(lb.port, "/")[1]["x-backend"][0] for _ in range(4)}
    check(got == {"a"}, "tcp: down backend used %r" % got)
    lb.stop()


def case_cli():
    out = subprocess.run([LB, "--help"], capture_output=True, text=True, timeout=10)
    check(out.returncode == 0, "--help exit %d" % out.returncode)
    for opt in ("--backend", "--mode", "--balance", "--health-check", "--health-interval", "--rise",
                "--fall", "--retries", "--workers", "--reuseport", "--config", "--listen", "--pool-size",
                "--queue-timeout", "--response-timeout", "--header-timeout", "--connect-timeout"):
        check(opt in out.stdout, "--help does not name %s" % opt)
    for args, err in ((["--backend", "127.0.0.1:1,sni=x"], "options of a tls backend"),
                      (["--backend", "nocolon"], "HOST:PORT"),
                      (["--backend", "127.0.0.1:1,weight=300"], "weight"),
                      (["--backend", "127.0.0.1:1,bogus"], "unknown backend option"),
                      ([], "at least one --backend"),
                      (["--backend", "127.0.0.1:1", "--balance", "bogus"], "roundrobin"),
                      (["--backend", "127.0.0.1:1", "--health-interval", "5x"], "duration"),
                      (["--backend", "127.0.0.1:1", "--mode", "udp"], "http or tcp"),
                      (["--backend", "127.0.0.1:1", "--health-check", "nopath"], "path")):
        p = subprocess.run([LB] + args, capture_output=True, text=True, timeout=10)
        check(p.returncode == 2 and err in p.stderr, "%r: exit %d, %r" % (args, p.returncode, p.stderr))
    # --reuseport: two processes share one port
    a = Backend("a")
    port = free_port()
    l1 = subprocess.Popen([LB, "--listen", "127.0.0.1:%d" % port, "--reuseport", "--stats-socket", "",
                           "--backend", a.addr], stdout=subprocess.PIPE, text=True)
    l2 = subprocess.Popen([LB, "--listen", "127.0.0.1:%d" % port, "--reuseport", "--stats-socket", "",
                           "--backend", a.addr], stdout=subprocess.PIPE, text=True)
    PROCS.extend([l1, l2])
    for p in (l1, l2):
        read_line_until(p, lambda ln: True if "listening on" in ln else None)
    check(get(port, "/")[0] == 200, "--reuseport: a request")
    for p in (l1, l2):
        p.send_signal(signal.SIGTERM)
        check(p.wait(10) == 0, "--reuseport process exit")
        PROCS.remove(p)


CHAOS_PATHS = ["/", "/chunked", "/1xx", "/early-close", "/reset", "/slow?ms=50", "/big?n=200000",
               "/close-delimited", "/status?code=500", "/status?code=204", "/race", "/huge-headers",
               "/slow-head?ms=100", "/echo", "/headers"]


def chaos_client(port, rnd, deadline, errors):
    """Random requests, valid and not, pipelined, split, abandoned: until deadline."""
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            data = b""
            for _ in range(rnd.randint(1, 4)):
                path = rnd.choice(CHAOS_PATHS)
                kind = rnd.random()
                if kind < 0.5:
                    data += b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode()
                elif kind < 0.65:
                    body = os.urandom(rnd.randint(0, 3000))
                    data += b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
                elif kind < 0.75:
                    data += b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                elif kind < 0.85:
                    data += rnd.choice(SMUGGLE)[1]
                else:
                    data += os.urandom(rnd.randint(1, 200))
            cut = rnd.randint(0, len(data)) if rnd.random() < 0.2 else len(data)
            step = rnd.choice([1, 7, 100, 100000])
            for i in range(0, cut, step):
                s.sendall(data[i : min(cut, i + step)])
            if rnd.random() < 0.3:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            else:
                s.settimeout(0.5)
                try:
                    while s.recv(65536):
                        pass
                except (socket.timeout, OSError):
                    pass
            s.close()
        except OSError as e:
            errors.append(repr(e))


def case_chaos():
    """Random valid and invalid traffic against misbehaving backends for a few
    seconds: weft-lb keeps answering, counts what it refused, and exits 0."""
    import random

    a, b = Backend("a"), Backend("b")
    lb = Lb("--workers", 2, "--response-timeout", "1s", "--header-timeout", "500ms", "--health-check", "/health",
            "--health-interval", "200ms", "--backend", a.addr + ",name=a,maxconn=8,maxqueue=4",
            "--backend", b.addr + ",name=b")
    deadline = time.time() + 5
    errors = []
    ts = [threading.Thread(target=chaos_client, args=(lb.port, random.Random(i), deadline, errors)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    check(lb.p.poll() is None, "weft-lb died under random traffic: %s" % lb.stderr()[:6000])
    time.sleep(0.6)  # a backend marked down passively comes back
    wait_for(lambda: all(x["up"] for x in lb.backends().values()), 3, "both backends up again")
    check(statuses(lb, 4, "/") == [200] * 4, "weft-lb answers after the chaos")
    k = lb.counters()
    check(k.get("lb_requests", 0) > 100 and k.get("lb_400", 0) > 0, "counters after the chaos: %r" % k)
    st = lb.backends()
    check(all(x["active"] == 0 for x in st.values()), "requests left in flight: %r" % st)
    lb.stop()


def main():
    cases = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}
    if CASE not in cases or not LB:
        print(__doc__)
        sys.exit(2)
    try:
        cases[CASE]()
    except Exception as e:
        import traceback

        traceback.print_exc()
        fail("unexpected %r" % e)
    for p in list(PROCS):
        p.kill()
        p.wait()
    shutil.rmtree(TMP, ignore_errors=True)
    print("lb_test %s: ok" % CASE)


if __name__ == "__main__":
    main()
