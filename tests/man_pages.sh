#!/bin/sh
# tests/man_pages.sh — every program's man page (docs/man, `make man`) is
# one people can read: groff finds nothing to warn about, lexgrog reads
# its NAME, it has the sections a Debian server's pages have, and it is not
# stale: every long option the program's --help lists is in the page.
#
# usage: man_pages.sh SOURCE_DIR PROGRAM...
set -u
fail() { echo "man_pages: FAIL: $*" >&2; exit 1; }
SRC=$1
shift
command -v man >/dev/null && command -v lexgrog >/dev/null || fail "needs man and lexgrog (Debian package man-db)"
DIR=$(mktemp -d /tmp/weft-man.XXXXXX) || exit 2
trap 'rm -rf "$DIR"' EXIT
for prog in "$@"; do
    name=$(basename "$prog")
    page="$SRC/docs/man/$name.1"
    [ -f "$page" ] || fail "no $page (make man)"
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 "$page" >"$DIR/out" 2>"$DIR/warn" ||
        fail "$name.1: man exited $?"
    [ ! -s "$DIR/warn" ] || fail "$name.1: groff warns: $(head -5 "$DIR/warn")"
    lexgrog "$page" >"$DIR/lex" 2>&1 || fail "$name.1: lexgrog: $(cat "$DIR/lex")"
    grep -q "\"$name - " "$DIR/lex" || fail "$name.1: NAME: $(cat "$DIR/lex")"
    want="NAME SYNOPSIS DESCRIPTION OPTIONS EXIT_STATUS EXAMPLES SEE_ALSO"
    case $name in weft-load | weft-stat) ;; *) want="$want SIGNALS FILES ENVIRONMENT CONFIGURATION_FILE" ;; esac
    for sec in $want; do
        s=$(echo "$sec" | tr _ ' ')
        grep -Eq "^\.SH \"?$s\"?$" "$page" || fail "$name.1 has no $s section"
    done
    "$prog" --help >"$DIR/help" 2>&1 || fail "$name --help exited $?"
    for opt in $(grep -o -- '--[a-z][a-z0-9-]*' "$DIR/help" | sort -u); do
        esc=$(echo "$opt" | sed 's/-/\\\\-/g')
        grep -q -- "$esc" "$page" || fail "$name.1 is stale: no $opt (run make man)"
    done
    echo "man_pages: $name.1: clean, $(echo "$want" | wc -w) sections, every --help option: ok"
done
