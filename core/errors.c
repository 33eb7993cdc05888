/*
 * core/errors.c — error text, close-reason names and the log sink.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/server-t.h"

const char *weft_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "success";
    /*
     * strerror_r (GNU) returns either its buffer or a static string; a
     * thread-local buffer makes the result safe to use from any thread.
     */
    static _Thread_local char buf[128];
    return strerror_r(err, buf, sizeof(buf));
}

static const char *const reason_names[WEFT_CLOSE_REASONS] = {
    [WEFT_CLOSE_PEER] = "peer",
    [WEFT_CLOSE_ERROR] = "error",
    [WEFT_CLOSE_TIMEOUT] = "timeout",
    [WEFT_CLOSE_INPUT_CAP] = "input_cap",
    [WEFT_CLOSE_OUTPUT_CAP] = "output_cap",
    [WEFT_CLOSE_SHUTDOWN] = "shutdown",
    [WEFT_CLOSE_HANDLER] = "handler",
    [WEFT_CLOSE_INPUT_STALL] = "input_stall",
    [WEFT_CLOSE_OUTPUT_STALL] = "output_stall",
};

const char *weft_close_reason_name(weft_close_reason r)
{
    if ((unsigned)r >= WEFT_CLOSE_REASONS)
        return "unknown";
    return reason_names[r];
}

void wlog(const struct weft_server *s, int level, const char *fmt, ...)
{
    if (level > s->cfg.log_level)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (s->cfg.log) {
        s->cfg.log(s->cfg.log_ud, level, line);
        return;
    }
    static const char *const lv[] = {"error", "warn", "info", "debug"};
    /* One fprintf per line: stdio locks the stream, so lines never interleave. */
    fprintf(stderr, "weft: %s: %s\n", lv[level & 3], line);
}
