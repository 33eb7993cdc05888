"""chat_store.py - weft-chat's accounts and history, against a real server.

    usage: python3 chat_store.py CASE WEFT-CHAT

Each case starts weft-chat on a free loopback port with a database in a
fresh directory (removed after), drives it with socket clients and stops it
by its PID (SIGTERM, exit status 0), unless the case kills it on purpose.
Every wait is bounded. A cheap Argon2id cost (--kdf-mem 65536 --kdf-ops 1)
keeps the cases fast, except in `offloop`, which needs a slow hash.

  accounts  /register (short password, taken name, bad usage), /login
            (wrong password, unknown name, twice, case), no /nick without
            an account, with --allow-guests a guest cannot take a
            registered name; the counters chat_registered, chat_logins,
            chat_login_failed on the admin socket
  limits    --login-fail-limit 3: the 4th login of an account after 3
            failures is refused untried, even with the right password, and
            other accounts still log in; an address is throttled after 4x
            the limit over any accounts; chat_login_throttled counts it
  history   room messages replayed on /join with times (the last
            --history N), /history, /history ROOM N, bad /history usage;
            a joiner gets no line twice and misses none while others talk;
            offline /msg to a registered account arrives at its next login
  restart   SIGTERM and start again on the same database: accounts,
            history and a stored offline message are still there
  kill9     kill -9 in the middle of a burst of messages: every message
            that was echoed to its sender (the acknowledgement) is in the
            database when the server starts again (read with sqlite3)
  json      the JSON protocol (chosen by a first byte '{'): register, login,
            join, message, private, history, who as objects; a text
            client's lines reach a JSON client as objects (escapes, bad
            UTF-8 as U+FFFD) and the other way; every bad input (unknown
            field or type, wrong type, control characters, duplicate key,
            deep nesting, \\u0000, not an object) gets an error and is
            counted (chat_json_bad); a line over --max-line closes it
  files     /send to a room (300 KB, byte-exact by /get, announced) and to
            a user (only sender and recipient may /get it); bad names and
            IDs; over --file-max and over --file-quota refused with the
            sender closed (chat_file_refused); a slow sender cut off at
            --file-timeout while the room goes on (chat_file_slow); a
            vanished sender leaves no partial file; JSON file and get;
            --file-ttl removes the files and their IDs
  stats     the "chat" admin command's users and rooms gauges follow
            nicks, joins, leaves, a rename and closes on 3 workers; the
            chat_users_in/out and chat_rooms_opened/closed counters; the
            fan-out latency (weft's handler histogram) has a sample per line
  offloop   with one worker and one hashing thread and a slow Argon2id, a
            member's room message is echoed while another client's /login
            is still hashing: the KDF runs off the worker
"""
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import chatlib

CHAT = None
CASE = ""
FAST = ["--kdf-mem", "65536", "--kdf-ops", "1"]


fail, check, RUNNING = chatlib.fail, chatlib.check, chatlib.RUNNING


