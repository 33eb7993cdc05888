/*
 * weft-chat — a multi-room chat server on weft (examples/chat). Line
 * protocol: /nick NAME, /join ROOM, /leave, /who, /msg NAME TEXT, /quit;
 * other lines go to everyone in the sender's room. See README.md, and
 * chat.c for how rooms spread over the workers stay consistent.
 */
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "chat.h"
#include "proto.h"
#include "web.h"

#include "weft/weft.h"

/* Chat's own port; the other defaults are the chat library's (chat.h). */
#define CHAT_PORT 7070

/* The database weft-chat keeps by default, in the current directory. */
#define CHAT_DB "weft-chat.db"

static uint32_t g_max_line = CHAT_MAX_LINE;
static const char *g_http; /* --http: the web client's listener, or NULL */
static chat_options g_opt;

static void defaults(weft_config *cfg, void *ud)
{
    (void)ud;
    cfg->port = CHAT_PORT;
    chat_config_defaults(cfg, CHAT_MAX_LINE);
    chat_options_defaults(&g_opt);
    g_opt.db = CHAT_DB;
}

/* A number option: name, bounds, and where it goes. */
static int number(const char *arg, long long lo, long long hi, long long *v, const char **why)
{
    static char msg[96];
    if (weft_parse_number(arg, lo, hi, v) != 0) {
        snprintf(msg, sizeof(msg), "expected a number from %lld to %lld", lo, hi);
        *why = msg;
        return -EINVAL;
    }
    return 0;
}

static int option(weft_config *cfg, const char *name, const char *arg, const char **why, void *ud)
{
    (void)ud;
    long long v = 0;
    if (!strcmp(name, "allow-guests")) {
        g_opt.allow_guests = true;
    } else if (!strcmp(name, "db")) {
        g_opt.db = !strcmp(arg, "none") ? NULL : arg;
    } else if (!strcmp(name, "db-sync")) {
        if (strcmp(arg, "normal") && strcmp(arg, "full")) {
            *why = "expected normal or full";
            return -EINVAL;
        }
        g_opt.db_sync_full = !strcmp(arg, "full");
    } else if (!strcmp(name, "history")) {
        if (number(arg, 0, CHAT_HISTORY_MAX, &v, why) != 0)
            return -EINVAL;
        g_opt.history = (uint32_t)v;
    } else if (!strcmp(name, "auth-threads")) {
        if (number(arg, 1, 64, &v, why) != 0)
            return -EINVAL;
        g_opt.auth_threads = (int)v;
    } else if (!strcmp(name, "kdf-ops")) {
        if (number(arg, crypto_pwhash_OPSLIMIT_MIN, 64, &v, why) != 0)
            return -EINVAL;
        g_opt.kdf_ops = (unsigned long long)v;
    } else if (!strcmp(name, "kdf-mem")) {
        if (number(arg, crypto_pwhash_MEMLIMIT_MIN, 1ll << 30, &v, why) != 0)
            return -EINVAL;
        g_opt.kdf_mem = (size_t)v;
    } else if (!strcmp(name, "login-fail-limit")) {
        if (number(arg, 1, 1000, &v, why) != 0)
            return -EINVAL;
        g_opt.fail_limit = (uint32_t)v;
    } else if (!strcmp(name, "login-lockout")) {
        if (number(arg, 1, 86400, &v, why) != 0)
            return -EINVAL;
        g_opt.lockout_s = (uint32_t)v;
    } else if (!strcmp(name, "http")) {
        weft_listener_opts o;
        if (weft_listener_parse(arg, &o, why) != 0)
            return -EINVAL;
        g_http = arg;
    } else if (!strcmp(name, "spool")) {
        g_opt.spool = arg;
    } else if (!strcmp(name, "file-max") || !strcmp(name, "file-quota")) {
        if (number(arg, 1, 1ll << 40, &v, why) != 0)
            return -EINVAL;
        *(name[5] == 'm' ? &g_opt.file_max : &g_opt.file_quota) = (uint64_t)v;
    } else if (!strcmp(name, "file-ttl")) {
        if (number(arg, 1, 365 * 86400, &v, why) != 0)
            return -EINVAL;
        g_opt.file_ttl_s = (uint32_t)v;
    } else if (!strcmp(name, "file-timeout")) {
        if (number(arg, 1, 86400, &v, why) != 0)
            return -EINVAL;
        g_opt.file_timeout_s = (uint32_t)v;
    } else if (!strcmp(name, "db-queue")) {
        if (number(arg, 1, 1 << 20, &v, why) != 0)
            return -EINVAL;
        g_opt.queue = (uint32_t)v;
    } else { /* max-line */
        if (number(arg, 64, 1 << 24, &v, why) != 0)
            return -EINVAL;
        g_max_line = (uint32_t)v;
        cfg->input_cap = g_max_line + CHAT_HELD_EXTRA;
    }
    return 0;
}

