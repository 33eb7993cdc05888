"""chat_ws.py - weft-chat's HTTP listener, WebSocket and browser client.

    usage: /usr/bin/python3 chat_ws.py CASE WEFT-CHAT

Run with Debian's python3, which has python3-websockets: the WebSocket
client of these cases is that library (not written here), except where a
case needs bytes no correct client sends (an unmasked frame). Each case
starts weft-chat with --http 127.0.0.1:0 on a fresh database and stops it
with SIGTERM (exit status 0). Every wait is bounded.

  http      GET / (the page), /chat.js, /chat.css with their types; 404,
            405 (POST), 431 (a head over 8 KiB), 400 (an upgrade without
            a key); keep-alive: two requests on one connection
  ws        over websockets: the JSON protocol (register, login, join,
            message to a TCP member and back, private), a message in three
            fragments, a ping between fragments (answered, the message
            intact), the line protocol over WebSocket, the close handshake
            (1000 echoed); refused: a frame over --max-line (1009), bad
            UTF-8 in a text frame (1007), a binary frame (1003), and with a
            raw socket an unmasked frame (1002); chat_ws_refused counts
            the four refusals
  browser   two headless Chromium pages of the web client (amy, bob) log
            in, join a room, exchange a room message and a private message
            each; each page then reports what it shows (members, log lines)
            to an observer, and both must show the other's messages
"""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import chatlib
import websockets
from websockets.frames import Opcode

CHAT = None
CASE = ""


fail, check, RUNNING = chatlib.fail, chatlib.check, chatlib.RUNNING


