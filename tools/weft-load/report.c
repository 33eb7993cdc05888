/*
 * tools/weft-load/report.c — the report: the threads' counters and
 * histograms summed once they have stopped, the measuring window, the verdict
 * (ok, or every reason it is not), and the output, either text for a person
 * or one JSON object on one line for a script (bench/, tests/). The JSON
 * field names and their order are an interface: scripts parse them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

static const struct load_config *const cfg = &load_cfg;

typedef struct totals {
    stats s;
    uint64_t conn_fail, mismatches, window_ns, last_recv;
    double msgs_per_s, mb_per_s, cycles_per_s;
    int ok;
    char why[256];
} totals;

static void add_why(totals *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_why(totals *r, const char *fmt, ...)
{
    size_t len = strlen(r->why);
    if (len + 3 >= sizeof(r->why))
        return;
    if (len)
        strcat(r->why, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why + strlen(r->why), sizeof(r->why) - strlen(r->why), fmt, ap);
    va_end(ap);
}

static void tally(totals *r)
{
    memset(r, 0, sizeof(*r));
    stats *s = &r->s;
    lh_init(&s->lat);
    lh_init(&s->conn_time);
    uint64_t start = UINT64_MAX, warm_end = 0, run_end = 0;
    for (unsigned i = 0; i < cfg->threads; i++) {
        const stats *x = &load_threads[i].st;
        uint64_t *dst = &s->msgs;
        const uint64_t *src = &x->msgs;
        /* Every field from msgs to unsent is a plain counter. */
        for (size_t k = 0; k < offsetof(stats, last_recv) / sizeof(uint64_t); k++)
            dst[k] += src[k];
        if (x->last_recv > r->last_recv)
            r->last_recv = x->last_recv;
        lh_merge(&s->lat, &x->lat);
        lh_merge(&s->conn_time, &x->conn_time);
        if (load_threads[i].start && load_threads[i].start < start) {
            start = load_threads[i].start;
            warm_end = load_threads[i].warm_end;
            run_end = load_threads[i].run_end;
        }
    }
    r->conn_fail = s->fail_refused + s->fail_timeout + s->fail_noaddr + s->fail_other;
    r->mismatches = s->mm_corrupt + s->mm_cross + s->mm_seq + s->mm_extra;
    /* The window ends at --duration, or with the last reply when --count
     * (or a signal) ended the run sooner. A flood has no throughput window:
     * its one message per connection is a check, not load. */
    uint64_t end = run_end < r->last_recv ? run_end : r->last_recv;
    r->window_ns =
        cfg->mode != &mode_flood && start != UINT64_MAX && end > warm_end ? end - warm_end : 0;
    if (r->window_ns) {
        double secs = (double)r->window_ns / 1e9;
        r->msgs_per_s = (double)s->msgs / secs;
        r->mb_per_s = (double)s->bytes / secs / 1e6;
        r->cycles_per_s = (double)s->cycles_win / secs;
    }

    if (r->mismatches)
        add_why(r, "%" PRIu64 " mismatched messages", r->mismatches);
    if (cfg->mode != &mode_churn && s->conn_ok < cfg->conns)
        add_why(r, "%" PRIu64 " of %" PRIu32 " connections established", s->conn_ok, cfg->conns);
    if (cfg->mode == &mode_churn && r->conn_fail)
        add_why(r, "%" PRIu64 " connect failures", r->conn_fail);
    if (s->resets + s->shorts + s->timeouts + s->peer_closed)
        add_why(r,
                "connections lost: %" PRIu64 " resets, %" PRIu64 " short, %" PRIu64
                " timeouts, %" PRIu64 " closed by peer",
                s->resets, s->shorts, s->timeouts, s->peer_closed);
    if (cfg->mode == &mode_flood && s->check_ok < cfg->conns)
        add_why(r, "%" PRIu64 " of %" PRIu32 " connections answered after the hold", s->check_ok,
                cfg->conns);
    if (atomic_load(&load_stop))
        add_why(r, "interrupted");
    r->ok = r->why[0] == '\0';
}

static void print_hist_line(const char *name, const lhist *h)
{
    if (h->count == 0) {
        printf("%-12s none\n", name);
        return;
    }
    printf("%-12s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f us  (%" PRIu64
           " samples)\n",
           name, lh_percentile(h, 50) / 1e3, lh_percentile(h, 90) / 1e3, lh_percentile(h, 99) / 1e3,
           lh_percentile(h, 99.9) / 1e3, h->max / 1e3, lh_mean(h) / 1e3, h->count);
}

