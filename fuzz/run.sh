#!/usr/bin/env bash
# fuzz/run.sh — build every libFuzzer target with clang and run each for a
# bounded time from its committed seed corpus (copied: the committed corpus
# never grows by itself). Exits non-zero on the first crash, leak or
# sanitizer report, leaving the reproducer in the work dir it prints.
#
# usage: fuzz/run.sh [SECONDS_PER_TARGET] (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}
command -v clang >/dev/null || { echo "fuzz/run.sh: clang is required (apt-get install clang)"; exit 1; }
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DWEFT_FUZZ=ON \
    -DWEFT_SANITIZE=address -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS" >/dev/null
BUILD=$(cd "$BUILD" && pwd) # the targets run from the work dir below
WORK=$(mktemp -d /tmp/weft-fuzz.XXXXXX)
mapfile -t TARGETS < <(find "$BUILD" -type f -name 'fuzz_*' -perm -u+x | sort)
[ "${#TARGETS[@]}" -gt 0 ] || { echo "fuzz/run.sh: no fuzz targets were built"; exit 1; }
for t in "${TARGETS[@]}"; do
    name=$(basename "$t")
    corpus="$WORK/$name"
    mkdir -p "$corpus"
    for d in "fuzz/corpus/${name#fuzz_}" "fuzz/corpus/$(basename "$(dirname "$t")")"; do
        [ -d "$d" ] && cp -r "$d"/. "$corpus"/
    done
    echo "== $name: ${SECS}s from $(ls "$corpus" | wc -l) seeds"
    (cd "$WORK" && "$t" -max_total_time="$SECS" -print_final_stats=1 "$corpus" \
        > "$WORK/$name.log" 2>&1) || { tail -40 "$WORK/$name.log"; echo "FAIL: $name (log and reproducer in $WORK)"; exit 1; }
    grep -E "^stat::number_of_executed_runs|^#[0-9]+.*DONE" "$WORK/$name.log" | tail -2 || true
done
rm -rf "$WORK"
echo "fuzz: ${#TARGETS[@]} targets ran ${SECS}s each without a finding"
