/*
 * core/errors.c — error text, close-reason names and the log sink.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    [WEFT_CLOSE_CONNECT_REFUSED] = "connect_refused",
    [WEFT_CLOSE_CONNECT_TIMEOUT] = "connect_timeout",
    [WEFT_CLOSE_UNREACHABLE] = "unreachable",
    [WEFT_CLOSE_RESOLVE] = "resolve",
    [WEFT_CLOSE_LINK] = "link",
    [WEFT_CLOSE_TLS_HANDSHAKE] = "tls_handshake",
    [WEFT_CLOSE_TLS_PROTOCOL] = "tls_protocol",
    [WEFT_CLOSE_TLS_VERIFY] = "tls_verify",
};

static const char *const state_names[WEFT_CONN_STATES] = {
    [WEFT_CONN_IDLE] = "idle",
    [WEFT_CONN_READING] = "reading",
    [WEFT_CONN_WRITING] = "writing",
    [WEFT_CONN_HANDSHAKE] = "handshake",
    [WEFT_CONN_CONNECTING] = "connecting",
    [WEFT_CONN_DRAINING] = "draining",
    [WEFT_CONN_LINGERING] = "lingering",
};

const char *weft_conn_state_name(weft_conn_state st)
{
    if ((unsigned)st >= WEFT_CONN_STATES)
        return "unknown";
    return state_names[st];
}

const char *weft_close_reason_name(weft_close_reason r)
{
    if ((unsigned)r >= WEFT_CLOSE_REASONS)
        return "unknown";
    return reason_names[r];
}

/* Emit a formatted line, or count it when its kind spoke this second. */
static void emit_limited(struct weft_server *s, wk_limit k, const char *line)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t last = __atomic_load_n(&s->lim_last[k], __ATOMIC_RELAXED);
    /* One thread wins the second; the others only count. */
    if (now - last < 1000 || !__atomic_compare_exchange_n(&s->lim_last[k], &last, now, false,
                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&s->lim_quiet[k], 1, __ATOMIC_RELAXED);
        return;
    }
    uint64_t quiet = __atomic_exchange_n(&s->lim_quiet[k], 0, __ATOMIC_RELAXED);
    if (quiet)
        wlog(s, WEFT_LOG_WARN, "%s (and %llu more like it since the last report)", line,
             (unsigned long long)quiet);
    else
        wlog(s, WEFT_LOG_WARN, "%s", line);
}

void wlog_limit(struct weft_server *s, wk_limit k, const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    emit_limited(s, k, line);
}

void wlog_sink(void *ctx, int level, int limit, const char *line)
{
    struct weft_server *s = ctx;
    if (limit >= 0 && limit < LIM_KINDS)
        emit_limited(s, (wk_limit)limit, line);
    else
        wlog(s, level, "%s", line);
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
    log_emit("weft", LOG_TEXT, level, line);
}

const char *log_level_name(int level)
{
    static const char *const lv[] = {"error", "warn", "info", "debug"};
    return lv[level & 3];
}

/* Append s to the logfmt line at *n, quoted, with " and \\ escaped. */
static void logfmt_quote(char *buf, size_t size, size_t *n, const char *s)
{
    if (*n + 1 < size)
        buf[(*n)++] = '"';
    for (; *s && *n + 3 < size; s++) {
        if (*s == '"' || *s == '\\')
            buf[(*n)++] = '\\';
        buf[(*n)++] = *s == '\n' ? ' ' : *s;
    }
    if (*n + 1 < size)
        buf[(*n)++] = '"';
}

void log_emit(const char *ident, int format, int level, const char *line)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);
    char buf[1024];
    int k;
    if (format == LOG_LOGFMT)
        k = snprintf(buf, sizeof(buf), "ts=%s level=%s prog=%s pid=%ld msg=", when,
                     log_level_name(level), ident, (long)getpid());
    else
        k = snprintf(buf, sizeof(buf), "%s %s[%ld] %s: ", when, ident, (long)getpid(),
                     log_level_name(level));
    size_t n = k > 0 && (size_t)k < sizeof(buf) ? (size_t)k : 0;
    if (format == LOG_LOGFMT) {
        logfmt_quote(buf, sizeof(buf) - 1, &n, line);
    } else {
        size_t len = strlen(line);
        if (len > sizeof(buf) - 2 - n)
            len = sizeof(buf) - 2 - n;
        memcpy(buf + n, line, len);
        n += len;
    }
    buf[n++] = '\n';
    /* One write per line: lines from several threads never interleave. */
    ssize_t r = write(STDERR_FILENO, buf, n);
    (void)r; /* nowhere left to report a failed log write */
}