class Server:
    def __init__(self, d, *args):
        self.sock = os.path.join(d, "admin.sock")
        argv = [CHAT, "--port", "0", "--no-pin", "--stats-interval", "50", "--stats-socket",
                self.sock, "--db", os.path.join(d, "chat.db"), "--http", "127.0.0.1:0",
                "--kdf-mem", "65536", "--kdf-ops", "1"] + list(args)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        RUNNING.append(self.p)
        self.port = self.http = None
        end = time.time() + 10
        while time.time() < end and (self.port is None or self.http is None):
            line = self.p.stdout.readline().decode()
            if not line:
                break
            m = re.search(r"listening on [0-9.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            m = re.search(r"web client on http://[0-9.]+:(\d+)/", line)
            if m:
                self.http = int(m.group(1))
        check(self.port and self.http, "weft-chat did not start with --http")
        self.url = "ws://127.0.0.1:%d/ws" % self.http

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(20)
        except subprocess.TimeoutExpired:
            fail("weft-chat did not stop after SIGTERM")
        RUNNING.remove(self.p)
        check(rc == 0, "weft-chat exited %d" % rc)

    def counter(self, name, want):
        return chatlib.counter(self.sock, name, want)


def http(port, raw, timeout=10):
    """Send raw bytes, return everything until the server closes or goes quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(raw)
    out = b""
    s.settimeout(1.0)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    s.close()
    return out


def case_http(d):
    srv = Server(d)
    r = http(srv.http, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 200 OK\r\n"), "GET /: %r" % r[:80])
    check(b"Content-Type: text/html; charset=utf-8" in r and b"<title>weft-chat</title>" in r,
          "GET / is not the page")
    for path, ctype in (("/chat.js", b"text/javascript"), ("/chat.css", b"text/css")):
        r = http(srv.http, b"GET %s HTTP/1.1\r\n\r\n" % path.encode())
        check(r.startswith(b"HTTP/1.1 200 OK") and ctype in r, "GET %s: %r" % (path, r[:120]))
    r = http(srv.http, b"GET /chat.js HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
    check(r.count(b"HTTP/1.1 200 OK") == 1 and b"HTTP/1.1 404 Not Found" in r,
          "keep-alive: %r" % r[-200:])
    r = http(srv.http, b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 405 Method Not Allowed"), "POST: %r" % r[:80])
    r = http(srv.http, b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 431"), "big head: %r" % r[:80])
    r = http(srv.http, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 400 Bad Request"), "upgrade without a key: %r" % r[:80])
    srv.stop()


class Tcp:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, *lines):
        self.s.sendall(b"".join(l.encode() + b"\n" for l in lines))

    def next(self, timeout=10):
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            check(left > 0, "no line from the TCP client's server (have %r)" % self.buf)
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                continue
            check(d, "the server closed the TCP client")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def expect(self, want):
        got = self.next()
        pat = ".*".join(re.escape(p) for p in want.split("*"))
        check(re.fullmatch(pat, got), "TCP: expected %r, got %r" % (want, got))
        return got


async def jrecv(ws, **want):
    got = json.loads(await asyncio.wait_for(ws.recv(), 10))
    for k, v in want.items():
        check(got.get(k) == v, "expected %s=%r in %r" % (k, v, got))
    return got


async def closed_with(ws, code):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed as e:
        check(e.rcvd is not None and e.rcvd.code == code,
              "closed with %r, want %d" % (e.rcvd, code))
        return
    except asyncio.TimeoutError:
        fail("not closed with %d in 10 s" % code)


async def ws_session(srv):
    t = Tcp(srv.port)
    t.next()  # welcome
    t.send("/register tom password1", "/login tom password1", "/join r")
    t.expect("* registered tom: *")
    t.expect("* logged in as tom")
    t.expect("* tom joined #r")
    async with websockets.connect(srv.url, max_size=None) as ws:
        check((await ws.recv()).startswith("* welcome to weft-chat"), "no text welcome")
        await ws.send(json.dumps({"type": "register", "user": "web", "password": "password1"}))
        await jrecv(ws, type="welcome", protocol="json")
        await jrecv(ws, type="notice", data="registered web: now /login web PASSWORD")
        await ws.send(json.dumps({"type": "login", "user": "web", "password": "password1"}))
        await jrecv(ws, type="notice", data="logged in as web")
        # A message in three fragments.
        await ws.send(['{"type":"jo', 'in","ro', 'om":"r"}'])
        await jrecv(ws, type="join", room="r", user="web")
        t.expect("* web joined #r")
        t.send("hello web")
        await jrecv(ws, type="message", user="tom", data="hello web")
        # A ping between fragments: answered, the message intact.
        await ws.write_frame(False, Opcode.TEXT, b'{"type":"mess')
        pong = await ws.ping(b"between")
        await ws.write_frame(True, Opcode.CONT, b'age","data":"hi tom"}')
        await asyncio.wait_for(pong, 10)
        await jrecv(ws, type="message", user="web", data="hi tom")
        t.expect("<tom> hello web")
        t.expect("<web> hi tom")
        await ws.send(json.dumps({"type": "private", "user": "tom", "data": "psst"}))
        t.expect("*web* psst")
        t.send("/msg web back")
        await jrecv(ws, type="private", user="tom", data="back")
        await ws.send(json.dumps({"type": "file", "room": "r", "name": "a.txt", "size": 3}))
        await jrecv(ws, type="error", data="no files over WebSocket (yet): use TCP")
    t.expect("* web left #r (websocket close)")
    # The line protocol over WebSocket, and the close handshake.
    async with websockets.connect(srv.url) as ws:
        await ws.recv()
        await ws.send("/login web password1")
        check(await ws.recv() == "* logged in as web", "line protocol login")
        await ws.send("/join r")
        got = await ws.recv()
        check(got == "* history of #r (2 messages)", "history over ws: %r" % got)
        check((await ws.recv()).endswith("] <tom> hello web"), "history line 1")
        check((await ws.recv()).endswith("] <web> hi tom"), "history line 2")
        check(await ws.recv() == "* end of history", "history's end")
        check(await ws.recv() == "* web joined #r", "join over ws")
        await ws.close(1000)
        check(ws.close_code == 1000, "close code %r" % ws.close_code)
    t.expect("* web joined #r")
    t.expect("* web left #r (websocket close)")
    # Refusals: each closes that client with its code; the others go on.
    async with websockets.connect(srv.url, max_size=None) as ws:
        await ws.recv()
        await ws.send("x" * 5000)  # over --max-line 4096
        await closed_with(ws, 1009)
    async with websockets.connect(srv.url) as ws:
        await ws.recv()
        await ws.write_frame(True, Opcode.TEXT, b"bad \xff\xfe utf-8")
        await closed_with(ws, 1007)
    async with websockets.connect(srv.url) as ws:
        await ws.recv()
        await ws.send(b"\x00\x01binary")
        await closed_with(ws, 1003)
    t.send("still here")
    t.expect("<tom> still here")


def raw_unmasked(srv):
    s = socket.create_connection(("127.0.0.1", srv.http), timeout=10)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(4096)
        check(d, "no handshake answer")
        data += d
    check(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in data,
          "the RFC 6455 sample key's accept: %r" % data)
    s.sendall(b"\x81\x05hello")  # a text frame without a mask
    end = time.time() + 10
    while time.time() < end:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    check(b"\x88\x02\x03\xea" in data, "no close 1002 for an unmasked frame: %r" % data[-40:])


def case_ws(d):
    srv = Server(d)
    asyncio.run(ws_session(srv))
    raw_unmasked(srv)
    n = srv.counter("chat_ws_refused", 4)
    check(n == 4, "chat_ws_refused %r != 4" % n)
    srv.stop()


def case_browser(d):
    chromium = shutil.which("chromium")
    check(chromium, "no chromium (Debian package chromium: scripts/deps.sh)")
    srv = Server(d, "--max-line", "16384")
    obs = Tcp(srv.port)
    obs.next()
    obs.send("/register observer password1", "/login observer password1")
    obs.expect("* registered observer: *")
    obs.expect("* logged in as observer")
    pages = []
    for me, other in (("amy", "bob"), ("bob", "amy")):
        q = ("auto=1&user=%s&pass=password1&room=lobby&say=hello+from+%s&to=%s&pm=psst+%s"
             "&expect=1&want=%%3C%s%%3E+hello+from+%s|%%3C%s%%3E+hello+from+%s|*%s*+psst+%s"
             "&report=observer" % (me, me, other, other, other, other, me, me, other, me))
        url = "http://127.0.0.1:%d/?%s" % (srv.http, q)
        prof = os.path.join(d, "profile-" + me)
        p = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                              "--no-first-run", "--user-data-dir=" + prof, url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        RUNNING.append(p)
        pages.append(p)
    reports = {}
    end = time.time() + 60
    while len(reports) < 2 and time.time() < end:
        line = obs.next(timeout=max(1, end - time.time()))
        m = re.match(r"\*(amy|bob)\* (\{.*\})$", line)
        if m:
            reports[m.group(1)] = json.loads(m.group(2))
    for p in pages:
        p.kill()
        p.wait()
        RUNNING.remove(p)
    check(len(reports) == 2, "reports from %r only" % sorted(reports))
    for me, other in (("amy", "bob"), ("bob", "amy")):
        r = reports[me]
        # The page's member list is the one its /join answered plus the
        # join notices after it; a join on another worker in between can be
        # missing from it (a known race, named in issue 17's note), so only
        # its own name is required here. Delivery is checked by the log.
        check(me in r["members"] and set(r["members"]) <= {"amy", "bob"},
              "%s's page shows members %r" % (me, r["members"]))
        if other not in r["members"]:
            print("chat_ws browser: note: %s's member list lacks %s" % (me, other))
        log = r["log"]
        for want in ("<%s> hello from %s" % (me, me), "<%s> hello from %s" % (other, other),
                     "*%s* psst %s" % (other, me), "-> %s: psst %s" % (other, other)):
            check(any(want in l for l in log), "%s's page lacks %r: %r" % (me, want, log))
    print("chat_ws browser: amy's page: %r" % reports["amy"]["log"])
    srv.stop()


CASES = {"http": case_http, "ws": case_ws, "browser": case_browser}


def start(case, exe):
    global CASE, CHAT
    CASE, CHAT = case, exe


if __name__ == "__main__":
    chatlib.main("chat_ws", CASES, sys.argv, start)
