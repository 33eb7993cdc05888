/*
 * tests/itl_proc.c — processes for the tests: weft-echo as a child,
 * running a command to its exit, fds and memory in /proc (see itlib.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itl_int.h"
#include "itlib.h"

int itl_count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    /* Our own listing of /proc/self/fd holds the directory open. */
    if (pid == getpid())
        n--;
    return n;
}

int itl_wait_fds(pid_t pid, int want, int timeout_ms)
{
    int64_t deadline = itl_now_ms() + timeout_ms;
    int n;
    while ((n = itl_count_fds(pid)) != want && itl_now_ms() < deadline)
        itl_sleep_ms(20);
    return n;
}

long itl_vmrss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- children --------------------------------------------------------------- */

/*
 * Fork and exec argv (argv[0] a path) with stdout on out_fd and, when
 * err_fd >= 0, stderr on err_fd; nofile > 0 sets its RLIMIT_NOFILE (soft
 * and hard). The child dies with us (PR_SET_PDEATHSIG) and is tracked, so
 * a failing check kills it. Returns its PID or -errno.
 */
static pid_t spawn(const char *const *argv, int out_fd, int err_fd, long nofile)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* A child must not outlive a test that crashed or was killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out_fd, STDOUT_FILENO);
        if (err_fd >= 0)
            dup2(err_fd, STDERR_FILENO);
        struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
        if (nofile > 0 && setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    itl__track(pid, 1);
    return pid;
}

/* ---- the weft-echo child ----------------------------------------------------- */

/* Parse "... listening on ADDR:PORT, ..." (ADDR may be [v6]); 0 if absent. */
static int parse_port(const char *line, uint16_t *port)
{
    const char *p = strstr(line, "listening on ");
    if (!p)
        return 0;
    const char *end = strchr(p, ',');
    if (!end)
        return 0;
    const char *colon = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (!colon)
        return 0;
    long v = strtol(colon + 1, NULL, 10);
    if (v <= 0 || v > 65535)
        return 0;
    *port = (uint16_t)v;
    return 1;
}

int itl_server_spawn(itl_server *srv, const char *path, const itl_server_opts *o)
{
    const char *argv[64];
    int k = 0;
    argv[k++] = path;
    for (int i = 0; o->args && o->args[i] && k < 58; i++)
        argv[k++] = o->args[i];
    if (o->admin_socket) {
        argv[k++] = "--stats-socket";
        argv[k++] = o->admin_socket;
    }
    argv[k++] = "--port";
    argv[k++] = "0";
    argv[k] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = spawn(argv, p[1], -1, o->nofile);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return pid;
    }
    srv->pid = pid;
    srv->out_fd = p[0];
    srv->port = 0;
    itl_set_nonblock(p[0]);

    /* Its lines, each copied to our stderr, until the port (and o->ready). */
    char buf[4096];
    size_t len = 0;
    const char *want = o->ready ? o->ready : o->admin_socket ? "admin socket " : NULL;
    int ready = want == NULL;
    int64_t deadline = itl_now_ms() + o->timeout_ms;
    for (;;) {
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = '\0';
            fprintf(stderr, "[server %d] %s\n", (int)pid, buf);
            if (!srv->port)
                parse_port(buf, &srv->port);
            if (!ready)
                ready = strstr(buf, want) != NULL;
            memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
            len = strlen(buf);
            if (srv->port && ready)
                return 0;
        }
        int w = itl__wait_fd(p[0], POLLIN, deadline);
        ssize_t r = w > 0 ? read(p[0], buf + len, sizeof(buf) - 1 - len) : -1;
        if (r < 0 && w > 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0 || len + (size_t)r >= sizeof(buf) - 1) {
            fprintf(stderr, "itlib: %s did not print its port%s%s within %d ms\n", path,
                    want ? " and " : "", want ? want : "", o->timeout_ms);
            itl_server_stop(srv, 2000);
            return -ETIMEDOUT;
        }
        len += (size_t)r;
    }
}

