/*
 * workers/wlog.c — formatting log lines for the group's sink (wlog.h).
 */
#include "workers/wlog.h"

#include <stdio.h>

static void vemit(const wk_group *g, int level, int limit, const char *fmt, va_list ap)
{
    /* Skip the formatting of lines the sink would drop anyway. */
    if (!wk_log_on(g, level))
        return;
    char line[400];
    vsnprintf(line, sizeof(line), fmt, ap);
    g->log(g->log_ctx, level, limit, line);
}

void wk_log(const wk_group *g, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(g, level, -1, fmt, ap);
    va_end(ap);
}

void wk_log_limit(const wk_group *g, wk_limit k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(g, WEFT_LOG_WARN, (int)k, fmt, ap);
    va_end(ap);
}
