/*
 * tools/weft-load/mode_flood.c — open --conns connections as fast as allowed,
 * hold them idle for --hold seconds, then check that each still answers one
 * echo. There is no throughput window: the one message per connection is a
 * check, not load.
 */
#include "load.h"

static void flood_begin(thr *t, uint32_t mine, uint64_t all)
{
    t->warm_end = 0;
    t->hold_end = t->start + secs_ns(load_cfg.hold);
    t->phase = P_HOLD;
}

static void flood_step(thr *t, uint64_t now)
{
    if (now < t->hold_end)
        return;
    /* Hold is over: one echo on every connection still open. */
    for (uint32_t i = 0; i < t->nconns; i++)
        if (t->conns[i].state == C_OPEN) {
            t->conns[i].quota = 1;
            conn_queue(t, &t->conns[i]);
        }
    phase_drain(t, now);
}

static uint64_t flood_deadline(const thr *t) { return t->hold_end; }

static int flood_replied(thr *t, conn *c, int in_window)
{
    t->st.check_ok++;
    return 1;
}

const load_mode mode_flood = {
    .name = "flood",
    .begin = flood_begin,
    .step = flood_step,
    .deadline = flood_deadline,
    .replied = flood_replied,
};
