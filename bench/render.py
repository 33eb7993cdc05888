#!/usr/bin/env python3
"""bench/render.py — the benchmark tables and plots, from result files.

    bench/render.py [--out FILE] [--no-plots] RESULT.json...

Each result file is one invocation of bench/run.sh (suite "echo"),
bench/http.sh ("http"), bench/tls.sh ("tls"), bench/kv.sh ("kv"), bench/proxy.sh
("proxy") or bench/lb.sh ("lb"), with every run of every round
(see bench/lib.sh). This script computes every figure from them: a figure is
the median of the rounds that succeeded, and every table says which result
file it comes from. Without --out the markdown goes to stdout (no plots);
with --out FILE each suite's part of FILE, between its markers
(<!-- run.sh:begin --> ... <!-- run.sh:end -->, http.sh, tls.sh, kv.sh, ...), is replaced
and the rest of FILE kept; with --section NAME every result given goes into
the part between <!-- NAME:begin --> and <!-- NAME:end --> instead (a section
of its own, under --title if given). Plots (gnuplot, bench/plot.gp) go to
img/ beside FILE. Standard library only.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_ROUNDS = 3  # a figure is the median of at least this many interleaved rounds
MARKERS = {"echo": "run.sh", "http": "http.sh", "kv": "kv.sh", "proxy": "proxy.sh", "lb": "lb.sh", "tls": "tls.sh"}
PLOT_PREFIX = ""  # --section NAME: plots are img/NAME-....png, apart from the main section's
TITLE = None  # --title: the heading of every rendered part instead of the suite's own


# ---- formatting -------------------------------------------------------------

def dash(f):
    """f(v), or an en dash when v is missing."""
    return lambda v, *a: "–" if v is None else f(v, *a)


fmt_rate = dash(lambda v: f"{v:,.0f}")
fmt_ms = dash(lambda us: f"{us / 1000:.3f}" if us < 10000 else f"{us / 1000:.1f}" if us < 100000 else f"{us / 1000:.0f}")
fmt_2 = dash(lambda v: f"{v:.2f}")
fmt_3 = dash(lambda v: f"{v:.3f}")
fmt_mib = dash(lambda kib: f"{kib / 1024:.1f}")


def fmt_ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def md(s, width=90):
    return str(s).replace("|", "\\|").replace("\n", " ")[:width]


def table(head, rows, align=None):
    align = align or ["---"] + ["--:"] * (len(head) - 1)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def dig(d, *keys):
    """d[k1][k2]..., or None where anything is missing."""
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


# ---- a result file ----------------------------------------------------------

class Result:
    """One result file: its runs grouped by what they measured, over rounds."""

    def __init__(self, path):
        with open(path) as f:
            self.doc = json.load(f)
        if self.doc.get("schema") != "weft-bench/1":
            sys.exit(f"render.py: {path}: not a weft-bench/1 result file")
        full = os.path.abspath(path)
        self.path = os.path.relpath(full, ROOT) if full.startswith(ROOT + os.sep) else full
        self.suite = self.doc["suite"]
        self.settings = self.doc.get("settings", {})
        self.servers = self.doc.get("servers", {})
        self.ids = self.doc.get("server_ids", list(self.servers))
        self.runs = self.doc["runs"]
        self.rounds = max([r.get("round", 1) for r in self.runs], default=0)

    def label(self, sid):
        return self.servers.get(sid, {}).get("label", sid)

    def group(self, **want):
        return [r for r in self.runs if all(r.get(k) == v for k, v in want.items())]

    def source(self):
        """The line under every table: which file, how many rounds."""
        n = self.rounds
        line = f"From `{self.path}`: median of {n} interleaved round{'s' if n != 1 else ''}."
        if n < MIN_ROUNDS:
            line += f" **Fewer than {MIN_ROUNDS} rounds: not a figure.**"
        return line

    def header(self, title):
        title = TITLE or title
        d, src, m = self.doc, self.doc["source"], self.doc["machine"]
        tree = src["commit"][:12] + (
            " **with uncommitted changes** (" + ", ".join(src.get("dirty_paths", [])[:8]) + ")"
            if src.get("dirty") else " (clean)")
        out = [f"## {title}", "",
               f"Rendered by `bench/render.py` from `{self.path}`, written by `{d['command']}`.", ""]
        rows = [["result file", f"`{self.path}`"],
                ["measured", f"{d['started']} – {d['finished']}"],
                ["tree", tree],
                ["machine", f"{m['cpus']} CPUs ({m.get('model', '')}), {m.get('mem_gib')} GiB, "
                            f"Linux {m.get('kernel')}, fd limit {m.get('fd_limit')}"],
                ["load average (1, 5, 15 min)",
                 f"before: {m.get('load_before')}; after: {m.get('load_after')}"]]
        b = d.get("build")
        if b:
            rows.append(["build", f"{b.get('type')}, {b.get('compiler')}"
                         + (f"; baseline {b['baseline'][:12]}" if b.get("baseline") else "")])
        out += table(["", ""], rows, ["---", "---"]) + [""]
        if self.rounds < MIN_ROUNDS:
            out += [f"**{self.rounds} round{'s' if self.rounds != 1 else ''} only: a smoke run. "
                    f"A figure is the median of {MIN_ROUNDS} or more interleaved rounds; "
                    f"nothing below is one.**", ""]
        return out


def cell(runs, value, fmt):
    """The median of value(run) over the ok runs, formatted, with the failures
    said; or why there is no value."""
    if not runs:
        return "not run"
    ok = [r for r in runs if r.get("status") == "ok"]
    bad = [r for r in runs if r.get("status") != "ok"]
    if not ok:
        why = md(bad[0].get("reason", ""))
        return f"n/a ({why})" if all(r["status"] == "na" for r in bad) else f"FAILED: {why}"
    text = fmt(med(value(r) for r in ok))
    if bad:
        text += f" ({len(bad)}/{len(runs)} failed: {md(bad[0].get('reason', ''), 60)})"
    return text


def ok_median(runs, value):
    return med(value(r) for r in runs if r.get("status") == "ok")


# ---- suite "echo" (bench/run.sh) ---------------------------------------------

def msgs(r):
    return dig(r, "load", "msgs_per_s")


def lat(p):
    return lambda r: dig(r, "load", "latency_us", p)


def cpu_per_m(res):
    hz = res.doc.get("clk_tck", 100)

    def f(r):
        n, t = dig(r, "load", "messages_verified"), r.get("server_cpu_ticks")
        return t / hz / n * 1e6 if n and t is not None else None
    return f


def hwm(r):
    return r.get("hwm_kib")


def echo_detail(res, kind, conns, size, depth):
    rows = []
    for sid in res.ids:
        g = res.group(kind=kind, server=sid, conns=conns, size=size, depth=depth)
        per_round = ", ".join(fmt_rate(msgs(r)) if r["status"] == "ok" else r["status"] for r in g)
        rows.append([res.label(sid), cell(g, msgs, fmt_rate), per_round or "–",
                     cell(g, lat("p50"), fmt_ms), cell(g, lat("p99"), fmt_ms),
                     cell(g, lat("p999"), fmt_ms), cell(g, cpu_per_m(res), fmt_2),
                     cell(g, hwm, fmt_mib)])
    return table(["server", "messages/s", "per round", "p50 ms", "p99 ms", "p99.9 ms",
                  "server CPU s / 10⁶ msgs", "peak RSS MiB"], rows,
                 ["---", "--:", "---"] + ["--:"] * 5) + ["", res.source()]


def best_peer(res, kind, conns, size, depth):
    best = (None, None)
    for sid in res.ids:
        if sid.startswith("weft"):
            continue
        m = ok_median(res.group(kind=kind, server=sid, conns=conns, size=size, depth=depth), msgs)
        if m is not None and (best[1] is None or m > best[1]):
            best = (sid, m)
    return best


def echo_ratios(res, sizes, levels):
    has = [s for s in ("weft-uring", "weft-nopin", "weft-cpu", "weft-poll", "weft1", "weft-base") if s in res.ids]
    others = [s for s in ("libevent", "libuv2", "libuv1", "epoll-et") if s in res.ids]
    head = ["size", "conns", "weft msg/s", "best peer", "weft / best peer"]
    head += [f"{res.label(s)} / best peer" for s in has] + [f"weft / {res.label(s)}" for s in others]
    rows = []
    for size in sizes:
        for n in levels:
            m = {s: ok_median(res.group(kind="closed", server=s, conns=n, size=size, depth=1), msgs)
                 for s in res.ids}
            bp, bm = best_peer(res, "closed", n, size, 1)
            w = m.get("weft")
            rows.append([size, n, fmt_rate(w), f"{res.label(bp)} {fmt_rate(bm)}" if bp else "–",
                         fmt_ratio(w, bm)] + [fmt_ratio(m.get(s), bm) for s in has]
                        + [fmt_ratio(w, m.get(s)) for s in others])
    return table(head, rows, ["--:", "--:", "--:", "---"] + ["--:"] * (len(head) - 4))


def plot(res, img_dir, name, size, value, scale, ylab, logy):
    """One plot: a line per server against the connection levels. Returns the
    markdown image line, or None when gnuplot is missing or fails."""
    if not img_dir or not shutil.which("gnuplot"):
        return None
    levels = res.settings.get("levels", [])
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as f:
        f.write("conns\t" + "\t".join(f'"{res.label(s)}"' for s in res.ids) + "\n")
        for n in levels:
            vals = [ok_median(res.group(kind="closed", server=s, conns=n, size=size, depth=1), value)
                    for s in res.ids]
            f.write(f"{n}\t" + "\t".join("NaN" if v is None else f"{v * scale:g}" for v in vals) + "\n")
        dat = f.name
    os.makedirs(img_dir, exist_ok=True)
    name = PLOT_PREFIX + name
    png = os.path.join(img_dir, f"{name}-{size}.png")
    terms = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    term = "pngcairo" if "pngcairo" in terms.stdout + terms.stderr else "png"
    expr = (f"datafile='{dat}'; outfile='{png}'; term='{term}'; ncol={len(res.ids) + 1}; "
            f"ylab='{ylab}'; logy={logy}; "
            f"ttl=\"{ylab} vs connections, {size} B messages\\nfrom {os.path.basename(res.path)}, "
            f"medians of {res.rounds} round{'s' if res.rounds != 1 else ''}\"")
    done = subprocess.run(["gnuplot", "-e", expr, os.path.join(ROOT, "bench", "plot.gp")],
                          capture_output=True, text=True)
    os.unlink(dat)
    if done.returncode != 0:
        print(f"render.py: gnuplot failed for {png}: {done.stderr.strip()[:200]}", file=sys.stderr)
        return None
    return f"![{name}-{size}](img/{name}-{size}.png)"


def render_echo(res, img_dir):
    s = res.settings
    levels, sizes = s.get("levels", []), s.get("sizes", [])
    out = res.header("Results")
    out += ["**What shares the machine.** The load generator (weft-load) and the server run on",
            "the same CPUs over loopback. In every case but the one-core case the script pins",
            f"nothing: weft-load runs {s.get('load_threads', 2)} threads, weft-echo places its "
            "workers as it does by default (see",
            "its command), the peers do not pin. So every figure is a server *and* a client",
            "competing for the same cores: read the ratios between servers measured in the same",
            "run, not the absolute numbers. A load average well above 0 before the run means",
            "other work shared the machine too.", "",
            "**What is measured.** messages/s: verified echoed messages inside weft-load's window",
            "(every byte is checked). Latency: from send to verified reply; in a closed loop that",
            "is service time under this load (the open-loop table is the one for tail latency).",
            "Server CPU: utime+stime of the server process (all threads) from /proc/PID/stat",
            "around the weft-load run, over every verified message of the run. Peak RSS: VmHWM",
            "after the run. Each run gets a fresh server on its own port; rounds are interleaved",
            "(every server once per round, the order reversed every other round). A run whose",
            "weft-load exits non-zero is counted as FAILED, with its reason, and left out of the",
            "median; a server that cannot serve a level is n/a.", "",
            "### Servers", ""]
    out += table(["server", "command"],
                 [[res.label(i), f"`{res.servers[i]['command']}`"] for i in res.ids], ["---", "---"])
    out += ["", f"Load: `{res.doc.get('load_command', '')}`.", ""]

    if "closed" in s.get("cases", []):
        out += ["### Messages/s, closed loop, depth 1 (medians)"]
        for size in sizes:
            out += ["", f"**{size} B messages**", ""]
            out += table(["server"] + [f"{n} conns" for n in levels],
                         [[res.label(i)] + [cell(res.group(kind="closed", server=i, conns=n, size=size,
                                                           depth=1), msgs, fmt_rate) for n in levels]
                          for i in res.ids])
            out += ["", res.source()]
        out += ["", "### Ratios: weft to the others (messages/s, closed loop, depth 1)", ""]
        out += echo_ratios(res, sizes, levels)
        out += ["", "Ratios of medians; above 1× the first is faster; – where either side has no "
                "successful round.", res.source(), ""]
        images = [plot(res, img_dir, name, size, value, scale, ylab, logy)
                  for size in sizes
                  for name, value, scale, ylab, logy in (
                      ("throughput", msgs, 1, "messages/s (closed loop, depth 1)", 0),
                      ("latency-p99", lat("p99"), 0.001, "p99 latency, ms (closed loop, depth 1)", 1),
                      ("rss", hwm, 1 / 1024, "peak RSS, MiB", 0))]
        images = [i for i in images if i]
        if images:
            out += ["### Plots", ""] + images + ["", res.source(), ""]
        out += ["### Details per size and level (closed loop, depth 1, medians)"]
        for size in sizes:
            for n in levels:
                out += ["", f"**{size} B, {n} connections**", ""] + echo_detail(res, "closed", n, size, 1)
        out += [""]
    if "pipelined" in s.get("cases", []):
        p = s["pipelined"]
        out += [f"### Pipelined: depth {p['depth']}, {p['conns']} connections, {p['size']} B (medians)", "",
                f"Each connection keeps {p['depth']} messages in flight, so one read can carry many.", ""]
        out += echo_detail(res, "closed", p["conns"], p["size"], p["depth"]) + [""]
    if "onecore" in s.get("cases", []):
        o = s["onecore"]
        out += ["### One load thread beside a 2-worker server (medians)", "",
                f"weft-load runs one thread pinned to CPU {o['load_cpu']} (`taskset -c {o['load_cpu']}`, "
                f"`--threads 1`); the server is confined to CPUs {o['server_cpus']} (`taskset -c "
                f"{o['server_cpus']}`). A server that pins a worker to the CPU the load generator",
                "uses leaves that worker half a core for its half of the connections; one that lets the",
                "scheduler place its threads does not. 64 B messages, depth 1."]
        for n in o["levels"]:
            out += ["", f"**{n} connections**", ""] + echo_detail(res, "onecore", n, 64, 1)
            m = {i: ok_median(res.group(kind="onecore", server=i, conns=n), msgs) for i in res.ids}
            pairs = [(a, b) for a, b in (("weft", "libuv2"), ("weft", "libevent"), ("weft-nopin", "libuv2"),
                                         ("weft", "weft-nopin"), ("weft-uring", "libuv2"),
                                         ("weft-uring", "weft")) if a in m and b in m]
            if pairs:
                out += [""] + ["; ".join(f"{res.label(a)} / {res.label(b)}: {fmt_ratio(m[a], m[b])}"
                                         for a, b in pairs) + "."]
        out += [""]
    if "syscalls" in s.get("cases", []):
        sc = s["syscalls"]
        out += [f"### System calls per message ({sc['conns']} connections, 64 B, depth 1; medians)", "",
                "`strace -c -f -p PID` attaches to every thread of the running server for about",
                f"{sc['window_s']} s in the middle of a steady closed-loop run (all connections up before",
                "it attaches). Messages in the traced window are counted on the kernel side, the same",
                "way for every server: the sum of `tcpi_bytes_sent` over the server's sockets (`ss -ti`)",
                "just after strace has attached and just before it detaches, as a rate (each read timed",
                "at its midpoint) times the traced window. For weft, the same from its admin socket",
                "(`bytes_out`, `--stats-interval 100`) is shown as a cross-check. strace slows the",
                "server several times over: these runs give calls per message, not speed. \"wait\" is",
                "epoll_wait/epoll_pwait/poll/select, \"read\" read/readv/recv*, \"write\" write/writev/send*.", ""]
        rows = []
        for i in res.ids:
            g = res.group(kind="syscalls", server=i)

            def per(key, g=g):
                return lambda r: (r["calls"][key] / r["messages"]
                                  if r.get("calls") and (r.get("messages") or 0) > 0 else None)
            def per_data_read(r):
                c = r.get("calls") or {}
                if c.get("read_errors") is None or c.get("read", 0) <= c["read_errors"]:
                    return None
                return c["total"] / (c["read"] - c["read_errors"])
            ok = [r for r in g if r.get("status") == "ok"]
            admin = ok_median(g, lambda r: r.get("messages_admin"))
            rows.append([res.label(i), cell(g, lambda r: r.get("traced_s"), fmt_2),
                         cell(g, lambda r: r.get("messages"), fmt_rate)
                         + (f" (admin socket: {fmt_rate(admin)})" if admin else ""),
                         cell(g, per("total"), fmt_3), cell(g, per_data_read, fmt_3),
                         cell(g, per("wait"), fmt_3),
                         cell(g, per("read"), fmt_3), cell(g, per("write"), fmt_3),
                         cell(g, per("epoll_ctl"), fmt_3), cell(g, per("other"), fmt_3),
                         md((ok[0].get("other_top") or "-").replace(",", ", ")) if ok else ""])
        out += table(["server", "traced s", "messages in window", "syscalls / msg",
                      "syscalls / read that returned data", "wait", "read", "write", "epoll_ctl", "other",
                      "busiest other calls (round 1)"], rows, ["---"] + ["--:"] * 9 + ["---"])
        out += ["", res.source(), "",
                "\"syscalls / read that returned data\" counts from strace alone (the read-class calls",
                "less those that failed, EAGAIN): at depth 1 every message needs a read that returns it",
                "and one read returns at most the messages that arrived together, so it is an upper",
                "bound on calls per message with no timing in it (– for result files without the",
                "failed-read count). The message count above depends on timing two `ss` reads around",
                "the traced window, which a busy machine blurs by several percent.", ""]
    if "open" in s.get("cases", []):
        op = s["open"]
        out += [f"### Open loop: {op['conns']} connections, 64 B (medians)", ""]
        if op.get("rate"):
            out += [f"`weft-load rate --rate {op['rate']} --conns {op['conns']} --size 64`: messages are",
                    f"sent on a fixed schedule at half of the best peer's closed-loop median ({op['basis']}),",
                    "and latency is measured from each message's scheduled send time.", ""]
            out += table(["server", "achieved msg/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU s / 10⁶ msgs"],
                         [[res.label(i)] + [cell(res.group(kind="open", server=i), f, fmt)
                                            for f, fmt in ((msgs, fmt_rate), (lat("p50"), fmt_ms),
                                                           (lat("p99"), fmt_ms), (lat("p999"), fmt_ms),
                                                           (cpu_per_m(res), fmt_2))]
                          for i in res.ids])
            out += ["", res.source(), ""]
        else:
            out += ["Not run: no peer closed-loop result to take the rate from.", ""]
    floods = res.group(kind="flood")
    if floods:
        out += ["### Idle floods (weft only, medians)", "",
                f"`weft-load flood --conns N --hold {s.get('flood_hold_s')} [--sources K]`: N connections "
                "opened as fast as allowed, held idle, then each proven to echo once. Memory per",
                "connection: the server's highest VmRSS while they are held less its VmRSS before, over",
                "N (user space only; kernel socket memory is not in RSS).", ""]
        rows = []
        for f in s.get("floods", []):
            g = [r for r in floods if r["conns"] == f["conns"] and r.get("sources") == f["sources"]]
            rows.append([f["conns"], max(f["sources"], 1),
                         cell(g, lambda r: ((r["rss_max_kib"] - r["rss_before_kib"]) * 1024 / r["conns"]
                                            if r.get("rss_max_kib") and r.get("rss_before_kib") else None),
                              dash(lambda v: f"{v:.0f}")),
                         cell(g, hwm, fmt_mib), cell(g, lambda r: dig(r, "load", "connect_us", "p50"), fmt_ms),
                         cell(g, lambda r: dig(r, "load", "connect_us", "p99"), fmt_ms)])
        out += table(["connections", "client source addresses", "bytes per connection", "peak RSS MiB",
                      "connect p50 ms", "connect p99 ms"], rows)
        out += ["", res.source(), ""]
    out += every_run(res, ["kind", "server", "conns", "size", "depth"],
                     [("msgs/s", msgs, fmt_rate), ("p50 ms", lat("p50"), fmt_ms), ("p99 ms", lat("p99"), fmt_ms),
                      ("p99.9 ms", lat("p999"), fmt_ms), ("CPU s / 10⁶", cpu_per_m(res), fmt_2),
                      ("RSS MiB", hwm, fmt_mib)])
    return out


def every_run(res, keys, values):
    """Every run of every round, in the order they ran, in a folded table."""
    rows = [[r.get("round")] + [r.get(k, "") for k in keys] + [r.get("status")]
            + [fmt(f(r)) if r.get("status") == "ok" else "" for _, f, fmt in values]
            + [md(r.get("reason", ""), 120)] for r in res.runs]
    return (["### Every run", "", f"<details><summary>all {len(res.runs)} runs of `{res.path}`, "
             "in the order they ran</summary>", ""]
            + table(["round"] + keys + ["status"] + [n for n, _, _ in values] + ["reason"], rows,
                    ["--:"] + ["---"] * (len(keys) + 1) + ["--:"] * len(values) + ["---"])
            + ["", "</details>", ""])


# ---- suite "http" (bench/http.sh) --------------------------------------------

def render_http(res, img_dir, title="HTTP: weft-http against nginx", refs=None):
    """A weft server's req/s and p99 against reference servers (refs, default
    nginx), per case and connection count, with the goal's verdict for each."""
    s = res.settings
    goal = s.get("goal", 1.1)
    out = res.header(title)
    out += [f"Load: {s.get('wrk')}, {s.get('duration_s')} s per run, after a 2 s warm-up of each server."]
    rps, p99 = (lambda r: r.get("rps")), (lambda r: dig(r, "latency_ms", "p99"))
    refs = [r for r in (refs or ["nginx" if "nginx" in res.ids else "nginx-pin"]) if r in res.ids]
    for case in s.get("cases", []):
        c = s["case"][case]
        out += ["", f"### {c['title']}", "", f"Load: `{c['load']}`.", ""]
        out += table(["server", "command"], [[res.label(i), f"`{c['commands'].get(i, '')}`"]
                                             for i in res.ids], ["---", "---"]) + [""]
        if c.get("nginx_conf"):
            out += ["<details><summary>nginx.conf</summary>", "", "```nginx", c["nginx_conf"], "```", "",
                    "</details>", ""]
        rows, verdict = [], []
        cgoal, p99_rule, size = c.get("goal", goal), c.get("goal_p99", True), c.get("file_bytes")
        mib_s = dash(lambda v: f"{v * size / 2 ** 20:,.0f}")
        for n in c.get("conns", s.get("conns", [])):
            g = {i: res.group(case=case, server=i, conns=n) for i in res.ids}
            m = {i: (ok_median(g[i], rps), ok_median(g[i], p99)) for i in res.ids}
            for i in res.ids:
                rows.append([n, res.label(i), cell(g[i], rps, fmt_rate)]
                            + ([cell(g[i], rps, mib_s)] if size else [])
                            + [cell(g[i], p99, fmt_3),
                               ", ".join(fmt_rate(rps(r)) if r["status"] == "ok" else r["status"]
                                         for r in g[i]),
                               sum(r.get("errors") or 0 for r in g[i]),
                               ] + [fmt_ratio(m[i][0], m[ref][0]) if i != ref else "" for ref in refs])
            for i, ref in ((i, ref) for i in res.ids if i.startswith("weft") for ref in refs):
                (wr, wp), (nr, np_) = m[i], m[ref]
                if None in (wr, wp, nr, np_):
                    verdict.append(f"- {res.label(i)} at {n} connections: no result")
                    continue
                ok = wr >= cgoal * nr and (wp <= np_ or not p99_rule)
                verdict.append(f"- {'MET' if ok else 'NOT MET'}: {res.label(i)} at {n} connections, "
                               f"{wr:,.0f} req/s = {wr / nr:.2f}× {res.label(ref)} ({nr:,.0f}), p99 {wp:.3f} ms "
                               f"against {np_:.3f} ms")
        out += table(["connections", "server", "requests/s"] + (["MiB/s"] if size else [])
                     + ["p99 ms", "requests/s per round", "errors"]
                     + [f"/ {res.label(ref)}" for ref in refs], rows,
                     ["--:", "---", "--:"] + (["--:"] if size else []) + ["--:", "---", "--:"]
                     + ["--:"] * len(refs))
        out += ["", res.source(), ""]
        if size:
            out += [f"Each response is the {size:,}-byte file (MiB/s = requests/s × its size); every "
                    "server's copy was compared with the file (cmp) before and after the runs.", ""]
        out += [f"Goal: ≥ {cgoal}× nginx's requests/s" + (" with a p99 no worse:" if p99_rule else
                                                          " (p99 shown, not part of the goal):")]
        out += verdict
    idle = res.group(case="idle")
    if idle:
        out += ["", f"### Memory per idle client connection ({s.get('idle')} connections, each after "
                "one keep-alive request)", ""]
        out += table(["server", "RSS before KiB", "RSS after KiB", "bytes per connection"],
                     [[res.label(r["server"]), r.get("rss_before_kib"), r.get("rss_after_kib"),
                       r.get("bytes_per_conn") if r["status"] == "ok" else "FAILED"] for r in idle])
    return out + [""] + every_run(res, ["case", "server", "conns"],
                                  [("req/s", rps, fmt_rate), ("p99 ms", p99, fmt_3),
                                   ("errors", lambda r: r.get("errors"), str)])


