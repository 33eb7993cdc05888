#!/usr/bin/env bash
# bench/faults.sh — the fault suite at full scale, each fault judged against
# a baseline of the same healthy traffic without it, measured in the same
# invocation.
#
# usage: bench/faults.sh [options] [BUILD_DIR]
#   BUILD_DIR       build tree with tests/ft_* and tools/weft-* (default build)
#   --rounds N      rounds (default 3): each round runs every fault, and right
#                   after each its baseline (the same server options and the
#                   same healthy traffic, for as long as the fault run took)
#   --only LIST     comma-separated faults (default: all; see the table below)
#   --results DIR   where the result file goes (default bench/results)
#   --no-doc        do not write the table into docs/reliability.md
#   -h, --help      this text
#
# Healthy traffic: 16 line-echo connections, one line every 10 ms each,
# every byte verified, latency from send to the whole echo. The fault
# generators run at SCHED_IDLE (ft_fault_nice in tests/ft_lib.c; nice 19
# where SCHED_IDLE cannot be set): on a small machine they take only CPU
# time the server and the healthy clients leave, while the server still
# does all the work the fault causes.
#
# Verdict, per fault, over the rounds: pass only when
#   - the fault program passed its own checks (exit 0) in every round (the
#     counters, fds and memory the test asserts; healthy traffic clean);
#   - the baseline run passed in every round;
#   - no healthy mismatch and no healthy error in any round;
#   - latency: the median over the rounds of (healthy p99 with the fault /
#     healthy p99 of that round's baseline) is at most 3;
#   - throughput: the median of (healthy messages/s with the fault / the
#     baseline's) is at least 0.9.
# (sigterm has no healthy side traffic: its program's checks are its
# verdict.) Otherwise FAIL, with the reason, and the exit status is 1.
#
# Output: bench/results/faults-UTCSTART-COMMIT[-dirty].json (schema
# weft-bench/1, suite "faults": every run of every round with its FT_RESULT
# figures and exit status), the same table as markdown beside it (.md), on
# stdout, and in docs/reliability.md between
#   <!-- faults.sh:begin --> ... <!-- faults.sh:end -->
# Every run is bounded (timeout per program); the programs stop their own
# servers by PID. Exit status: 0 when every verdict is pass, 1 otherwise,
# 2 on bad arguments or a missing build.
set -u
cd "$(dirname "$0")/.." || exit 2
root=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh

build=$root/build
rounds=3
only=
results=$root/bench/results
write_doc=1
argv0=("$0" "$@")
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --only) only=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --results) results=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --no-doc) write_doc=0; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "bench/faults.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] && [ "$rounds" -le 20 ] ||
    { echo "bench/faults.sh: --rounds: expected 1 .. 20, got '$rounds'" >&2; exit 2; }
[ -x "$build/tests/ft_slowloris" ] && [ -x "$build/tools/weft-echo" ] ||
    { echo "bench/faults.sh: build the tests first (cmake --build $build)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench/faults.sh: needs python3 (the verdicts)" >&2; exit 2; }
echo_bin=$build/tools/weft-echo
load_bin=$build/tools/weft-load
doc=$root/docs/reliability.md
T_START=$SECONDS
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/faults.XXXXXX") || exit 2
trap cleanup EXIT

# name | program | scale | what the scale counts
all_faults=(
    "slowloris|ft_slowloris|1000|connections trickling 1 B / 200 ms"
    "reset|ft_reset|20000|connections aborted with RST"
    "vanish|ft_vanish|5000|connections of a SIGKILLed process"
    "slow_consumer|ft_slow_consumer|500|connections that never read (server at its defaults)"
    "oversize|ft_oversize|10|64 MiB lines (cap 1 MiB)"
    "limits|ft_limits|2000|connects (max_conns 1000; 500 at ulimit 128)"
    "sigterm|ft_sigterm|200|connections pumping at SIGTERM"
    "churn|ft_churn|100000|connect/request/close cycles"
    "attack|ft_attack|3000|bad clients of six kinds at once"
)
faults=()
for f in "${all_faults[@]}"; do
    name=${f%%|*}
    if [ -z "$only" ] || [[ ",$only," == *",$name,"* ]]; then faults+=("$f"); fi
