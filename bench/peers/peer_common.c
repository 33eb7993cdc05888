/*
 * peer_common — the frame every peer echo server shares: command line, fd
 * limit, listening socket, stop signals, accepting (see peer_common.h).
 */
#include "peer_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

volatile sig_atomic_t peer_stop;
unsigned long peer_accepted, peer_shed_count;

static const char *g_name = "peer"; /* for messages, set by peer_init */
static int g_spare_fd = -1;         /* held back for EMFILE, as libuv and weft do */

/* ---- the command line ------------------------------------------------------ */

static void usage(FILE *f, const struct peer_desc *d)
{
    fprintf(
        f,
        "usage: %s [--port N] [--bind ADDR] [--threads N] [--help]\n"
        "\n%s\n"
        "Echoes every byte back in order. %s\n"
        "Prints 'listening on ADDR:PORT' when ready; exits 0 on SIGINT or SIGTERM.\n"
        "\n"
        "  --port N       TCP port (default 7000; 0 picks a free one)\n"
        "  --bind ADDR    IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
        "  --threads N    %s%s\n"
        "  --help         this text\n",
        d->name, d->about,
        d->backpressure ? d->backpressure
                        : "Stops reading a connection whose\n"
                          "pending output passes 256 KiB until it drains.",
        d->threads_help ? "" : "ignored: ", d->threads_help ? d->threads_help : d->threads_ignored);
}

/* Parses a --port or --threads value in [min, max] into *v. Returns 0, or -1 after a message. */
static int parse_number(const char *opt, const char *arg, long min, long max, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || *v < min || *v > max) {
        fprintf(stderr, "%s: --%s '%s': not a valid number (see --help)\n", g_name, opt, arg);
        return -1;
    }
    return 0;
}

/* Parses argv into *o. Returns PEER_RUN, or the exit status: 0 after --help, 2 on a bad argument.
 */
static int parse_args(int argc, char **argv, const struct peer_desc *d, struct peer_opts *o)
{
    static const struct option longopts[] = {{"port", required_argument, 0, 'p'},
                                             {"bind", required_argument, 0, 'b'},
                                             {"threads", required_argument, 0, 't'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    o->name = d->name;
    o->bind = "127.0.0.1";
    o->port = 7000;
    o->threads = d->threads_help ? d->default_threads : 1;
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "p:b:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            if (parse_number("port", optarg, 0, 65535, &v) != 0)
                return 2;
            o->port = (unsigned)v;
            break;
        case 't':
            if (parse_number("threads", optarg, 1, 1024, &v) != 0)
                return 2;
            o->threads = (int)v;
            break;
        case 'b':
            o->bind = optarg;
            break;
        case 'h':
            usage(stdout, d);
            return 0;
        default:
            usage(stderr, d);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", g_name, argv[optind]);
        return 2;
    }
    return PEER_RUN;
}

/* A benchmark holds thousands of connections: lift the soft fd limit to the hard one. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE): %s\n", g_name, strerror(errno));
}

int peer_init(int argc, char **argv, const struct peer_desc *d, struct peer_opts *o)
{
    g_name = d->name;
    int rc = parse_args(argc, argv, d, o);
    if (rc != PEER_RUN)
        return rc;
    if (!d->threads_help && o->threads != 1) {
        fprintf(stderr, "%s: --threads ignored: %s\n", g_name, d->threads_ignored);
        o->threads = 1;
    }
    raise_nofile();
    return PEER_RUN;
}

/* ---- the listening socket -------------------------------------------------- */

int peer_open_listener(const char *addr, unsigned port, bool reuseport, unsigned *bound)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        len = sizeof(*s6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto fail;
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0)
        goto fail;
    /* The same backlog as weft's default; the kernel caps it at somaxconn. */
    if (listen(fd, 4096) != 0)
        goto fail;
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        goto fail;
    *bound = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
    return fd;
fail:;
    int err = errno;
    close(fd);
    return -err;
}

int peer_listen(const struct peer_opts *o, unsigned *bound)
{
    int fd = peer_open_listener(o->bind, o->port, false, bound);
    if (fd < 0) {
        fprintf(stderr, "%s: listen on %s:%u: %s\n", o->name, o->bind, o->port, strerror(-fd));
        return -1;
    }
    g_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd;
}

void peer_print_ready(const char *addr, unsigned port)
{
    bool v6 = strchr(addr, ':') != NULL;
    printf("listening on %s%s%s:%u\n", v6 ? "[" : "", addr, v6 ? "]" : "", port);
    fflush(stdout);
}

/* ---- stopping -------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    peer_stop = 1;
}

void peer_block_stop_signals(sigset_t *sigs, sigset_t *old)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, old);
    if (sigs)
        *sigs = block;
}

void peer_catch_stop(sigset_t *waitmask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    peer_block_stop_signals(NULL, waitmask);
    sigdelset(waitmask, SIGINT);
    sigdelset(waitmask, SIGTERM);
}

int peer_start(int argc, char **argv, const struct peer_desc *d, struct peer_server *s)
{
    int rc = peer_init(argc, argv, d, &s->opts);
    if (rc != PEER_RUN)
        return rc;
    peer_catch_stop(&s->waitmask);
    s->lfd = peer_listen(&s->opts, &s->port);
    return s->lfd < 0 ? 1 : PEER_RUN;
}

/* ---- accepting ------------------------------------------------------------- */

/* Sheds one waiting connection on the spare fd. Returns whether there was one. */
static bool shed_one(int lfd)
{
    if (g_spare_fd < 0)
        return false;
    close(g_spare_fd);
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    /* Reopened after that close, or the spare would take the freed slot. */
    g_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    peer_shed_count++;
    return true;
}

unsigned long peer_shed(int lfd)
{
    unsigned long n = 0;
    while (shed_one(lfd))
        n++;
    return n;
}

int peer_accept(int lfd, int flags)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, flags | SOCK_CLOEXEC);
        if (fd >= 0) {
            peer_accepted++;
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        /* Out of fds: shed until the backlog is empty, then try again. */
        if ((errno == EMFILE || errno == ENFILE) && shed_one(lfd))
            continue;
        return -1;
    }
}
