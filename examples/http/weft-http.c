/*
 * weft-http — a small HTTP/1.1 server on the public weft API: the handler
 * of http_server.c (its comment says what it answers) behind weft_main,
 * with two options of its own, --max-head and --max-body.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "http_server.h"
#include "http_static.h"
#include "weft/weft.h"

static uint32_t g_max_head = HTTP_MAX_HEAD;
static uint32_t g_max_body = HTTP_MAX_BODY;

static void http_defaults(weft_config *cfg, void *ud)
{
    (void)ud;
    cfg->port = 8080;
    cfg->tls_alpn = "http/1.1"; /* what a TLS listener offers (--tls-cert) */
}

static int http_option(weft_config *cfg, const char *name, const char *arg, const char **why,
                       void *ud)
{
    (void)cfg;
    (void)ud;
    long long v;
    if (strcmp(name, "root") == 0) {
        int rc = http_static_root(arg);
        *why = rc ? "cannot open that directory" : NULL;
        return rc;
    }
    int head = strcmp(name, "max-head") == 0;
    if (weft_parse_number(arg, head ? 64 : 0, head ? 1 << 20 : 0xffffffffLL, &v) != 0) {
        *why = head ? "expected a number from 64 to 1048576" : "expected a number from 0 to 4G-1";
        return -EINVAL;
    }
    *(head ? &g_max_head : &g_max_body) = (uint32_t)v;
    return 0;
}

/* The answers, and the counters of answers by status class. */
static int http_setup(weft_server *s, void *ud)
{
    (void)ud;
    return http_server_setup(s, g_max_head, g_max_body);
}

static const weft_program_option http_options[] = {
    {"max-head", "BYTES", "longest request head; a longer one gets 431 (default 8192)"},
    {"max-body", "BYTES",
     "longest request body, read and discarded; a longer one\n"
     "gets 413 (default 1048576)"},
    {"root", "DIR",
     "serve the files under DIR (sendfile; Range, If-Modified-Since;\n"
     "nothing outside DIR, symlinks included); / is DIR/index.html"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    const weft_program prog = {
        .name = "weft-http",
        .summary = "A small HTTP/1.1 server on weft: GET / says hello, GET /stats is the\n"
                   "server's statistics as JSON, and with --root DIR every other path is a\n"
                   "file under DIR. Keep-alive and pipelining; the head a client is sending\n"
                   "counts against --input-stall from its first byte.",
        .try_hint = "curl http://%s:%u/",
        .handler = http_handler(),
        .options = http_options,
        .defaults = http_defaults,
        .option = http_option,
        .setup = http_setup,
    };
    return weft_main(argc, argv, &prog);
}