class Server:
    """weft-chat on a free port with the database dir/chat.db."""

    def __init__(self, d, *args):
        self.dir = d
        self.db = os.path.join(d, "chat.db")
        self.sock = os.path.join(d, "admin.sock")
        argv = [CHAT, "--port", "0", "--no-pin", "--stats-interval", "50",
                "--stats-socket", self.sock, "--db", self.db] + list(args)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        RUNNING.append(self.p)
        end = time.time() + 10
        line = b""
        while time.time() < end:
            line = self.p.stdout.readline()
            m = re.search(rb"listening on [0-9.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return
            if not line:
                break
        fail("weft-chat did not start: %r" % line)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(20)
        except subprocess.TimeoutExpired:
            fail("weft-chat did not stop in 20 s after SIGTERM")
        RUNNING.remove(self.p)
        check(rc == 0, "weft-chat exited %d after SIGTERM" % rc)

    def kill9(self):
        self.p.kill()
        self.p.wait()
        RUNNING.remove(self.p)

    def counter(self, name, want):
        return chatlib.counter(self.sock, name, want)

    def admin(self, cmd):
        return chatlib.admin(self.sock, cmd)

    def gauges(self, want):
        """The "chat" admin command's users and rooms, once they are want."""
        end = time.time() + 5
        got = None
        while time.time() < end:
            text = self.admin("chat")
            got = tuple(int(re.search(r"^%s (\d+)$" % k, text, re.M).group(1))
                        for k in ("users", "rooms"))
            if got == want:
                break
            time.sleep(0.05)
        return got


class Client:
    def __init__(self, srv):
        self.s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        self.buf = b""
        self.next()  # the welcome

    def send(self, *lines):
        self.s.sendall(b"".join(l.encode() + b"\n" for l in lines))

    def next(self, timeout=10, want=None):
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            if left <= 0:
                fail("no line in %g s (have %r, want %r)" % (timeout, self.buf, want))
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                fail("the server closed the connection (have %r)" % self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def expect(self, want, timeout=10):
        """The next line is want, where a '*' stands for any text."""
        got = self.next(timeout, want)
        pat = ".*".join(re.escape(p) for p in want.split("*"))
        check(re.fullmatch(pat, got), "expected %r, got %r" % (want, got))
        return got

    def quiet(self, secs=0.3):
        """Nothing more arrives within secs."""
        self.s.settimeout(secs)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            d = b""
        check(not d and b"\n" not in self.buf, "unexpected output %r" % (self.buf + d))

    def close(self):
        self.s.close()

    def quit(self):
        """/quit, and wait for the server's close: its nick is free by then."""
        self.send("/quit")
        self.expect("* bye")
        self.s.settimeout(10)
        while True:
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                fail("no close after /quit")
            if not d:
                break
        self.s.close()


def login(srv, name, pw="password1", register=True):
    c = Client(srv)
    if register:
        c.send("/register %s %s" % (name, pw))
        c.expect("* registered %s: now /login %s PASSWORD" % (name, name))
    c.send("/login %s %s" % (name, pw))
    c.expect("* logged in as %s" % name)
    return c


def case_accounts(d):
    srv = Server(d, *FAST)
    a = Client(srv)
    a.send("/nick guest")
    a.expect("error: log in first: /login NAME PASSWORD (or /register NAME PASSWORD)")
    a.send("/join r")
    a.expect("error: choose a nick first: /nick NAME")
    a.send("/register bob short")
    a.expect("error: a password has at least 8 bytes")
    a.send("/register bob")
    a.expect("error: usage: /register NAME PASSWORD")
    a.send("/register b@d password1")
    a.expect("error: usage: /register NAME PASSWORD")
    a.send("/register bob password1")
    a.expect("* registered bob: now /login bob PASSWORD")
    a.send("/register BOB password2")
    a.expect("error: the name BOB is taken")
    a.send("/login bob wrongpass")
    a.expect("error: wrong name or password")
    a.send("/login nobody password1")
    a.expect("error: wrong name or password")
    a.send("/login bob password1", "/join r", "hi")  # pipelined behind the login
    a.expect("* logged in as bob")
    a.expect("* bob joined #r")
    a.expect("<bob> hi")
    a.send("/login bob password1")
    a.expect("error: already logged in as bob")
    a.send("/nick other")
    a.expect("error: you are logged in as bob: your nick is your account's name")
    b = Client(srv)
    b.send("/login Bob password1")
    b.expect("error: Bob is already logged in")
    check(srv.counter("chat_registered", 1) == 1, "chat_registered != 1")
    check(srv.counter("chat_logins", 1) == 1, "chat_logins != 1")
    check(srv.counter("chat_login_failed", 2) == 2, "chat_login_failed != 2")
    a.close()
    b.close()
    srv.stop()
    srv = Server(d, "--allow-guests", *FAST)
    g = Client(srv)
    g.send("/nick bob")
    g.expect("error: nick bob is a registered account: /login bob PASSWORD")
    g.send("/nick guest1", "/join r", "hello")
    g.expect("* you are now guest1")
    g.expect("* history of #r (1 messages)")
    g.expect("[*] <bob> hi")
    g.expect("* end of history")
    g.expect("* guest1 joined #r")
    g.expect("<guest1> hello")
    g.send("/login bob password1")  # a guest logs in: the room hears the rename
    g.expect("* logged in as bob")
    g.expect("* guest1 is now known as bob")
    g.close()
    srv.stop()


def case_limits(d):
    srv = Server(d, "--login-fail-limit", "3", "--login-lockout", "60", *FAST)
    c = Client(srv)
    for n in ("amy", "bob", "cat", "dan", "eve"):
        c.send("/register %s password1" % n)
        c.expect("* registered %s: now /login %s PASSWORD" % (n, n))
    for _ in range(3):
        c.send("/login amy guess")
        c.expect("error: wrong name or password")
    c.send("/login amy password1")
    c.expect("error: too many failed logins: try again in * s")
    check(srv.counter("chat_login_throttled", 1) == 1, "chat_login_throttled != 1")
    # Another account from the same address: 9 failures so far < 12.
    c.send("/login bob password1")
    c.expect("* logged in as bob")
    c.close()
    c = Client(srv)
    for n in ("cat", "dan", "eve"):
        for _ in range(3 if n != "eve" else 2):
            c.send("/login %s guess" % n)
            c.expect("error: wrong name or password")
    # 3 (amy) + 3 + 3 + 2 = 11 failures from this address; one more locks it.
    c.send("/login eve guess")
    c.expect("error: wrong name or password")
    c.send("/login eve password1")
    c.expect("error: too many failed logins: try again in * s")
    c.close()
    srv.stop()


def case_history(d):
    srv = Server(d, "--history", "3", *FAST)
    a = login(srv, "amy")
    a.send("/history")
    a.expect("error: you are in no room: /join ROOM")
    a.send("/history 0")
    a.expect("error: usage: /history [ROOM] [N] (N from 1 to 500)")
    a.send("/history #r x")
    a.expect("error: usage: /history [ROOM] [N] (N from 1 to 500)")
    a.send("/join r")
    a.expect("* amy joined #r")
    for i in range(5):
        a.send("m%d" % i)
    for i in range(5):
        a.expect("<amy> m%d" % i)
    b = login(srv, "bob")
    b.send("/join r")
    b.expect("* history of #r (3 messages)")
    for i in range(2, 5):
        got = b.expect("[*] <amy> m%d" % i)
        check(re.match(r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\] ", got), "no time in %r" % got)
    b.expect("* end of history")
    b.expect("* bob joined #r")
    a.expect("* bob joined #r")
    b.send("/history r 5")
    b.expect("* history of #r (5 messages)")
    for i in range(5):
        b.expect("[*] <amy> m%d" % i)
    b.expect("* end of history")
    b.send("/history #nowhere")
    b.expect("* history of #nowhere (0 messages)")
    b.expect("* end of history")
    # A joiner while a member talks: every line once, in order, history then live.
    n = 300
    a.send(*["t%d" % i for i in range(n)])
    c = login(srv, "cat")
    c.send("/history r 500")  # parked while a talks; we read it after
    c.send("/join r")
    seen = []
    c.expect("* history of #r *")
    while True:
        line = c.next()
        if line == "* end of history":
            break
        seen.append(line)
    c.expect("* history of #r *")
    got = []
    while True:
        line = c.next()
        if line == "* end of history":
            break
        got.append(line.split("] ", 1)[1])
    c.expect("* cat joined #r")
    last = got[-1] if got else "<amy> m4"
    want = int(last[len("<amy> t"):]) + 1 if last.startswith("<amy> t") else 0
    while want < n:
        c.expect("<amy> t%d" % want)
        want += 1
    check(len(got) == 3, "the join replayed %d lines, not --history 3" % len(got))
    for i in range(n):
        a.expect("<amy> t%d" % i)
    a.expect("* cat joined #r")
    # Offline private messages wait for the next login.
    b.close()
    a.expect("* bob left #r (*)")
    a.send("/msg bob while you were out")
    a.expect("* bob is offline: they get your message at their next login")
    a.send("/msg nobody hello")
    a.expect("error: no such nick nobody")
    b = login(srv, "bob", register=False)
    b.expect("* 1 messages while you were away")
    b.expect("[*] *amy* while you were out")
    check(srv.counter("chat_offline", 1) == 1, "chat_offline != 1")
    b.quit()
    b = login(srv, "bob", register=False)  # delivered once
    b.send("/history r 1")
    b.expect("* history of #r (1 messages)")
    b.close()
    a.close()
    c.close()
    srv.stop()


def case_restart(d):
    srv = Server(d, *FAST)
    a = login(srv, "amy")
    a.send("/join lobby", "before restart")
    a.expect("* amy joined #lobby")
    a.expect("<amy> before restart")
    login(srv, "bob").quit()
    a.send("/msg bob kept for you")
    a.expect("* bob is offline: they get your message at their next login")
    a.close()
    srv.stop()
    srv = Server(d, *FAST)
    b = login(srv, "bob", register=False)
    b.expect("* 1 messages while you were away")
    b.expect("[*] *amy* kept for you")
    c = Client(srv)
    c.send("/register amy password2")
    c.expect("error: the name amy is taken")
    c.close()
    b.send("/join lobby")
    b.expect("* history of #lobby (1 messages)")
    b.expect("[*] <amy> before restart")
    b.expect("* end of history")
    b.expect("* bob joined #lobby")
    b.close()
    srv.stop()


def case_kill9(d):
    srv = Server(d, "--workers", "2", *FAST)
    a = login(srv, "amy")
    a.send("/join burst")
    a.expect("* amy joined #burst")
    # A reader thread counts the echoes (the acknowledgements) as they come.
    acked = [0]
    stop = threading.Event()

    def reader():
        buf = a.buf
        a.s.settimeout(0.2)
        while not stop.is_set():
            try:
                dd = a.s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not dd:
                break
            buf += dd
            *lines, buf = buf.split(b"\n")
            for line in lines:
                check(line == ("<amy> msg %d" % acked[0]).encode(), "echo %r" % line)
                acked[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    chunk = 5000
    a.send(*["msg %d" % i for i in range(chunk)])
    end = time.time() + 20
    while acked[0] < 1000 and time.time() < end:
        time.sleep(0.01)
    check(acked[0] >= 1000, "only %d echoes in 20 s" % acked[0])
    a.send(*["msg %d" % i for i in range(chunk, 2 * chunk)])
    srv.kill9()  # while the second chunk is being stored
    t.join(10)  # the reader drains what arrived before the kill, then sees the close
    stop.set()
    t.join()
    sent = 2 * chunk
    check(acked[0] < sent, "all %d echoed before the kill: no burst in flight" % sent)
    srv = Server(d, *FAST)  # recovers the WAL
    srv.stop()
    db = sqlite3.connect(os.path.join(d, "chat.db"))
    rows = [r[0] for r in db.execute("SELECT text FROM messages WHERE room='burst' ORDER BY id")]
    db.close()
    check(len(rows) >= acked[0], "%d acknowledged, %d stored" % (acked[0], len(rows)))
    check(rows == ["msg %d" % i for i in range(len(rows))], "stored rows are not msg 0.. in order")
    print("chat_store kill9: %d sent, %d acknowledged, %d stored" % (sent, acked[0], len(rows)))


def case_offloop(d):
    # About a second of Argon2id per hash on this machine: far above a round trip.
    slow = ["--kdf-mem", str(256 << 20), "--kdf-ops", "3"]
    srv = Server(d, "--workers", "1", "--auth-threads", "1", *slow)
    a = Client(srv)
    a.send("/register amy password1")
    a.expect("* registered amy: now /login amy PASSWORD", timeout=60)
    a.send("/login amy password1")
    a.expect("* logged in as amy", timeout=60)
    a.send("/join r")
    a.expect("* amy joined #r")
    b = Client(srv)
    b.send("/login amy nottheone")  # hashing now, on the pool
    time.sleep(0.05)
    a.send("still here")
    a.expect("<amy> still here")
    # The echo came first: b's answer still needs the hash.
    b.s.settimeout(0)
    try:
        early = b.s.recv(65536)
    except BlockingIOError:
        early = b""
    check(early == b"", "the login was answered before the room message: %r" % early)
    b.expect("error: wrong name or password", timeout=60)
    a.close()
    b.close()
    srv.stop()


class JClient(Client):
    """A JSON client: lines are objects; the text welcome is skipped."""

    def __init__(self, srv, first):
        Client.__init__(self, srv)  # reads the text welcome
        self.jsend(first)
        w = self.jnext()
        check(w.get("type") == "welcome" and w.get("protocol") == "json", "welcome %r" % w)

    def jsend(self, *objs):
        self.s.sendall(b"".join(json.dumps(o).encode() + b"\n" for o in objs))

    def jnext(self, timeout=10):
        line = self.next(timeout)
        try:
            return json.loads(line)
        except ValueError:
            fail("not JSON: %r" % line)

    def jexpect(self, **want):
        got = self.jnext()
        for k, v in want.items():
            check(got.get(k) == v, "expected %s=%r in %r" % (k, v, got))
        return got


def case_json(d):
    srv = Server(d, "--max-line", "512", *FAST)
    j = JClient(srv, {"type": "register", "user": "jay", "password": "pass word 1"})
    j.jexpect(type="notice", data="registered jay: now /login jay PASSWORD")
    j.jsend({"type": "login", "user": "jay", "password": "pass word 1"}, {"type": "join", "room": "r"})
    j.jexpect(type="notice", data="logged in as jay")
    got = j.jexpect(type="join", room="r", user="jay")
    check(isinstance(got.get("ts"), int), "no ts in %r" % got)
    a = login(srv, "amy")
    a.send("/join r")
    a.expect("* amy joined #r")
    j.jexpect(type="join", room="r", user="amy")
    text = 'quote " back \\ tab \t <b>'
    a.send(text)
    a.expect("<amy> " + text)
    got = j.jexpect(type="message", room="r", user="amy", data=text)
    check(isinstance(got.get("id"), int) and isinstance(got.get("ts"), int), "id, ts: %r" % got)
    a.s.sendall(b"bad \xff\xfe utf-8\n")  # relayed as is to text, as U+FFFD to JSON
    a.next()
    j.jexpect(type="message", data="bad \ufffd\ufffd utf-8")
    j.jsend({"type": "message", "data": "from json"})
    a.expect("<jay> from json")
    j.jexpect(type="message", user="jay", data="from json")
    j.jsend({"type": "private", "user": "amy", "data": "psst"})
    a.expect("*jay* psst")
    a.send("/msg jay back")
    j.jexpect(type="private", user="amy", data="back")
    j.jsend({"type": "history", "count": 2})
    j.jexpect(type="notice", data="history of #r (2 messages)")
    j.jexpect(type="history", room="r", user="amy", data="bad \ufffd\ufffd utf-8")
    j.jexpect(type="history", room="r", user="jay", data="from json")
    j.jexpect(type="notice", data="end of history")
    j.jsend({"type": "who"})
    j.jexpect(type="notice", data="members of #r (2): amy jay")
    # Bad input: an error each, counted, the connection goes on.
    bad = [
        (b'{"type":"join","room":"r","extra":1}', "an unknown field for this type"),
        (b'{"type":"message","data":5}', "a field has the wrong JSON type"),
        (b'{"type":"message","data":"a\\nb"}', "data is 1 to max-line bytes, no control characters but tab"),
        (b'{"type":"message","data":""}', "data is 1 to max-line bytes, no control characters but tab"),
        (b'{"type":"join","room":"r","room":"s"}', "bad JSON"),
        (b'{"type":"join","room":"no spaces"}', "user and room are 1 to 32 of A-Z a-z 0-9 _ -"),
        (b'{"type":"history","count":501}', "count is 1 to 500"),
        (b'{"type":"dance"}', "unknown type"),
        (b'{"room":"r"}', '"type" is missing or not a string'),
        (b'{"type":"private","user":"amy"}', "a required field is missing"),
        (b'{"a":' * 60 + b'1' + b'}' * 60, "JSON nested too deep"),
        (b'[' * 400, "JSON nested too deep"),
        (b'{"type":"message","data":"\\u0000"}', "bad JSON"),
        (b'{not json', "bad JSON"),
        (b'"a string"', "a line is one JSON object"),
    ]
    for line, err in bad:
        j.s.sendall(line + b"\n")
        j.jexpect(type="error", data=err)
    check(srv.counter("chat_json_bad", len(bad)) == len(bad), "chat_json_bad != %d" % len(bad))
    j.jsend({"type": "message", "data": "still here"})
    j.jexpect(type="message", data="still here")
    a.expect("<jay> still here")
    # A line over --max-line closes the connection, counted; the room hears why.
    j.s.sendall(b'{"type":"message","data":"' + b"x" * 600 + b'"}\n')
    j.jexpect(type="error", data="line too long (at most 512 bytes with the newline)")
    a.expect("* jay left #r (line too long)")
    check(srv.counter("chat_line_too_long", 1) == 1, "chat_line_too_long != 1")
    a.close()
    j.close()
    srv.stop()


def spool_parts(d):
    return [f for f in os.listdir(os.path.join(d, "chat.db.files")) if f.endswith(".part")]


def get_file(c, fid):
    """/get fid: the header's name and size, then exactly the bytes."""
    c.send("/get " + fid)
    hdr = c.expect("* file %s *" % fid)
    name, size = hdr.split()[3], int(hdr.split()[4])
    while len(c.buf) < size:
        c.s.settimeout(10)
        d = c.s.recv(1 << 20)
        check(d, "EOF in the middle of a file")
        c.buf += d
    data, c.buf = c.buf[:size], c.buf[size:]
    return name, data


def case_files(d):
    srv = Server(d, "--file-max", "400000", "--file-quota", "700000", "--file-timeout", "2",
                 "--file-ttl", "3", *FAST)
    a = login(srv, "amy")
    b = login(srv, "bob")
    e = login(srv, "eve")
    members = []
    for c, who in ((a, "amy"), (b, "bob"), (e, "eve")):
        c.send("/join r")
        members.append(c)
        for m in members:
            m.expect("* %s joined #r" % who)
    # A room file: bigger than an input ring, byte-exact, announced to the room.
    blob = os.urandom(300000)
    a.send("/send #r blob.bin %d" % len(blob))
    a.expect("* ready: send 300000 bytes of blob.bin")
    a.s.sendall(blob)
    sent = a.expect("* sent blob.bin (300000 bytes): /get *")
    fid = sent.rsplit(" ", 1)[1]
    for c in (a, b, e):
        c.expect("* amy shares blob.bin (300000 bytes): /get " + fid)
    check(get_file(b, fid) == ("blob.bin", blob), "bob's copy differs")
    b.send("after the file")
    for c in (a, b, e):
        c.expect("<bob> after the file")
    # A private file: its recipient and sender may fetch it, no one else.
    a.send("/send bob note.txt 5")
    a.expect("* ready: send 5 bytes of note.txt")
    a.s.sendall(b"hello")
    pid = a.expect("* sent note.txt (5 bytes): /get *").rsplit(" ", 1)[1]
    b.expect("*amy* shares note.txt (5 bytes): /get " + pid)
    check(get_file(b, pid) == ("note.txt", b"hello"), "bob's note differs")
    e.send("/get " + pid)
    e.expect("error: no such file " + pid)
    e.send("/get " + "0" * 32)
    e.expect("error: no such file " + "0" * 32)
    e.send("/get xyz")
    e.expect("error: usage: /get ID (32 hex digits, from the announcement)")
    e.send("/send #r ../etc/passwd 5")
    e.expect("error: usage: /send NAME|#ROOM FILENAME SIZE")
    e.send("/send #r .hidden 5")
    e.expect("error: usage: /send NAME|#ROOM FILENAME SIZE")
    # Over --file-max: refused before a byte is taken, the sender closed, counted.
    e.send("/send #r big.bin 400001")
    e.expect("error: file too large: at most 400000 bytes (--file-max)")
    a.expect("* eve left #r (file refused)")
    b.expect("* eve left #r (file refused)")
    # Over the quota: amy has 300005 bytes; 400000 more would pass 700000.
    a.send("/send #r more.bin 400000")
    a.expect("error: over your file quota of 700000 bytes (--file-quota)")
    b.expect("* amy left #r (file refused)")
    check(srv.counter("chat_file_refused", 2) == 2, "chat_file_refused != 2")
    # A slow sender is cut off at --file-timeout; the room goes on.
    s = login(srv, "sam")
    s.send("/join r")
    s.expect("* history of #r (1 messages)")
    s.expect("[*] <bob> after the file")
    s.expect("* end of history")
    s.expect("* sam joined #r")
    b.expect("* sam joined #r")
    s.send("/send #r slow.bin 1000")
    s.expect("* ready: send 1000 bytes of slow.bin")
    s.s.sendall(b"x" * 10)
    b.send("meanwhile")
    b.expect("<bob> meanwhile")
    s.expect("<bob> meanwhile")
    check(spool_parts(d), "no partial file while uploading")
    s.expect("error: file upload too slow: not complete in 2 s", timeout=10)
    b.expect("* sam left #r (file upload timeout)", timeout=10)
    n = srv.counter("chat_file_slow", 1)
    check(n == 1, "chat_file_slow %r != 1" % n)
    # A sender that vanishes mid-file leaves no partial file.
    v = login(srv, "vic")
    v.send("/send bob gone.bin 1000")
    v.expect("* ready: send 1000 bytes of gone.bin")
    v.s.sendall(b"y" * 100)
    v.close()
    end = time.time() + 5
    while spool_parts(d) and time.time() < end:
        time.sleep(0.05)
    check(not spool_parts(d), "partial files left: %r" % spool_parts(d))
    # JSON: announce with an object, then the bytes.
    j = JClient(srv, {"type": "login", "user": "bob", "password": "password1"})
    j.jexpect(type="error", data="bob is already logged in")
    j.jsend({"type": "register", "user": "jay", "password": "password1"},
            {"type": "login", "user": "jay", "password": "password1"},
            {"type": "join", "room": "r"})
    j.jexpect(type="notice")
    j.jexpect(type="notice", data="logged in as jay")
    j.jexpect(type="notice", data="history of #r (2 messages)")
    j.jexpect(type="history", user="bob", data="after the file")
    j.jexpect(type="history", user="bob", data="meanwhile")
    j.jexpect(type="notice", data="end of history")
    j.jexpect(type="join", user="jay")
    b.expect("* jay joined #r")
    j.jsend({"type": "file", "room": "r", "name": "j.txt", "size": 3})
    j.jexpect(type="notice", data="ready: send 3 bytes of j.txt")
    j.s.sendall(b"abc")
    jid = j.jexpect(type="notice")["data"].rsplit(" ", 1)[1]
    got = j.jexpect(type="file", room="r", user="jay", name="j.txt", size=3, id=jid)
    b.expect("* jay shares j.txt (3 bytes): /get " + jid)
    j.jsend({"type": "get", "id": jid})
    j.jexpect(type="file", id=jid, name="j.txt", size=3)
    while len(j.buf) < 3:
        j.buf += j.s.recv(100)
    check(j.buf[:3] == b"abc", "JSON /get: %r" % j.buf)
    j.buf = j.buf[3:]
    check(srv.counter("chat_files", 3) == 3, "chat_files != 3")
    # --file-ttl 3: the files go (the expiry runs every 3 s).
    end = time.time() + 10
    files = os.path.join(d, "chat.db.files")
    while os.listdir(files) and time.time() < end:
        time.sleep(0.2)
    check(not os.listdir(files), "files left after the ttl: %r" % os.listdir(files))
    b.send("/get " + fid)
    b.expect("error: no such file " + fid)
    b.close()
    j.close()
    srv.stop()


def case_stats(d):
    srv = Server(d, "--workers", "3", "--allow-guests", *FAST)
    check(srv.gauges((0, 0)) == (0, 0), "gauges at start: %r" % (srv.gauges((0, 0)),))
    cl = []
    for i in range(6):
        c = Client(srv)
        c.send("/nick u%d" % i)
        c.expect("* you are now u%d" % i)
        cl.append(c)
    check(srv.gauges((6, 0)) == (6, 0), "6 users, no room: %r" % (srv.gauges((6, 0)),))
    for i, c in enumerate(cl):  # rooms a, b, c: two members each, on different workers
        c.send("/join %s" % "abc"[i % 3])
        c.expect("* u%d joined #%s" % (i, "abc"[i % 3]))
    for i in range(3):
        cl[i].expect("* u%d joined #%s" % (i + 3, "abc"[i]))
    check(srv.gauges((6, 3)) == (6, 3), "6 users, 3 rooms: %r" % (srv.gauges((6, 3)),))
    cl[0].send("/leave")  # room a empties
    cl[0].expect("* u0 left #a")
    cl[3].expect("* u0 left #a")
    cl[3].send("/leave")
    cl[3].expect("* u3 left #a")
    check(srv.gauges((6, 2)) == (6, 2), "room a empty: %r" % (srv.gauges((6, 2)),))
    cl[1].send("/nick renamed")  # a rename keeps the count
    cl[1].expect("* you are now renamed")
    cl[1].expect("* u1 is now known as renamed")
    for c in cl[2:]:
        c.close()
    cl[1].expect("* u4 left #b (*)")
    check(srv.gauges((2, 1)) == (2, 1), "4 gone: %r" % (srv.gauges((2, 1)),))
    check(srv.counter("chat_users_in", 7) == 7, "chat_users_in != 7")
    check(srv.counter("chat_users_out", 5) == 5, "chat_users_out != 5")
    check(srv.counter("chat_rooms_opened", 3) == 3, "chat_rooms_opened != 3")
    check(srv.counter("chat_rooms_closed", 2) == 2, "chat_rooms_closed != 2")
    # The fan-out latency: one sample per room line, recorded by the last worker.
    for i in range(20):
        cl[1].send("m%d" % i)
    for i in range(20):
        cl[1].expect("<renamed> m%d" % i)
    end = time.time() + 5
    while True:  # the snapshot lags by --stats-interval
        lat = json.loads(srv.admin("stats json").splitlines()[0])["latency_ns"]["handler"]
        if lat["count"] >= 20 or time.time() > end:
            break
        time.sleep(0.1)
    check(lat["count"] >= 20 and 0 < lat["p99"] < 10 ** 10, "fan-out latency %r" % lat)
    print("chat_store stats: fan-out latency of %d room lines: p50 %d ns, p99 %d ns"
          % (lat["count"], lat["p50"], lat["p99"]))
    for c in cl[:2]:
        c.close()
    srv.stop()


CASES = {
    "stats": case_stats,
    "files": case_files,
    "json": case_json,
    "accounts": case_accounts,
    "limits": case_limits,
    "history": case_history,
    "restart": case_restart,
    "kill9": case_kill9,
    "offloop": case_offloop,
}


def start(case, exe):
    global CASE, CHAT
    CASE, CHAT = case, exe


if __name__ == "__main__":
    chatlib.main("chat_store", CASES, sys.argv, start)
