/*
 * core/stats_thread.c — the stats thread (see stats_thread.h).
 *
 * One poll(2) set: the stop eventfd, then each endpoint's listener and
 * clients. The thread wakes for the next sample, for its clients, when a
 * listener's pause after EMFILE ends, and at least once a second to
 * enforce the clients' time limits. It is named "weft-stats" (ps -L, top
 * -H, /proc/PID/task/TID/comm). It keeps one spare fd for the endpoints to
 * release when the process is out of fds (core/endpoint.h).
 */
#include "core/stats_thread.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/admin.h"
#include "core/endpoint.h"
#include "core/inherit.h"
#include "core/metrics_http.h"
#include "core/server-t.h"
#include "stats/sampler.h"

enum { EP_ADMIN, EP_METRICS, EP_COUNT };

struct st_service {
    st_sampler *sampler;
    admin_ctx actx;
    pthread_t tid;
    int started;
    int stop_efd;
    int spare_fd; /* released on EMFILE (core/endpoint.c); -1 while taken */
    int stop;     /* atomic: stsvc_stop was called */
    int release;  /* atomic: stsvc_release was called */
    int released; /* atomic: the thread has closed its listeners */
    uint32_t interval_ms;
    endpoint ep[EP_COUNT];
    uint16_t metrics_port;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* The poll timeout (ms) until next, at most a second. */
static int poll_timeout(uint64_t next, uint64_t now)
{
    uint64_t wait = next > now ? next - now : 0;
    if (wait > 1000000000u)
        wait = 1000000000u;
    return (int)((wait + 999999u) / 1000000u);
}

/*
 * The stop eventfd is readable: 0 to stop, or 1 when it was stsvc_release
 * (then the listeners are closed and the wake-up consumed; a stop whose
 * write that read took set `stop` first, and the next call sees it).
 */
static int release_or_stop(st_service *svc)
{
    if (__atomic_load_n(&svc->stop, __ATOMIC_ACQUIRE) ||
        !__atomic_load_n(&svc->release, __ATOMIC_ACQUIRE))
        return 0;
    uint64_t v;
    ssize_t r = read(svc->stop_efd, &v, sizeof(v));
    (void)r; /* EAGAIN: nothing left to consume */
    if (__atomic_load_n(&svc->stop, __ATOMIC_ACQUIRE))
        return 0;
    for (int k = 0; k < EP_COUNT; k++)
        if (svc->ep[k].lfd >= 0) {
            close(svc->ep[k].lfd);
            svc->ep[k].lfd = -1;
        }
    __atomic_store_n(&svc->released, 1, __ATOMIC_RELEASE);
    return 1;
}

static void *svc_main(void *arg)
{
    st_service *svc = arg;
    sampler_thread_online();
    uint64_t interval = (uint64_t)svc->interval_ms * 1000000u;
    uint64_t next = weft_now_ns() + interval;
    int max = 1;
    for (int k = 0; k < EP_COUNT; k++)
        max += ep_poll_max(&svc->ep[k]);
    struct pollfd *pf = calloc((size_t)max, sizeof(*pf));
    while (pf) {
        int n = 0, at[EP_COUNT];
        uint64_t now = weft_now_ns(), wake = next;
        pf[n++] = (struct pollfd){.fd = svc->stop_efd, .events = POLLIN};
        for (int k = 0; k < EP_COUNT; k++) {
            at[k] = n;
            n += ep_poll_fill(&svc->ep[k], pf + n, now);
            uint64_t end = ep_pause_end(&svc->ep[k]);
            if (end && end < wake)
                wake = end;
        }
        int r = poll(pf, (nfds_t)n, poll_timeout(wake, now));
        if (r < 0 && errno != EINTR)
            break;
        if (pf[0].revents) {
            if (!release_or_stop(svc))
                break;
            continue; /* the listeners polled above are closed now */
        }
        if (r <= 0)
            for (int i = 0; i < n; i++)
                pf[i].revents = 0;
        now = weft_now_ns();
        if (now >= next) {
            sampler_sample(svc->sampler);
            next += interval;
            if (next <= now) /* we fell behind (a stopped process): skip ahead */
                next = now + interval;
        }
        for (int k = 0; k < EP_COUNT; k++)
            ep_serve(&svc->ep[k], pf + at[k], now);
    }
    free(pf);
    sampler_sample(svc->sampler); /* the final figures, for whoever reads after the stop */
    sampler_thread_offline();
    return NULL;
}

int stsvc_start(struct weft_server *s, st_registry *reg, st_service **out)
{
    st_service *svc = calloc(1, sizeof(*svc));
    if (!svc) {
        free(reg);
        return -ENOMEM;
    }
    svc->stop_efd = -1;
    /* At the fd limit already, there is none: the pauses still stop a spin. */
    svc->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    svc->interval_ms = s->cfg.stats_interval_ms;
    int rc = sampler_new(reg, &svc->sampler);
    if (rc != 0)
        goto fail;
    svc->actx = (admin_ctx){.sampler = svc->sampler, .srv = s};
    if ((rc = ep_init(&svc->ep[EP_ADMIN], &admin_proto, &svc->actx, s, &s->est.admin,
                      &svc->spare_fd)) != 0 ||
        (rc = ep_init(&svc->ep[EP_METRICS], &metrics_proto, svc->sampler, s, &s->est.metrics,
                      &svc->spare_fd)) != 0)
        goto fail;
    svc->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (svc->stop_efd < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = admin_listen(s, svc->path, sizeof(svc->path), &svc->ep[EP_ADMIN].lfd)) != 0 ||
        (rc = metrics_listen(s, &svc->ep[EP_METRICS].lfd, &svc->metrics_port)) != 0)
        goto fail;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&svc->tid, NULL, svc_main, svc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto fail;
    /* Named here, not in the thread: the name is set once start returns. */
    pthread_setname_np(svc->tid, "weft-stats");
    svc->started = 1;
    *out = svc;
    return 0;
fail:
    stsvc_stop(svc);
    return rc;
}

