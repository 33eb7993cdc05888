"""lb_backend.py - an HTTP/1.1 backend for weft-lb's tests that misbehaves on purpose.

    usage: python3 lb_backend.py NAME [PORT]

Listens on 127.0.0.1:PORT (0: a free port), prints "port N" once ready, and
answers each request by its path (a thread per connection, keep-alive):

  /                 200 "NAME\\n" with X-Backend: NAME (any other path too)
  /health           200 "ok"
  /count            200 "conns=C reqs=R": connections accepted, requests read
  /slow?ms=N        the answer of / after N ms (with &only=NAME: only
                    the backend of that name waits)
  /headers          200, the request head as it arrived, as the body
  /echo             200 "LEN SHA256" of the request body (Content-Length or
                    chunked); Expect: 100-continue gets "100 Continue" first
  /big?n=N          200 with N bytes of a known pattern (Content-Length)
  /chunked          200 chunked in three chunks, with a trailer
  /1xx              "103 Early Hints", then 200
  /huge-headers     a response head of 40 KB
  /early-close      closes without an answer (&only=NAME: only that one)
  /reset            resets (SO_LINGER 0) without an answer (&only=NAME too)
  /slow-head?ms=N   the status line, then the rest of the head after N ms
  /close-delimited  200 without a length, the body ended by the close
  /status?code=N    an empty answer with status N (&only=NAME: 200 from others)
  /race             200, then the next request on this connection is closed
                    unanswered (the keep-alive reuse race, on demand)
Every wait is bounded; the process runs until killed.
"""
import hashlib
import socket
import struct
import sys
import threading
import time
import urllib.parse

NAME = sys.argv[1]
LOCK = threading.Lock()
COUNTS = {"conns": 0, "reqs": 0}


def bump(k):
    with LOCK:
        COUNTS[k] += 1


class Conn:
    def __init__(self, s):
        self.s = s
        self.buf = b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise EOFError
            self.fill()
        h, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return h + b"\r\n\r\n"

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def body(self, hdrs):
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    return out
                out += self.take(size)
                self.take(2)
        return self.take(int(hdrs.get("content-length", "0")))


def answer(c, status, body=b"", extra=b"", reason=b"OK"):
    c.s.sendall(
        b"HTTP/1.1 %d %s\r\nX-Backend: %s\r\nContent-Length: %d\r\n%s\r\n"
        % (status, reason, NAME.encode(), len(body), extra)
        + body
    )


def serve(s):
    bump("conns")
    c = Conn(s)
    doomed = False
    try:
        while True:
            raw = c.head()
            bump("reqs")
            if doomed:
                s.close()
                return
            lines = raw.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            hdrs = {}
            for ln in lines[1:]:
                if ln:
                    k, v = ln.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            u = urllib.parse.urlsplit(target)
            q = dict(urllib.parse.parse_qsl(u.query))
            path = u.path
            if hdrs.get("expect", "").lower() == "100-continue":
                s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = c.body(hdrs)
            if path == "/health":
                answer(c, 200, b"ok")
            elif path == "/count":
                with LOCK:
                    answer(c, 200, b"conns=%d reqs=%d" % (COUNTS["conns"], COUNTS["reqs"]))
            elif path == "/slow":
                if q.get("only", NAME) == NAME:
                    time.sleep(min(int(q.get("ms", "100")), 10000) / 1000.0)
                answer(c, 200, NAME.encode() + b"\n")
            elif path == "/headers":
                answer(c, 200, raw)
            elif path == "/echo":
                answer(c, 200, b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode()))
            elif path == "/big":
                # the head first, then the body in pieces (a slow head would
                # meet the proxy's response timeout)
                n = int(q.get("n", "1000"))
                s.sendall(b"HTTP/1.1 200 OK\r\nX-Backend: %s\r\nContent-Length: %d\r\n\r\n" % (NAME.encode(), n))
                piece = bytes(range(256)) * 4096
                for off in range(0, n, len(piece)):
                    s.sendall(piece[: min(len(piece), n - off)])
            elif path == "/chunked":
                s.sendall(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                    b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nX-Sum: 12\r\n\r\n"
                )
            elif path == "/1xx":
                s.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n")
                answer(c, 200, b"after hints")
            elif path == "/huge-headers":
                s.sendall(
                    b"HTTP/1.1 200 OK\r\n"
                    + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 60) for i in range(600))
                    + b"Content-Length: 0\r\n\r\n"
                )
            elif path in ("/early-close", "/reset") and q.get("only", NAME) != NAME:
                answer(c, 200, NAME.encode() + b"\n")
            elif path == "/early-close":
                s.close()
                return
            elif path == "/reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
                return
            elif path == "/slow-head":
                s.sendall(b"HTTP/1.1 200 OK\r\n")
                time.sleep(min(int(q.get("ms", "1000")), 10000) / 1000.0)
                s.sendall(b"Content-Length: 2\r\n\r\nok")
            elif path == "/close-delimited":
                s.sendall(b"HTTP/1.1 200 OK\r\nX-Backend: %s\r\n\r\nuntil the close" % NAME.encode())
                s.close()
                return
            elif path == "/status":
                code = int(q.get("code", "200")) if q.get("only", NAME) == NAME else 200
                answer(c, code, reason=b"Status")
            elif path == "/race":
                answer(c, 200, NAME.encode() + b"\n")
                doomed = True
            else:
                answer(c, 200, NAME.encode() + b"\n")
            if hdrs.get("connection", "").lower() == "close":
                s.close()
                return
    except (EOFError, OSError, ValueError):
        pass
    try:
        s.close()
    except OSError:
        pass


def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
    ls.listen(512)
    print("port %d" % ls.getsockname()[1], flush=True)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


main()