done
[ ${#faults[@]} -gt 0 ] || { echo "bench/faults.sh: --only '$only' names no fault" >&2; exit 2; }

result_begin faults "$results" "${argv0[@]}"

# field LINE KEY — the value of KEY=... in an FT_RESULT line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# record ROUND NAME MODE RC FILE ERRFILE — one run per FT_RESULT line of FILE
# (a run that printed none is recorded as failed, with its first FAIL line).
record() {
    local round=$1 name=$2 mode=$3 rc=$4 file=$5 err=$6 line why status k json
    why=$(grep -m1 '^FAIL' "$err" | sed 's/^FAIL [^ ]*: //')
    [ "$rc" -eq 124 ] && why="timed out${why:+; $why}"
    [ "$rc" -ne 0 ] && [ -z "$why" ] && why="exit status $rc"
    status=ok
    [ "$rc" -eq 0 ] || status=FAILED
    if ! grep -q '^FT_RESULT' "$file"; then
        result_run "{\"round\":$round,\"fault\":$(json_str "$name"),\"sub\":$(json_str "$name"),\"mode\":\"$mode\",\"rc\":$rc,\"status\":\"FAILED\",\"reason\":$(json_str "${why:-no FT_RESULT line}")}"
        return
    fi
    while read -r line; do
        json="{\"round\":$round,\"fault\":$(json_str "$name"),\"sub\":$(json_str "$(field "$line" fault)"),\"mode\":\"$mode\",\"rc\":$rc,\"status\":\"$status\""
        for k in n ms conns msgs mismatches errors p50_us p99_us max_us; do
            json+=",\"$k\":$(json_num "$(field "$line" $k)")"
        done
        [ $status = ok ] || json+=",\"reason\":$(json_str "$why")"
        result_run "$json}"
    done < <(grep '^FT_RESULT' "$file")
}

for ((round = 1; round <= rounds; round++)); do
    for f in "${faults[@]}"; do
        IFS='|' read -r name prog scale what <<<"$f"
        extra=()
        [ "$prog" = ft_churn ] && extra=("$load_bin")
        base=$TMPD/$name.$round
        log "round $round/$rounds: $name, $scale $what"
        timeout 300 "$build/tests/$prog" "$echo_bin" "${extra[@]}" -n "$scale" \
            >"$base.fault" 2>"$base.fault.err"
        rc=$?
        [ $rc -eq 0 ] || grep -m3 '^FAIL' "$base.fault.err" >&2
        record "$round" "$name" fault $rc "$base.fault" "$base.fault.err"
        # The baseline lasts as long as the longest part of the fault run.
        ms=0
        while read -r line; do
            m=$(field "$line" ms)
            [ "${m:-0}" -gt "$ms" ] && ms=$m
        done < <(grep '^FT_RESULT' "$base.fault")
        [ "$ms" -lt 2000 ] && ms=2000
        timeout 120 "$build/tests/$prog" "$echo_bin" "${extra[@]}" -n "$scale" --baseline "$ms" \
            >"$base.base" 2>"$base.base.err"
        rc=$?
        [ $rc -eq 0 ] || grep -m3 '^FAIL' "$base.base.err" >&2
        record "$round" "$name" baseline $rc "$base.base" "$base.base.err"
    done
done

faults_list=()
for f in "${faults[@]}"; do IFS='|' read -r name prog scale what <<<"$f"; faults_list+=("$name|$scale $what"); done
result_end "\"settings\":{\"rounds\":$rounds,\"healthy\":\"16 line-echo connections, one 8-200 B line every 10 ms each\",\"fault_side\":\"SCHED_IDLE\",\"goal_p99_ratio\":3,\"goal_throughput_ratio\":0.9,\"faults\":$(json_list "${faults_list[@]}")}"
log "result file: $RESULT_FILE"

# The verdicts and the table, from the result file alone.
table=$RESULT_FILE
table=${table%.json}.md
python3 - "$RESULT_FILE" "$table" <<'EOF'
import json, statistics, sys
res = json.load(open(sys.argv[1]))
st = res["settings"]
goal_l, goal_t = st["goal_p99_ratio"], st["goal_throughput_ratio"]
scale = dict(f.split("|", 1) for f in st["faults"])
runs = res["runs"]
subs = []
for r in runs:
    if r["mode"] == "fault" and (r["fault"], r["sub"]) not in subs:
        subs.append((r["fault"], r["sub"]))
def rate(r):
    # messages/s per healthy connection (the emfile part runs 8, the rest 16)
    return r["msgs"] * 1000.0 / r["ms"] / (r.get("conns") or 1) if r.get("ms") else 0.0
rows, failures, all_ok = [], [], True
for fault, sub in subs:
    fr = [r for r in runs if r["fault"] == fault and r["sub"] == sub and r["mode"] == "fault"]
    # A part's own baseline (same sub) when the program runs one per part
    # (limits), else the fault's.
    bl = [r for r in runs if r["fault"] == fault and r["mode"] == "baseline"]
    br = {r["round"]: r for r in bl if r["sub"] in (fault, sub) and
          (r["sub"] == sub or not any(x["sub"] == sub for x in bl))}
    label = fault if sub == fault else f"{fault}: {sub}"
    why = []
    for r in fr:
        if r["status"] != "ok":
            why.append(f"round {r['round']}: {r.get('reason', 'failed')}")
        b = br.get(r["round"])
        if b is None or b["status"] != "ok":
            why.append(f"round {r['round']}: baseline " + (b.get("reason", "failed") if b else "missing"))
        if r.get("mismatches") or r.get("errors"):
            why.append(f"round {r['round']}: {r.get('mismatches')} mismatches, {r.get('errors')} errors")
    cells_l, cells_t, ratios_l, ratios_t = [], [], [], []
    if sub == "sigterm":
        for r in fr:
            cells_l.append(f"stopped in {r.get('ms')} ms" if r.get("ms") is not None else "-")
        lat = "; ".join(cells_l)
        thr = "-"
    else:
        for r in fr:
            b = br.get(r["round"])
            if r.get("p99_us") is None or not b or not b.get("p99_us"):
                cells_l.append("-"); cells_t.append("-"); continue
            rl = r["p99_us"] / b["p99_us"]
            rt = rate(r) / rate(b) if rate(b) else 0.0
            ratios_l.append(rl); ratios_t.append(rt)
            cells_l.append(f"{b['p99_us']} → {r['p99_us']} ({rl:.1f}x)")
            cells_t.append(f"{rate(b):.1f} → {rate(r):.1f} ({rt:.2f})")
        if ratios_l:
            ml, mt = statistics.median(ratios_l), statistics.median(ratios_t)
            if ml > goal_l:
                why.append(f"healthy p99 {ml:.1f}x its baseline (median of {len(ratios_l)} rounds; goal <= {goal_l}x)")
            if mt < goal_t:
                why.append(f"healthy throughput {mt:.2f} of its baseline (median of {len(ratios_t)} rounds; goal >= {goal_t})")
            lat = "; ".join(cells_l) + f" — **median {ml:.1f}x**"
            thr = "; ".join(cells_t) + f" — **median {mt:.2f}**"
        else:
            why.append("no latency figures")
            lat, thr = "; ".join(cells_l), "-"
    mis = sum((r.get("mismatches") or 0) for r in fr)
    err = sum((r.get("errors") or 0) for r in fr)
    verdict = "pass" if not why else "**FAIL**"
    if why:
        all_ok = False
        failures.append(f"- {label}: " + "; ".join(why))
    rows.append(f"| {label} | {scale.get(fault, '-')} | {lat} | {thr} | {mis} / {err} | {verdict} |")
m = res["machine"]
out = [f"Run: `{res['command']}` from {res['started']} to {res['finished']}, commit "
       f"`{res['source']['commit'][:12]}`{' (uncommitted changes)' if res['source']['dirty'] else ''}, "
       f"{m['cpus']} CPUs ({m['model']}), load average {m['load_before']} before and {m['load_after']} after "
       f"(other jobs may share the machine); {st['rounds']} round(s), every round below.",
       f"Result file: `bench/results/{sys.argv[1].rsplit('/', 1)[-1]}`.",
       f"Healthy traffic: {st['healthy']}, every byte verified; p99 in microseconds from send to the whole echo, "
       f"baseline → with the fault (ratio), per round; throughput in healthy messages/s per connection (at most 100: one line every 10 ms), baseline → with the fault (ratio).",
       f"Goals: p99 ratio <= {goal_l}x and throughput ratio >= {goal_t} (medians over the rounds), "
       f"no mismatch, no error, the fault program's own checks passed in every round.",
       "",
       "| fault | scale | healthy p99 µs per round | healthy msgs/s per connection, per round | mismatches / errors | verdict |",
       "|---|---|---|---|---|---|"] + rows
if failures:
    out += ["", "Failures:", ""] + failures
text = "\n".join(out) + "\n"
open(sys.argv[2], "w").write(text)
sys.stdout.write(text)
sys.exit(0 if all_ok else 1)
EOF
verdict=$?
[ $verdict -le 1 ] || { echo "bench/faults.sh: the verdicts could not be computed" >&2; exit 2; }

if [ $write_doc -eq 1 ] && [ -f "$doc" ] && grep -q '<!-- faults.sh:begin -->' "$doc"; then
    awk -v tf="$table" '
        /<!-- faults.sh:begin -->/ { print; while ((getline l < tf) > 0) print l; skip = 1; next }
        /<!-- faults.sh:end -->/ { skip = 0 }
        !skip { print }' "$doc" >"$TMPD/doc" && cat "$TMPD/doc" >"$doc"
    log "table written to docs/reliability.md"
fi
if [ $verdict -eq 0 ]; then log "every verdict: pass"; else log "some verdicts FAILED (exit 1)"; fi
exit $verdict
