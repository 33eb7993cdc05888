#!/usr/bin/env python3
"""kv_flood.py - huge multibulk counts cost weft-kv only the bytes sent.

The attack of issue 12: 300 connections each announce "*1048576" (the most
arguments a command may have) and send 20,000 empty arguments
("$0\\r\\n\\r\\n", 6 bytes each, 120 KB per connection, 36 MB in all), then
stall. Those bytes wait in the connections' input rings, which weft counts
against the input cap and the pool cap. Before the fix the parser also kept
a 16-byte slot per argument outside both caps (RSS grew by 164 MB here,
4.8 times the bytes sent); now it keeps only the first few, and builds the table
once a command is complete. Asserted:

  - the server's peak RSS (VmHWM) grew by less than 64 MB, and by at most
    16 MB more than the ring memory weft reports (pool_bytes) while the
    attackers held their bytes: nothing outside the caps grew with them;
  - a healthy client is answered during the attack;
  - every attacker is closed by the input-stall timeout (--input-stall
    5000 here; 30 s by default) and counted (closed_input_stall);
  - 20 connections announcing more than the limit ("*2000000") each get
    Redis's "invalid multibulk length" and a close, counted by weft-kv as
    closed_limit, and 5 malformed headers as closed_protocol;
  - SIGTERM stops the server with status 0.

Not registered in sanitizer builds: ASan's allocator and shadow memory make
RSS say nothing about the program's own allocations.

usage: kv_flood.py PATH-TO-WEFT-KV
"""
import os
import resource
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvlib  # noqa: E402
from kvlib import Reader, admin, connect, expect_error_close, fail, roundtrip, start, stop  # noqa: E402

kvlib.KV = sys.argv[1]
ATTACKERS = 300
ARGS = 20000
MB = 1 << 20


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    fail("no %s in /proc/%d/status" % (field, pid))


def wait_for(what, pred, secs):
    end = time.monotonic() + secs
    while not pred():
        if time.monotonic() > end:
            fail("%s: not within %d s" % (what, secs))
        time.sleep(0.05)


def attack(port):
    """Open the attackers, send every byte; return them and the bytes sent."""
    payload = b"*1048576\r\n" + b"$0\r\n\r\n" * ARGS
    conns = []
    for _ in range(ATTACKERS):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        conns.append([s, memoryview(payload)])
    end = time.monotonic() + 30
    while any(len(c[1]) for c in conns):
        if time.monotonic() > end:
            fail("the attackers could not send their bytes within 30 s")
        for c in conns:
            if len(c[1]):
                try:
                    c[1] = c[1][c[0].send(c[1]):]
                except BlockingIOError:
                    pass
                except OSError as e:
                    fail("an attacker was closed before it sent its bytes: %s" % e)
        time.sleep(0.001)
    return [c[0] for c in conns], ATTACKERS * len(payload)


def closed(s):
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def main():
    need = ATTACKERS + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    sock = os.path.join(tempfile.mkdtemp(prefix="weft-kv-flood."), "admin.sock")
    p, port, log = start("--workers", "2", "--input-stall", "5000", "--stats-interval", "100",
                         stats_socket=sock)
    try:
        # Warm up (the first connections and commands allocate what every
        # server keeps), then take the baseline.
        for _ in range(4):
            roundtrip(port, "SET", "warm", "x" * 1000)
        wait_for("the admin socket", lambda: os.path.exists(sock), 10)
        base = status_kb(p.pid, "VmRSS")

        conns, sent = attack(port)
        wait_for("the server reading the attack",
                 lambda: admin(sock).get("bytes_in", 0) >= sent, 20)
        st = admin(sock)
        held = status_kb(p.pid, "VmRSS")
        healthy = connect(port)
        healthy.sendall(b"PING\r\n")
        if Reader(healthy).reply() != b"+PONG":
            fail("no PONG for a healthy client during the attack")
        healthy.close()

        wait_for("every attacker closed", lambda: all(closed(s) for s in conns), 20)
        peak = max(status_kb(p.pid, "VmHWM"), held)
        for s in conns:
            s.close()
        wait_for("closed_input_stall counting them",
                 lambda: admin(sock).get("closed_input_stall", 0) >= ATTACKERS, 10)

        growth, pool = (peak - base) * 1024, st.get("pool_bytes", 0)
        print("attack: %d connections, %.1f MB sent; RSS %d -> %d kB holding it (peak %d kB); "
              "ring memory %.1f MB" % (ATTACKERS, sent / MB, base, held, peak, pool / MB))
        if growth >= 64 * MB:
            fail("RSS grew by %.1f MB (limit 64 MB)" % (growth / MB))
        if (held - base) * 1024 > pool + 16 * MB:
            fail("RSS grew by %.1f MB holding the attack, the rings hold %.1f MB: "
                 "something outside the caps grew" % ((held - base) / 1024, pool / MB))

        for _ in range(20):
            expect_error_close(port, b"*2000000\r\n",
                               b"-ERR Protocol error: invalid multibulk length")
        for _ in range(5):
            expect_error_close(port, b"*12x\r\n", b"-ERR Protocol error: invalid multibulk length")
        wait_for("the closes counted",
                 lambda: admin(sock).get("user_closed_limit", -1) == 20 and
                 admin(sock).get("user_closed_protocol", -1) == 5, 10)
        print("refused: 20 over the argument limit (closed_limit), 5 malformed (closed_protocol)")
    finally:
        stop(p, log)
    print("PASS")


if __name__ == "__main__":
    main()
