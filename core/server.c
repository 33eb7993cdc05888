/*
 * core/server.c — creating, starting, stopping and freeing a server.
 *
 * Threads: the creating thread runs weft_server_new/start/wait/free; start
 * launches N workers and the acceptor; stop (any thread, or a signal
 * handler) only stores a flag and writes an eventfd that the acceptor polls.
 * The acceptor then closes the listener and tells the workers to drain; wait
 * joins the acceptor, then the workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/acceptor.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/server-t.h"
#include "core/stats_thread.h"
#include "core/tls_ctx.h"
#include "stats/snapshot.h"
#include "workers/cpu.h"
#include "workers/io.h"
#include "workers/resolve.h"
#include "workers/worker.h"

/*
 * fds the server needs besides connections when max_conns is derived from
 * RLIMIT_NOFILE: listener, stop eventfd, spare fd, two per worker, plus
 * room for the embedding program's own files.
 */
#define SRV_FD_RESERVE 64

static int resolve_cpus(struct weft_server *s)
{
    const weft_config *c = &s->cfg;
    if (c->ncpus > 0) {
        memcpy(s->cpus, c->cpus, (size_t)c->ncpus * sizeof(int));
        s->ncpus = c->ncpus;
    } else {
        int n = cpu_affinity_list(s->cpus, WEFT_MAX_CPUS);
        if (n < 0)
            return n;
        s->ncpus = n;
    }
    s->nworkers = c->workers > 0 ? c->workers : s->ncpus;
    return 0;
}

/*
 * The backend: config.io, else the WEFT_IO environment variable (so a whole
 * test suite, or any program, can run on another backend unchanged, as
 * libevent's EVENT_NOEPOLL does), else epoll.
 */
static int resolve_io(struct weft_server *s)
{
    const char *name = s->cfg.io;
    if (!name || !*name)
        name = getenv("WEFT_IO");
    s->grp.io = wk_io_find(name);
    if (!s->grp.io)
        return -EINVAL; /* weft_config_validate says why */
    /* A kernel that refuses io_uring: epoll instead, never a failed start. */
    int err;
    const wk_io_ops *io = wk_io_usable(s->grp.io, &err);
    if (io != s->grp.io) {
        wlog(s, WEFT_LOG_WARN, "I/O backend %s unavailable (%s): falling back to %s",
             s->grp.io->name, weft_strerror(err), io->name);
        s->grp.io = io;
    }
    s->cfg.io = s->grp.io->name;
    return 0;
}

