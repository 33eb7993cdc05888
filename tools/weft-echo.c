/*
 * weft-echo — the reference server: echoes every byte back, in order, on
 * every connection. Its options are the server options every weft program
 * takes (weft_main), plus --lines and --max-line.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "weft/weft.h"

static void echo_data(weft_conn *c, weft_ring *in)
{
    /* Moving the whole ring hands its storage to the output: no copy. */
    weft_send_from(c, in, weft_ring_len(in));
}

/*
 * --lines: echo complete newline-terminated lines only. A partial line stays
 * in the input ring (so the input-stall timeout and the input cap, which
 * --max-line sets, apply to it); the connection's user data remembers how
 * far the ring was already searched, so a long partial line is scanned once.
 */
static void lines_data(weft_conn *c, weft_ring *in)
{
    size_t from = (size_t)(uintptr_t)weft_conn_userdata(c);
    long nl;
    while ((nl = weft_ring_find(in, from, '\n')) >= 0) {
        if (weft_send_from(c, in, (size_t)nl + 1) < 0)
            return;
        from = 0;
    }
    weft_conn_set_userdata(c, (void *)(uintptr_t)weft_ring_len(in));
}

static weft_handler g_handler = {.on_data = echo_data};

static int option(weft_config *cfg, const char *name, const char *arg, const char **why, void *ud)
{
    (void)ud;
    long long v;
    if (strcmp(name, "lines") == 0) {
        g_handler.on_data = lines_data;
        return 0;
    }
    if (weft_parse_number(arg, 64, 1 << 30, &v) != 0) { /* max-line */
        *why = "expected a number from 64 to 1073741824";
        return -EINVAL;
    }
    cfg->input_cap = (uint32_t)v;
    return 0;
}

static const weft_program_option options[] = {
    {"lines", NULL,
     "echo complete newline-terminated lines only; a partial\n"
     "line waits (the input stall and cap apply)"},
    {"max-line", "BYTES",
     "with --lines: the longest line; a longer one closes\n"
     "the connection (sets --input-cap)"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    const weft_program prog = {
        .name = "weft-echo",
        .summary = "The weft reference server: echoes every byte back on every connection.",
        .try_hint = "nc %s %u",
        .handler = &g_handler,
        .options = options,
        .option = option,
    };
    return weft_main(argc, argv, &prog);
}
