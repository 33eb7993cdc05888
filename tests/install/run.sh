#!/usr/bin/env bash
# install_consumer (registered by tests/install.cmake): install a weft build
# into a scratch prefix and use it from outside, the way an embedding project
# would. Fails on the first thing that is wrong.
#
#   run.sh BUILD_DIR THIS_DIR WORK_DIR [CONFIG]
#
# Environment (set by ctest): WEFT_CMAKE, WEFT_CC, WEFT_VERSION, WEFT_LIBDIR,
# WEFT_INCLUDEDIR, WEFT_BINDIR, WEFT_TOOLS (space-separated), WEFT_SANITIZE.
set -euo pipefail

build=$1 here=$2 work=$3 config=${4:-}
cmake=${WEFT_CMAKE:-cmake}
cc=${WEFT_CC:-cc}
libdir=${WEFT_LIBDIR:-lib}
incdir=${WEFT_INCLUDEDIR:-include}
bindir=${WEFT_BINDIR:-bin}
: "${WEFT_VERSION:?}"

step() { printf '\n--- %s\n' "$*"; }
fail() {
    printf 'install_consumer: FAIL: %s\n' "$*" >&2
    exit 1
}
# The scratch prefix must be absolute: the checks below compare paths.
case $work in /*) ;; *) work=$PWD/$work ;; esac
prefix=$work/prefix

rm -rf "$work"
mkdir -p "$prefix"

step "cmake --install $build --prefix $prefix"
cfg_args=()
[[ -n $config ]] && cfg_args=(--config "$config")
"$cmake" --install "$build" --prefix "$prefix" "${cfg_args[@]}"

step "installed files"
for f in "$incdir/weft/weft.h" "$libdir/libweft.a" "$libdir/libweft.so" \
    "$libdir/libweft.so.0" "$libdir/pkgconfig/weft.pc" "$libdir/cmake/weft/weftConfig.cmake" \
    "$libdir/cmake/weft/weftConfigVersion.cmake" "$libdir/cmake/weft/weftTargets.cmake"; do
    [[ -e $prefix/$f ]] || fail "not installed: $f"
    echo "ok  $f"
done
for t in ${WEFT_TOOLS:-}; do
    [[ -x $prefix/$bindir/$t ]] || fail "tool not installed: $bindir/$t"
    echo "ok  $bindir/$t"
done
if [[ " ${WEFT_TOOLS:-} " == *" weft-echo "* ]]; then
    "$prefix/$bindir/weft-echo" --help >/dev/null || fail "weft-echo --help failed"
fi
# The CMake package is relocatable: nothing in it may point back into the
# build or source tree (weft.pc names the prefix, which lies in the build tree).
if grep -rlF -e "$build" -e "$(dirname "$(dirname "$here")")/" "$prefix/$libdir/cmake"; then
    fail "installed CMake package files mention the build or source tree (above)"
fi
if command -v readelf >/dev/null && readelf -d "$prefix/$libdir/libweft.so" |
    grep -E 'R(UN)?PATH' | grep -F "$build"; then
    fail "installed libweft.so has a run path into the build tree"
fi

# Run a consumer binary; `shared` ones must load libweft from the prefix,
# `static` ones must not need libweft.so at all.
run_consumer() {
    local exe=$1 kind=$2 deps
    deps=$(ldd "$exe") || fail "ldd $exe"
    case $kind in
    shared)
        grep -E 'libweft\.so' <<<"$deps" | grep -qF "$prefix/" ||
            fail "$exe does not load libweft.so from $prefix: $deps"
        ;;
    static)
        ! grep -q 'libweft\.so' <<<"$deps" || fail "$exe should not need libweft.so: $deps"
        ;;
    esac
    "$exe" || fail "$exe exited with $?"
}

step "find_package(weft) consumer"
cbuild=$work/cmake-consumer
"$cmake" -S "$here/consumer" -B "$cbuild" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
    -DWEFT_EXPECTED_VERSION="$WEFT_VERSION"
found=$(sed -n 's/^weft_DIR:PATH=//p' "$cbuild/CMakeCache.txt")
[[ $found == "$prefix/"* ]] || fail "find_package(weft) found '$found', not the scratch prefix"
"$cmake" --build "$cbuild" --verbose
run_consumer "$cbuild/consumer_shared" shared
run_consumer "$cbuild/consumer_static" static

step "pkg-config consumer"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pkg-config --exists --print-errors weft || fail "pkg-config cannot use weft.pc"
[[ $(pkg-config --modversion weft) == "$WEFT_VERSION" ]] ||
    fail "weft.pc says version $(pkg-config --modversion weft), expected $WEFT_VERSION"
[[ $(pkg-config --variable=prefix weft) == "$prefix" ]] ||
    fail "weft.pc has prefix $(pkg-config --variable=prefix weft), expected $prefix"
cflags=$(pkg-config --cflags weft)
libs=$(pkg-config --libs weft)
static_libs=$(pkg-config --static --libs weft)
echo "cflags: $cflags"
echo "libs:   $libs"
echo "static: $static_libs"
pbuild=$work/pc-consumer
mkdir -p "$pbuild"
common=(-std=c11 -Wall -Wextra -Werror -pedantic "-DWEFT_PKG_VERSION=\"$(pkg-config --modversion weft)\"")
# shellcheck disable=SC2086 # pkg-config output is a list of words
"$cc" "${common[@]}" $cflags "$here/consumer/main.c" -o "$pbuild/consumer_shared" $libs \
    -Wl,-rpath,"$prefix/$libdir"
run_consumer "$pbuild/consumer_shared" shared
# Static: the archive by name, then everything Libs.private/Requires.private add.
with_archive=" $static_libs "
with_archive=${with_archive// -lweft / -l:libweft.a }
[[ $with_archive != " $static_libs " ]] || fail "no -lweft in pkg-config --static --libs weft"
# shellcheck disable=SC2086
"$cc" "${common[@]}" $cflags "$here/consumer/main.c" -o "$pbuild/consumer_static" $with_archive
run_consumer "$pbuild/consumer_static" static

if command -v c++ >/dev/null; then
    step "the header compiles as C++"
    printf '#include <weft/weft.h>\nint main() { weft_config c = weft_config_default(); return c.port == 0; }\n' \
        >"$pbuild/hdr.cc"
    # shellcheck disable=SC2086
    c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only $cflags "$pbuild/hdr.cc" ||
        fail "weft.h does not compile as C++"
fi

step "docs/embedding.md: the tutorial's files, built and run as written"
doc=$here/../../docs/embedding.md
tut=$work/tutorial
mkdir -p "$tut"
# Each block that follows a "<!-- file: NAME -->" line becomes that file.
awk -v dir="$tut" '
    /^<!-- file: .* -->$/ { name = $3; next }
    name != "" && /^```/ { if (out) { close(out); out = ""; name = "" } else out = dir "/" name; next }
    out { print > out }
' "$doc"
[[ -s $tut/shout.c && -s $tut/CMakeLists.txt ]] || fail "could not extract the tutorial's files"
"$cmake" -S "$tut" -B "$tut/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" -DCMAKE_BUILD_RPATH="$prefix/$libdir" >/dev/null ||
    fail "the tutorial's CMakeLists.txt does not configure"
"$cmake" --build "$tut/build" >/dev/null || fail "the tutorial does not build with CMake"
# shellcheck disable=SC2086
"$cc" -O2 -Wall -Wextra -Werror -o "$tut/shout_pc" "$tut/shout.c" $cflags $libs \
    -Wl,-rpath,"$prefix/$libdir" || fail "the tutorial does not build with pkg-config"
for bin in "$tut/build/shout" "$tut/shout_pc"; do
    "$bin" 0 >"$tut/out.txt" 2>&1 &
    spid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^shout on 127.0.0.1:\([0-9]*\)$/\1/p' "$tut/out.txt")
        [[ -n $port ]] && break
        sleep 0.05
    done
    [[ -n $port ]] || { kill "$spid"; fail "$bin did not start: $(cat "$tut/out.txt")"; }
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'hello\r\n/count\n/quit\n' >&3
    reply=$(timeout 5 cat <&3 || true)
    exec 3<&-
    kill -TERM "$spid"
    wait "$spid" || fail "$bin exited non-zero after SIGTERM"
    want=$'shout ready\nHELLO\n1 lines\nbye'
    [[ $reply == "$want" ]] || fail "$bin answered '$reply', expected '$want'"
    echo "$bin: answered as the tutorial says"
done

printf '\ninstall_consumer: OK (prefix %s)\n' "$prefix"
