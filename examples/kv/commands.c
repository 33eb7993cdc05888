/*
 * examples/kv/commands.c — weft-kv's commands and their RESP2 replies.
 *
 * The subset of Redis that redis-cli and redis-benchmark need, with Redis's
 * reply formats and error texts (tests and clients match on them):
 *
 *   PING [msg]  ECHO msg  SET key value [NX|XX] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
 *   GET key  MGET key...  MSET key value...  DEL key...  EXISTS key...
 *   INCR/DECR key  INCRBY/DECRBY key n  TTL/PTTL key  DBSIZE  FLUSHALL/FLUSHDB
 *   SELECT 0  QUIT  HELLO [2]  INFO  COMMAND [COUNT|DOCS|INFO]  CONFIG GET
 *   CLIENT SETNAME|GETNAME|SETINFO|ID|INFO|LIST
 *
 * A reply is queued with weft_send, which copies it into the connection's
 * output ring; the worker writes everything a batch of pipelined commands
 * produced with one send(2) at the end of its turn.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kv.h"

/* ---- replies ----------------------------------------------------------- */

static void out(kv_ctx *x, const void *p, size_t n) { weft_send(x->c, p, n); }

#define OUT_LIT(x, s) out((x), (s), sizeof(s) - 1)

/* Decimal digits of v written backwards from end; returns the first byte. */
static char *fmt_ll(char *end, long long v)
{
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--end = '-';
    return end;
}

/* "<type><v>\r\n" for ':', '*' and '$' headers. */
static void out_num(kv_ctx *x, char type, long long v)
{
    char b[32];
    char *e = b + sizeof(b);
    *--e = '\n';
    *--e = '\r';
    char *s = fmt_ll(e, v);
    *--s = type;
    out(x, s, (size_t)(b + sizeof(b) - s));
}

static void reply_int(kv_ctx *x, long long v) { out_num(x, ':', v); }
static void reply_array(kv_ctx *x, long long n) { out_num(x, '*', n); }
static void reply_nil(kv_ctx *x) { OUT_LIT(x, "$-1\r\n"); }
static void reply_ok(kv_ctx *x) { OUT_LIT(x, "+OK\r\n"); }

/* Small values go out in one weft_send: header, bytes and CRLF together. */
#define SMALL_BULK 512

static void reply_bulk(kv_ctx *x, const char *p, size_t len)
{
    if (len <= SMALL_BULK) {
        char b[SMALL_BULK + 32];
        char hdr[32];
        char *e = hdr + sizeof(hdr);
        char *s = fmt_ll(e, (long long)len);
        *--s = '$';
        size_t h = (size_t)(e - s);
        memcpy(b, s, h);
        b[h] = '\r';
        b[h + 1] = '\n';
        memcpy(b + h + 2, p, len);
        b[h + 2 + len] = '\r';
        b[h + 3 + len] = '\n';
        out(x, b, h + 4 + len);
        return;
    }
    out_num(x, '$', (long long)len);
    out(x, p, len);
    OUT_LIT(x, "\r\n");
}

static void reply_cstr(kv_ctx *x, const char *s) { reply_bulk(x, s, strlen(s)); }

void kv_reply_error(kv_ctx *x, const char *msg)
{
    char b[512];
    size_t n = strlen(msg);
    if (n > sizeof(b) - 3)
        n = sizeof(b) - 3;
    b[0] = '-';
    for (size_t i = 0; i < n; i++)
        b[1 + i] = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    b[n + 1] = '\r';
    b[n + 2] = '\n';
    out(x, b, n + 3);
}

