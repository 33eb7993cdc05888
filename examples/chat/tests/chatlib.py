"""chatlib.py - what the weft-chat test scripts share."""
import re
import socket
import sys
import time

PROG = CASE = ""
RUNNING = []  # processes to kill when a check fails


def fail(msg):
    print("%s %s: FAIL: %s" % (PROG, CASE, msg))
    for p in RUNNING:
        p.kill()
        p.wait()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def admin(sock, cmd):
    """One admin command's answer, as text, from the admin socket at sock."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(cmd.encode() + b"\nquit\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data.decode()


def counter(sock, name, want):
    """Chat counter `name`, summed over the workers, from the admin socket's
    Prometheus text at path `sock`, once it is `want` (samples lag by
    --stats-interval), or its last value after 5 s (None if absent)."""
    end = time.time() + 5
    last = None
    while time.time() < end:
        text = admin(sock, "metrics")
        vals = re.findall(r"^weft_user_%s_total\{[^}]*\} (\d+)$" % name, text, re.M)
        if vals:
            last = sum(int(v) for v in vals)  # one line per worker
            if last == want:
                return last
        time.sleep(0.1)
    return last


def main(prog, cases, argv, start):
    """Run the case argv[1] with the server argv[2]: start(case, exe) sets
    the script's globals, then cases[case](dir) runs in a fresh directory,
    removed after."""
    import shutil
    import tempfile

    global PROG, CASE
    PROG = prog

    if len(argv) != 3 or argv[1] not in cases:
        print("usage: %s.py %s WEFT-CHAT" % (prog, "|".join(cases)))
        sys.exit(2)
    CASE = argv[1]
    start(argv[1], argv[2])
    d = tempfile.mkdtemp(prefix="weft-%s." % prog)
    try:
        cases[argv[1]](d)
    finally:
        # An exception (not a failed check) leaves servers and browsers running.
        for p in RUNNING:
            p.kill()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)
    print("%s %s: ok" % (prog, argv[1]))
