/*
 * stats/process.c — process_* figures from /proc (see process.h).
 */
#include "stats/process.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* /proc/self/stat fields 14, 15 (utime, stime), 22 (starttime) in clock ticks. */
static int read_stat(double *cpu_s, double *start_ticks)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and ')': skip to the last ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st, start;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                     "%*d %llu",
                     &ut, &st, &start) != 3)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(ut + st) / hz;
    *start_ticks = (double)start;
    return 0;
}

/* The boot time (btime of /proc/stat), seconds since the epoch, or 0. */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long bt = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return (double)bt;
}

static uint64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the one opendir holds */
}

int proc_read(st_process *p)
{
    memset(p, 0, sizeof(*p));
    int rc = 0;
    double start = 0, bt = boot_time();
    if (read_stat(&p->cpu_s, &start) != 0 || bt == 0)
        rc = -1;
    else
        p->start_time_s = bt + start / (double)sysconf(_SC_CLK_TCK);
    unsigned long long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f && fscanf(f, "%llu %llu", &vsz, &rss) == 2) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        p->vsz_bytes = vsz * page;
        p->rss_bytes = rss * page;
    } else {
        rc = -1;
    }
    if (f)
        fclose(f);
    p->open_fds = count_fds();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        p->max_fds = (uint64_t)rl.rlim_cur;
    return rc;
}
