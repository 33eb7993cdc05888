/*
 * core/server-t.h — the server: what the control plane keeps.
 *
 * Who touches what:
 *   weft_server   written by the creating thread before start; read-only
 *                 afterwards, except `stopping` (any thread, atomic), the
 *                 acceptor's counters and `handed` (the acceptor thread
 *                 only) and the log limiter (any thread, atomic).
 *   grp           the workers' shared block (workers/worker-t.h): the
 *                 data plane reads it, the acceptor sets grp.drain.
 */
#ifndef WEFT_CORE_SERVER_T_H
#define WEFT_CORE_SERVER_T_H

#include <pthread.h>
#include <stdint.h>

#include "core/log.h"
#include "stats/counters.h"
#include "weft/weft.h"
#include "workers/worker-t.h"

struct weft_server {
    weft_config cfg;
    weft_handler h;
    void *ud;
    wk_group grp;     /* the workers: grp.workers[0 .. nworkers) */
    wk_origin origin; /* the config's listener: the server's handler and data */
    int nworkers;
    int max_conns;
    int cpus[WEFT_MAX_CPUS];
    int ncpus;
    wk_worker **workers; /* == grp.workers */

    struct lsn *lsn[WEFT_MAX_LISTENERS]; /* listeners (core/listener.h) */
    int nlsn;
    uint16_t port;  /* the first TCP listener's bound port */
    int stop_efd;   /* written by weft_server_stop */
    int reserve_fd; /* spare fd released on EMFILE (see acceptor.c) */
    int stopping;   /* atomic: weft_server_stop was called */
    int reload_tls; /* atomic: weft_server_reload_tls_async was called */
    int releasing;  /* atomic: acc_release was called (the acceptor closes its listeners) */
    int released;   /* atomic: the acceptor has closed them */
    int started, joined;
    pthread_t acceptor_tid;
    st_acceptor ast;
    st_endpoints est; /* the stats thread's counters (that thread writes them) */

    /* Handler-defined counters (fixed once started). */
    int ncounters;
    char *counter_names[WEFT_MAX_COUNTERS];
    char *counter_help[WEFT_MAX_COUNTERS];
    struct st_service *stats; /* NULL when stats are off */
    /* The program's admin commands (fixed once started). */
    int ncmds;
    struct {
        char name[32];
        char *help;
        weft_command_fn fn;
        void *ud;
    } cmds[WEFT_MAX_COMMANDS];
    struct tlscache *tls_clients;  /* outbound TLS contexts (core/tls_ctx.h) */
    uint64_t *handed;              /* per worker: connections handed (acceptor only) */
    int64_t lim_last[LIM_KINDS];   /* wlog_limit: last report per kind (ms, atomic) */
    uint64_t lim_quiet[LIM_KINDS]; /* wlog_limit: hits since that report (atomic) */
};

#endif
