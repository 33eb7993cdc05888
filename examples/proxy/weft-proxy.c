/*
 * weft-proxy — a TCP proxy on weft: every accepted connection is linked to
 * a new connection to one of the backends (round robin per worker), and
 * weft_link does the rest: bytes both ways with backpressure on each side,
 * half-close and close passed on. The handler is the few lines below.
 *
 *   weft-proxy --port 9000 --backend 127.0.0.1:7000 [--backend ...]
 *              [--backend-tls [--backend-ca FILE] [--backend-sni NAME]]
 *
 * With --tls-cert/--tls-key it terminates TLS from clients; with
 * --backend-tls it speaks TLS to the backends (verified against
 * --backend-ca, or the system's CAs): either, both, or neither.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "weft/weft.h"

#define MAX_BACKENDS 64

static const char *g_backends[MAX_BACKENDS];
static int g_nbackends;
static weft_connect_opts g_opts = {.timeout_ms = 5000, .nodelay = true};
static _Thread_local unsigned g_next; /* per worker: no shared counter */

/* The backend side only forwards (linked); a failed connect closes the
 * client with it (WEFT_CLOSE_LINK), so nothing to do here. */
static void backend_data(weft_conn *c, weft_ring *in) { weft_ring_consume(in, weft_ring_len(in)); }
static const weft_handler backend_h = {.on_data = backend_data};

static void client_open(weft_conn *c)
{
    const char *to = g_backends[g_next++ % (unsigned)g_nbackends];
    weft_conn *b;
    if (weft_connect(weft_conn_server(c), weft_conn_worker(c), to, &g_opts, &backend_h, NULL, &b) !=
            0 ||
        weft_link(c, b) != 0)
        weft_abort(c);
}

/* Not reached once linked; a client's bytes before the link stay queued. */
static void client_data(weft_conn *c, weft_ring *in) { (void)c, (void)in; }

static const weft_handler client_h = {.on_open = client_open, .on_data = client_data};

static int option(weft_config *cfg, const char *name, const char *arg, const char **why, void *ud)
{
    (void)cfg;
    (void)ud;
    long long v;
    if (strcmp(name, "backend") == 0) {
        if (g_nbackends == MAX_BACKENDS) {
            *why = "at most 64 backends";
            return -EINVAL;
        }
        g_backends[g_nbackends++] = arg;
        return 0;
    }
    if (strcmp(name, "backend-tls") == 0) {
        g_opts.tls = true;
        return 0;
    }
    if (strcmp(name, "backend-ca") == 0 || strcmp(name, "backend-sni") == 0) {
        *(name[8] == 'c' ? &g_opts.ca_file : &g_opts.sni) = arg;
        return 0;
    }
    if (weft_parse_number(arg, 1, 3600000, &v) != 0) { /* connect-timeout */
        *why = "expected a number from 1 to 3600000";
        return -EINVAL;
    }
    g_opts.timeout_ms = (uint32_t)v;
    return 0;
}

static int configure(weft_config *cfg, const char **why, void *ud)
{
    (void)cfg;
    (void)ud;
    *why = g_nbackends == 0 ? "give at least one --backend HOST:PORT"
                            : "--backend-ca and --backend-sni need --backend-tls";
    return g_nbackends > 0 && (g_opts.tls || (!g_opts.ca_file && !g_opts.sni)) ? 0 : -EINVAL;
}

static void defaults(weft_config *cfg, void *ud)
{
    (void)ud;
    cfg->port = 9000;
}

static const weft_program_option options[] = {
    {"backend", "ADDR",
     "a backend: HOST:PORT, [IPv6]:PORT or unix:/PATH;\n"
     "repeat for more (round robin per worker)"},
    {"connect-timeout", "MS", "give up on a backend after this long (default 5000)"},
    {"backend-tls", NULL, "speak TLS to the backends, verifying their certificates"},
    {"backend-ca", "FILE", "PEM CAs to verify the backends with (default: the system's)"},
    {"backend-sni", "NAME",
     "the name to send and verify (default: the backend's host,\n"
     "or its IP address, which the certificate must then carry)"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    const weft_program prog = {
        .name = "weft-proxy",
        .summary = "A TCP proxy: each connection is forwarded to a backend, both ways, with\n"
                   "backpressure on each side (weft_link).",
        .handler = &client_h,
        .options = options,
        .defaults = defaults,
        .option = option,
        .configure = configure,
    };
    return weft_main(argc, argv, &prog);
}
