/*
 * core/reload.c — handing the listening sockets to a successor (see
 * reload.h).
 */
#include "core/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/inherit.h"

#define HANDOFF_ENV "WEFT_HANDOFF_FD"

extern char **environ;

/* The successor's end of the handoff socket, until rld_ready. */
static int g_handoff_fd = -1;

/* environ without HANDOFF_ENV, plus HANDOFF_ENV=fd: a NULL-ended copy. */
static char **child_env(int fd)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    static char var[32];
    if (!env)
        return NULL;
    size_t k = 0, klen = strlen(HANDOFF_ENV);
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], HANDOFF_ENV, klen) != 0 || environ[i][klen] != '=')
            env[k++] = environ[i];
    snprintf(var, sizeof(var), "%s=%d", HANDOFF_ENV, fd);
    env[k] = var;
    return env;
}

/*
 * One datagram: "weft-handoff 1 N TAGS", TAGS one letter per fd (s: from
 * systemd, h: the predecessor's own), and the fds as SCM_RIGHTS. 0 or a
 * negative errno.
 */
static int send_fds(int sock, const int *fds, const char *sys, int nfds)
{
    char text[32 + INH_MAX];
    int len = snprintf(text, sizeof(text), "weft-handoff 1 %d ", nfds);
    for (int i = 0; i < nfds; i++)
        text[len++] = sys[i] ? 's' : 'h';
    text[len] = '\0';
    struct iovec iov = {.iov_base = text, .iov_len = (size_t)len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * INH_MAX)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t w;
    do
        w = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w < 0 ? -errno : 0;
}

int rld_start(const char *exe, char *const argv[], const int *fds, const char *sys, int nfds,
              rld_child *c, char *err, size_t errlen)
{
    c->pid = -1;
    c->fd = -1;
    if (nfds > INH_MAX) {
        snprintf(err, errlen, "more than %d sockets to hand over", INH_MAX);
        return -E2BIG;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        int e = errno;
        snprintf(err, errlen, "socketpair: %s", strerror(e));
        return -e;
    }
    char **env = child_env(sv[1]);
    if (!env) {
        close(sv[0]);
        close(sv[1]);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* The child of a threaded process: async-signal-safe calls only. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (fcntl(sv[1], F_SETFD, 0) == 0)
            execve(exe, argv, env);
        _exit(127);
    }
    int e = errno;
    free(env);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        snprintf(err, errlen, "fork: %s", strerror(e));
        return -e;
    }
    c->pid = pid;
    c->fd = sv[0];
    int rc = send_fds(sv[0], fds, sys, nfds);
    if (rc != 0) {
        snprintf(err, errlen, "sending the sockets: %s", strerror(-rc));
        rld_wait_ready(c, 0, err + strlen(err), errlen - strlen(err));
    }
    return rc;
}

/* Kill (when still running) and reap the successor; describe its end. */
static void reap(rld_child *c, int kill_it, char *err, size_t errlen)
{
    if (kill_it)
        kill(c->pid, SIGKILL);
    int st = 0;
    pid_t r;
    do
        r = waitpid(c->pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (r == c->pid && WIFEXITED(st))
        snprintf(err, errlen, "; it exited with status %d%s", WEXITSTATUS(st),
                 WEXITSTATUS(st) == 127 ? " (could not run the binary)" : "");
    else if (r == c->pid && WIFSIGNALED(st))
        snprintf(err, errlen, "; it was killed by signal %d", WTERMSIG(st));
    c->pid = -1;
}

int rld_wait_ready(rld_child *c, int timeout_ms, char *err, size_t errlen)
{
    char buf[64];
    ssize_t n = -1;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    int r;
    do
        r = poll(&pf, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        n = recv(c->fd, buf, sizeof(buf) - 1, 0);
    if (n > 6 && strncmp(buf, "ready ", 6) == 0)
        return 0; /* the socket stays open for rld_released */
    close(c->fd);
    c->fd = -1;
    size_t k = (size_t)snprintf(err, errlen, "%s",
                                r == 0 ? "the successor was not ready in time"
                                       : "the successor stopped before it was ready");
    if (k < errlen)
        reap(c, r == 0, err + k, errlen - k);
    return -1;
}

void rld_released(rld_child *c)
{
    ssize_t w = send(c->fd, "released", 8, MSG_NOSIGNAL);
    (void)w; /* a successor that is gone has nothing left to wait for */
    close(c->fd);
    c->fd = -1;
}

int rld_is_successor(void) { return g_handoff_fd >= 0; }

int rld_receive(char *err, size_t errlen)
{
    const char *v = getenv(HANDOFF_ENV);
    if (!v)
        return 0;
    char *end;
    long fd = strtol(v, &end, 10);
    unsetenv(HANDOFF_ENV);
    if (end == v || *end || fd < 3 || fd > 1 << 20 || fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, errlen, "%s is not an open fd", HANDOFF_ENV);
        return -EINVAL;
    }
    char text[32 + INH_MAX + 1];
    struct iovec iov = {.iov_base = text, .iov_len = sizeof(text) - 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * INH_MAX)];
        struct cmsghdr align;
    } u;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    /* The predecessor sends right after fork: a short wait covers a slow exec. */
    struct pollfd pf = {.fd = (int)fd, .events = POLLIN};
    ssize_t n = poll(&pf, 1, 10000) == 1 ? recvmsg((int)fd, &m, MSG_CMSG_CLOEXEC) : -1;
    int rc = 0, count = 0, nt = 0, idx = 0;
    const char *tags = "";
    if (n > 0) {
        text[n] = '\0';
        if (sscanf(text, "weft-handoff 1 %d %n", &nt, &count) == 1 && count > 0)
            tags = text + count;
        count = 0;
    }
    if (n <= 0 || (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || strlen(tags) != (size_t)nt) {
        snprintf(err, errlen, "no sockets from the predecessor (or a message not understood)");
        rc = -EPROTO;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); n > 0 && cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int nf = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < nf; i++) {
            int got;
            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            int origin = idx < nt && tags[idx] == 's' ? INH_SYSTEMD : INH_HANDOFF;
            idx++;
            if (rc == 0 && inh_add(got, origin, NULL) == 0)
                count++;
            else if (rc != 0)
                close(got);
        }
    }
    if (rc != 0) {
        close((int)fd);
        return rc;
    }
    g_handoff_fd = (int)fd;
    return count;
}

void rld_ready(void)
{
    if (g_handoff_fd < 0)
        return;
    char msg[32];
    int n = snprintf(msg, sizeof(msg), "ready %ld", (long)getpid());
    ssize_t w = send(g_handoff_fd, msg, (size_t)n, MSG_NOSIGNAL);
    /*
     * Until the predecessor says it closed its listeners, it may still take
     * a connection on them (an admin query would reach the old process):
     * wait for that, a bounded time; EOF (it is gone) ends the wait too.
     */
    struct pollfd pf = {.fd = g_handoff_fd, .events = POLLIN};
    if (w == n && poll(&pf, 1, RLD_RELEASE_TIMEOUT_MS) == 1) {
        char ack[16];
        w = recv(g_handoff_fd, ack, sizeof(ack), 0);
        (void)w; /* "released" or EOF: either way the wait is over */
    }
    close(g_handoff_fd);
    g_handoff_fd = -1;
}
