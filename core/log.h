/*
 * core/log.h — the library's log lines, through config.log.
 */
#ifndef WEFT_CORE_LOG_H
#define WEFT_CORE_LOG_H

#include "weft/weft.h"

struct weft_server;

/* Kinds of limit hits, each logged at most once a second (wlog_limit). */
typedef enum lim_kind {
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
    LIM_KINDS
} lim_kind;

/*
 * A warning about a limit hit: emitted at most once a second per kind (from
 * any thread), with the number of hits not logged since the last line. The
 * counters count every hit; this only keeps the log readable under attack.
 */
void wlog_limit(struct weft_server *s, lim_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format and emit one line at `level` if the config's log_level allows. */
void wlog(const struct weft_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
