#!/usr/bin/env bash
# bench/device_bundle.sh — build the servers and the load generator and put
# them, with the shared libraries they load (liburcu, jemalloc, libnuma,
# libuv, libevent), in one folder that can run on another x86-64 Linux
# machine without installing anything. usage: bench/device_bundle.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.devbundle}
cmake -S . -B build-dev -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_BENCH=ON -DWEFT_BUILD_TESTS=OFF \
    -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-dev -j2 --target weft-echo weft-load peer-libuv peer-libevent >/dev/null
rm -rf "$DIR"
mkdir -p "$DIR/bin" "$DIR/lib"
cp build-dev/tools/weft-echo build-dev/tools/weft-load build-dev/bench/peers/peer-libuv \
    build-dev/bench/peers/peer-libevent "$DIR/bin/"
for b in "$DIR"/bin/*; do
    ldd "$b" | awk '/=> \// {print $3}' | grep -E 'urcu|jemalloc|numa|uv|event' || true
done | sort -u | xargs -r -I{} cp -L {} "$DIR/lib/"
ls -la "$DIR/bin" "$DIR/lib"