static void report_text(const totals *r)
{
    const stats *s = &r->s;
    printf("weft-load %s  %s port %u  conns %" PRIu32, cfg->mode->name, cfg->host, cfg->port,
           cfg->conns);
    if (cfg->mode == &mode_echo)
        printf("  depth %" PRIu32, cfg->depth);
    if (cfg->mode == &mode_rate)
        printf("  rate %g/s", cfg->rate);
    printf("  size %" PRIu32 "  threads %" PRIu32, cfg->size, cfg->threads);
    if (cfg->mode == &mode_flood)
        printf("  hold %g s\n", cfg->hold);
    else
        printf("  window %.3f s (warmup %g s)\n", (double)r->window_ns / 1e9, cfg->warmup);
    printf("connections  %" PRIu64 " established, %" PRIu64 " failed (refused %" PRIu64
           ", timeout %" PRIu64 ", no local address %" PRIu64 ", other %" PRIu64 ")\n",
           s->conn_ok, r->conn_fail, s->fail_refused, s->fail_timeout, s->fail_noaddr,
           s->fail_other);
    print_hist_line("connect", &s->conn_time);
    if (cfg->mode == &mode_flood) {
        printf("check        %" PRIu64 " of %" PRIu32 " connections answered after the hold\n",
               s->check_ok, cfg->conns);
        print_hist_line("check lat.", &s->lat);
    } else {
        if (cfg->mode == &mode_churn)
            printf("cycles       %" PRIu64 " (%" PRIu64 " in window, %.0f/s)\n", s->cycles,
                   s->cycles_win, r->cycles_per_s);
        printf("throughput   %.0f msg/s, %.2f MB/s  (%" PRIu64 " messages in window, %" PRIu64
               " verified in all)\n",
               r->msgs_per_s, r->mb_per_s, s->msgs, s->msgs_all);
        print_hist_line("latency", &s->lat);
    }
    printf("errors       mismatches %" PRIu64 " (corrupt %" PRIu64 ", cross-connection %" PRIu64
           ", sequence %" PRIu64 ", extra %" PRIu64 "), connect failures %" PRIu64
           ", resets %" PRIu64 ", short %" PRIu64 ", timeouts %" PRIu64 ", closed by peer %" PRIu64
           "\n",
           r->mismatches, s->mm_corrupt, s->mm_cross, s->mm_seq, s->mm_extra, r->conn_fail,
           s->resets, s->shorts, s->timeouts, s->peer_closed);
    if (r->ok)
        printf("result       OK\n");
    else
        printf("result       FAIL: %s\n", r->why);
}

static void json_hist(const char *name, const lhist *h)
{
    printf("\"%s\":{\"count\":%" PRIu64 ",\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
           "\"p999\":%.3f,\"max\":%.3f}",
           name, h->count, lh_mean(h) / 1e3, lh_percentile(h, 50) / 1e3, lh_percentile(h, 90) / 1e3,
           lh_percentile(h, 99) / 1e3, lh_percentile(h, 99.9) / 1e3, h->max / 1e3);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void report_json(const totals *r)
{
    const stats *s = &r->s;
    printf("{\"mode\":\"%s\",\"host\":", cfg->mode->name);
    json_string(cfg->host);
    printf(",\"port\":%u,\"conns\":%" PRIu32 ",\"depth\":%" PRIu32 ",\"size\":%" PRIu32
           ",\"rate\":%g,\"threads\":%" PRIu32 ",\"sources\":%" PRIu32
           ",\"duration_s\":%g,\"warmup_s\":%g,\"count\":%" PRIu64 ",\"window_s\":%.6f,",
           cfg->port, cfg->conns, cfg->mode == &mode_echo ? cfg->depth : 1, cfg->size, cfg->rate,
           cfg->threads, cfg->sources, cfg->have_duration ? cfg->duration : 0, cfg->warmup,
           cfg->count, (double)r->window_ns / 1e9);
    printf("\"messages\":%" PRIu64 ",\"messages_verified\":%" PRIu64 ",\"messages_unsent\":%" PRIu64
           ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,",
           s->msgs, s->msgs_all, s->unsent, r->msgs_per_s, r->mb_per_s);
    printf("\"connections\":{\"requested\":%" PRIu32 ",\"established\":%" PRIu64
           ",\"failed\":%" PRIu64 ",\"failed_refused\":%" PRIu64 ",\"failed_timeout\":%" PRIu64
           ",\"failed_noaddr\":%" PRIu64 ",\"failed_other\":%" PRIu64 "},",
           cfg->conns, s->conn_ok, r->conn_fail, s->fail_refused, s->fail_timeout, s->fail_noaddr,
           s->fail_other);
    json_hist("connect_us", &s->conn_time);
    putchar(',');
    json_hist("latency_us", &s->lat);
    printf(",\"errors\":{\"mismatches\":%" PRIu64 ",\"mismatch_corrupt\":%" PRIu64
           ",\"mismatch_cross_connection\":%" PRIu64 ",\"mismatch_sequence\":%" PRIu64
           ",\"mismatch_extra\":%" PRIu64 ",\"connect_failures\":%" PRIu64 ",\"resets\":%" PRIu64
           ",\"short\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"peer_closed\":%" PRIu64 "}",
           r->mismatches, s->mm_corrupt, s->mm_cross, s->mm_seq, s->mm_extra, r->conn_fail,
           s->resets, s->shorts, s->timeouts, s->peer_closed);
    if (cfg->mode == &mode_flood)
        printf(",\"flood\":{\"hold_s\":%g,\"check_ok\":%" PRIu64 ",\"check_failed\":%" PRIu64 "}",
               cfg->hold, s->check_ok, cfg->conns - s->check_ok);
    if (cfg->mode == &mode_churn)
        printf(",\"churn\":{\"cycles\":%" PRIu64 ",\"cycles_in_window\":%" PRIu64
               ",\"cycles_per_s\":%.1f}",
               s->cycles, s->cycles_win, r->cycles_per_s);
    printf(",\"ok\":%s,\"failure\":", r->ok ? "true" : "false");
    json_string(r->why);
    printf("}\n");
}

int report_print(void)
{
    totals *r = load_calloc(1, sizeof(*r));
    tally(r);
    if (load_cfg.json)
        report_json(r);
    else
        report_text(r);
    int rc = r->ok ? 0 : 1;
    free(r);
    return rc;
}
