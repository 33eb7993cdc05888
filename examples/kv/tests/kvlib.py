"""kvlib.py - what the python tests of weft-kv share (imported, not run).

start() runs weft-kv (the path in KV, set by the test from its argv) on
127.0.0.1, port 0, and returns it with its port; stop() stops it by PID
with SIGTERM and insists on exit status 0. cmd() builds a multibulk
request, Reader reads RESP2 replies, admin() asks the admin socket.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

KV = None


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def start(*args, stats_socket=""):
    """weft-kv with args; stats_socket "" (the default) means none."""
    tmp = tempfile.mkdtemp(prefix="weft-kv-test.")
    log = open(os.path.join(tmp, "out"), "w+")
    p = subprocess.Popen([KV, "--bind", "127.0.0.1", "--port", "0", "--stats-socket", stats_socket]
                         + list(args), stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        log.seek(0)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+),", log.read())
        if m:
            return p, int(m.group(1)), log
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    log.seek(0)
    fail("weft-kv did not start: " + log.read())


def stop(p, log):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("weft-kv did not exit within 30 s of SIGTERM")
    if rc != 0:
        log.seek(0)
        fail("weft-kv exit status %d: %s" % (rc, log.read()))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def cmd(*args):
    """A multibulk request."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    """Reads RESP2 replies from a socket."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"-"):
            return line  # status and errors keep their type byte
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ValueError("bad reply line %r" % line)

    def eof(self):
        """True when the peer closes with nothing more to read."""
        try:
            return self.s.recv(1) == b"" and self.buf == b""
        except ConnectionResetError:
            return self.buf == b""


def roundtrip(port, *args):
    s = connect(port)
    s.sendall(cmd(*args))
    r = Reader(s).reply()
    s.close()
    return r


def expect_error_close(port, data, want):
    s = connect(port)
    s.sendall(data)
    rd = Reader(s)
    got = rd.reply()
    if got != want:
        fail("%r: got %r, want %r" % (data[:40], got, want))
    if not rd.eof():
        fail("%r: connection not closed after the protocol error" % data[:40])
    s.close()


def admin(path, command="stats"):
    """One admin-socket command's answer, as a dict of its "name value" lines."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(command.encode() + b"\nquit\n")
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    vals = {}
    for line in out.decode(errors="replace").splitlines():
        k, _, v = line.partition(" ")
        try:
            vals[k] = float(v)
        except ValueError:
            pass
    return vals