def render_lb(res, img_dir):
    return render_http(res, img_dir, "weft-lb against HAProxy and nginx (reverse proxies)",
                       res.settings.get("refs"))


# ---- suite "tls" (bench/tls.sh) -------------------------------------------------

def idle_bytes(r):
    """Bytes of RSS per idle TLS connection: (RSS with them open - RSS before) / N."""
    a, b, n = r.get("rss_before_kib"), r.get("rss_after_kib"), r.get("conns")
    return (b - a) * 1024 / n if None not in (a, b) and n else None


def per_round(runs, value, fmt):
    return ", ".join(fmt(value(r)) if r["status"] == "ok" else r["status"] for r in runs) or "–"


def render_tls(res, img_dir):
    s = res.settings
    goal = s.get("goal", 1.0)
    ref = "nginx"
    weft = [i for i in res.ids if i.startswith("weft")]
    rps, p99 = (lambda r: r.get("rps")), (lambda r: dig(r, "latency_ms", "p99"))
    fmt_b = dash(lambda v: f"{v:,.0f}")
    out = res.header("TLS: weft-http against nginx")
    out += [f"Both servers: the same ECDSA P-256 certificate ({s.get('certificate', '')}, self-signed, made "
            "by the script), `GET /` answered with `hello, world\\n` from memory, "
            f"{s.get('workers')} workers each, no access log, TLS 1.2 and 1.3 with the same TLS 1.2 "
            "ciphers (server preference), a session cache and session tickets. What "
            "`openssl s_client -alpn http/1.1` negotiated with each:", ""]
    out += table(["server", "negotiated"], [[res.label(i), res.servers[i].get("tls") or "–"]
                                            for i in res.ids], ["---", "---"])
    out += ["", f"Load: {s.get('wrk')} ({s.get('openssl')}), {s.get('duration_s')} s per run over "
            "https, after a 2 s warm-up of each server. A keep-alive run's window includes its "
            "connections' handshakes (wrk has no separate warm-up).", ""]
    cmds = s.get("commands", {})
    out += table(["phase", "server", "command"],
                 [[ph, res.label(i), f"`{c.get(i, '')}`"] for ph, c in cmds.items() for i in res.ids],
                 ["---", "---", "---"]) + [""]

    summary, verdict = [], []

    def goal_row(what, wid, wv, rv, fmt, higher):
        ratio = fmt_ratio(wv, rv)
        if wv is None or not rv:
            met = "no result"
        else:
            met = "MET" if (wv >= goal * rv if higher else wv <= rv) else "NOT MET"
        summary.append([what, res.label(wid), fmt(wv), fmt(rv), ratio,
                        f"{'≥' if higher else '≤'} {goal if higher else 1.0}×", met])

    def wrk_table(case, title, load):
        if case not in s.get("cases", []):
            return []
        rows = []
        lines = ["", f"### {title}", "", f"Load: `{load}`.", ""]
        for n in s.get("conns", []):
            g = {i: res.group(case=case, server=i, conns=n) for i in res.ids}
            m = {i: ok_median(g[i], rps) for i in res.ids}
            for i in res.ids:
                rows.append([n, res.label(i), cell(g[i], rps, fmt_rate), cell(g[i], p99, fmt_3),
                             per_round(g[i], rps, fmt_rate), sum(r.get("errors") or 0 for r in g[i]),
                             fmt_ratio(m[i], m.get(ref)) if i != ref else ""])
                if case == "keepalive" and i in weft:
                    goal_row(f"keep-alive requests/s, {n} connections", i, m[i], m.get(ref), fmt_rate, True)
        lines += table(["connections", "server", "requests/s", "p99 ms", "requests/s per round", "errors",
                        f"/ {res.label(ref)}"], rows, ["--:", "---", "--:", "--:", "---", "--:", "--:"])
        return lines + ["", res.source(), "(errors: wrk's socket errors plus non-2xx answers, summed over the "
                        "rounds.)"]

    body = wrk_table("keepalive", "Keep-alive requests/s over TLS (medians)",
                     f"wrk -t{s.get('wrk_threads')} -cN -d{s.get('duration_s')}s --latency https://…/")
    oc = s.get("onecore", {})
    body += wrk_table("onecore", f"One load thread: wrk -t1 on CPU {oc.get('load_cpu')}, servers on CPUs "
                      f"{oc.get('server_cpus')} (medians)",
                      f"taskset -c {oc.get('load_cpu')} wrk -t1 -cN -d{s.get('duration_s')}s --latency https://…/")
    hs_text = {
        "handshake": (
            f"wrk -t{s.get('wrk_threads')} -c{s.get('handshake_conns')} -d{s.get('duration_s')}s --latency -H "
            "'Connection: close' https://…/",
            "both servers close after each answer and wrk reconnects, so requests/s is handshakes/s. "
            "wrk keeps each connection's SSL session across its reconnects and so offers resumption: "
            "these are mostly resumed (abbreviated) handshakes."),
        "fullhs": (
            f"openssl s_time -connect 127.0.0.1:PORT -new -time {s.get('duration_s')} -www /` × "
            f"{s.get('wrk_threads')} side by side, `handshakes/s = connections / wall seconds",
            "each client opens a new connection with a full handshake (no session offered), sends "
            "`GET /` and reads the answer to the close, one connection after the other: full "
            "handshakes only, at as many connections at a time as there are clients."),
    }
    for case, title in (("handshake", "New TLS handshakes per second: a new connection per request, wrk"),
                        ("fullhs", "Full TLS handshakes per second: openssl s_time -new")):
        if case not in s.get("cases", []):
            continue
        load, what = hs_text[case]
        body += ["", f"### {title} (medians)", "", f"Load: `{load}`: {what} *Connections accepted* is the "
                 "server's own count over the run (weft-http's `/stats`, nginx's stub_status; the one "
                 "connection of the first counter reading taken off) against the load's completed "
                 "requests: about 1 connection per request shows that every request had its own "
                 "connection (a connection still in its handshake when the window closes counts on the "
                 "server's side only). *Resumed* is weft's count of handshakes that resumed a session "
                 "(nginx does not count them; the client is the same).", ""]
        g = {i: res.group(case=case, server=i) for i in res.ids}
        m = {i: ok_median(g[i], rps) for i in res.ids}
        rows = []
        for i in res.ids:
            ok = [r for r in g[i] if r["status"] == "ok"]
            acc = sum(r.get("accepted") or 0 for r in ok)
            req = sum(r.get("requests") or 0 for r in ok)
            hs = [r.get("tls_handshakes") for r in ok if r.get("tls_handshakes") is not None]
            rs = [r.get("tls_resumed") for r in ok if r.get("tls_resumed") is not None]
            rows.append([res.label(i), cell(g[i], rps, fmt_rate), cell(g[i], p99, fmt_3),
                         per_round(g[i], rps, fmt_rate), f"{acc:,} / {req:,}" if ok else "–",
                         f"{acc / req:.3f}" if req else "–",
                         f"{sum(rs):,} of {sum(hs):,} ({sum(rs) / sum(hs):.0%})" if hs and sum(hs) else "–",
                         sum(r.get("errors") or 0 for r in g[i]),
                         fmt_ratio(m[i], m.get(ref)) if i != ref else ""])
            if i in weft:
                goal_row("new TLS handshakes/s, " + ("wrk -H 'Connection: close' (mostly resumed)"
                                                     if case == "handshake" else "openssl s_time -new (full)"),
                         i, m[i], m.get(ref), fmt_rate, True)
        body += table(["server", "handshakes/s", "p99 ms", "per round", "connections accepted / requests",
                       "connections per request", "resumed", "errors", f"/ {res.label(ref)}"], rows,
                      ["---", "--:", "--:", "---", "--:", "--:", "--:", "--:", "--:"])
        body += ["", res.source()]
    if "idle" in s.get("cases", []):
        n = s.get("idle_conns")
        body += ["", f"### Memory per idle TLS connection, {n:,} connections (medians)", "",
                 f"A fresh server for each run; its RSS (VmRSS, summed over all its processes: nginx's "
                 "master and workers, weft-http's one process) with no connection, then `bench/tls_idle.py` "
                 f"opens {n:,} connections one after the other (a full handshake each, no session reused, "
                 "the certificate verified, one `GET /` and its whole answer) and holds them idle; 1 s "
                 f"after the last answer the RSS again. Bytes per connection: (RSS with them open - RSS "
                 f"before) / {n:,}, user space only (kernel socket memory is not in RSS).", ""]
        g = {i: res.group(case="idle", server=i) for i in res.ids}
        m = {i: ok_median(g[i], idle_bytes) for i in res.ids}
        rows = []
        for i in res.ids:
            ok = [r for r in g[i] if r["status"] == "ok"]
            seen = {json.dumps(dig(r, "client", "versions") or {}, sort_keys=True) for r in ok}
            vers = json.loads(seen.pop()) if len(seen) == 1 else {}
            rows.append([res.label(i), cell(g[i], idle_bytes, fmt_b), per_round(g[i], idle_bytes, fmt_b),
                         cell(g[i], lambda r: r.get("rss_before_kib"), fmt_mib),
                         cell(g[i], lambda r: r.get("rss_after_kib"), fmt_mib),
                         ok[0].get("processes") if ok else "–",
                         cell(g[i], lambda r: dig(r, "client", "open_s"), fmt_2),
                         ", ".join(f"{v} {k:,}" for v, k in sorted(vers.items())) + " each run"
                         if vers else "varied (see the result file)" if ok else "–",
                         fmt_ratio(m[i], m.get(ref)) if i != ref else ""])
            if i in weft:
                goal_row(f"bytes per idle TLS connection, {n:,} connections", i, m[i], m.get(ref), fmt_b,
                         False)
        body += table(["server", "bytes per connection", "per round", "RSS before MiB", "RSS open MiB",
                       "processes", "open s", "TLS versions (client's count)", f"/ {res.label(ref)}"], rows,
                      ["---", "--:", "---", "--:", "--:", "--:", "--:", "---", "--:"])
        body += ["", res.source()]

    out += ["### The goals (issue 16), medians", ""]
    out += table(["what", "server", "weft", res.label(ref), "weft / nginx", "goal", ""], summary,
                 ["---", "---", "--:", "--:", "--:", "--:", "---"])
    out += ["", res.source()] + body
    return out + [""] + every_run(res, ["case", "server", "conns"],
                                  [("req/s", rps, fmt_rate), ("p99 ms", p99, fmt_3),
                                   ("accepted", lambda r: r.get("accepted"), dash(str)),
                                   ("resumed", lambda r: r.get("tls_resumed"), dash(str)),
                                   ("bytes/conn", idle_bytes, fmt_b)])


