/*
 * tools/weft-load/mode_churn.c — connect, one request, close, over and over:
 * --conns such cycles run at once, each slot reopened as soon as its cycle
 * ends, bounded by --count cycles and/or --duration. There is no connect
 * barrier: the run starts with the program.
 */
#include "load.h"

static void churn_prepare(thr *t, uint64_t t0)
{
    const struct load_config *cfg = &load_cfg;
    phase_begin_window(t, t0);
    t->budget =
        cfg->count ? cfg->count / cfg->threads + (t->idx < cfg->count % cfg->threads) : UINT64_MAX;
    t->phase = P_RUN;
}

static void churn_step(thr *t, uint64_t now)
{
    if (now >= t->run_end) {
        phase_drain(t, now);
        return;
    }
    phase_open_more(t, now);
    if (t->budget == 0 || t->nconns == 0)
        phase_drain(t, now);
}

static uint64_t churn_deadline(const thr *t)
{
    uint64_t ramp = phase_ramp_at(t);
    return ramp < t->run_end ? ramp : t->run_end;
}

/* The cycle's one request goes out as soon as the connection is up. */
static void churn_opened(thr *t, conn *c)
{
    c->quota = 1;
    conn_queue(t, c);
}

/* The reply ends the cycle: the slot is free for the next one. */
static int churn_replied(thr *t, conn *c, int in_window)
{
    t->st.cycles++;
    t->st.cycles_win += in_window;
    conn_release(t, c);
    return 0;
}

const load_mode mode_churn = {
    .name = "churn",
    .cycles = true,
    .prepare = churn_prepare,
    .step = churn_step,
    .deadline = churn_deadline,
    .opened = churn_opened,
    .replied = churn_replied,
};
