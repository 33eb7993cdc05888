/*
 * fuzz_admin — the admin command and metrics request parsers on arbitrary
 * bytes: every line of the input is classified as a command, and the whole
 * input as an HTTP request head. Each line is copied into a buffer of its
 * exact size, so reading past it is an ASan error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats/admin_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t n = i - start;
        char *line = malloc(n + 1);
        memcpy(line, data + start, n);
        line[n] = 0;
        const char *word;
        adm_cmd c = adm_parse_line(line, &word);
        if (c > ADM_UNKNOWN || word < line || word > line + n)
            abort();
        free(line);
        start = i + 1;
    }
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    adm_http h = adm_parse_http(copy, size, 8191);
    if (h > HTTP_TOO_BIG || (h == HTTP_TOO_BIG && size < 8191))
        abort();
    free(copy);
    return 0;
}