static int resolve_max_conns(struct weft_server *s)
{
    if (s->cfg.max_conns > 0) {
        s->max_conns = s->cfg.max_conns;
        return 0;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    long room = (long)rl.rlim_cur - SRV_FD_RESERVE - 2L * s->nworkers;
    if (rl.rlim_cur == RLIM_INFINITY || room > (1L << 30))
        room = 1L << 30;
    if (room < 1)
        return -EMFILE;
    s->max_conns = (int)room;
    return 0;
}

static int add_listener(struct weft_server *s, const weft_listener_opts *o)
{
    if (s->nlsn == WEFT_MAX_LISTENERS)
        return -ENOSPC;
    int err;
    const char *why;
    lsn *l = lsn_new(o, s->nlsn, &s->h, s->ud, s->cfg.backlog, &err, &why);
    if (!l)
        return err;
    if (!s->port && l->family != AF_UNIX)
        s->port = l->port;
    s->lsn[s->nlsn] = l;
    return s->nlsn++;
}

/* Listener 0 from bind/port (when bind_addr is set), then config.listen[]. */
static int open_listeners(struct weft_server *s)
{
    const weft_config *c = &s->cfg;
    if (c->bind_addr && *c->bind_addr) {
        char spec[160];
        snprintf(spec, sizeof(spec), strchr(c->bind_addr, ':') ? "[%s]:%u" : "%s:%u", c->bind_addr,
                 c->port);
        weft_listener_opts o = {.addr = spec};
        if (c->tls_cert) {
            o.ntls = 1;
            o.tls_cert[0] = c->tls_cert;
            o.tls_key[0] = c->tls_key;
            o.alpn = c->tls_alpn;
        }
        int rc = add_listener(s, &o);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < c->nlisten; i++) {
        weft_listener_opts o;
        int rc = weft_listener_parse(c->listen[i], &o, NULL);
        if (rc == 0)
            rc = add_listener(s, &o);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int weft_server_listen(weft_server *s, const weft_listener_opts *opts)
{
    if (s->started)
        return -EBUSY;
    return add_listener(s, opts);
}

int weft_server_listeners(const weft_server *s) { return s->nlsn; }

int weft_server_listener_limit(weft_server *s, int i, uint32_t rate, uint32_t burst)
{
    if (i < 0 || i >= s->nlsn)
        return -EINVAL;
    lsn_set_limit(s->lsn[i], rate, burst);
    return 0;
}

uint16_t weft_server_listener_port(const weft_server *s, int i)
{
    return i >= 0 && i < s->nlsn ? s->lsn[i]->port : 0;
}

const char *weft_server_listener_addr(const weft_server *s, int i)
{
    return i >= 0 && i < s->nlsn ? s->lsn[i]->addr : NULL;
}

bool weft_server_listener_tls(const weft_server *s, int i)
{
    return i >= 0 && i < s->nlsn && s->lsn[i]->tls_ctx;
}

const char *weft_server_listener_name(const weft_server *s, int i)
{
    return i >= 0 && i < s->nlsn ? s->lsn[i]->name : NULL;
}

int weft_server_new(const weft_config *cfg, const weft_handler *h, void *ud, weft_server **out)
{
    const char *why;
    int rc = weft_config_validate(cfg, &why);
    if (rc != 0)
        return rc;
    if (!h || !h->on_data || !out)
        return -EINVAL;
    struct weft_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    s->h = *h;
    s->ud = ud;
    s->stop_efd = s->reserve_fd = -1;
    s->grp = (wk_group){.cfg = &s->cfg, .h = &s->h, .srv = s, .log = wlog_sink, .log_ctx = s};
    pthread_mutex_init(&s->grp.resolver_mu, NULL);
    if ((rc = resolve_io(s)) != 0)
        goto fail;

    if ((rc = resolve_cpus(s)) != 0 || (rc = resolve_max_conns(s)) != 0)
        goto fail;
    s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers));
    s->grp.workers = s->workers;
    s->grp.nworkers = s->nworkers;
    s->grp.cpus = s->cpus;
    s->grp.ncpus = s->ncpus;
    s->handed = calloc((size_t)s->nworkers, sizeof(*s->handed));
    if (!s->workers || !s->handed) {
        rc = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < s->nworkers; i++) {
        int cpu = s->cpus[i % s->ncpus]; /* its home CPU: placed by cfg->pin */
        if ((rc = wk_create(&s->grp, i, cpu, &s->workers[i])) != 0) {
            wlog(s, WEFT_LOG_ERROR, "worker %d: %s backend: %s", i, s->grp.io->name,
                 weft_strerror(rc));
            goto fail;
        }
    }
    s->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->stop_efd < 0) {
        rc = -errno;
        goto fail;
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* The caller reports a failure here (it has the context): no log line. */
    if ((rc = open_listeners(s)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    weft_server_free(s);
    return rc;
}

/* Publish the stat blocks and start the stats thread (core/stats_thread.c). */
static int start_stats(struct weft_server *s)
{
    size_t n = (size_t)s->nworkers;
    st_registry *reg = calloc(1, sizeof(*reg) + n * (sizeof(st_worker *) + 2 * sizeof(int)));
    if (!reg)
        return -ENOMEM;
    const st_worker **blocks = (const st_worker **)(reg + 1);
    int *cpu = (int *)(blocks + n), *node = cpu + n;
    for (size_t i = 0; i < n; i++) {
        blocks[i] = &s->workers[i]->st;
        cpu[i] = s->workers[i]->cpu;
        node[i] = s->workers[i]->node;
    }
    reg->nworkers = s->nworkers;
    reg->blocks = blocks;
    reg->cpu = cpu;
    reg->node = node;
    reg->acc = &s->ast;
    reg->ep = &s->est;
    reg->ncounters = s->ncounters;
    reg->names = (const char *const *)s->counter_names;
    reg->help = (const char *const *)s->counter_help;
    reg->io = s->grp.io->name;
    reg->nlisteners = s->nlsn;
    for (int i = 0; i < s->nlsn; i++) {
        reg->lst[i] = &s->lsn[i]->st;
        reg->lname[i] = s->lsn[i]->name;
        reg->laddr[i] = s->lsn[i]->addr;
        reg->llimit[i] = &s->lsn[i]->limit;
        reg->ltls[i] = s->lsn[i]->tls_ctx != NULL;
        if (reg->ltls[i])
            reg->ktls = tlsctx_ktls_status();
    }
    return stsvc_start(s, reg, &s->stats);
}

int weft_server_start(weft_server *s)
{
    if (s->started)
        return -EALREADY;
    s->started = 1;
    int rc = 0, i;
    for (i = 0; i < s->nworkers; i++)
        if ((rc = wk_start(s->workers[i])) != 0)
            goto fail_workers;
    /* Wait until every worker is placed and has its arena (or failed). */
    for (int k = 0; k < s->nworkers; k++) {
        int e = wk_wait_started(s->workers[k]);
        if (e && rc == 0)
            rc = e;
    }
    if (rc != 0)
        goto fail_workers;
    /*
     * Stats before the acceptor: s->stats is then written before any
     * connection reaches a handler (the acceptor's creation and its inbox
     * pushes order it), so handlers may call weft_server_snapshot.
     */
    if (s->cfg.stats_interval_ms > 0 && (rc = start_stats(s)) != 0)
        goto fail_workers;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&s->acceptor_tid, NULL, acc_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        stsvc_stop(s->stats);
        s->stats = NULL;
        goto fail_workers;
    }
    for (int k = 0; k < s->nworkers; k++)
        wlog(s, WEFT_LOG_DEBUG, "worker %d: cpu %d, node %d", k, s->workers[k]->cpu,
             s->workers[k]->node);
    return 0;
fail_workers:
    /* Started workers wait for the drain signal: give it, then join them. */
    __atomic_store_n(&s->grp.drain, 1, __ATOMIC_RELEASE);
    for (int k = 0; k < i; k++) {
        wk_wake(s->workers[k]);
        wk_join(s->workers[k]);
    }
    s->joined = 1;
    return rc;
}

int weft_server_wait(weft_server *s)
{
    if (!s->started)
        return -EINVAL;
    if (s->joined)
        return 0;
    pthread_join(s->acceptor_tid, NULL);
    int rc = 0;
    for (int i = 0; i < s->nworkers; i++) {
        int e = wk_join(s->workers[i]);
        if (e && !rc)
            rc = e;
    }
    s->joined = 1;
    /* After the workers: the final sample shows every close. */
    stsvc_stop(s->stats);
    s->stats = NULL;
    return rc;
}

int weft_server_run(weft_server *s)
{
    int rc = weft_server_start(s);
    if (rc != 0)
        return rc;
    return weft_server_wait(s);
}

static void wake_acceptor(weft_server *s)
{
    uint64_t one = 1;
    ssize_t n = write(s->stop_efd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is saturated, the acceptor wakes anyway */
}

void weft_server_stop(weft_server *s)
{
    /* Async-signal-safe: an atomic store and a write(2). */
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    wake_acceptor(s);
}

int srv_tls_reload_all(weft_server *s)
{
    int err = 0;
    for (int i = 0; i < s->nlsn; i++) {
        const char *why = NULL;
        int rc = lsn_tls_reload(s->lsn[i], &why);
        if (rc != 0) {
            wlog(s, WEFT_LOG_ERROR, "listener %s: TLS reload failed, keeping the old files: %s",
                 s->lsn[i]->name, why ? why : weft_strerror(rc));
            if (!err)
                err = rc;
        }
    }
    return err;
}

int weft_server_reload_tls(weft_server *s)
{
    int rc = srv_tls_reload_all(s);
    wake_acceptor(s); /* it swaps in what loaded */
    return rc;
}

void weft_server_reload_tls_async(weft_server *s)
{
    /* Async-signal-safe: an atomic store and a write(2). */
    __atomic_store_n(&s->reload_tls, 1, __ATOMIC_RELEASE);
    wake_acceptor(s);
}

void weft_server_free(weft_server *s)
{
    if (!s)
        return;
    wk_resolver_stop(&s->grp);
    pthread_mutex_destroy(&s->grp.resolver_mu);
    if (s->workers)
        for (int i = 0; i < s->nworkers; i++)
            wk_destroy(s->workers[i]);
    free(s->workers);
    free(s->handed);
    for (int i = 0; i < s->ncounters; i++) {
        free(s->counter_names[i]);
        free(s->counter_help[i]);
    }
    for (int i = 0; i < s->ncmds; i++)
        free(s->cmds[i].help);
    for (int i = 0; i < s->nlsn; i++)
        lsn_free(s->lsn[i]);
    tlscache_free(&s->tls_clients);
    if (s->stop_efd >= 0)
        close(s->stop_efd);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    free(s);
}

uint16_t weft_server_port(const weft_server *s) { return s->port; }
const char *weft_server_io(const weft_server *s) { return s->grp.io->name; }
int weft_server_workers(const weft_server *s) { return s->nworkers; }
void *weft_server_userdata(const weft_server *s) { return s->ud; }
int weft_server_max_conns(const weft_server *s) { return s->max_conns; }

int weft_server_worker_cpu(const weft_server *s, int i, int *cpu, int *node)
{
    if (i < 0 || i >= s->nworkers)
        return -EINVAL;
    *cpu = s->workers[i]->cpu;
    *node = s->workers[i]->node;
    return 0;
}

void weft_server_stats(const weft_server *s, weft_stats *st)
{
    memset(st, 0, sizeof(*st));
    snap_server_wide(st, &s->ast, &s->est);
    for (int i = 0; i < s->nworkers; i++)
        snap_sum_worker(st, &s->workers[i]->st);
    st->rings_in_use = st->rings_borrowed - st->rings_returned;
    uint64_t ever = st->accepted + st->outbound;
    st->open = ever > st->closed ? ever - st->closed : 0;
}
