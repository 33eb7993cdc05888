"""multi_test.py - weft-multi against real clients, one case per run.

    usage: python3 multi_test.py CASE WEFT-MULTI WEFT-STAT

Each case starts its own weft-multi on loopback (--base-port 0: every
listener on a free port, read from the startup lines; the `base` case
finds five free consecutive ports and passes --base-port N), drives it
with curl and socket clients, and stops it by its PID with SIGTERM,
insisting on exit status 0. Every wait is bounded.

  ports   every port with real clients: curl on HTTP, bytes on echo, a chat
          session, the admin commands and their errors, and on the
          detecting port an HTTP request (curl, keep-alive reused), a
          HTTP/1.0 request and echo bytes each followed by a half-close,
          a start of a method finished later, and a silent client that gets
          the chat welcome no earlier than --sniff-timeout; the sniff_*
          counters count each decision
  base    --base-port N: the five listeners on N..N+4, by name; --bind
          moves every port but the admin's (127.0.0.2 here)
  cross   GET /chat/rooms with members on both workers (and one that came
          through the detecting port): exact JSON, sorted; pipelined behind
          and ahead of other requests, answers in order; HEAD and POST;
          chat's /stats shows exactly the HTTP and echo counts made
  limit   admin `limit echo 1 1`: connections beyond the bucket are refused
          and counted (rejected_rate), `limit echo 0` lifts it; --limit sets
          a port's rate at start; bad `limit` lines get errors
  listen  --listen adds listeners before the five, which detect the protocol
  stat    weft-stat --once shows the five listeners by name and address
  help    --help names the ports and options; bad options exit 2
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NAMES = ["http", "echo", "chat", "admin", "sniff"]
MULTI = STAT = None
RUNNING = []  # the servers started and not yet stopped: a failure kills them


def fail(msg):
    print("multi_test %s: FAIL: %s" % (CASE, msg))
    for srv in RUNNING:
        srv.p.kill()
        srv.p.wait()
        shutil.rmtree(srv.dir, ignore_errors=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- the server ---------------------------------------------------------------


class StartError(Exception):
    """weft-multi exited (or said nothing) at start; the message is its output."""


def start(*args, **kw):
    try:
        return Server(*args, **kw)
    except StartError as e:
        fail("weft-multi did not start: %s" % e)


class Server:
    """weft-multi with args; its ports by name in self.port."""

    def __init__(self, *args, admin_socket=False):
        self.dir = tempfile.mkdtemp(prefix="weft-multi-test.")
        self.sock = os.path.join(self.dir, "admin.sock") if admin_socket else ""
        stats_socket = self.sock
        self.log = open(os.path.join(self.dir, "out"), "w+")
        base = [] if "--base-port" in args else ["--base-port", "0"]
        self.p = subprocess.Popen([MULTI, "--workers", "2", "--stats-interval", "100",
                                   "--stats-socket", stats_socket] + base + list(args),
                                  stdout=self.log, stderr=subprocess.STDOUT)
        self.port, self.addr = {}, {}
        for _ in range(300):
            text = self.read_log()
            first = re.search(r"weft-multi [0-9.]+: listening on ([0-9.]+):(\d+),", text)
            rest = re.findall(r"weft-multi: listening on ([0-9.]+):(\d+) \((\w+)\)", text)
            if first and "try:" in text:
                # The first line names no listener: http, unless --listen
                # added listeners before the five (then it is the first of those).
                for host, port, name in rest:
                    self.addr[name], self.port[name] = host, int(port)
                if "http" not in self.port:
                    self.addr["http"], self.port["http"] = first.group(1), int(first.group(2))
                else:
                    self.addr["0"], self.port["0"] = first.group(1), int(first.group(2))
                RUNNING.append(self)
                check(all(n in self.port for n in NAMES), "listeners %s" % self.port)
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        self.p.kill()
        self.p.wait()
        text = self.read_log()
        shutil.rmtree(self.dir, ignore_errors=True)
        raise StartError(text)

    def read_log(self):
        self.log.seek(0)
        return self.log.read()

    def url(self, name, path):
        return "http://%s:%d%s" % (self.addr[name], self.port[name], path)

    def stop(self):
        RUNNING.remove(self)
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            fail("weft-multi did not exit within 30 s of SIGTERM")
        check(rc == 0, "weft-multi exit status %d: %s" % (rc, self.read_log()))
        shutil.rmtree(self.dir, ignore_errors=True)


def connect(srv, name):
    s = socket.create_connection((srv.addr[name], srv.port[name]), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        check(b, "EOF after %d of %d bytes" % (len(out), n))
        out += b
    return out


def recv_until_eof(s):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


class Lines:
    """A line reader on a socket."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def line(self):
        while b"\n" not in self.buf:
            b = self.s.recv(65536)
            check(b, "EOF while waiting for a line (have %r)" % self.buf)
            self.buf += b
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def until_end(self):
        """Admin answers: lines up to one starting with 'ok' or 'error: '."""
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith("ok") or lines[-1].startswith("error: "):
                return lines


