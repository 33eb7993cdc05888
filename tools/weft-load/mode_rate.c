/*
 * tools/weft-load/mode_rate.c — open loop: --rate messages/s in total, each
 * thread its share in proportion to its connections, round-robin over them,
 * on a fixed schedule (thread message k is due at start + k * interval and
 * goes to rot[k % nrot]). Latency counts from the scheduled time, so a
 * stalled server is charged for every message it delays (no coordinated
 * omission), and a message whose connection was lost is counted as unsent.
 */
#include "load.h"

/* Scheduled send time of the thread's k-th message. */
static uint64_t sched_at(const thr *t, uint64_t k)
{
    return t->start + (uint64_t)((double)k * t->interval);
}

static uint64_t rate_sent_at(const thr *t, const conn *c, uint64_t seq)
{
    return sched_at(t, seq * t->nrot + c->rot);
}

static void rate_begin(thr *t, uint32_t mine, uint64_t all)
{
    for (uint32_t i = 0; i < t->nconns; i++)
        if (t->conns[i].state == C_OPEN) {
            t->conns[i].rot = t->nrot;
            t->rot[t->nrot++] = i;
        }
    double my_rate = all ? load_cfg.rate * mine / all : 0;
    t->interval = my_rate > 0 ? 1e9 / my_rate : 0;
    t->k_limit = t->nrot ? t->budget : 0;
}

/* Hands out every message scheduled at or before `now`. */
static void rate_schedule(thr *t, uint64_t now)
{
    while (t->k_next < t->k_limit && sched_at(t, t->k_next) <= now) {
        conn *c = &t->conns[t->rot[t->k_next % t->nrot]];
        if (c->state == C_OPEN) {
            c->quota++;
            conn_queue(t, c);
        } else {
            t->st.unsent++; /* its connection was lost (already counted) */
        }
        t->k_next++;
    }
}

static void rate_step(thr *t, uint64_t now)
{
    if (now >= t->run_end) {
        rate_schedule(t, t->run_end - 1); /* what was due before the end still goes out */
        phase_drain(t, now);
        return;
    }
    rate_schedule(t, now);
    if (t->k_next >= t->k_limit)
        phase_drain(t, now);
}

static uint64_t rate_deadline(const thr *t)
{
    uint64_t at = t->run_end;
    if (t->k_next < t->k_limit) {
        uint64_t next = sched_at(t, t->k_next);
        if (next < at)
            at = next;
    }
    return at;
}

const load_mode mode_rate = {
    .name = "rate",
    .begin = rate_begin,
    .step = rate_step,
    .deadline = rate_deadline,
    .sent_at = rate_sent_at,
};
