/*
 * tools/weft-load/mode_echo.c — closed loop: every connection keeps --depth
 * messages in flight for as long as the run lasts; a reply releases the next
 * message. The run ends at --duration, when --count messages have been
 * granted, or when no connection is left.
 */
#include "load.h"

/* Keeps `depth` messages in flight on c while the run lasts (the budget allowing). */
static void echo_grant(thr *t, conn *c)
{
    if (t->phase != P_RUN)
        return;
    uint64_t want = c->rd / load_cfg.size + load_cfg.depth;
    if (want > c->quota) {
        uint64_t add = want - c->quota;
        if (add > t->budget)
            add = t->budget;
        t->budget -= add;
        c->quota += add;
        if (add)
            conn_queue(t, c);
    }
}

static void echo_begin(thr *t, uint32_t mine, uint64_t all)
{
    for (uint32_t i = 0; i < t->nconns; i++)
        if (t->conns[i].state == C_OPEN)
            echo_grant(t, &t->conns[i]);
}

static void echo_step(thr *t, uint64_t now)
{
    if (now >= t->run_end || t->budget == 0 || t->nopen == 0)
        phase_drain(t, now);
}

static uint64_t echo_deadline(const thr *t) { return t->run_end; }

const load_mode mode_echo = {
    .name = "echo",
    .begin = echo_begin,
    .step = echo_step,
    .deadline = echo_deadline,
    .readable = echo_grant,
};