int itl_server_start(itl_server *srv, const char *path, const char *const *args, int timeout_ms)
{
    itl_server_opts o = {.args = args, .timeout_ms = timeout_ms};
    return itl_server_spawn(srv, path, &o);
}

int itl_server_alive(itl_server *srv)
{
    int st;
    return srv->pid > 0 && waitpid(srv->pid, &st, WNOHANG) == 0;
}

/* Copy what the server printed since the port line to our stderr. */
static void drain_output(itl_server *srv)
{
    char buf[4096];
    ssize_t r;
    while ((r = read(srv->out_fd, buf, sizeof(buf))) > 0)
        fprintf(stderr, "%.*s", (int)r, buf);
}

int itl_server_stop(itl_server *srv, int timeout_ms)
{
    if (srv->pid <= 0)
        return -1;
    kill(srv->pid, SIGTERM);
    int64_t deadline = itl_now_ms() + timeout_ms;
    int st, rc = -1;
    for (;;) {
        drain_output(srv);
        pid_t r = waitpid(srv->pid, &st, WNOHANG);
        if (r == srv->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (r < 0 || itl_now_ms() >= deadline) {
            fprintf(stderr, "itlib: server %d did not exit within %d ms: killing it\n",
                    (int)srv->pid, timeout_ms);
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &st, 0);
            break;
        }
        itl_sleep_ms(10);
    }
    drain_output(srv);
    close(srv->out_fd);
    itl__track(srv->pid, 0);
    srv->pid = -1;
    return rc;
}

/* ---- running a command ------------------------------------------------------ */

char *itl_run(const char *const *argv, int timeout_ms, int *status, char **err_out)
{
    int out[2], err[2];
    IT_CHECK(pipe2(out, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    IT_CHECK(pipe2(err, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    pid_t pid = spawn(argv, out[1], err[1], 0);
    IT_CHECK(pid > 0, "fork %s: %s", argv[0], strerror((int)-pid));
    close(out[1]);
    close(err[1]);
    /* Read both pipes to EOF (a child blocked on a full stderr would never exit). */
    size_t cap[2] = {65536, 4096}, len[2] = {0, 0};
    char *b[2] = {malloc(cap[0]), malloc(cap[1])};
    IT_CHECK(b[0] && b[1], "out of memory");
    int fds[2] = {out[0], err[0]}, open_fds = 2;
    int64_t deadline = itl_now_ms() + timeout_ms;
    while (open_fds) {
        int left = (int)(deadline - itl_now_ms());
        IT_CHECK(left > 0, "%s did not finish in %d ms", argv[0], timeout_ms);
        struct pollfd pf[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
        if (poll(pf, 2, left) < 0 && errno != EINTR)
            IT_CHECK(0, "poll: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !pf[i].revents)
                continue;
            if (cap[i] - len[i] < 4096) {
                b[i] = realloc(b[i], cap[i] *= 2);
                IT_CHECK(b[i], "out of memory");
            }
            ssize_t r = read(fds[i], b[i] + len[i], cap[i] - len[i] - 1);
            if (r > 0) {
                len[i] += (size_t)r;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
            }
        }
    }
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        IT_CHECK(r == 0, "waitpid %d: %s", (int)pid, strerror(errno));
        IT_CHECK(itl_now_ms() < deadline, "%s did not exit in %d ms", argv[0], timeout_ms);
        itl_sleep_ms(5);
    }
    itl__track(pid, 0);
    b[0][len[0]] = '\0';
    b[1][len[1]] = '\0';
    *status = st;
    if (err_out)
        *err_out = b[1];
    else
        free(b[1]);
    return b[0];
}

int itl_track(pid_t pid)
{
    itl__track(pid, 1);
    return 0;
}

int itl_reap(pid_t pid, int timeout_ms)
{
    int64_t end = itl_now_ms() + timeout_ms;
    int st;
    while (itl_now_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            itl__track(pid, 0);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        itl_sleep_ms(20);
    }
    return -1;
}
