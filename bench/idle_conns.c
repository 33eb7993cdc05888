/*
 * bench/idle_conns.c — open N connections to an echo server, prove each
 * answers (one byte echoed), then hold them idle until SIGTERM/SIGINT or
 * --hold seconds pass. Prints "ready N" on stdout once all are verified.
 *
 * usage: idle_conns HOST PORT N [HOLD_SECONDS] [SOURCES]
 * With SOURCES > 1, binds sockets round-robin to 127.0.0.1..127.0.0.SOURCES.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_sig(int s)
{
    (void)s;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: idle_conns HOST PORT N [HOLD_SECONDS] [SOURCES]\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), n = atoi(argv[3]);
    int hold = argc > 4 ? atoi(argv[4]) : 60;
    int sources = argc > 5 ? atoi(argv[5]) : 1;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)n + 16 > rl.rlim_cur) {
        fprintf(stderr, "idle_conns: %d connections need more than the fd limit %llu\n", n,
                (unsigned long long)rl.rlim_cur);
        return 2;
    }
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    int *fds = calloc((size_t)n, sizeof(int));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "idle_conns: bad IPv4 address %s\n", host);
        return 2;
    }
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0) {
            perror("socket");
            return 1;
        }
        if (sources > 1) {
            struct sockaddr_in src = {.sin_family = AF_INET};
            src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % sources));
            if (bind(fds[i], (struct sockaddr *)&src, sizeof(src)) != 0) {
                perror("bind");
                return 1;
            }
        }
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            fprintf(stderr, "idle_conns: connect %d: %s\n", i, strerror(errno));
            return 1;
        }
        char b = (char)i;
        if (write(fds[i], &b, 1) != 1) {
            perror("write");
            return 1;
        }
        /* Verify in batches so the backlog never overflows. */
        if (i % 256 == 255 || i == n - 1) {
            for (int k = i - (i % 256); k <= i; k++) {
                char r;
                struct pollfd p = {.fd = fds[k], .events = POLLIN};
                if (poll(&p, 1, 10000) != 1 || read(fds[k], &r, 1) != 1 || r != (char)k) {
                    fprintf(stderr, "idle_conns: connection %d did not echo\n", k);
                    return 1;
                }
            }
        }
    }
    printf("ready %d\n", n);
    fflush(stdout);
    time_t end = time(NULL) + hold;
    while (!stop && time(NULL) < end)
        usleep(100000);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}
