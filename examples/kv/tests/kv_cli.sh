#!/bin/sh
# kv_cli.sh — weft-kv driven by the real redis-cli (Debian: redis-tools).
#
#   PING/ECHO, SET/GET, SET NX/XX, EX expiry observed after 1.1 s, PX and
#   PTTL, DEL/EXISTS counts, INCR/DECR/INCRBY incl. the non-integer and
#   overflow errors, MGET with missing keys, Redis's exact texts for an
#   unknown command and a wrong arity, SELECT, HELLO 2/3, CONFIG GET,
#   COMMAND, INFO, CLIENT SETNAME then GETNAME/INFO/LIST showing the name,
#   inline commands over nc, 1000 pipelined commands with
#   exactly 1000 replies in order (nc and redis-cli --pipe), and a clean
#   exit on SIGTERM.
#
# usage: kv_cli.sh PATH-TO-WEFT-KV
KV=$1
KV_WRAP=
. "$(dirname "$0")/lib.sh"
need redis-cli redis-tools
need nc netcat-openbsd

kv_start --workers 2

expect PONG ping
expect '"hello world"' ping "hello world"
expect '"abc"' echo abc
expect OK set foo bar
expect '"bar"' get foo
expect '(nil)' get nosuchkey
expect '(nil)' set foo other nx
expect '"bar"' get foo
expect OK set foo baz xx
expect '"baz"' get foo
expect '(nil)' set newkey v xx
expect '(integer) 0' exists newkey

# Expiry: TTL reported (with room for a slow machine), a key gone after its
# time (lazy on GET).
expect OK set tmp v ex 100
expect '"v"' get tmp
ttl=$(cli ttl tmp | sed 's/(integer) //')
[ "$ttl" -ge 90 ] && [ "$ttl" -le 100 ] || fail "ttl $ttl not in [90, 100]"
expect '(integer) -1' ttl foo
expect '(integer) -2' ttl nosuchkey
expect OK set gone v px 200
sleep 1.1
expect '(nil)' get gone
expect '(integer) 0' exists gone
expect OK set tmp2 v px 300000
pttl=$(cli pttl tmp2 | sed 's/(integer) //')
[ "$pttl" -gt 0 ] && [ "$pttl" -le 300000 ] || fail "pttl $pttl not in (0, 300000]"
expect '(error) ERR invalid expire time in '"'"'set'"'"' command' set k v ex 0
expect '(error) ERR value is not an integer or out of range' set k v ex abc
expect '(error) ERR syntax error' set k v nx xx

# DEL and EXISTS count keys (a key named twice counts twice in EXISTS).
expect OK mset a 1 b 2 c 3
expect '(integer) 3' exists a b c
expect '(integer) 4' exists a b c a
expect '(integer) 2' exists a nope b
expect '(integer) 2' del a b nope
expect '(integer) 0' del a b
expect '(integer) 1' exists c

# INCR and friends.
expect '(integer) 1' incr counter
expect '(integer) 2' incr counter
expect '(integer) 12' incrby counter 10
expect '(integer) 11' decr counter
expect '(integer) 1' decrby counter 10
expect '(error) ERR value is not an integer or out of range' incr foo
expect OK set big 9223372036854775807
expect '(error) ERR increment or decrement would overflow' incr big
expect OK set spaced " 1"
expect '(error) ERR value is not an integer or out of range' incr spaced
expect '(error) ERR value is not an integer or out of range' incrby counter x

# MGET: nil for missing keys, in order.
got=$(cli mget foo nope c counter | tr '\n' '|')
[ "$got" = '1) "baz"|2) (nil)|3) "3"|4) "1"|' ] || fail "mget: [$got]"

# Redis's error texts, exactly.
expect "(error) ERR unknown command 'foo', with args beginning with: 'a' 'b' " foo a b
expect "(error) ERR unknown command 'nosuch', with args beginning with: " nosuch
expect "(error) ERR wrong number of arguments for 'get' command" get
expect "(error) ERR wrong number of arguments for 'get' command" get a b
expect "(error) ERR wrong number of arguments for 'set' command" set onlykey

