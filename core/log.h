/*
 * core/log.h — the library's log lines, through config.log.
 *
 * The control plane logs with wlog and wlog_limit; the data plane hands its
 * lines to wlog_sink through its group (workers/wlog.h), so every line,
 * whichever thread wrote it, meets the same level, destination and limits.
 */
#ifndef WEFT_CORE_LOG_H
#define WEFT_CORE_LOG_H

#include "weft/weft.h"
#include "workers/wlog.h"

struct weft_server;

/*
 * A warning about a limit hit: emitted at most once a second per kind (from
 * any thread), with the number of hits not logged since the last line. The
 * counters count every hit; this only keeps the log readable under attack.
 */
void wlog_limit(struct weft_server *s, wk_limit k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format and emit one line at `level` if the config's log_level allows. */
void wlog(const struct weft_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The workers' sink (wk_log_fn; ctx is the server): `limit` is a wk_limit
 * kind or -1 for a line that is always emitted.
 */
void wlog_sink(void *ctx, int level, int limit, const char *line);

/* How log_emit writes a line. */
enum { LOG_TEXT, LOG_LOGFMT };

/*
 * Write one log line on stderr, with a UTC timestamp (milliseconds), the
 * level, and `ident` and the pid: "2026-12-03T13:20:20.123Z weft-echo[42]
 * warn: text" (LOG_TEXT) or "ts=... level=warn prog=weft-echo pid=42
 * msg=\"text\"" (LOG_LOGFMT, quotes and backslashes escaped). One write(2)
 * per line, so lines from several threads never interleave. Any thread.
 */
void log_emit(const char *ident, int format, int level, const char *line);

/* "error", "warn", "info" or "debug" for a WEFT_LOG_* level. */
const char *log_level_name(int level);

#endif
