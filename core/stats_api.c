/*
 * core/stats_api.c — the public statistics calls (weft.h, "statistics").
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/server-t.h"
#include "core/stats_thread.h"
#include "stats/snapshot.h"

weft_snapshot *weft_server_snapshot(weft_server *s, int *err)
{
    if (!s->stats) {
        if (err)
            *err = -ENOTSUP;
        return NULL;
    }
    return stsvc_snapshot(s->stats, err);
}

void weft_snapshot_free(weft_snapshot *snap)
{
    if (snap)
        free(snap_of(snap));
}

int weft_server_add_counter(weft_server *s, const char *name, const char *help)
{
    if (s->started)
        return -EBUSY;
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 48)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_')
            return -EINVAL;
    for (int i = 0; i < s->ncounters; i++)
        if (!strcmp(s->counter_names[i], name))
            return -EINVAL;
    if (s->ncounters >= WEFT_MAX_COUNTERS)
        return -ENOSPC;
    char *nm = strdup(name), *hp = strdup(help ? help : name);
    if (!nm || !hp) {
        free(nm);
        free(hp);
        return -ENOMEM;
    }
    s->counter_names[s->ncounters] = nm;
    s->counter_help[s->ncounters] = hp;
    return s->ncounters++;
}

const char *weft_server_admin_path(const weft_server *s) { return stsvc_admin_path(s->stats); }

uint16_t weft_server_metrics_port(const weft_server *s) { return stsvc_metrics_port(s->stats); }

int weft_server_add_command(weft_server *s, const char *name, const char *help, weft_command_fn fn,
                            void *ud)
{
    static const char *const builtin[] = {"stats", "workers", "metrics", "help", "quit", "exit"};
    size_t n = name ? strlen(name) : 0;
    if (s->started)
        return -EBUSY;
    if (!fn || n == 0 || n > 31)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return -EINVAL;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (!strcmp(name, builtin[i]))
            return -EINVAL;
    for (int i = 0; i < s->ncmds; i++)
        if (!strcmp(s->cmds[i].name, name))
            return -EINVAL;
    if (s->ncmds == WEFT_MAX_COMMANDS)
        return -ENOSPC;
    char *hp = strdup(help ? help : "");
    if (!hp)
        return -ENOMEM;
    memcpy(s->cmds[s->ncmds].name, name, n + 1);
    s->cmds[s->ncmds].help = hp;
    s->cmds[s->ncmds].fn = fn;
    s->cmds[s->ncmds].ud = ud;
    s->ncmds++;
    return 0;
}
