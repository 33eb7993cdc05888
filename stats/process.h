/*
 * stats/process.h — the process's own figures, the ones every Prometheus
 * client library exports as process_* (CPU, memory, fds, start time), read
 * from /proc and getrlimit when /metrics is rendered.
 */
#ifndef WEFT_STATS_PROCESS_H
#define WEFT_STATS_PROCESS_H

#include <stdint.h>

typedef struct st_process {
    double cpu_s;        /* user + system CPU seconds */
    uint64_t rss_bytes;  /* resident memory */
    uint64_t vsz_bytes;  /* virtual memory */
    uint64_t open_fds;   /* entries in /proc/self/fd */
    uint64_t max_fds;    /* the soft RLIMIT_NOFILE (0: unlimited) */
    double start_time_s; /* since the Unix epoch */
} st_process;

/* Fill *p; a figure that cannot be read is left 0 and -1 is returned. Any thread. */
int proc_read(st_process *p);

#endif