# ---- suite "kv" (bench/kv.sh) --------------------------------------------------

def render_kv(res, img_dir):
    s = res.settings
    goal = s.get("goal", 1.0)
    out = res.header("weft-kv against redis-server")
    out += table(["server", "command"],
                 [[res.label(i), f"`{res.servers[i]['command']}`"] for i in res.ids], ["---", "---"])
    rps = lambda r: r.get("rps")  # noqa: E731
    keys = sorted({(r["conns"], r["pipeline"], r["test"]) for r in res.runs},
                  key=lambda k: (k[1], k[0], k[2]))
    rows, met = [], True
    for c, p, t in keys:
        g = {i: res.group(server=i, conns=c, pipeline=p, test=t) for i in ("weft-kv", "redis-server")}
        w, r = ok_median(g["weft-kv"], rps), ok_median(g["redis-server"], rps)
        met &= w is not None and bool(r) and w / r >= goal
        rows.append([c, f"-P {p}" if p > 1 else "none", t, cell(g["weft-kv"], rps, fmt_rate),
                     cell(g["redis-server"], rps, fmt_rate), fmt_ratio(w, r),
                     ", ".join(fmt_rate(rps(x)) for x in g["weft-kv"]),
                     ", ".join(fmt_rate(rps(x)) for x in g["redis-server"])])
    out += ["", f"`{s.get('load', 'redis-benchmark')}`", ""]
    out += table(["connections", "pipeline", "test", "weft-kv req/s", "redis-server req/s", "ratio",
                  "weft-kv per round", "redis-server per round"], rows,
                 ["--:", "--:", "---", "--:", "--:", "--:", "---", "---"])
    out += ["", res.source(), "",
            f"Goal {goal}× redis-server in every row: " + ("met." if met else "NOT met.")]
    return out + [""] + every_run(res, ["server", "conns", "pipeline", "test"],
                                  [("req/s", rps, fmt_rate)])


