/*
 * examples/lb/health.c — active health checks, all on worker 0: every
 * --health-interval each backend that is not disabled or removed gets one
 * check (none while the last is still out): in http mode "GET PATH" with
 * a 2xx or 3xx status line for success, in tcp mode a connect. A check
 * that fails (refused, timed out after --health-timeout, another status,
 * a close before the status line) counts toward --fall, a success toward
 * --rise; fall failures in a row mark an up backend down, rise successes
 * in a row bring a down one back. A worker that marks a backend down
 * passively (lb_backend_failed) sets `passive`, which restarts the count
 * of successes here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"

typedef struct lb_check {
    int be;
    int done; /* the result is recorded */
} lb_check;

static void record(int i, int ok)
{
    lb_backend *b = &lb_backends[i];
    int up = lb_load(&b->up);
    if (__atomic_exchange_n(&b->passive, 0, __ATOMIC_RELAXED))
        b->ok_run = 0;
    lb_add_stat(&b->checks, 1); /* read by the admin's `backends` */
    if (ok) {
        b->ok_run++;
        b->fail_run = 0;
    } else {
        lb_add_stat(&b->check_failures, 1);
        b->fail_run++;
        b->ok_run = 0;
    }
    if (!up && ok && b->ok_run >= lb_cfg.rise) {
        lb_store(&b->up, 1);
        lb_add_stat(&b->transitions, 1);
        fprintf(stderr, "weft-lb: backend %s up (%d checks passed)\n", b->name, b->ok_run);
    } else if (up && !ok && b->fail_run >= lb_cfg.fall) {
        lb_store(&b->up, 0);
        lb_add_stat(&b->transitions, 1);
        fprintf(stderr, "weft-lb: backend %s down (%d checks failed)\n", b->name, b->fail_run);
    }
}

static void check_timeout(weft_timer *t, void *arg)
{
    (void)arg;
    weft_abort(weft_timer_conn(t)); /* on_close records the failure */
}

static void check_open(weft_conn *c)
{
    lb_check *k = weft_conn_userdata(c);
    if (lb_cfg.mode == LB_MODE_TCP) {
        record(k->be, 1);
        k->done = 1;
        weft_close(c);
        return;
    }
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weft-lb-check\r\n"
                     "Connection: close\r\n\r\n",
                     lb_cfg.health_path, lb_backends[k->be].addr);
    if (n > 0 && (size_t)n < sizeof(req))
        weft_send(c, req, (size_t)n);
}

/* The status line "HTTP/1.x NNN": 2xx and 3xx pass. */
static void check_data(weft_conn *c, weft_ring *in)
{
    lb_check *k = weft_conn_userdata(c);
    if (k->done) {
        weft_ring_consume(in, weft_ring_len(in));
        return;
    }
    if (weft_ring_len(in) < 12 && weft_ring_find(in, 0, '\n') < 0)
        return;
    char line[13] = {0};
    weft_ring_copyout(in, 0, line, 12);
    int ok =
        strncmp(line, "HTTP/1.", 7) == 0 && line[8] == ' ' && (line[9] == '2' || line[9] == '3');
    record(k->be, ok);
    k->done = 1;
    weft_ring_consume(in, weft_ring_len(in));
    weft_close(c);
}

static void check_close(weft_conn *c, weft_close_reason r)
{
    (void)r;
    lb_check *k = weft_conn_userdata(c);
    if (!k)
        k = weft_conn_origin_userdata(c);
    if (!k->done)
        record(k->be, 0);
    lb_backends[k->be].check = NULL;
    free(k);
}

static const weft_handler check_h = {
    .on_open = check_open,
    .on_data = check_data,
    .on_close = check_close,
};

static void check_round(weft_timer *t, void *arg)
{
    (void)t;
    weft_server *s = arg;
    int n = __atomic_load_n(&lb_nbackends, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        lb_backend *b = &lb_backends[i];
        int st = lb_load(&b->state);
        if (b->check || (st != LB_BE_ENABLED && st != LB_BE_DRAINING))
            continue;
        lb_check *k = calloc(1, sizeof(*k));
        if (!k)
            return;
        k->be = i;
        weft_connect_opts o = lb_backend_connect_opts(b, lb_cfg.health_timeout);
        weft_conn *c;
        if (weft_connect(s, 0, b->addr, &o, &check_h, k, &c) != 0) {
            free(k);
            record(i, 0);
            continue;
        }
        weft_conn_set_userdata(c, k);
        b->check = c;
        weft_conn_timer(c, lb_cfg.health_timeout, 0, check_timeout, NULL);
    }
}

void lb_health_start(weft_server *s, int worker, void *arg)
{
    (void)arg;
    if (!weft_worker_timer(s, worker, lb_cfg.health_interval, lb_cfg.health_interval, check_round,
                           s))
        fprintf(stderr, "weft-lb: cannot start the health checks (out of memory)\n");
}
