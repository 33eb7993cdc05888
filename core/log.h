/*
 * core/log.h — the library's log lines, through config.log.
 */
#ifndef WEFT_CORE_LOG_H
#define WEFT_CORE_LOG_H

#include "weft/weft.h"

struct weft_server;

/* Format and emit one line at `level` if the config's log_level allows. */
void wlog(const struct weft_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