def admin(srv, *cmds):
    """Each command's answer (a list of lines) from one admin connection."""
    s = connect(srv, "admin")
    r = Lines(s)
    s.sendall("".join(c + "\n" for c in cmds).encode())
    out = [r.until_end() for _ in cmds]
    s.close()
    return out


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), capture_output=True)
    check(p.returncode == 0, "curl %s: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout.decode()


def counters(srv):
    """The handler counters of the latest sample (admin `stats`)."""
    lines = admin(srv, "stats")[0]
    check(lines[-1] == "ok", "stats: %s" % lines[-3:])
    out = {}
    for line in lines:
        m = re.match(r"user_(\w+) (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def wait_for(what, fn, want, timeout=10):
    """Poll fn() until it equals want (samples lag by --stats-interval)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got == want:
            return
        if time.monotonic() > deadline:
            fail("%s: want %r, got %r" % (what, want, got))
        time.sleep(0.1)


class Chat:
    """A chat client; the welcome line read."""

    def __init__(self, srv, port="chat"):
        self.s = connect(srv, port)
        self.r = Lines(self.s)
        self.welcome = self.r.line()
        check(self.welcome.startswith("* welcome to weft-chat (worker "), self.welcome)
        self.worker = int(re.search(r"worker (\d+)", self.welcome).group(1))

    def say(self, line):
        self.s.sendall((line + "\n").encode())

    def expect(self, want):
        got = self.r.line()
        check(got == want, "chat: want %r, got %r" % (want, got))

    def skip_to(self, want):
        """Read lines up to want: others' joins may come first."""
        seen = []
        while True:
            seen.append(self.r.line())
            if seen[-1] == want:
                return
            check(len(seen) < 50, "chat: no %r in %s" % (want, seen))

    def join(self, nick, room):
        self.say("/nick " + nick)
        self.expect("* you are now " + nick)
        self.say("/join " + room)
        self.expect("* %s joined #%s" % (nick, room))


# ---- cases ----------------------------------------------------------------------


def case_ports():
    srv = start("--sniff-timeout", "300")
    # HTTP
    check(curl(srv.url("http", "/")) == "hello, world\n", "GET /")
    wait_for("/stats answers", lambda: curl("-o", "/dev/null", "-w", "%{http_code}",
                                            srv.url("http", "/stats")), "200")
    stats = json.loads(curl(srv.url("http", "/stats")))
    check("total" in stats and "listeners" in stats, "/stats: %s" % list(stats))
    check(json.loads(curl(srv.url("http", "/chat/rooms"))) == {"rooms": []}, "/chat/rooms empty")
    check(curl("-o", "/dev/null", "-w", "%{http_code}", srv.url("http", "/nope")) == "404", "404")
    # echo: 256 KiB of every byte value, back exact
    data = bytes(range(256)) * 1024
    s = connect(srv, "echo")
    s.sendall(data)
    check(recv_exact(s, len(data)) == data, "echo: bytes differ")
    s.close()
    # chat
    c = Chat(srv)
    c.join("alice", "lobby")
    c.say("hi all")
    c.expect("<alice> hi all")
    c.say("/who")
    c.expect("* members of #lobby (1): alice")
    c.say("/quit")
    c.expect("* bye")
    check(recv_until_eof(c.s) == b"", "chat: bytes after bye")
    # admin
    out = admin(srv, "help", "listeners", "conns", "bogus", "stats extra", "limit")
    check(out[0][-1] == "ok" and any(l.startswith("limit LISTENER RATE") for l in out[0]),
          "help: %s" % out[0])
    listed = {}
    for line in out[1][:-1]:
        f = line.split()
        listed[f[1]] = f[2]
    check(listed == {n: "%s:%d" % (srv.addr[n], srv.port[n]) for n in NAMES},
          "listeners: %s" % out[1])
    check(out[2][0].startswith("open ") and out[2][-1] == "ok", "conns: %s" % out[2])
    check(sum(1 for l in out[2] if l.startswith("listener ")) == 5, "conns: %s" % out[2])
    check(out[3] == ["error: unknown command 'bogus' (try help)"], "bogus: %s" % out[3])
    check(out[4] == ["error: stats takes no arguments"], "stats extra: %s" % out[4])
    check(out[5] == ["error: usage: limit LISTENER RATE [BURST]"], "limit: %s" % out[5])
    s = connect(srv, "admin")
    s.sendall(b"x" * 300 + b"\n")
    check(recv_until_eof(s) == b"error: line too long\n", "admin long line")
    s.close()
    # the detecting port: HTTP (curl fetches twice on one connection)
    got = curl("-w", "%{http_code} %{num_connects}\n", srv.url("sniff", "/"), srv.url("sniff", "/"))
    check(got == "hello, world\n200 1\nhello, world\n200 0\n", "sniff http: %r" % got)
    # ... an HTTP/1.0 request, then a half-close: answered before the close
    s = connect(srv, "sniff")
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    got = recv_until_eof(s)
    check(got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nhello, world\n"),
          "sniff http/1.0: %r" % got)
    s.close()
    # ... echo bytes, and a half-close after them
    s = connect(srv, "sniff")
    s.sendall(b"hello sniff\n")
    check(recv_exact(s, 12) == b"hello sniff\n", "sniff echo")
    s.sendall(data)
    check(recv_exact(s, len(data)) == data, "sniff echo: bulk bytes differ")
    s.close()
    s = connect(srv, "sniff")
    s.sendall(b"\x00binary\xff")
    s.shutdown(socket.SHUT_WR)
    check(recv_until_eof(s) == b"\x00binary\xff", "sniff echo with half-close")
    s.close()
    # ... the start of a method, finished later: HTTP
    s = connect(srv, "sniff")
    s.sendall(b"GE")
    time.sleep(0.05)
    s.sendall(b"T / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = recv_until_eof(s)
    check(got.endswith(b"hello, world\n"), "sniff split method: %r" % got)
    s.close()
    # ... silence: chat, which speaks first, not before the timeout
    t0 = time.monotonic()
    c = Chat(srv, "sniff")
    waited = time.monotonic() - t0
    check(waited >= 0.3, "the silent client was handed over after %.3f s, before 0.3 s" % waited)
    c.join("bob", "lobby")
    c.s.close()
    wait_for("sniff counters", lambda: {k: v for k, v in counters(srv).items()
                                        if k.startswith("sniff_")},
             {"sniff_http": 3, "sniff_echo": 2, "sniff_chat": 1})
    srv.stop()


def free_base():
    """
    A port N with N..N+4 free on 127.0.0.1 and 127.0.0.2 (another program
    may still take one before weft-multi binds it). Chosen below the
    ephemeral range, where other programs' outbound connections do not
    take ports.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random(os.getpid())
    for _ in range(200):
        base = rng.randrange(10000, max(low, 10006) - 5)
        ok = True
        for host in ("127.0.0.1", "127.0.0.2"):
            for i in range(5):
                t = socket.socket()
                try:
                    t.bind((host, base + i))
                except OSError:
                    ok = False
                t.close()
        if ok:
            return base
    fail("no five free consecutive ports")


def case_base():
    for attempt in range(5):
        base = free_base()
        try:
            srv = Server("--base-port", str(base), "--bind", "127.0.0.2")
            break
        except StartError as e:
            # A port may have been taken between the check and the bind.
            if attempt == 4 or "in use" not in str(e):
                fail("weft-multi did not start: %s" % e)
    want = {n: base + i for i, n in enumerate(NAMES)}
    check(srv.port == want, "ports %s, want %s" % (srv.port, want))
    check(srv.addr == {n: "127.0.0.1" if n == "admin" else "127.0.0.2" for n in NAMES},
          "addresses %s" % srv.addr)
    check(curl(srv.url("http", "/")) == "hello, world\n", "GET / on base+0")
    s = connect(srv, "echo")
    s.sendall(b"ping\n")
    check(recv_exact(s, 5) == b"ping\n", "echo on base+1")
    s.close()
    Chat(srv).s.close()
    check(admin(srv, "help")[0][-1] == "ok", "admin on base+3")
    check(curl(srv.url("sniff", "/")) == "hello, world\n", "GET / on base+4")
    srv.stop()


def case_cross():
    srv = start()
    # Members on both workers (connections alternate over them), one via sniff.
    clients = [Chat(srv) for _ in range(4)]
    check({c.worker for c in clients} == {0, 1}, "chat clients on workers %s" %
          [c.worker for c in clients])
    plan = [("carol", "blue"), ("Alice", "blue"), ("bob", "green"), ("dave", "blue")]
    for c, (nick, room) in zip(clients, plan):
        c.join(nick, room)
    sniffed = Chat(srv, "sniff")
    sniffed.join("eve", "green")
    want = {"rooms": [{"name": "blue", "count": 3, "members": ["Alice", "carol", "dave"]},
                      {"name": "green", "count": 2, "members": ["bob", "eve"]}]}
    two_xx = 0
    got = json.loads(curl(srv.url("http", "/chat/rooms")))
    two_xx += 1
    check(got == want, "/chat/rooms: %s" % got)
    # Pipelined around it: the answers come in request order.
    s = connect(srv, "http")
    req = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(req % b"/" + req % b"/chat/rooms" + req % b"/" + req % b"/chat/rooms" +
              b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    two_xx += 5
    got = recv_until_eof(s).split(b"HTTP/1.1 ")[1:]
    check(len(got) == 5, "pipelined: %d answers" % len(got))
    for i, g in enumerate(got):
        body = g.split(b"\r\n\r\n", 1)[1]
        if i % 2:
            check(json.loads(body) == want, "pipelined /chat/rooms %d: %r" % (i, body))
        else:
            check(body == b"hello, world\n", "pipelined / %d: %r" % (i, body))
    s.close()
    head = curl("-I", srv.url("http", "/chat/rooms"))
    two_xx += 1
    check(head.startswith("HTTP/1.1 200") and "application/json" in head, "HEAD: %s" % head)
    code = curl("-o", "/dev/null", "-w", "%{http_code}", "-d", "x", srv.url("http", "/chat/rooms"))
    check(code == "405", "POST /chat/rooms: %s" % code)
    # A member leaves: the listing follows.
    clients[1].say("/leave")
    clients[1].skip_to("* Alice left #blue")
    got = json.loads(curl(srv.url("http", "/chat/rooms")))
    two_xx += 1
    check(got["rooms"][0] == {"name": "blue", "count": 2, "members": ["carol", "dave"]},
          "after /leave: %s" % got)
    # Echo traffic, then chat's /stats shows exactly these counts.
    for n in (10, 1000):
        e = connect(srv, "echo")
        e.sendall(b"e" * n)
        recv_exact(e, n)
        e.close()
    want_stats = ("* stats: http_2xx %d, http_4xx 1, http_5xx 0, echo_connections 2, "
                  "echo_bytes 1010" % two_xx)

    def chat_stats():
        sniffed.say("/stats")
        return sniffed.r.line()
    wait_for("chat /stats", chat_stats, want_stats)
    sniffed.say("/stats now")
    sniffed.expect("error: usage: /stats")
    sniffed.say("/help")
    help_lines = [sniffed.r.line() for _ in range(3)]
    check(help_lines[2] == "* /stats: the HTTP and echo counters (latest sample)",
          "/help: %s" % help_lines)
    for c in clients + [sniffed]:
        c.s.close()
    srv.stop()


def try_echo(srv, n):
    """Open n echo connections at once; how many echoed (the rest were refused)."""
    socks = [connect(srv, "echo") for _ in range(n)]
    ok = 0
    for s in socks:
        try:
            s.sendall(b"x")
            ok += s.recv(1) == b"x"
        except OSError:
            pass  # reset: refused at accept
    for s in socks:
        s.close()
    return ok


def listener_line(srv, name):
    for line in admin(srv, "listeners")[0][:-1]:
        if line.split()[1] == name:
            return line
    fail("no listener %s" % name)


def case_limit():
    srv = start("--limit", "chat,rate=7,burst=3", "--limit", "sniff,per-source=4")
    wait_for("a sample", lambda: "accepted" in listener_line(srv, "echo"), True)
    check(" chat %s:%d rate 7 burst 3 " % (srv.addr["chat"], srv.port["chat"])
          in listener_line(srv, "chat"), listener_line(srv, "chat"))
    check(" rate 0 burst 0 " in listener_line(srv, "echo"), listener_line(srv, "echo"))
    check(try_echo(srv, 5) == 5, "echo before the limit")
    out = admin(srv, "limit echo 5", "limit nope 1", "limit 9 1", "limit echo x",
                "limit echo 1 2 3", "limit echo", "limit 1 1")
    check(out[0] == ["ok echo: rate 5/s, burst 5"], "limit echo 5: %s" % out[0])
    check(out[1] == ["error: no listener 'nope' (see listeners)"], "nope: %s" % out[1])
    check(out[2] == ["error: no listener '9' (see listeners)"], "9: %s" % out[2])
    check(out[3] == ["error: RATE and BURST are numbers from 0 to 4294967295"], "x: %s" % out[3])
    check(out[4] == ["error: usage: limit LISTENER RATE [BURST]"], "3 args: %s" % out[4])
    check(out[5] == ["error: usage: limit LISTENER RATE [BURST]"], "1 arg: %s" % out[5])
    check(out[6] == ["ok echo: rate 1/s, burst 1"], "limit 1 1 (by index): %s" % out[6])
    check(" rate 1 burst 1 " in listener_line(srv, "echo"), listener_line(srv, "echo"))
    # One token and one more a second: of 20 connections made at once, at
    # most 1 + the seconds they took get through; the rest are refused.
    t0 = time.monotonic()
    ok = try_echo(srv, 20)
    took = time.monotonic() - t0
    check(1 <= ok <= 2 + int(took), "%d of 20 accepted in %.2f s at 1/s, burst 1" % (ok, took))
    wait_for("rejected_rate", lambda: re.search(r"rejected_rate (\d+)",
                                                listener_line(srv, "echo")).group(1),
             str(20 - ok))
    check(admin(srv, "limit echo 0")[0] == ["ok echo: no accept limit"], "limit echo 0")
    check(try_echo(srv, 20) == 20, "echo after the limit was lifted")
    srv.stop()


def case_listen():
    srv = start("--listen", "127.0.0.1:0,name=extra,rate=50", "--listen", "127.0.0.1:0,name=more")
    check(sorted(srv.port) == sorted(NAMES + ["0", "more"]), "listeners %s" % srv.port)
    lines = admin(srv, "listeners")[0]
    check(lines[0].startswith("0 extra 127.0.0.1:%d rate 50 burst 50" % srv.port["0"]),
          "listeners: %s" % lines)
    check([l.split()[1] for l in lines[:-1]] == ["extra", "more"] + NAMES, "listeners: %s" % lines)
    # --listen's addresses detect the protocol, as the sniff port does.
    for port in ("0", "more"):
        check(curl(srv.url(port, "/")) == "hello, world\n", "GET / on --listen %s" % port)
        s = connect(srv, port)
        s.sendall(b"not http\n")
        check(recv_exact(s, 9) == b"not http\n", "echo on --listen %s" % port)
        s.close()
    check(curl(srv.url("http", "/")) == "hello, world\n", "GET / on the http port")
    srv.stop()


def case_stat():
    srv = start(admin_socket=True)
    sock = srv.sock
    deadline = time.monotonic() + 10
    while True:
        p = subprocess.run([STAT, "--socket", sock, "--once"], capture_output=True, timeout=20)
        if p.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(p.returncode == 0, "weft-stat: %s" % p.stderr.decode())
    text = p.stdout.decode()
    check(re.search(r"^listener +address +accepted", text, re.M), "no listener table:\n" + text)
    for n in NAMES:
        check(re.search(r"^%s +%s:%d +\d" % (n, re.escape(srv.addr[n]), srv.port[n]), text, re.M),
              "weft-stat lacks listener %s at %s:%d:\n%s" % (n, srv.addr[n], srv.port[n], text))
    srv.stop()


def case_help():
    p = subprocess.run([MULTI, "--help"], capture_output=True, timeout=20)
    text = p.stdout.decode()
    check(p.returncode == 0, "--help exit %d" % p.returncode)
    for word in ["--base-port", "--sniff-timeout", "--limit", "+0 http", "+1 echo", "+2 chat",
                 "+3 admin", "+4 sniff", "limit LISTENER RATE [BURST]"]:
        check(word in text, "--help lacks %r" % word)
    for args, why in [(["--base-port", "65532"], "65531"), (["--limit", "ftp,rate=1"], "PROTO"),
                      (["--limit", "http,rate=x"], "rate"), (["--limit", "http,name=x"], "name"),
                      (["--sniff-timeout", "0"], "milliseconds"), (["--port", "65533"], "65531")]:
        p = subprocess.run([MULTI, "--stats-socket", ""] + args, capture_output=True, timeout=20)
        err = p.stderr.decode()
        check(p.returncode == 2 and why in err, "%s: exit %d, %r" % (args, p.returncode, err))


CASES = {"ports": case_ports, "base": case_base, "cross": case_cross, "limit": case_limit,
         "listen": case_listen, "stat": case_stat, "help": case_help}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in CASES:
        print(__doc__)
        sys.exit(2)
    CASE, MULTI, STAT = sys.argv[1:4]
    if shutil.which("curl") is None:
        fail("curl not found: install the Debian package 'curl'")
    try:
        CASES[CASE]()
    except Exception as e:  # a timeout, a reset, bad JSON: the server still goes
        fail("%s: %s" % (type(e).__name__, e))
    print("multi_test %s: ok" % CASE)
