/*
 * stats/admin_proto.h — parsing the admin socket's commands and the metrics
 * port's HTTP requests. Pure functions over bytes, so the fuzzers can reach
 * them without a server (fuzz/fuzz_admin.c).
 */
#ifndef WEFT_STATS_ADMIN_PROTO_H
#define WEFT_STATS_ADMIN_PROTO_H

#include <stddef.h>

typedef enum adm_cmd {
    ADM_NONE,       /* an empty line */
    ADM_STATS,      /* "stats" */
    ADM_STATS_JSON, /* "stats json" */
    ADM_WORKERS,    /* "workers" */
    ADM_METRICS,    /* "metrics" */
    ADM_HELP,       /* "help" */
    ADM_QUIT,       /* "quit" or "exit" */
    ADM_UNKNOWN,
} adm_cmd;

/*
 * Classify one command line (NUL-terminated, without its '\n'). Trims
 * surrounding blanks and a trailing '\r' in place and points *word at the
 * trimmed text (for the error message of an unknown command).
 */
adm_cmd adm_parse_line(char *line, const char **word);

typedef enum adm_http {
    HTTP_MORE,       /* the request head is not complete yet */
    HTTP_METRICS,    /* GET /metrics */
    HTTP_STATUS,     /* GET / or /status: the status page */
    HTTP_JSON,       /* GET /stats.json: the snapshot the page polls */
    HTTP_NOT_FOUND,  /* GET of another path */
    HTTP_BAD_METHOD, /* not GET */
    HTTP_TOO_BIG,    /* no complete head within max bytes */
} adm_http;

/* Classify the request head in buf[0..len) (any bytes, NULs included). */
adm_http adm_parse_http(const char *buf, size_t len, size_t max);

#endif
