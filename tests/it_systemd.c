/*
 * it_systemd — weft_main under a service manager, played by this test:
 *
 *   1. socket activation: the test binds a TCP and a Unix socket, passes
 *      them as fds 3 and 4 with LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
 *      (sd_listen_fds(3)), closes its own copies, and weft-echo serves on
 *      both without binding anything itself;
 *   2. sd_notify: on a Unix datagram socket of its own (NOTIFY_SOCKET) the
 *      test reads READY=1, WATCHDOG=1 (WATCHDOG_USEC set), RELOADING=1 and
 *      the successor's MAINPID=, READY=1 after SIGHUP, STOPPING=1 after
 *      SIGTERM;
 *   3. the inherited sockets survive the reload, and the Unix socket's file
 *      (systemd's, not the server's) is still there after the stop;
 *   4. an fd that is not a listening socket is refused: exit 1, one line.
 *
 * usage: it_systemd WEFT_ECHO
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itlib.h"

static char g_dir[64];

static int tcp_listener(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof(sa);
    IT_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 64) == 0 &&
                 getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
             "%s", strerror(errno));
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A Unix stream socket at path, listening (listen) or connected (!listen). */
static int unix_socket(const char *path, int listening)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    IT_CHECK(strlen(path) < sizeof(sa.sun_path), "%s: too long", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    IT_CHECK(fd >= 0, "socket: %s", strerror(errno));
    if (listening)
        IT_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 64) == 0,
                 "listen %s: %s", path, strerror(errno));
    else
        IT_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && itl_set_nonblock(fd) == 0,
                 "connect %s: %s", path, strerror(errno));
    return fd;
}

/* One message echoed on fd, then closed. */
static void echo_once(int fd, const char *what)
{
    IT_CHECK(fd >= 0, "connect (%s): %s", what, strerror(-fd));
    char msg[64], back[64];
    int n = snprintf(msg, sizeof(msg), "hello over %s\n", what);
    size_t got = 0;
    IT_CHECK(itl_write_all(fd, msg, (size_t)n, 5000) == 0, "write (%s)", what);
    IT_CHECK(itl_read_exact(fd, back, (size_t)n, 5000, &got) == 0 && !memcmp(msg, back, (size_t)n),
             "echo (%s): %zu bytes", what, got);
    close(fd);
}

/*
 * Start weft-echo as systemd would: fds[0..nfds) become 3, 4, ...; the
 * environment says who they are for. Returns the pid; its stdout and
 * stderr go to DIR/out and DIR/err.
 */
static pid_t launch(const char *echo, const int *fds, int nfds, const char *names,
                    const char *notify)
{
    pid_t pid = fork();
    IT_CHECK(pid >= 0, "fork");
    if (pid > 0) {
        itl_track(pid);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Out of the way of 3, 4 ... first, then into place (dup2 clears CLOEXEC). */
    int high[8];
    for (int i = 0; i < nfds; i++)
        high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);
    for (int i = 0; i < nfds; i++)
        dup2(high[i], 3 + i);
    char path[128], v[32];
    snprintf(path, sizeof(path), "%s/out", g_dir);
    int out = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    snprintf(path, sizeof(path), "%s/err", g_dir);
    int err = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    snprintf(v, sizeof(v), "%ld", (long)getpid());
    setenv("LISTEN_PID", v, 1);
    snprintf(v, sizeof(v), "%d", nfds);
    setenv("LISTEN_FDS", v, 1);
    setenv("LISTEN_FDNAMES", names, 1);
    setenv("NOTIFY_SOCKET", notify, 1);
    setenv("WATCHDOG_USEC", "300000", 1);
    execl(echo, echo, "--workers", "1", "--stats-socket", "", "--drain-timeout", "5000",
          (char *)NULL);
    _exit(127);
}