static void reply_errorf(kv_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_errorf(kv_ctx *x, const char *fmt, ...)
{
    char b[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    kv_reply_error(x, b);
}

static const char E_NOTINT[] = "ERR value is not an integer or out of range";
static const char E_SYNTAX[] = "ERR syntax error";

/* ---- helpers ----------------------------------------------------------- */

static int arg_is(const resp_arg *a, const char *lit)
{
    size_t n = strlen(lit);
    return a->len == n && strncasecmp(a->p, lit, n) == 0;
}

static int arg_ll(const resp_arg *a, long long *v) { return resp_strtoll(a->p, a->len, v); }

static void count(kv_ctx *x, int which, uint64_t n) { kv_count(x->c, x->app, which, n); }

static void value_to_reply(void *arg, const char *v, size_t len) { reply_bulk(arg, v, len); }

/* ---- the keyspace commands -------------------------------------------- */

static void cmd_get(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (kvs_get(x->app->ks, a[1].p, a[1].len, x->now, value_to_reply, x, NULL)) {
        count(x, KV_CTR_HITS, 1);
    } else {
        reply_nil(x);
        count(x, KV_CTR_MISSES, 1);
    }
}

static void cmd_mget(kv_ctx *x, size_t argc, const resp_arg *a)
{
    reply_array(x, (long long)argc - 1);
    for (size_t i = 1; i < argc; i++)
        cmd_get(x, 2, a + i - 1);
}

/*
 * SET key value [NX|XX] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], as Redis 7.0
 * parses it (its GET option is not supported: a syntax error).
 */
static void cmd_set(kv_ctx *x, size_t argc, const resp_arg *a)
{
    int flags = 0, have_ttl = 0;
    int64_t expire = 0;
    for (size_t i = 3; i < argc; i++) {
        const resp_arg *o = &a[i];
        if (arg_is(o, "nx") && !(flags & KVS_XX)) {
            flags |= KVS_NX;
        } else if (arg_is(o, "xx") && !(flags & KVS_NX)) {
            flags |= KVS_XX;
        } else if (arg_is(o, "keepttl") && !have_ttl) {
            flags |= KVS_KEEPTTL;
            have_ttl = 1;
        } else if ((arg_is(o, "ex") || arg_is(o, "px") || arg_is(o, "exat") || arg_is(o, "pxat")) &&
                   !have_ttl && i + 1 < argc) {
            long long v;
            if (arg_ll(&a[i + 1], &v) != 0) {
                kv_reply_error(x, E_NOTINT);
                return;
            }
            int secs = o->p[0] == 'e' || o->p[0] == 'E';
            int at = o->len == 4;
            if (v <= 0 || (secs && v > INT64_MAX / 1000)) {
                kv_reply_error(x, "ERR invalid expire time in 'set' command");
                return;
            }
            int64_t ms = secs ? (int64_t)v * 1000 : (int64_t)v;
            if (at) {
                /* A Unix time: make it a CLOCK_MONOTONIC deadline. */
                struct timeval tv;
                gettimeofday(&tv, NULL);
                int64_t wall = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
                ms -= wall;
                expire = ms <= 0 ? 1 : x->now + ms; /* already past: expired */
            } else {
                if (ms > INT64_MAX - x->now) {
                    kv_reply_error(x, "ERR invalid expire time in 'set' command");
                    return;
                }
                expire = x->now + ms;
            }
            have_ttl = 1;
            i++;
        } else {
            kv_reply_error(x, E_SYNTAX);
            return;
        }
    }
    int rc = kvs_set(x->app->ks, a[1].p, a[1].len, a[2].p, a[2].len, expire, flags, x->now);
    if (rc < 0)
        kv_reply_error(x, "OOM command not allowed when used memory > 'maxmemory'.");
    else if (rc == 0)
        reply_nil(x);
    else
        reply_ok(x);
}

static void cmd_mset(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (argc % 2 == 0) {
        kv_reply_error(x, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    for (size_t i = 1; i < argc; i += 2)
        if (kvs_set(x->app->ks, a[i].p, a[i].len, a[i + 1].p, a[i + 1].len, 0, 0, x->now) < 0) {
            kv_reply_error(x, "OOM command not allowed when used memory > 'maxmemory'.");
            return;
        }
    reply_ok(x);
}

static void cmd_del(kv_ctx *x, size_t argc, const resp_arg *a)
{
    long long n = 0;
    for (size_t i = 1; i < argc; i++)
        n += kvs_del(x->app->ks, a[i].p, a[i].len, x->now);
    reply_int(x, n);
}

static void cmd_exists(kv_ctx *x, size_t argc, const resp_arg *a)
{
    long long n = 0; /* a key named twice counts twice, as in Redis */
    for (size_t i = 1; i < argc; i++)
        n += kvs_exists(x->app->ks, a[i].p, a[i].len, x->now);
    reply_int(x, n);
}

static void incr_by(kv_ctx *x, const resp_arg *key, int64_t delta)
{
    int64_t v;
    int rc = kvs_incrby(x->app->ks, key->p, key->len, delta, x->now, &v);
    if (rc == 0)
        reply_int(x, v);
    else if (rc == -EINVAL)
        kv_reply_error(x, E_NOTINT);
    else if (rc == -ERANGE)
        kv_reply_error(x, "ERR increment or decrement would overflow");
    else
        kv_reply_error(x, "OOM command not allowed when used memory > 'maxmemory'.");
}

static void cmd_incr(kv_ctx *x, size_t argc, const resp_arg *a) { incr_by(x, &a[1], 1); }
static void cmd_decr(kv_ctx *x, size_t argc, const resp_arg *a) { incr_by(x, &a[1], -1); }

static void cmd_incrby(kv_ctx *x, size_t argc, const resp_arg *a)
{
    long long d;
    if (arg_ll(&a[2], &d) != 0) {
        kv_reply_error(x, E_NOTINT);
        return;
    }
    incr_by(x, &a[1], d);
}

static void cmd_decrby(kv_ctx *x, size_t argc, const resp_arg *a)
{
    long long d;
    if (arg_ll(&a[2], &d) != 0) {
        kv_reply_error(x, E_NOTINT);
        return;
    }
    if (d == INT64_MIN) {
        kv_reply_error(x, "ERR decrement would overflow");
        return;
    }
    incr_by(x, &a[1], -d);
}

static void ttl_reply(kv_ctx *x, const resp_arg *key, int64_t unit)
{
    int64_t exp;
    if (!kvs_get(x->app->ks, key->p, key->len, x->now, NULL, NULL, &exp))
        reply_int(x, -2);
    else if (exp == 0)
        reply_int(x, -1);
    else /* rounded to the nearest unit, as Redis does */
        reply_int(x, (exp - x->now + unit / 2) / unit);
}

static void cmd_ttl(kv_ctx *x, size_t argc, const resp_arg *a) { ttl_reply(x, &a[1], 1000); }
static void cmd_pttl(kv_ctx *x, size_t argc, const resp_arg *a) { ttl_reply(x, &a[1], 1); }

static void cmd_dbsize(kv_ctx *x, size_t argc, const resp_arg *a)
{
    reply_int(x, (long long)kvs_count(x->app->ks));
}

static void cmd_flushall(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (argc > 2 || (argc == 2 && !arg_is(&a[1], "sync") && !arg_is(&a[1], "async"))) {
        kv_reply_error(x, E_SYNTAX);
        return;
    }
    kvs_flush(x->app->ks);
    reply_ok(x);
}

/* ---- connection and server commands ----------------------------------- */

static void cmd_ping(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (argc > 2)
        kv_reply_error(x, "ERR wrong number of arguments for 'ping' command");
    else if (argc == 2)
        reply_bulk(x, a[1].p, a[1].len);
    else
        OUT_LIT(x, "+PONG\r\n");
}

static void cmd_echo(kv_ctx *x, size_t argc, const resp_arg *a) { reply_bulk(x, a[1].p, a[1].len); }

static void cmd_select(kv_ctx *x, size_t argc, const resp_arg *a)
{
    long long db;
    if (arg_ll(&a[1], &db) != 0)
        kv_reply_error(x, E_NOTINT);
    else if (db != 0)
        kv_reply_error(x, "ERR DB index is out of range");
    else
        reply_ok(x);
}

static void cmd_quit(kv_ctx *x, size_t argc, const resp_arg *a)
{
    reply_ok(x);
    x->quit = 1;
}

/*
 * The connection's name, as Redis checks it: printable ASCII without
 * blanks, at most KV_NAME_MAX bytes (Redis has no length limit; this one
 * keeps the name inside the connection's fixed state). An empty name
 * clears it. Returns 0, or -1 after an error reply.
 */
static int set_name(kv_ctx *x, const resp_arg *name)
{
    for (size_t i = 0; i < name->len; i++)
        if (name->p[i] <= ' ' || name->p[i] > '~') {
            kv_reply_error(x, "ERR Client names cannot contain spaces, newlines or special "
                              "characters.");
            return -1;
        }
    if (name->len > KV_NAME_MAX) {
        reply_errorf(x, "ERR Client names are limited to %d bytes", KV_NAME_MAX);
        return -1;
    }
    memcpy(x->k->name, name->p, name->len);
    x->k->name_len = name->len;
    return 0;
}

/*
 * HELLO [protover [AUTH user pass] [SETNAME name]]. Only RESP2 is spoken:
 * HELLO 3 gets Redis's NOPROTO error, and clients fall back to RESP2.
 */
static void cmd_hello(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (argc >= 2) {
        long long v;
        if (arg_ll(&a[1], &v) != 0) {
            kv_reply_error(x, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (v != 2) {
            kv_reply_error(x, "NOPROTO sorry, this protocol version is not supported.");
            return;
        }
        for (size_t i = 2; i < argc; i++) {
            if (arg_is(&a[i], "setname") && i + 1 < argc) {
                if (set_name(x, &a[++i]) != 0)
                    return;
            } else if (arg_is(&a[i], "auth") && i + 2 < argc) {
                kv_reply_error(x, "WRONGPASS invalid username-password pair or user is "
                                  "disabled.");
                return;
            } else {
                reply_errorf(x, "ERR Syntax error in HELLO option '%.*s'",
                             (int)(a[i].len > 64 ? 64 : a[i].len), a[i].p);
                return;
            }
        }
    }
    /* RESP2 has no map type: a flat array of field, value, field, value... */
    reply_array(x, 14);
    reply_cstr(x, "server");
    reply_cstr(x, "redis");
    reply_cstr(x, "version");
    reply_cstr(x, KV_REDIS_VERSION);
    reply_cstr(x, "proto");
    reply_int(x, 2);
    reply_cstr(x, "id");
    reply_int(x, (long long)x->k->id);
    reply_cstr(x, "mode");
    reply_cstr(x, "standalone");
    reply_cstr(x, "role");
    reply_cstr(x, "master");
    reply_cstr(x, "modules");
    reply_array(x, 0);
}

/* CLIENT LIST [TYPE normal|master|replica|pubsub]: every client is "normal". */
static void client_list(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (argc == 2 || (argc == 4 && arg_is(&a[2], "type") && arg_is(&a[3], "normal"))) {
        kv_client_list(x);
    } else if (argc == 4 && arg_is(&a[2], "type") &&
               (arg_is(&a[3], "master") || arg_is(&a[3], "replica") || arg_is(&a[3], "slave") ||
                arg_is(&a[3], "pubsub"))) {
        reply_bulk(x, "", 0);
    } else if (argc == 4 && arg_is(&a[2], "type")) {
        reply_errorf(x, "ERR Unknown client type '%.*s'", (int)(a[3].len > 64 ? 64 : a[3].len),
                     a[3].p);
    } else {
        kv_reply_error(x, E_SYNTAX);
    }
}

static void cmd_client(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (arg_is(&a[1], "setname") && argc == 3) {
        if (set_name(x, &a[2]) == 0)
            reply_ok(x);
    } else if (arg_is(&a[1], "setinfo") && argc == 4) {
        reply_ok(x);
    } else if (arg_is(&a[1], "getname") && argc == 2) {
        if (x->k->name_len)
            reply_bulk(x, x->k->name, x->k->name_len);
        else
            reply_nil(x);
    } else if (arg_is(&a[1], "id") && argc == 2) {
        reply_int(x, (long long)x->k->id);
    } else if (arg_is(&a[1], "info") && argc == 2) {
        kv_client_info(x);
    } else if (arg_is(&a[1], "list")) {
        client_list(x, argc, a);
    } else
        reply_errorf(x,
                     "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                     "CLIENT HELP.",
                     (int)(a[1].len > 64 ? 64 : a[1].len), a[1].p);
}

/* CONFIG GET: the few parameters redis-benchmark and clients ask about. */
static void cmd_config(kv_ctx *x, size_t argc, const resp_arg *a)
{
    static const char *const params[][2] = {
        {"save", ""},
        {"appendonly", "no"},
        {"databases", "1"},
        {"maxmemory", "0"},
    };
    const size_t np = sizeof(params) / sizeof(params[0]);
    if (arg_is(&a[1], "resetstat") && argc == 2) {
        reply_ok(x);
        return;
    }
    if (!arg_is(&a[1], "get") || argc < 3) {
        reply_errorf(x,
                     "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                     "CONFIG HELP.",
                     (int)(a[1].len > 64 ? 64 : a[1].len), a[1].p);
        return;
    }
    int hit[sizeof(params) / sizeof(params[0])] = {0};
    long long n = 0;
    for (size_t i = 2; i < argc; i++) {
        char pat[128];
        size_t len = a[i].len < sizeof(pat) - 1 ? a[i].len : sizeof(pat) - 1;
        memcpy(pat, a[i].p, len);
        pat[len] = '\0';
        for (size_t j = 0; j < np; j++)
            if (!hit[j] && fnmatch(pat, params[j][0], FNM_CASEFOLD) == 0) {
                hit[j] = 1;
                n++;
            }
    }
    reply_array(x, 2 * n);
    for (size_t j = 0; j < np; j++)
        if (hit[j]) {
            reply_cstr(x, params[j][0]);
            reply_cstr(x, params[j][1]);
        }
}

static void cmd_info(kv_ctx *x, size_t argc, const resp_arg *a)
{
    char b[2048];
    size_t n = 0;
    weft_server *s = x->app->srv;
    weft_stats st;
    weft_server_stats(s, &st);
    uint64_t up = (weft_now_ns() - x->app->start_ns) / 1000000000u;
    struct utsname u;
    if (uname(&u) != 0)
        strcpy(u.sysname, "Linux"), u.release[0] = u.machine[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(b + n, sizeof(b) - n, __VA_ARGS__);                                      \
        if (k_ > 0)                                                                                \
            n = n + (size_t)k_ < sizeof(b) ? n + (size_t)k_ : sizeof(b) - 1;                       \
    } while (0)
    ADD("# Server\r\nredis_version:%s\r\nweft_kv_version:%s\r\nweft_version:%s\r\n"
        "redis_mode:standalone\r\nos:%s %s %s\r\narch_bits:64\r\nmultiplexing_api:epoll\r\n"
        "process_id:%ld\r\ntcp_port:%u\r\nuptime_in_seconds:%llu\r\nuptime_in_days:%llu\r\n"
        "weft_workers:%d\r\n\r\n",
        KV_REDIS_VERSION, KV_VERSION, WEFT_VERSION, u.sysname, u.release, u.machine, (long)getpid(),
        weft_server_port(s), (unsigned long long)up, (unsigned long long)(up / 86400),
        weft_server_workers(s));
    ADD("# Clients\r\nconnected_clients:%llu\r\nmaxclients:%d\r\n\r\n", (unsigned long long)st.open,
        weft_server_max_conns(s));
    /*
     * The handler counters (commands, hits, misses, expired) are not here:
     * weft_server_snapshot registers its calling thread with liburcu, and
     * a worker is already registered by the keyspace, which liburcu
     * asserts against. weft-stat shows them (weft_user_*).
     */
    ADD("# Stats\r\ntotal_connections_received:%llu\r\ntotal_net_input_bytes:%llu\r\n"
        "total_net_output_bytes:%llu\r\n\r\n",
        (unsigned long long)st.accepted, (unsigned long long)st.bytes_in,
        (unsigned long long)st.bytes_out);
    ADD("# Keyspace\r\ndb0:keys=%llu,expires=0,avg_ttl=0\r\n",
        (unsigned long long)kvs_count(x->app->ks));
#undef ADD
    reply_bulk(x, b, n);
}

static void cmd_command(kv_ctx *x, size_t argc, const resp_arg *a);

/* ---- dispatch ---------------------------------------------------------- */

typedef void (*cmd_fn)(kv_ctx *x, size_t argc, const resp_arg *argv);

/* arity as in Redis: n = exactly n arguments (name included), -n = at least n. */
typedef struct kv_cmd {
    const char *name;
    size_t len;
    int arity;
    cmd_fn fn;
} kv_cmd;

#define CMD(name, arity, fn)                                                                       \
    {                                                                                              \
        name, sizeof(name) - 1, arity, fn                                                          \
    }
/* The commands redis-benchmark times come first: the lookup is a scan. */
static const kv_cmd g_cmds[] = {
    CMD("get", 2, cmd_get),           CMD("set", -3, cmd_set),
    CMD("ping", -1, cmd_ping),        CMD("incr", 2, cmd_incr),
    CMD("mget", -2, cmd_mget),        CMD("mset", -3, cmd_mset),
    CMD("del", -2, cmd_del),          CMD("exists", -2, cmd_exists),
    CMD("decr", 2, cmd_decr),         CMD("incrby", 3, cmd_incrby),
    CMD("decrby", 3, cmd_decrby),     CMD("ttl", 2, cmd_ttl),
    CMD("pttl", 2, cmd_pttl),         CMD("echo", 2, cmd_echo),
    CMD("dbsize", 1, cmd_dbsize),     CMD("flushall", -1, cmd_flushall),
    CMD("flushdb", -1, cmd_flushall), CMD("select", 2, cmd_select),
    CMD("quit", -1, cmd_quit),        CMD("hello", -1, cmd_hello),
    CMD("info", -1, cmd_info),        CMD("command", -1, cmd_command),
    CMD("config", -2, cmd_config),    CMD("client", -2, cmd_client),
};
#define NCMDS (sizeof(g_cmds) / sizeof(g_cmds[0]))

/* COMMAND [COUNT | DOCS ... | INFO name...]: enough for redis-cli's start. */
static void cmd_command(kv_ctx *x, size_t argc, const resp_arg *a)
{
    if (argc == 1 || (arg_is(&a[1], "docs"))) {
        reply_array(x, 0); /* no documentation: clients then show none */
    } else if (arg_is(&a[1], "count") && argc == 2) {
        reply_int(x, (long long)NCMDS);
    } else if (arg_is(&a[1], "info")) {
        reply_array(x, (long long)argc - 2);
        for (size_t i = 2; i < argc; i++)
            reply_nil(x);
    } else {
        reply_errorf(x,
                     "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                     "COMMAND HELP.",
                     (int)(a[1].len > 64 ? 64 : a[1].len), a[1].p);
    }
}

/* Redis's text: the name and the first arguments, up to about 128 bytes. */
static void reply_unknown(kv_ctx *x, size_t argc, const resp_arg *a)
{
    char b[400];
    size_t n =
        (size_t)snprintf(b, sizeof(b), "ERR unknown command '%.*s', with args beginning with: ",
                         (int)(a[0].len > 128 ? 128 : a[0].len), a[0].p);
    size_t args = 0; /* bytes of the argument list so far */
    for (size_t i = 1; i < argc && args < 128; i++) {
        int room = (int)(128 - args);
        int k = snprintf(b + n, sizeof(b) - n, "'%.*s' ",
                         (int)(a[i].len < (size_t)room ? a[i].len : (size_t)room), a[i].p);
        if (k < 0 || (size_t)k >= sizeof(b) - n)
            break;
        n += (size_t)k;
        args += (size_t)k;
    }
    kv_reply_error(x, b); /* %.*s stops at a NUL inside an argument, as in Redis */
}

void kv_execute(kv_ctx *x, size_t argc, const resp_arg *argv)
{
    const kv_cmd *cmd = NULL;
    for (size_t i = 0; i < NCMDS; i++)
        if (g_cmds[i].len == argv[0].len &&
            strncasecmp(g_cmds[i].name, argv[0].p, argv[0].len) == 0) {
            cmd = &g_cmds[i];
            break;
        }
    count(x, KV_CTR_COMMANDS, 1);
    x->k->last_ms = x->now;
    if (!cmd) {
        reply_unknown(x, argc, argv);
        return;
    }
    x->k->last_cmd = cmd->name;
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
        (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_errorf(x, "ERR wrong number of arguments for '%s' command", cmd->name);
        return;
    }
    cmd->fn(x, argc, argv);
}
