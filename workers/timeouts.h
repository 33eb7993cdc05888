/*
 * workers/timeouts.h — connection timeouts: which connections expired, and
 * why.
 *
 * The timeouts decide; the loop closes (workers/loop.c, the timers phase,
 * through conn_expire). Keeping the decision apart from the close keeps
 * this file free of the state machine's side effects and lets a test ask
 * for verdicts without a socket.
 */
#ifndef WEFT_WORKERS_TIMEOUTS_H
#define WEFT_WORKERS_TIMEOUTS_H

#include "workers/worker-t.h"

/* A connection whose deadline passed, and which deadline. */
typedef struct to_verdict {
    weft_conn *c;
    weft_close_reason why; /* WEFT_CLOSE_TIMEOUT, _INPUT_STALL, _OUTPUT_STALL or
                              _CONNECT_TIMEOUT */
} to_verdict;

/*
 * Verdicts per turn. Connections opened together (a flood of slow readers)
 * time out together, and closing a socket that holds megabytes of unread
 * input costs a few hundred microseconds; the rest are checked again a tick
 * later, so the healthy connections of the worker wait for at most this
 * many closes per turn (invariant 3).
 */
#define TO_VERDICTS_PER_TURN 8

/* Start c's timeout timer (at open), when any timeout is configured. */
void to_conn_open(wk_worker *w, weft_conn *c);

/* An outbound connection started connecting: it expires after ms. */
void to_conn_connecting(wk_worker *w, weft_conn *c, uint32_t ms);

/* A TLS handshake began: it expires after config.tls_handshake_ms. */
void to_conn_handshaking(wk_worker *w, weft_conn *c);

/* It connected: the timeouts of an open connection apply from now. */
void to_conn_connected(wk_worker *w, weft_conn *c);

/* Stop c's timeout timer (at close). */
void to_conn_close(wk_worker *w, weft_conn *c);

/*
 * Check the connections whose timer is due at w->now_ms and store at most
 * max verdicts in v; returns how many. A connection that got a verdict is
 * re-armed only where the verdict leaves it open (an idle close flushes
 * first: the output stall keeps watching it). Connections past max are
 * looked at again a tick later.
 */
unsigned to_expire(wk_worker *w, to_verdict *v, unsigned max);

/* Milliseconds until the next connection timer may be due; -1 for none. */
int to_wait_ms(wk_worker *w);

#endif
