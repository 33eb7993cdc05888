/*
 * core/conffile.c — --config FILE (see conffile.h).
 */
#include "core/conffile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A config file past this is not a config file. */
#define CF_MAX_BYTES (1u << 20)

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/*
 * Cut a '#' comment off line, outside quotes. A quoted value keeps what it
 * holds: -1 when a quote is not closed.
 */
static int cut_comment(char *line)
{
    char q = 0;
    for (char *p = line; *p; p++) {
        if (q) {
            if (*p == q)
                q = 0;
        } else if (*p == '\'' || *p == '"') {
            q = *p;
        } else if (*p == '#') {
            *p = '\0';
            return 0;
        }
    }
    return q ? -1 : 0;
}

/* A name is what the command line takes after "--": letters, digits, '-'. */
static int valid_name(const char *s)
{
    if (!*s || *s == '-')
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-')
            return 0;
    return 1;
}

static int push(cf_args *a, const char *name, const char *value, const char *path, int line)
{
    char **argv = realloc(a->argv, (size_t)(a->argc + 1) * sizeof(*argv));
    if (!argv)
        return -ENOMEM;
    a->argv = argv;
    char **where = realloc(a->where, (size_t)(a->argc + 1) * sizeof(*where));
    if (!where)
        return -ENOMEM;
    a->where = where;
    size_t n = strlen(name) + (value ? strlen(value) : 0) + 4;
    char *w = malloc(n), *loc = malloc(strlen(path) + 24);
    if (!w || !loc) {
        free(w);
        free(loc);
        return -ENOMEM;
    }
    snprintf(w, n, value ? "--%s=%s" : "--%s", name, value ? value : "");
    sprintf(loc, "%s:%d", path, line);
    a->argv[a->argc] = w;
    a->where[a->argc] = loc;
    a->argc++;
    return 0;
}

/* One line (comment cut): 0, 1 when it is not an option line, or -errno. */
static int parse_line(cf_args *a, char *text, const char *path, int line)
{
    if (cut_comment(text) != 0)
        return 1;
    char *s = trim(text);
    if (!*s)
        return 0;
    char *eq = strchr(s, '=');
    char *value = NULL;
    if (eq) {
        *eq = '\0';
        value = trim(eq + 1);
        size_t n = strlen(value);
        if (n >= 2 && (value[0] == '\'' || value[0] == '"') && value[n - 1] == value[0]) {
            value[n - 1] = '\0';
            value++;
        } else if (!n || strchr(value, '\'') || strchr(value, '"')) {
            return 1; /* "name =" alone, or a quote inside a value */
        }
    }
    char *name = trim(s);
    if (!valid_name(name))
        return 1;
    return push(a, name, value, path, line);
}

int cf_load(const char *path, cf_args *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "--config %s: %s", path, strerror(e));
        return -e;
    }
    char *text = NULL;
    size_t cap = 0;
    ssize_t len;
    int line = 0, rc = 0;
    size_t total = 0;
    while (rc == 0 && (len = getline(&text, &cap, f)) >= 0) {
        line++;
        total += (size_t)len;
        if (total > CF_MAX_BYTES) {
            snprintf(err, errlen, "%s: larger than 1 MiB", path);
            rc = -EFBIG;
        } else if (memchr(text, '\0', (size_t)len)) {
            snprintf(err, errlen, "%s:%d: a NUL byte (not a text file)", path, line);
            rc = -EINVAL;
        } else if ((rc = parse_line(out, text, path, line)) == 1) {
            snprintf(err, errlen,
                     "%s:%d: expected 'name = value' or a flag's 'name' (the names of the "
                     "command-line options, without '--')",
                     path, line);
            rc = -EINVAL;
        } else if (rc < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        }
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: read error", path);
    }
    free(text);
    fclose(f);
    return rc;
}

void cf_free(cf_args *a)
{
    for (int i = 0; i < a->argc; i++) {
        free(a->argv[i]);
        free(a->where[i]);
    }
    free(a->argv);
    free(a->where);
    memset(a, 0, sizeof(*a));
}