# ---- suite "proxy" (bench/proxy.sh) --------------------------------------------

def render_proxy(res, img_dir):
    s = res.settings
    hz = res.doc.get("clk_tck", 100)
    out = res.header("TCP proxy: weft-proxy against HAProxy, in front of the same weft-echo")
    out += [f"Load: `{s.get('load')}` ({s.get('duration_s')} s per run, after a 2 s warm-up of each "
            "server), through each proxy to one weft-echo (2 workers) that every proxy forwards to.",
            "weft-load checks every byte that comes back: a run with a mismatched, missing or",
            "extra byte, or fewer connections than asked, is FAILED and left out of the median.",
            "Proxy CPU and backend CPU: utime+stime of each process around the run, over every",
            "verified message. The load generator, the proxy and the backend share the same CPUs.", ""]
    out += table(["server", "command"], [[res.label(i), f"`{s['commands'].get(i, '(weft-load to the backend)')}`"]
                                         for i in res.ids] + [["backend", f"`{s['commands'].get('echo', '')}`"]],
                 ["---", "---"])
    if s.get("haproxy_cfg"):
        out += ["", "<details><summary>haproxy.cfg</summary>", "", "```", s["haproxy_cfg"], "```", "",
                "</details>"]

    def cpu(key):
        def f(r):
            n, t = dig(r, "load", "messages_verified"), r.get(key)
            return t / hz / n * 1e6 if n and t is not None else None
        return f
    verified = lambda r: dig(r, "load", "messages_verified")  # noqa: E731
    mism = lambda r: dig(r, "load", "errors", "mismatches")  # noqa: E731
    rows, verdict = [], []
    for n in s.get("conns", []):
        g = {i: res.group(server=i, conns=n) for i in res.ids}
        m = {i: (ok_median(g[i], msgs), ok_median(g[i], lat("p99"))) for i in res.ids}
        for i in res.ids:
            rows.append([n, res.label(i), cell(g[i], msgs, fmt_rate),
                         ", ".join(fmt_rate(msgs(r)) if r["status"] == "ok" else r["status"] for r in g[i]),
                         cell(g[i], lat("p50"), fmt_ms), cell(g[i], lat("p99"), fmt_ms),
                         cell(g[i], lat("p999"), fmt_ms), cell(g[i], cpu("proxy_cpu_ticks"), fmt_2),
                         cell(g[i], cpu("backend_cpu_ticks"), fmt_2),
                         f"{sum(verified(r) or 0 for r in g[i]):,}",
                         sum(mism(r) or 0 for r in g[i]),
                         fmt_ratio(m[i][0], m.get("haproxy", (None,))[0]) if i != "haproxy" else ""])
        if "weft-proxy" in m and "haproxy" in m:
            (wr, wp), (hr, hp) = m["weft-proxy"], m["haproxy"]
            if None in (wr, wp, hr, hp):
                verdict.append(f"- {n} connections: no result for one of them")
            else:
                verdict.append(f"- {n} connections: weft-proxy {wr:,.0f} msg/s = {wr / hr:.2f}× HAProxy "
                               f"({hr:,.0f}); p99 {wp / 1000:.3f} ms against {hp / 1000:.3f} ms "
                               f"({wp / hp:.2f}×)")
    out += [""] + table(["connections", "server", "messages/s", "per round", "p50 ms", "p99 ms", "p99.9 ms",
                         "proxy CPU s / 10⁶ msgs", "backend CPU s / 10⁶ msgs", "messages verified (all rounds)",
                         "mismatches", "/ HAProxy"], rows,
                        ["--:", "---", "--:", "---"] + ["--:"] * 8)
    out += ["", res.source(), "", "weft-proxy against HAProxy (medians, same run):"] + verdict
    return out + [""] + every_run(res, ["server", "conns"],
                                  [("msgs/s", msgs, fmt_rate), ("p99 ms", lat("p99"), fmt_ms),
                                   ("verified", verified, fmt_rate), ("mismatches", mism, str)])


