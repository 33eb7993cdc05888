/*
 * weft-multi — several protocols in one weft server (the tutorial's
 * Exercise 2): one process, one set of workers, five listeners, each with
 * its own handler.
 *
 *   base+0  HTTP     examples/http's handler (GET /, /stats, /chat/rooms)
 *   base+1  echo     every byte back
 *   base+2  chat     examples/chat's rooms (/stats shows HTTP's and echo's counters)
 *   base+3  admin    a line interface on 127.0.0.1 only (admin.c)
 *   base+4  sniff    the protocol read from the first bytes (sniff.c)
 *
 * The base port is --base-port (or --port), 8080 by default; 0 gives each
 * listener a free port of its own. Each listener's accept limits come from
 * --limit PROTO,OPTIONS in --listen's option syntax, and `limit` on the
 * admin port changes a rate while the server runs. --listen adds more
 * addresses, which detect the protocol like base+4.
 *
 * All protocols share the workers, and so the connection settings: the
 * output cap and watermarks are the chat's (chat_config_defaults: a member
 * 256 KiB behind is dropped), the input cap fits a chat line plus what may
 * wait behind a command.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chat.h"
#include "http_server.h"
#include "multi.h"
#include "weft/weft.h"

const char *const multi_port_name[MULTI_PORTS] = {"http", "echo", "chat", "admin", "sniff"};

static struct {
    long base;                           /* --base-port; -1: --port's value */
    const char *bind;                    /* the address of every port but admin's */
    uint32_t sniff_ms;                   /* --sniff-timeout */
    weft_listener_opts opt[MULTI_PORTS]; /* --limit: each port's options (addr, name unset) */
    int nextra;                          /* --listen addresses (listeners 0..nextra-1) */
    uint32_t extra_rate[WEFT_MAX_LISTENERS], extra_burst[WEFT_MAX_LISTENERS];
} g = {.base = -1, .sniff_ms = 500};

static const weft_handler *handler_of(int port)
{
    switch (port) {
    case MULTI_HTTP:
        return http_handler();
    case MULTI_ECHO:
        return multi_echo_handler();
    case MULTI_CHAT:
        return chat_handler();
    case MULTI_ADMIN:
        return multi_admin_handler();
    default:
        return multi_sniff_handler();
    }
}

/* ---- options ---------------------------------------------------------------------- */

/* --limit PROTO,OPTION[,OPTION...]: weft_listener_parse reads the options. */
static int limit_option(const char *arg, const char **why)
{
    const char *comma = strchr(arg, ',');
    size_t n = comma ? (size_t)(comma - arg) : strlen(arg);
    int port = -1;
    for (int i = 0; i < MULTI_PORTS; i++)
        if (strlen(multi_port_name[i]) == n && !memcmp(arg, multi_port_name[i], n))
            port = i;
    if (port < 0 || !comma) {
        *why = "expected PROTO,OPTION... with PROTO one of http, echo, chat, admin, sniff";
        return -EINVAL;
    }
    char spec[256];
    weft_listener_opts o;
    if ((size_t)snprintf(spec, sizeof(spec), "127.0.0.1:1%s", comma) >= sizeof(spec)) {
        *why = "options too long";
        return -EINVAL;
    }
    if (weft_listener_parse(spec, &o, why) != 0)
        return -EINVAL;
    if (o.name) {
        *why = "the ports' names are fixed (no name=)";
        return -EINVAL;
    }
    o.addr = NULL; /* it pointed into spec */
    g.opt[port] = o;
    return 0;
}

static int option(weft_config *cfg, const char *name, const char *arg, const char **why, void *ud)
{
    (void)cfg;
    (void)ud;
    long long v;
    if (!strcmp(name, "limit"))
        return limit_option(arg, why);
    if (!strcmp(name, "base-port")) {
        if (weft_parse_number(arg, 0, 65535 - (MULTI_PORTS - 1), &v) != 0) {
            *why = "expected a number from 0 to 65531";
            return -EINVAL;
        }
        g.base = (long)v;
        return 0;
    }
    if (weft_parse_number(arg, 1, 60000, &v) != 0) { /* sniff-timeout */
        *why = "expected a number of milliseconds from 1 to 60000";
        return -EINVAL;
    }
    g.sniff_ms = (uint32_t)v;
    return 0;
}

static void defaults(weft_config *cfg, void *ud)
{
    (void)ud;
    cfg->port = 8080;
    chat_config_defaults(cfg, CHAT_MAX_LINE);
}

/*
 * The five ports are added in setup, so bind/port makes no listener of its
 * own; what --listen adds (listeners 0.., before the five) detects the
 * protocol: its limits are remembered here for the admin's `listeners`.
 */