/* The contents of DIR/name (at most 8 KiB), NUL-ended, in a static buffer. */
static const char *slurp(const char *name)
{
    static char buf[8192];
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

int main(int argc, char **argv)
{
    IT_CHECK(argc == 2, "usage: it_systemd WEFT_ECHO");
    snprintf(g_dir, sizeof(g_dir), "/tmp/weft-it-sd.XXXXXX");
    IT_CHECK(mkdtemp(g_dir), "mkdtemp");
    /* The successor outlives its parent: it becomes our child to reap. */
    IT_CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper");
    char notify[100], upath[100], buf[512];
    int nfd = itl_notify_open(g_dir, notify, sizeof(notify));
    IT_CHECK(nfd >= 0, "notify socket: %s", strerror(-nfd));

    uint16_t port;
    snprintf(upath, sizeof(upath), "%s/local.sock", g_dir);
    int fds[2] = {tcp_listener(&port), unix_socket(upath, 1)};
    pid_t pid = launch(argv[1], fds, 2, "web:local", notify);
    close(fds[0]); /* from now on only the server holds the sockets */
    close(fds[1]);

    IT_CHECK(itl_notify_wait(nfd, "READY=1", buf, sizeof(buf), 10000) == 0, "no READY=1; err: %s",
             slurp("err"));
    const char *out = slurp("out");
    char want[160];
    snprintf(want, sizeof(want), "listening on 127.0.0.1:%u,", port);
    IT_CHECK(strstr(out, want), "banner: %s", out);
    snprintf(want, sizeof(want), "unix:%s (local)", upath);
    IT_CHECK(strstr(out, want), "no Unix listener named local: %s", out);
    IT_CHECK(!strstr(out, ":7000"), "bound the default port too: %s", out);
    echo_once(itl_connect("127.0.0.1", port, 5000, 0), "tcp");
    echo_once(unix_socket(upath, 0), "unix");
    IT_CHECK(itl_notify_wait(nfd, "WATCHDOG=1", buf, sizeof(buf), 3000) == 0, "no WATCHDOG=1");
    printf("it_systemd: socket activation (tcp, unix), READY=1, WATCHDOG=1: ok\n");

    IT_CHECK(kill(pid, SIGHUP) == 0, "SIGHUP");
    IT_CHECK(itl_notify_wait(nfd, "RELOADING=1", buf, sizeof(buf), 5000) == 0, "no RELOADING=1");
    IT_CHECK(itl_notify_wait(nfd, "MAINPID=", buf, sizeof(buf), 10000) == 0, "no MAINPID; %s",
             slurp("err"));
    long next = strtol(strstr(buf, "MAINPID=") + 8, NULL, 10);
    IT_CHECK(next > 0 && next != pid && strstr(buf, "READY=1"), "successor said: %s", buf);
    itl_track((pid_t)next);
    IT_CHECK(itl_reap(pid, 10000) == 0, "the old process did not exit cleanly; err: %s",
             slurp("err"));
    echo_once(itl_connect("127.0.0.1", port, 5000, 0), "tcp after the reload");
    echo_once(unix_socket(upath, 0), "unix after the reload");
    printf("it_systemd: SIGHUP: RELOADING=1, MAINPID=%ld READY=1, old pid %ld exited 0, "
           "both sockets still served: ok\n",
           next, (long)pid);

    IT_CHECK(kill((pid_t)next, SIGTERM) == 0, "SIGTERM");
    IT_CHECK(itl_notify_wait(nfd, "STOPPING=1", buf, sizeof(buf), 5000) == 0, "no STOPPING=1");
    IT_CHECK(itl_reap((pid_t)next, 10000) == 0, "the successor did not exit cleanly: %s",
             slurp("err"));
    struct stat st;
    IT_CHECK(lstat(upath, &st) == 0 && S_ISSOCK(st.st_mode),
             "the server removed the socket file systemd owns");
    printf("it_systemd: SIGTERM: STOPPING=1, exit 0, systemd's socket file left alone: ok\n");

    /* Not a listening socket: refused with one line, exit 1. */
    snprintf(buf, sizeof(buf), "%s/err", g_dir);
    unlink(buf);
    int bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid = launch(argv[1], &bad, 1, "x", notify);
    close(bad);
    int rc = itl_reap(pid, 10000);
    const char *err = slurp("err");
    IT_CHECK(rc == 1, "exit %d with a non-socket fd 3: %s", rc, err);
    IT_CHECK(strstr(err, "not a listening stream socket") &&
                 strchr(err, '\n') == err + strlen(err) - 1,
             "want one line: %s", err);
    printf("it_systemd: a non-socket LISTEN_FDS fd: exit 1, one line: ok\n");
    unlink(upath);
    unlink(notify);
    snprintf(buf, sizeof(buf), "%s/out", g_dir);
    unlink(buf);
    snprintf(buf, sizeof(buf), "%s/err", g_dir);
    unlink(buf);
    rmdir(g_dir);
    return 0;
}