# Connection and server commands clients send.
expect OK select 0
expect '(error) ERR DB index is out of range' select 1
expect '(error) NOPROTO sorry, this protocol version is not supported.' hello 3
cli hello 2 | head -2 | tr '\n' '|' | grep -q '^ *1) "server"| *2) "redis"|$' || fail "hello 2"
got=$(cli config get save | tr '\n' '|')
[ "$got" = '1) "save"|2) ""|' ] || fail "config get save: [$got]"
got=$(cli config get appendonly | tr '\n' '|')
[ "$got" = '1) "appendonly"|2) "no"|' ] || fail "config get appendonly: [$got]"
expect '(empty array)' command docs
cli command count | grep -q '^(integer) [1-9]' || fail "command count"
cli info | grep -q '^redis_version:' || fail "info has no redis_version"
cli info | grep -q '^db0:keys=' || fail "info has no keyspace line"

# CLIENT SETNAME is kept for the connection (redis-cli reads the commands
# from stdin and sends them over one connection): GETNAME, INFO and LIST
# show it.
printf 'client getname\nclient setname kvcli\nclient getname\nclient info\nclient list\n' |
    timeout 10 redis-cli -h 127.0.0.1 -p "$KV_PORT" --raw >"$DIR/names" 2>&1
[ "$(sed -n 2,3p "$DIR/names" | tr '\n' '|')" = 'OK|kvcli|' ] ||
    fail "client setname/getname: $(cat "$DIR/names")"
grep -c '^id=[0-9]* addr=127\.0\.0\.1:[0-9]* .* name=kvcli .* cmd=client ' "$DIR/names" |
    grep -qx 2 || fail "client info/list do not show the name: $(cat "$DIR/names")"

# Inline (telnet-style) commands and 1000 pipelined ones over one connection:
# exactly 1000 replies, in order (INCR counts 1..1000).
printf 'PING\r\nset inl hello\r\nget inl\r\n' | timeout 10 nc -q 2 127.0.0.1 "$KV_PORT" >"$DIR/inline"
printf '+PONG\r\n+OK\r\n$5\r\nhello\r\n' | cmp -s - "$DIR/inline" ||
    fail "inline replies: $(od -c "$DIR/inline" | head)"
i=0
: >"$DIR/pipe.in"
while [ $i -lt 1000 ]; do
    if [ $((i % 2)) -eq 0 ]; then
        printf '*2\r\n$4\r\nINCR\r\n$4\r\npipe\r\n'
    else
        printf 'INCR pipe\r\n'
    fi
    i=$((i + 1))
done >"$DIR/pipe.in"
timeout 20 nc -q 2 127.0.0.1 "$KV_PORT" <"$DIR/pipe.in" | tr -d '\r' >"$DIR/pipe.out"
seq 1 1000 | sed 's/^/:/' | cmp -s - "$DIR/pipe.out" ||
    fail "pipelined INCR: $(wc -l <"$DIR/pipe.out") replies, first diff: $(seq 1 1000 | sed 's/^/:/' | cmp - "$DIR/pipe.out")"
timeout 20 redis-cli -h 127.0.0.1 -p "$KV_PORT" --pipe <"$DIR/pipe.in" >"$DIR/rpipe" 2>&1 ||
    fail "redis-cli --pipe: $(cat "$DIR/rpipe")"
grep -q 'errors: 0, replies: 1000' "$DIR/rpipe" || fail "redis-cli --pipe: $(cat "$DIR/rpipe")"
expect '"2000"' get pipe

# QUIT answers OK and closes.
printf 'QUIT\r\nPING\r\n' | timeout 10 nc -q 5 127.0.0.1 "$KV_PORT" | tr -d '\r' >"$DIR/quit"
[ "$(cat "$DIR/quit")" = "+OK" ] || fail "quit: [$(cat "$DIR/quit")]"

kv_stop
[ "$KV_RC" -eq 0 ] || fail "exit status $KV_RC after SIGTERM"
grep -q 'stopped:' "$DIR/kv.out" || fail "no 'stopped' line"
echo PASS
