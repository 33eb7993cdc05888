/*
 * workers/io.c — the registry of I/O backends (io.h).
 */
#include "workers/io.h"

#include <string.h>

extern const wk_io_ops wk_io_epoll;
extern const wk_io_ops wk_io_poll;
extern const wk_io_ops wk_io_uring;

/* The first is the default, and the fallback of one whose probe fails. */
static const wk_io_ops *const backends[] = {&wk_io_epoll, &wk_io_poll, &wk_io_uring};

const wk_io_ops *wk_io_find(const char *name)
{
    if (!name || !*name)
        return backends[0];
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

const wk_io_ops *wk_io_usable(const wk_io_ops *io, int *err)
{
    *err = io->probe ? io->probe() : 0;
    return *err == 0 ? io : backends[0];
}
