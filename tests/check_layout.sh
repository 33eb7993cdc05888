#!/bin/sh
# tests/check_layout.sh — the layout rules that make test checks
# (docs/architecture.md, "Map"):
#
#  1. Folder dependencies point one way: tools -> core -> workers ->
#     buffers -> stats. A file may include headers of its own folder and of
#     folders after it in that order, never before (so no include cycle
#     between folders can exist).
#  2. The data plane's system calls on sockets and on its wait primitive
#     are made only by the I/O backends (workers/io_*.c): no other file of
#     workers/ or buffers/ calls read, write, send, recv, epoll_*, poll,
#     shutdown, close, accept, connect, setsockopt or eventfd.
#
# usage: tests/check_layout.sh [SOURCE_DIR]   (default: the checkout)
# Prints every violation with file:line; exits 1 if there is any.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
bad=0

rank() {
    case $1 in
    tools) echo 4 ;; core) echo 3 ;; workers) echo 2 ;; buffers) echo 1 ;; stats) echo 0 ;;
    *) echo -1 ;;
    esac
}

for dir in tools core workers buffers stats; do
    [ -d "$dir" ] || continue
    from=$(rank "$dir")
    for f in $(find "$dir" -name '*.[ch]' | sort); do
        grep -n '^#include "\(tools\|core\|workers\|buffers\|stats\)/' "$f" |
            sed 's|^\([0-9]*\):#include "\([a-z]*\)/.*|\1 \2|' |
            while read -r line to; do
                [ "$to" = "$dir" ] && continue
                if [ "$(rank "$to")" -ge "$from" ]; then
                    echo "check_layout: $f:$line: $dir/ includes $to/ (dependencies point tools -> core -> workers -> buffers -> stats)"
                    echo x
                fi
            done
    done
done | grep -v '^x$' >/tmp/check_layout.$$ || true
if [ -s /tmp/check_layout.$$ ]; then
    cat /tmp/check_layout.$$
    bad=1
fi
rm -f /tmp/check_layout.$$

calls='epoll_create1?|epoll_ctl|epoll_p?wait|poll|ppoll|select|read|readv|recv|recvfrom|recvmsg|write|writev|send|sendto|sendmsg|shutdown|close|accept4?|connect|setsockopt|getsockopt|eventfd|io_uring_[a-z_]+'
for f in $(find workers buffers -name '*.c' ! -name 'io_*.c' | sort); do
    # Skip comment lines (the house style starts them with /*, * or //).
    hits=$(grep -nE "(^|[^A-Za-z0-9_.>])($calls)[[:space:]]*\(" "$f" |
        grep -vE '^[0-9]+:[[:space:]]*(/\*|\*|//)')
    if [ -n "$hits" ]; then
        echo "$hits" | sed "s|^|check_layout: $f:|; s|\$|   <- a system call outside the I/O backends (workers/io_*.c)|"
        bad=1
    fi
done

if [ "$bad" -eq 0 ]; then
    echo "check_layout: ok (one-way folder dependencies; socket calls only in workers/io_*.c)"
fi
exit "$bad"