RENDER = {"echo": render_echo, "http": render_http, "kv": render_kv, "proxy": render_proxy,
          "lb": render_lb, "tls": render_tls}


# ---- output -------------------------------------------------------------------

def splice(path, marker, text):
    """Replaces the part of the file at path between <!-- marker:begin -->
    and <!-- marker:end -->, keeping the rest; adds the markers at the end
    when they are missing."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    old = open(path).read() if os.path.exists(path) else (
        "# Benchmarks\n\nThe parts between the markers are rendered by `bench/render.py` from the "
        "result files in `bench/results/`; text outside them is kept.\n")
    # A marker counts only on a line of its own: prose may name it (in backticks).
    b = re.search(rf"^{re.escape(begin)}$", old, re.M)
    e = b and re.compile(rf"^{re.escape(end)}$", re.M).search(old, b.end())
    if not e:
        old = old.rstrip("\n") + f"\n\n{begin}\n{end}\n"
        b = re.search(rf"^{re.escape(begin)}$", old, re.M)
        e = re.compile(rf"^{re.escape(end)}$", re.M).search(old, b.end())
    with open(path, "w") as f:
        f.write(f"{old[:b.start()]}{begin}\n{text}{end}{old[e.end():]}")


def main():
    ap = argparse.ArgumentParser(description="Render benchmark result files as markdown and plots.")
    ap.add_argument("results", nargs="+", help="result files (bench/results/*.json)")
    ap.add_argument("--out", help="markdown file whose marked parts are replaced (default: stdout)")
    ap.add_argument("--no-plots", action="store_true", help="no gnuplot images")
    ap.add_argument("--section", metavar="NAME",
                    help="with --out: render every result file into the part between "
                         "<!-- NAME:begin --> and <!-- NAME:end --> instead of each suite's own markers "
                         "(a section of its own; plots are named after it)")
    ap.add_argument("--title", help="the heading of each rendered result instead of the suite's")
    a = ap.parse_args()
    if a.section and not a.section.replace("-", "").replace("_", "").replace(".", "").isalnum():
        ap.error(f"--section: letters, digits, '-', '_' and '.' only: {a.section!r}")
    global TITLE, PLOT_PREFIX
    TITLE = a.title
    PLOT_PREFIX = f"{a.section}-" if a.section else ""
    img_dir = None if a.no_plots or not a.out else os.path.join(os.path.dirname(os.path.abspath(a.out)), "img")
    parts = {}
    for path in a.results:
        res = Result(path)
        if res.suite not in RENDER:
            sys.exit(f"render.py: {path}: unknown suite {res.suite!r}")
        parts.setdefault(res.suite, []).extend(RENDER[res.suite](res, img_dir))
    if a.section and len(parts) > 1:
        parts = {"all": [line for lines in parts.values() for line in lines]}
    for suite, lines in parts.items():
        text = "\n".join(lines).rstrip("\n") + "\n"
        if a.out:
            splice(a.out, a.section or MARKERS[suite], text)
        else:
            sys.stdout.write(text)


if __name__ == "__main__":
    main()
