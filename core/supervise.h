/*
 * core/supervise.h — weft_main's supervisor: the process's signals, the
 * service manager's notifications and the reload (core/reload.h).
 *
 * Signal handlers only write one byte to a pipe (SIGINT/SIGTERM also call
 * weft_server_stop, async-signal-safe); a supervisor thread reads the pipe
 * and does the work: STOPPING=1 on a stop; on SIGHUP or the admin command
 * `reload`, the successor, the handoff, then this process stops accepting,
 * drains its connections (up to drain_ms) and stops; WATCHDOG=1 at half the
 * interval systemd asks for.
 */
#ifndef WEFT_CORE_SUPERVISE_H
#define WEFT_CORE_SUPERVISE_H

#include <stdint.h>

#include "weft/weft.h"

typedef struct sup_opts {
    const char *exe;   /* the binary the successor runs (this one's path) */
    char *const *argv; /* its argv: this process's */
    uint32_t drain_ms; /* how long the old process waits for its connections */
} sup_opts;

/*
 * Before weft_server_start: install the signal handlers and add the admin
 * command `reload` to s. 0 or a negative errno.
 */
int sup_prepare(weft_server *s, const sup_opts *o);

/* After weft_server_start: tell the service manager (and a predecessor)
 * that this process serves, and start the supervisor thread. 0 or -errno. */
int sup_start(weft_server *s);

/* After weft_server_wait: stop and join the supervisor thread, restore the
 * signal dispositions. 1 when the process stopped after a reload (its
 * successor serves), else 0. */
int sup_finish(void);

#endif
