/*
 * core/conffile.h — --config FILE: a program's options, one per line.
 *
 * The file holds the same names as the command line, without the dashes:
 *
 *     # comment
 *     port = 7000
 *     stats-socket = ''      # quotes for an empty value or one with '#'
 *     lines                  # a flag: its name alone
 *
 * cf_load turns it into command-line words ("--port=7000", "--lines") that
 * weft_main parses ahead of the real command line, so the command line
 * overrides the file, and remembers where each word came from, so that a
 * bad value is reported as FILE:LINE.
 */
#ifndef WEFT_CORE_CONFFILE_H
#define WEFT_CORE_CONFFILE_H

#include <stddef.h>

typedef struct cf_args {
    int argc;
    char **argv;  /* argc words, "--name=value" or "--name" (owned) */
    char **where; /* argc "FILE:LINE" strings (owned) */
} cf_args;

/*
 * Read path into *out. 0, or a negative errno with one line in err (FILE
 * and, for a line that is neither "name = value" nor "name", its number).
 * The file may be at most 1 MiB. Free with cf_free (also after a failure).
 */
int cf_load(const char *path, cf_args *out, char *err, size_t errlen);

void cf_free(cf_args *a);

#endif
