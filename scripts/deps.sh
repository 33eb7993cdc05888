#!/usr/bin/env bash
# Install the Debian packages weft needs to build, test and run, and nothing
# else: each package is checked with dpkg-query first and only the missing
# ones go to apt-get (as root directly, otherwise through sudo).
#
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh --bench    also what bench/ needs (libuv, libevent, strace)
#   scripts/deps.sh --check    only report; exit 1 if something is missing
set -euo pipefail

packages=(
    gcc libc6-dev make cmake pkg-config # the toolchain
    liburcu-dev                         # wait-free queues, RCU (liburcu-memb, liburcu-cds)
    libjemalloc-dev                     # per-worker arenas
    libnuma-dev                         # CPU -> node, node-local memory
    libssl-dev openssl                  # TLS (OpenSSL 3); openssl makes the tests' certificates
    liburing-dev                        # the io_uring backend (--io uring)
    libcmocka-dev                       # unit tests
    libjansson-dev                      # weft-stat reads the server's JSON
    libsodium-dev libsqlite3-dev libssl-dev # examples/chat: Argon2id, SQLite, SHA-1 (WebSocket)
    python3-websockets chromium         # examples/chat: WebSocket and browser tests
    clang-format                        # make format / format-check
    valgrind                            # leak and fd checks in tests
    python3                             # test helpers
    curl                                # protocol examples' tests
    netcat-openbsd                      # `nc 127.0.0.1 7000` after `make run`
    clang libclang-rt-14-dev            # libFuzzer targets (fuzz/run.sh)
    nginx-light wrk apache2-utils nghttp2-client # examples/http tests and bench
    redis-server redis-tools            # examples/kv tests and bench
    prometheus                          # promtool: tests/st_prometheus.sh
    systemd                             # systemd-analyze verify: tests/it_units.sh
    help2man                            # make man
    chromium                            # the status page test (tests/st_status_page.sh)
)
bench_packages=(libuv1-dev libevent-dev strace gnuplot-nox)

check_only=false
for arg in "$@"; do
    case $arg in
    --bench) packages+=("${bench_packages[@]}") ;;
    --check) check_only=true ;;
    -h | --help)
        sed -n '2,10p' "$0"
        exit 0
        ;;
    *)
        echo "deps: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

if ! command -v dpkg-query >/dev/null; then
    echo "deps: this is not a Debian-based system; install the equivalents of:" >&2
    echo "      ${packages[*]}" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "deps: all ${#packages[@]} packages are installed"
    exit 0
fi
echo "deps: missing: ${missing[*]}"
if $check_only; then
    exit 1
fi

if ((EUID == 0)); then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "deps: not root and no sudo: run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -q update
"${sudo[@]}" apt-get -q install -y --no-install-recommends "${missing[@]}"