static int configure(weft_config *cfg, const char **why, void *ud)
{
    (void)ud;
    if (g.base < 0) {
        if (cfg->port > 65535 - (MULTI_PORTS - 1)) {
            *why = "the five ports need a base port of at most 65531";
            return -EINVAL;
        }
        g.base = cfg->port;
    }
    /* weft_main drops bind when only --listen was given: the default, then. */
    g.bind = cfg->bind_addr && *cfg->bind_addr ? cfg->bind_addr : "127.0.0.1";
    cfg->bind_addr = NULL;
    g.nextra = cfg->nlisten;
    for (int i = 0; i < cfg->nlisten; i++) {
        weft_listener_opts o;
        if (weft_listener_parse(cfg->listen[i], &o, why) != 0)
            return -EINVAL;
        g.extra_rate[i] = o.rate;
        g.extra_burst[i] = o.burst;
    }
    chat_config_fit(cfg);
    return 0;
}

/* ---- the server ------------------------------------------------------------------- */

static int add_port(weft_server *s, int port)
{
    const char *host = port == MULTI_ADMIN ? "127.0.0.1" : g.bind;
    char addr[160];
    snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%ld" : "%s:%ld", host,
             g.base ? g.base + port : 0);
    weft_listener_opts o = g.opt[port];
    o.addr = addr;
    o.name = multi_port_name[port];
    o.handler = handler_of(port);
    int i = weft_server_listen(s, &o);
    if (i < 0) {
        fprintf(stderr, "weft-multi: cannot listen on %s for %s: %s\n", addr, multi_port_name[port],
                weft_strerror(i));
        return i;
    }
    multi_admin_limit_set(i, o.rate, o.burst);
    return 0;
}

static int setup(weft_server *s, void *ud)
{
    chat_server *cs = ud;
    int rc;
    if ((rc = chat_server_attach(cs, s, CHAT_MAX_LINE)) != 0 ||
        (rc = http_server_setup(s, HTTP_MAX_HEAD, HTTP_MAX_BODY)) != 0 ||
        (rc = multi_echo_setup(s)) != 0 || (rc = multi_sniff_setup(s, g.sniff_ms)) != 0 ||
        (rc = multi_cross_setup(s, cs)) != 0)
        return rc;
    multi_admin_setup(s);
    for (int i = 0; i < g.nextra; i++)
        multi_admin_limit_set(i, g.extra_rate[i], g.extra_burst[i]);
    for (int port = 0; port < MULTI_PORTS; port++)
        if ((rc = add_port(s, port)) != 0)
            return rc;
    return 0;
}

static const weft_program_option options[] = {
    {"base-port", "PORT",
     "the first of the five ports (default 8080): HTTP on it, echo,\n"
     "chat, admin and the detecting port on the next four; 0 gives\n"
     "each a free port (the startup lines say which)"},
    {"sniff-timeout", "MS",
     "on the detecting port, a client silent this long is handed\n"
     "to chat (default 500)"},
    {"limit", "PROTO,OPTS",
     "one port's listener options, in --listen's syntax: PROTO is\n"
     "http, echo, chat, admin or sniff; OPTS rate=N (accepts per\n"
     "second), burst=N, per-source=N, max-conns=N, backlog=N,\n"
     "nagle, keepalive=S, reuseport; e.g. --limit http,rate=100,burst=20.\n"
     "Repeat for more ports (the last one for a port wins)"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    weft_program prog = {
        .name = "weft-multi",
        .summary = "Several protocols in one weft server: one process, one set of workers,\n"
                   "five listeners on consecutive ports from --base-port:\n"
                   "  +0 http   GET / (hello), /stats (the statistics as JSON), /chat/rooms\n"
                   "            (the chat's rooms and members as JSON)\n"
                   "  +1 echo   every byte back\n"
                   "  +2 chat   weft-chat's rooms; /stats shows the HTTP and echo counters\n"
                   "  +3 admin  on 127.0.0.1 only, a command a line: help, stats, listeners,\n"
                   "            conns, limit LISTENER RATE [BURST], quit\n"
                   "  +4 sniff  the protocol from the first bytes: an HTTP method and a\n"
                   "            space -> HTTP, other bytes -> echo, silence for\n"
                   "            --sniff-timeout -> chat (which speaks first)\n"
                   "--port is the same as --base-port; --bind applies to every port but\n"
                   "the admin's; --listen adds addresses that detect the protocol.",
        .epilog = "\nIn weft-multi, --listen adds to the five ports (it replaces none of them),\n"
                  "and those addresses detect the protocol as the sniff port does.",
        .try_hint = "curl http://%s:%u/",
        .handler = multi_sniff_handler(),
        .options = options,
        .defaults = defaults,
        .option = option,
        .configure = configure,
        .setup = setup,
    };
    return chat_main(argc, argv, &prog);
}
