"""chat_fanout.py - weft-chat's fan-out under load, and under a login storm.

    usage: python3 chat_fanout.py WEFT-CHAT [--users N] [--rooms N] [--rate MSGS/S]
                                  [--seconds S] [--logins N] [--workers N] [--auth-threads N]
                                  [--kdf-mem BYTES]

Starts weft-chat (loopback, a fresh database, --allow-guests, no history
replay), connects N guests spread over the rooms, then one member per room
sends timestamped messages at a fixed total rate. Every member reads all it
gets; for each message the time from its send to its arrival at the *last*
member (the fan-out latency, seen by clients in this one process) is kept.
Phases: calm (messages only), then storm (the same messages while --logins
accounts, registered beforehand, all log in within one second), then calm
again. Prints deliveries per second and p50/p99 per phase, and the server's
own counters. Bounded: every phase ends after its seconds; the server is
stopped by its PID. A benchmark, not a test: figures depend on the machine.
"""
import argparse
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("chat")
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--rooms", type=int, default=100)
    ap.add_argument("--rate", type=float, default=100.0, help="messages per second, all rooms")
    ap.add_argument("--seconds", type=float, default=5.0, help="per phase")
    ap.add_argument("--logins", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--auth-threads", type=int, default=2)
    ap.add_argument("--kdf-mem", type=int, default=64 << 20,
                    help="Argon2id memory per hash (the server's default, 64 MiB)")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if a.users + a.logins + 100 > hard:
        sys.exit("chat_fanout: %d connections need more than ulimit -n %d" % (a.users + a.logins, hard))
    d = tempfile.mkdtemp(prefix="weft-chat-bench.")
    srv = subprocess.Popen([a.chat, "--port", "0", "--no-pin", "--workers", str(a.workers),
                            "--db", os.path.join(d, "chat.db"), "--allow-guests", "--history", "0",
                            "--auth-threads", str(a.auth_threads), "--stats-interval", "0",
                            "--kdf-mem", str(a.kdf_mem),
                            "--max-conns", str(a.users + a.logins + 100), "-q"],
                           stdout=subprocess.PIPE)
    try:
        port = None
        while port is None:
            line = srv.stdout.readline().decode()
            if not line:
                sys.exit("chat_fanout: weft-chat did not start")
            m = re.search(r"listening on [0-9.]+:(\d+)", line)
            if m:
                port = int(m.group(1))
        run(a, port)
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(60)
        except subprocess.TimeoutExpired:
            srv.kill()
        shutil.rmtree(d, ignore_errors=True)


def run(a, port):
    sel = selectors.DefaultSelector()
    bufs = {}
    sent = {}   # message id -> send time
    last = {}   # message id -> latest arrival
    got = [0]
    logged = [0]

    def connect(lines):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.sendall(lines)
        bufs[s] = b""
        sel.register(s, selectors.EVENT_READ)
        return s

    def pump(until):
        while True:
            left = until - time.time()
            if left <= 0:
                return
            for key, _ in sel.select(min(left, 0.01)):
                s = key.fileobj
                try:
                    data = s.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    sel.unregister(s)
                    continue
                now = time.time()
                b = bufs[s] + data
                *lines, bufs[s] = b.split(b"\n")
                for line in lines:
                    if line.startswith(b"* logged in"):
                        logged[0] += 1
                    i = line.find(b" m#")
                    if i >= 0:
                        mid = int(line[i + 3:line.index(b"#", i + 3)])
                        got[0] += 1
                        if now > last.get(mid, 0):
                            last[mid] = now
    # Accounts for the storm, registered first (each an Argon2id hash), ten
    # per connection: one connection's pipelined /registers wait in its
    # input ring for the hashes, which must stay under --input-stall.
    t = time.time()
    regs = []
    for c in range(0, a.logins, 10):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"".join(b"/register acct%d password%d\n" % (i, i)
                           for i in range(c, min(c + 10, a.logins))))
        regs.append(s)
    done = 0
    for s in regs:
        s.settimeout(120)
        rbuf = b""
        while rbuf.count(b"* registered ") + rbuf.count(b"error: ") < 10 and done < a.logins:
            d = s.recv(1 << 16)
            if not d:
                break
            rbuf += d
        done += rbuf.count(b"* registered ")
        s.close()
    print("registered %d of %d accounts in %.1f s" % (done, a.logins, time.time() - t))
    # The members.
    t = time.time()
    members = []
    for i in range(a.users):
        members.append(connect(b"/nick u%d\n/join r%d\n" % (i, i % a.rooms)))
        if i % 500 == 499:
            pump(time.time() + 0.05)
    pump(time.time() + 2)
    print("%d members in %d rooms connected in %.1f s" % (a.users, a.rooms, time.time() - t))
    senders = members[:a.rooms]  # member i is in room i
    mid = [0]

    def phase(name, seconds, storm=False):
        start = time.time()
        got0 = got[0]
        first = mid[0]
        period = 1.0 / a.rate
        nxt = start
        storm_socks = []
        k = 0
        while time.time() - start < seconds:
            now = time.time()
            while nxt <= now:
                s = senders[mid[0] % a.rooms]
                sent[mid[0]] = time.time()
                s.sendall(b"hi m#%d#\n" % mid[0])
                mid[0] += 1
                nxt += period
            if storm and k < a.logins and now - start < 1.0:
                # Spread over the storm's first second.
                due = int((now - start) * a.logins) + 1
                while k < min(due, a.logins):
                    storm_socks.append(connect(b"/login acct%d password%d\n" % (k, k)))
                    k += 1
            pump(min(nxt, start + seconds))
        pump(time.time() + 1.0)  # the stragglers
        ids = range(first, mid[0])
        lat = [last[i] - sent[i] for i in ids if i in last]
        lost = sum(1 for i in ids if i not in last)
        el = time.time() - start
        print("%-6s %6d msgs  %8.0f deliveries/s  fan-out p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms"
              "%s" % (name, len(ids), (got[0] - got0) / el, pct(lat, 50) * 1e3,
                      pct(lat, 99) * 1e3, max(lat) * 1e3 if lat else float("nan"),
                      ("  (%d never arrived)" % lost) if lost else ""))
        if storm:
            print("storm: %d logins sent in the first second, %d answered 'logged in' by the"
                  " phase's end" % (k, logged[0]))
        return pct(lat, 99)

    calm = phase("calm", a.seconds)
    storm = phase("storm", a.seconds, storm=True)
    after = phase("after", a.seconds)
    print("storm p99 / calm p99 = %.2f" % (storm / calm))


if __name__ == "__main__":
    main()
