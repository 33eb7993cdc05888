#!/bin/sh
# tests/check_map.sh — docs/architecture.md's map matches the tree
# (make test runs it):
#
#  1. Every file in core/, workers/, buffers/, stats/ and tools/ (their
#     subfolders too) is named, in backquotes, in its folder's row of the
#     "Map" table; a header x.h counts as named when x.c is.
#  2. Every file a row names (`name.c`, `name.h`, `CMakeLists.txt`, `dir/`)
#     exists in that row's folder.
#  3. Every path the document writes out (core/..., docs/..., tests/...)
#     exists.
#
# usage: tests/check_map.sh [SOURCE_DIR]   (default: the checkout)
# Prints every mismatch; exits 1 if there is any, 2 if the map is missing.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
doc=docs/architecture.md
[ -f "$doc" ] || { echo "check_map: no $doc"; exit 2; }
map=$(sed -n '/^## Map$/,/^## /p' "$doc")
[ -n "$map" ] || { echo "check_map: $doc has no '## Map' section"; exit 2; }
bad=0

for dir in core workers buffers stats tools; do
    row=$(printf '%s\n' "$map" | grep "^| \`$dir/\` |")
    if [ -z "$row" ]; then
        echo "check_map: $doc: the map has no row for $dir/"
        bad=1
        continue
    fi
    # 1. Each file of the folder is named in the row.
    for f in $(find "$dir" -type f | sort); do
        name=$(basename "$f")
        case $row in *"\`$name\`"*) continue ;; esac
        case $name in
        *.h) case $row in *"\`${name%.h}.c\`"*) continue ;; esac ;;
        esac
        echo "check_map: $f is not named in the map's $dir/ row ($doc)"
        bad=1
    done
    # 2. Each file the row names exists there.
    for name in $(printf '%s\n' "$row" | grep -o '`[A-Za-z0-9_.-]*\(\.[ch]\|CMakeLists\.txt\|/\)`' | tr -d '`'); do
        [ "$name" = "$dir/" ] && continue
        case $name in
        */) [ -d "$dir/$name" ] && continue ;;
        *) [ -n "$(find "$dir" -name "$name" -type f)" ] && continue ;;
        esac
        echo "check_map: $doc names $name in the $dir/ row, but $dir/ has no such file"
        bad=1
    done
done

# 3. Every path written out in the document exists.
for p in $(grep -o '\b\(core\|workers\|buffers\|stats\|tools\|tests\|docs\|examples\|bench\|fuzz\|include\)/[A-Za-z0-9_./-]*' "$doc" | sed 's/[.]$//' | sort -u); do
    [ -e "$p" ] && continue
    echo "check_map: $doc names $p, which does not exist"
    bad=1
done

[ $bad -eq 0 ] && echo "check_map: the map names every file, and every file it names exists"
exit $bad
