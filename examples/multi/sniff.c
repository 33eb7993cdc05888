/*
 * examples/multi/sniff.c — weft-multi's fifth port: the protocol is read
 * from the first bytes, and the connection is handed to that protocol's
 * handler (weft_conn_set_handler) with the bytes still in its input ring.
 *
 *   first bytes                                   goes to
 *   ------------------------------------------    --------------------------
 *   "GET ", "HEAD ", "POST ", "PUT ", "DELETE ",   HTTP (it parses the
 *   "OPTIONS ", "PATCH " (case-sensitive, as       request from its first
 *   HTTP methods are)                              byte)
 *   anything else                                  echo
 *   nothing for the sniff timeout                  chat (it speaks first: a
 *                                                  chat client waits for the
 *                                                  welcome line)
 *
 * Bytes that are still the beginning of a method ("GE") wait for more; if
 * the timeout comes first, the client was not silent, so it goes to echo
 * (but a peer that sends such a start and then closes is closed unechoed:
 * weft closes on the FIN while the bytes wait here). Nothing is consumed
 * here, so the new handler sees every byte.
 *
 * State: one small allocation per connection while it is being detected
 * (the timer and whether bytes came), freed when it is handed over. The
 * timer is the connection's, so it dies with it if the peer leaves first.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "multi.h"

static uint32_t g_timeout_ms = 500;

/* Decisions, by protocol. */
enum { TO_HTTP, TO_ECHO, TO_CHAT, TO_COUNT };
static int g_counter[TO_COUNT] = {-1, -1, -1};

typedef struct sniff {
    weft_timer *timer; /* NULL once it fired */
    bool partial;      /* bytes came, the start of a method so far */
} sniff;

static const char *const methods[] = {"GET ",    "HEAD ",    "POST ", "PUT ",
                                      "DELETE ", "OPTIONS ", "PATCH "};
#define METHOD_MAX 8 /* "OPTIONS " */

/* 1: the input starts with a method and a space; 0: it cannot; -1: too few bytes to tell. */
static int looks_http(const weft_ring *in)
{
    char b[METHOD_MAX];
    size_t n = weft_ring_copyout(in, 0, b, sizeof(b));
    int maybe = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        size_t m = strlen(methods[i]);
        if (memcmp(b, methods[i], n < m ? n : m) != 0)
            continue;
        if (n >= m)
            return 1;
        maybe = 1;
    }
    return maybe ? -1 : 0;
}

static const weft_handler *handler_of(int to)
{
    return to == TO_HTTP ? http_handler() : to == TO_ECHO ? multi_echo_handler() : chat_handler();
}

/*
 * Give c to its protocol: the new handler's on_open runs now, its on_data
 * next with the bytes waiting in the ring (weft redelivers them before it
 * reads anything more, a FIN included).
 */
static void hand_over(weft_conn *c, int to)
{
    free(weft_conn_userdata(c));
    weft_conn_set_userdata(c, NULL);
    weft_counter_add(c, g_counter[to], 1);
    int rc = weft_conn_set_handler(c, handler_of(to), NULL);
    if (rc != 0 && rc != -EPIPE) /* -EPIPE: the new on_open closed it */
        weft_abort(c); /* out of memory: this handler's on_close runs, with nothing to free */
}

static void sniff_timeout(weft_timer *t, void *arg)
{
    (void)arg;
    weft_conn *c = weft_timer_conn(t);
    sniff *st = weft_conn_userdata(c);
    st->timer = NULL; /* a one-shot timer is gone once it fired */
    hand_over(c, st->partial ? TO_ECHO : TO_CHAT);
}

static void sniff_open(weft_conn *c)
{
    sniff *st = calloc(1, sizeof(*st));
    if (!st || !(st->timer = weft_conn_timer(c, g_timeout_ms, 0, sniff_timeout, NULL))) {
        free(st);
        weft_abort(c);
        return;
    }
    weft_conn_set_userdata(c, st);
}

static void sniff_data(weft_conn *c, weft_ring *in)
{
    sniff *st = weft_conn_userdata(c);
    if (!st || weft_ring_len(in) == 0)
        return;
    int r = looks_http(in);
    if (r < 0) {
        st->partial = true; /* wait for the rest of the method (or the timeout) */
        return;
    }
    weft_timer_cancel(st->timer);
    hand_over(c, r ? TO_HTTP : TO_ECHO);
}

static void sniff_close(weft_conn *c, weft_close_reason why)
{
    (void)why;
    /* Left while being detected: its timer is cancelled with it. */
    free(weft_conn_userdata(c));
    weft_conn_set_userdata(c, NULL);
}

static const weft_handler sniff_h = {
    .on_open = sniff_open, .on_data = sniff_data, .on_close = sniff_close};

const weft_handler *multi_sniff_handler(void) { return &sniff_h; }

int multi_sniff_setup(weft_server *s, uint32_t timeout_ms)
{
    static const char *const cname[TO_COUNT][2] = {
        {"sniff_http", "detecting port: connections handed to HTTP"},
        {"sniff_echo", "detecting port: connections handed to echo"},
        {"sniff_chat", "detecting port: silent connections handed to chat"},
    };
    g_timeout_ms = timeout_ms;
    for (int i = 0; i < TO_COUNT; i++)
        if ((g_counter[i] = weft_server_add_counter(s, cname[i][0], cname[i][1])) < 0)
            return g_counter[i];
    return 0;
}
