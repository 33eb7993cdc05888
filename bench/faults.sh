#!/usr/bin/env bash
# bench/faults.sh — the fault suite at full scale, each fault against a
# baseline of the same healthy traffic without it.
#
# usage: bench/faults.sh [BUILD_DIR]      (default: ./build; needs the tests
#                                          built: tests/ft_*, tools/weft-*)
#
# For each fault program (tests/ft_*.c, the same ones ctest runs at CI size)
# it runs the fault at bench scale, then `--baseline MS`: the same server
# options and the same healthy line-echo traffic (16 connections, one line
# every 10 ms each, every byte verified) for as long as the fault run took,
# with no fault. It prints a markdown table (healthy p99 with and without
# the fault, their ratio against the 3x goal, mismatches, pass/fail) and
# writes it into docs/reliability.md between the markers
#   <!-- faults.sh:begin --> ... <!-- faults.sh:end -->
# Every run is bounded (timeout per program); processes are the programs'
# own children, stopped by PID. Exit status: 0 when every fault passed.
set -u
cd "$(dirname "$0")/.." || exit 2
root=$PWD
build=${1:-$root/build}
[ -x "$build/tests/ft_slowloris" ] && [ -x "$build/tools/weft-echo" ] ||
    { echo "bench/faults.sh: build the tests first (cmake --build $build)" >&2; exit 2; }
echo_bin=$build/tools/weft-echo
load_bin=$build/tools/weft-load
doc=$root/docs/reliability.md
out=$(mktemp -d "${TMPDIR:-/tmp}/faults.XXXXXX") || exit 2
trap 'rm -rf "$out"' EXIT

# name | program | scale | what the scale counts
faults=(
    "slowloris|ft_slowloris|1000|connections trickling 1 B / 200 ms"
    "reset|ft_reset|20000|connections aborted with RST"
    "vanish|ft_vanish|5000|connections of a SIGKILLed process"
    "slow_consumer|ft_slow_consumer|500|connections that never read"
    "oversize|ft_oversize|10|64 MiB lines (cap 1 MiB)"
    "limits|ft_limits|2000|connects (max_conns 1000; 500 at ulimit 128)"
    "sigterm|ft_sigterm|200|connections pumping at SIGTERM"
    "churn|ft_churn|100000|connect/request/close cycles"
)

# field LINE KEY — the value of KEY=... in an FT_RESULT line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

rows=()
all_ok=1
t_start=$SECONDS
for f in "${faults[@]}"; do
    IFS='|' read -r name prog scale what <<<"$f"
    extra=()
    [ "$prog" = ft_churn ] && extra=("$load_bin")
    echo "== $name: $scale $what" >&2
    timeout 300 "$build/tests/$prog" "$echo_bin" "${extra[@]}" -n "$scale" \
        >"$out/$name.fault" 2>"$out/$name.fault.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        all_ok=0
        grep -m3 '^FAIL' "$out/$name.fault.err" >&2
        failures+="- $name: $(grep -m1 '^FAIL' "$out/$name.fault.err" | sed 's/^FAIL [^ ]*: //')"$'\n'
    fi
    ms=0
    while read -r line; do
        m=$(field "$line" ms)
        [ "${m:-0}" -gt "$ms" ] && ms=$m
    done < <(grep '^FT_RESULT' "$out/$name.fault")
    [ "$ms" -lt 2000 ] && ms=2000
    timeout 120 "$build/tests/$prog" "$echo_bin" "${extra[@]}" -n "$scale" --baseline "$ms" \
        >"$out/$name.base" 2>"$out/$name.base.err"
    base=$(grep -m1 '^FT_RESULT' "$out/$name.base")
    b99=$(field "$base" p99_us)
    if ! grep -q '^FT_RESULT' "$out/$name.fault"; then
        rows+=("| $name | $scale $what | - | ${b99:--} | - | - | - | **FAIL** (rc $rc) |")
        continue
    fi
    nres=$(grep -c '^FT_RESULT' "$out/$name.fault")
    while read -r line; do
        sub=$(field "$line" fault)
        msgs=$(field "$line" msgs)
        mis=$(field "$line" mismatches)
        err=$(field "$line" errors)
        f99=$(field "$line" p99_us)
        label=$name
        [ "$nres" -gt 1 ] && label="$name: $sub"
        if [ "$sub" = sigterm ]; then
            # No healthy side traffic here: the pumping connections are the
            # checked traffic; report the stop time instead of a latency.
            ratio="stopped in $(field "$line" ms) ms"
            f99=-
            bcol=-
            msgs="$msgs B"
        else
            bcol=$b99
            ratio=$(awk -v a="$f99" -v b="$b99" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }')
        fi
        verdict=pass
        [ $rc -eq 0 ] || verdict="**FAIL** (see below)"
        rows+=("| $label | $scale $what | $msgs | $bcol | $f99 | $ratio | $mis / $err | $verdict |")
    done < <(grep '^FT_RESULT' "$out/$name.fault")
done

load=$(uptime | sed 's/.*load average: //')
table="Run: \`bench/faults.sh ${1:-build}\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, load average
$load (from \`uptime\` at the end; other jobs shared the machine), $((SECONDS - t_start)) s in all.
Healthy traffic: 16 line-echo connections, one 8-200 B line every 10 ms each, every byte verified;
latency in microseconds from send to the whole echo.

| fault | scale | healthy msgs | p99 baseline | p99 with fault | ratio (goal <= 3x) | mismatches / errors | result |
|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do table+=$'\n'"$r"; done
if [ -n "${failures:-}" ]; then
    table+=$'\n\n'"Failures:"$'\n\n'"$failures"
fi
printf '%s\n' "$table"

if [ -f "$doc" ] && grep -q '<!-- faults.sh:begin -->' "$doc"; then
    printf '%s\n' "$table" >"$out/table"
    awk -v tf="$out/table" '
        /<!-- faults.sh:begin -->/ { print; while ((getline l < tf) > 0) print l; skip = 1; next }
        /<!-- faults.sh:end -->/ { skip = 0 }
        !skip { print }' "$doc" >"$out/doc" && cat "$out/doc" >"$doc"
    echo "bench/faults.sh: figures written to docs/reliability.md" >&2
fi
[ $all_ok -eq 1 ]
