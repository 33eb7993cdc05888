/*
 * stats/status_page.h — the built-in status page: GET / on the metrics
 * listener. A live view in the manner of HAProxy's stats page: totals and
 * rates, per-worker balance, listeners, the latency histograms and the
 * closes by reason, refreshed every second from GET /stats.json (the JSON
 * snapshot, WEFT_FORMAT_JSON).
 */
#ifndef WEFT_STATS_STATUS_PAGE_H
#define WEFT_STATS_STATUS_PAGE_H

/* The page: a static NUL-terminated HTML document. Any thread. */
const char *status_page_html(void);

#endif