void stsvc_stop(st_service *svc)
{
    if (!svc)
        return;
    if (svc->started) {
        __atomic_store_n(&svc->stop, 1, __ATOMIC_RELEASE);
        uint64_t one = 1;
        ssize_t n = write(svc->stop_efd, &one, sizeof(one));
        (void)n;
        pthread_join(svc->tid, NULL);
    }
    for (int k = 0; k < EP_COUNT; k++) {
        endpoint *e = &svc->ep[k];
        if (!e->proto)
            continue; /* never set up */
        if (e->lfd >= 0) {
            close(e->lfd);
            if (k == EP_ADMIN && !inh_handed_over())
                unlink(svc->path);
        }
        ep_fini(e);
    }
    if (svc->stop_efd >= 0)
        close(svc->stop_efd);
    if (svc->spare_fd >= 0)
        close(svc->spare_fd);
    sampler_free(svc->sampler);
    free(svc);
}

int stsvc_listen_fds(const st_service *svc, int *fds, int max)
{
    int n = 0;
    for (int k = 0; svc && k < EP_COUNT && n < max; k++)
        if (svc->ep[k].lfd >= 0)
            fds[n++] = svc->ep[k].lfd;
    return n;
}

void stsvc_release(st_service *svc)
{
    if (!svc || !svc->started)
        return;
    __atomic_store_n(&svc->release, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    ssize_t n = write(svc->stop_efd, &one, sizeof(one));
    (void)n;
}

int stsvc_released(const st_service *svc)
{
    return !svc || !svc->started || __atomic_load_n(&svc->released, __ATOMIC_ACQUIRE);
}

weft_snapshot *stsvc_snapshot(st_service *svc, int *err) { return sampler_copy(svc->sampler, err); }

const char *stsvc_admin_path(const st_service *svc)
{
    return svc && svc->ep[EP_ADMIN].lfd >= 0 ? svc->path : NULL;
}

uint16_t stsvc_metrics_port(const st_service *svc) { return svc ? svc->metrics_port : 0; }
