/*
 * tests/itlib.c — failing a test, clocks, the children it started and its
 * private directory (see itlib.h).
 */
#include "itlib.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itl_int.h"

/* Children started by this process (servers, commands), killed when a check fails. */
#define ITL_MAX_CHILDREN 16
static pid_t g_children[ITL_MAX_CHILDREN];
static char g_tmpdir[64];

void itl__track(pid_t pid, int on)
{
    for (int i = 0; i < ITL_MAX_CHILDREN; i++)
        if (on ? g_children[i] == 0 : g_children[i] == pid) {
            g_children[i] = on ? pid : 0;
            return;
        }
}

void itl_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    for (int i = 0; i < ITL_MAX_CHILDREN; i++)
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    itl_tmpdir_cleanup();
    exit(1);
}

int64_t itl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void itl_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long itl_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return rl.rlim_cur == RLIM_INFINITY ? (1L << 30) : (long)rl.rlim_cur;
}

const char *itl_tmpdir(void)
{
    if (!g_tmpdir[0]) {
        snprintf(g_tmpdir, sizeof(g_tmpdir), "/tmp/weft-it-XXXXXX");
        if (!mkdtemp(g_tmpdir)) {
            int e = errno;
            g_tmpdir[0] = '\0';
            IT_CHECK(0, "mkdtemp: %s", strerror(e));
        }
    }
    return g_tmpdir;
}

void itl_tmpdir_cleanup(void)
{
    if (!g_tmpdir[0])
        return;
    /* The directory is ours (mkdtemp): what is in it is what the test made
     * there, sockets and logs, never a folder. */
    DIR *d = opendir(g_tmpdir);
    if (d) {
        struct dirent *e;
        char p[sizeof(g_tmpdir) + 256];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(p, sizeof(p), "%s/%s", g_tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_tmpdir);
    g_tmpdir[0] = '\0';
}
