/*
 * examples/multi/echo.c — weft-multi's echo protocol: every byte back, in
 * order, on base+1 and on the detecting port (bytes that are no HTTP
 * method). Two handler counters, for chat's /stats and weft-stat.
 */
#include <stddef.h>

#include "multi.h"

static int g_conns = -1, g_bytes = -1;

static void echo_open(weft_conn *c) { weft_counter_add(c, g_conns, 1); }

static void echo_data(weft_conn *c, weft_ring *in)
{
    size_t n = weft_ring_len(in);
    weft_counter_add(c, g_bytes, n);
    /* Moving the whole ring hands its storage to the output: no copy. */
    weft_send_from(c, in, n);
}

static const weft_handler echo_h = {.on_open = echo_open, .on_data = echo_data};

const weft_handler *multi_echo_handler(void) { return &echo_h; }

int multi_echo_setup(weft_server *s)
{
    if ((g_conns = weft_server_add_counter(s, "echo_connections", "echo connections opened")) < 0)
        return g_conns;
    if ((g_bytes = weft_server_add_counter(s, "echo_bytes", "bytes echoed")) < 0)
        return g_bytes;
    return 0;
}
