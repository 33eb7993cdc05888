/*
 * stats/admin_proto.c — admin command and metrics request parsing.
 */
#include "stats/admin_proto.h"

#include <string.h>

adm_cmd adm_parse_line(char *line, const char **word)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = 0;
    while (*line == ' ' || *line == '\t')
        line++;
    *word = line;
    static const struct {
        const char *text;
        adm_cmd cmd;
    } table[] = {
        {"stats", ADM_STATS},     {"stats json", ADM_STATS_JSON},
        {"workers", ADM_WORKERS}, {"metrics", ADM_METRICS},
        {"help", ADM_HELP},       {"quit", ADM_QUIT},
        {"exit", ADM_QUIT},
    };
    if (!*line)
        return ADM_NONE;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (!strcmp(line, table[i].text))
            return table[i].cmd;
    return ADM_UNKNOWN;
}

adm_http adm_parse_http(const char *buf, size_t len, size_t max)
{
    /* The head ends at the first blank line; bytes after it are ignored. */
    if (!memmem(buf, len, "\r\n\r\n", 4) && !memmem(buf, len, "\n\n", 2))
        return len >= max ? HTTP_TOO_BIG : HTTP_MORE;
    if (len < 4 || memcmp(buf, "GET ", 4) != 0)
        return HTTP_BAD_METHOD;
    const char *path = buf + 4;
    size_t rest = len - 4;
    static const struct {
        const char *path; /* with the character that ends it: ' ' or '?' */
        adm_http what;
    } routes[] = {
        {"/metrics ", HTTP_METRICS}, {"/metrics?", HTTP_METRICS}, {"/ ", HTTP_STATUS},
        {"/?", HTTP_STATUS},         {"/status ", HTTP_STATUS},   {"/status?", HTTP_STATUS},
        {"/stats.json ", HTTP_JSON}, {"/stats.json?", HTTP_JSON},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t n = strlen(routes[i].path);
        if (rest >= n && !memcmp(path, routes[i].path, n))
            return routes[i].what;
    }
    return HTTP_NOT_FOUND;
}