/* A small --output-cap brings the watermarks down with it. */
static int configure(weft_config *cfg, const char **why, void *ud)
{
    (void)why;
    (void)ud;
    chat_config_fit(cfg);
    return 0;
}

static int setup(weft_server *s, void *ud)
{
    chat_server_set_options(ud, &g_opt);
    int rc = chat_server_attach(ud, s, g_max_line);
    if (rc != 0 || !g_http)
        return rc;
    /* The browser client and WebSocket, beside the chat's own port. */
    weft_listener_opts o;
    const char *why;
    if (weft_listener_parse(g_http, &o, &why) != 0)
        return -EINVAL;
    o.handler = web_handler();
    if (!o.name)
        o.name = "http";
    int i = weft_server_listen(s, &o);
    if (i < 0) {
        fprintf(stderr, "weft-chat: --http %s: %s\n", g_http, weft_strerror(i));
        return i;
    }
    printf("weft-chat: web client on http://%s/ (WebSocket /ws)\n",
           weft_server_listener_addr(s, i));
    fflush(stdout);
    return 0;
}

static const weft_program_option options[] = {
    {"max-line", "BYTES",
     "the longest line, newline included (default 4096);\n"
     "a longer one gets an error and the connection closes"},
    {"db", "PATH",
     "the SQLite database of accounts, history and offline\n"
     "messages (default " CHAT_DB "); none: no accounts, no history"},
    {"db-sync", "MODE",
     "normal (default): a commit survives kill -9, not a power loss;\n"
     "full: it survives both (an fsync per batch)"},
    {"db-queue", "N",
     "room messages waiting for the database before new ones\n"
     "are refused with an error (default 16384)"},
    {"history", "N", "messages of a room replayed on /join (default 50, 0 to 500)"},
    {"allow-guests", NULL, "with a database, let clients without an account pick a /nick"},
    {"auth-threads", "N", "threads hashing passwords, off the workers (default 2)"},
    {"kdf-ops", "N", "Argon2id passes (default 2: libsodium's interactive)"},
    {"kdf-mem", "BYTES", "Argon2id memory per hash (default 64 MiB: interactive)"},
    {"login-fail-limit", "N",
     "failed logins of one account in --login-lockout seconds before\n"
     "it is locked for as long (default 5; an address gets 4 times that)"},
    {"login-lockout", "SECONDS", "the failure window and the lock (default 60)"},
    {"http", "ADDR[,OPTIONS]",
     "serve the browser client and WebSocket (/ws) on this listener,\n"
     "e.g. 127.0.0.1:7071 (default: none)"},
    {"spool", "DIR", "where shared files are kept (default: the database's path + .files)"},
    {"file-max", "BYTES", "the largest file a /send may announce (default 16 MiB)"},
    {"file-quota", "BYTES", "the bytes of one user's files kept at once (default 64 MiB)"},
    {"file-ttl", "SECONDS", "a shared file is deleted this long after it arrived (default 86400)"},
    {"file-timeout", "SECONDS",
     "an upload not complete this long after it began is cut off\n"
     "and the connection closed (default 60)"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    weft_program prog = {
        .name = "weft-chat",
        .summary =
            "A multi-room chat server on weft. One line per command or message:\n"
            "  /register NAME PASSWORD   create an account (a password of 8+ bytes)\n"
            "  /login NAME PASSWORD      log in: your nick is NAME\n"
            "  /nick NAME        a guest's nick (with --allow-guests, or --db none)\n"
            "  /join ROOM        join a room (leaving the current one)\n"
            "  /leave            leave the current room\n"
            "  /who              list the members of the current room\n"
            "  /msg NAME TEXT    a private message (kept for a registered NAME offline)\n"
            "  /history [ROOM] [N]  the last N messages of a room, with times\n"
            "  /send NAME|#ROOM FILENAME SIZE  share a file: wait for '* ready', send SIZE bytes\n"
            "  /get ID           fetch a shared file: '* file ID NAME SIZE', then the bytes\n"
            "  /quit             close the connection\n"
            "  anything else     '<nick> TEXT' to everyone in the room, you included\n"
            "A member whose unread output would pass --output-cap (default 256K here)\n"
            "is disconnected, so a slow reader never stalls a room; --sndbuf bounds\n"
            "what the kernel holds before that cap counts.",
        .try_hint = "nc %s %u",
        .handler = chat_handler(),
        .options = options,
        .defaults = defaults,
        .option = option,
        .configure = configure,
        .setup = setup,
    };
    return chat_main(argc, argv, &prog);
}
