/*
 * workers/wlog.h — log lines from the data plane.
 *
 * The workers do not format into a file or a callback of their own: every
 * line goes to the sink the control plane put in the group (wk_group.log),
 * which applies the configured level, destination and rate limits. Lines
 * about limits (a cap hit under attack can happen a million times a second)
 * name their kind, and the sink emits each kind at most once a second.
 */
#ifndef WEFT_WORKERS_WLOG_H
#define WEFT_WORKERS_WLOG_H

#include "workers/worker-t.h"

/* Kinds of limit hits, each logged at most once a second. */
typedef enum wk_limit {
    LIM_MAX_CONNS,
    LIM_WORKER_CAP,
    LIM_EMFILE,
    LIM_ACCEPT,
    LIM_POOL,
    LIM_INPUT_CAP,
    LIM_OUTPUT_CAP,
    LIM_IDLE,
    LIM_INPUT_STALL,
    LIM_OUTPUT_STALL,
    LIM_ENDPOINT_BUSY, /* admin socket or metrics listener: every client slot busy */
    LIM_ENDPOINT_FDS,  /* admin socket or metrics listener: accept failed (EMFILE ...) */
    LIM_LSN_RATE,      /* a listener over its accept rate */
    LIM_LSN_SOURCE,    /* a source over a listener's per-source limit */
    LIM_TLS,           /* a TLS handshake or record failure */
    LIM_KINDS
} wk_limit;

/* Would a line at `level` reach the sink? (Skip formatting what it drops.) */
static inline bool wk_log_on(const wk_group *g, int level)
{
    return g->log && level <= g->cfg->log_level;
}

/* Format one line at `level` and hand it to the group's sink (any thread). */
void wk_log(const wk_group *g, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A warning about a limit hit of kind k, rate-limited by the sink. */
void wk_log_limit(const wk_group *g, wk_limit k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
