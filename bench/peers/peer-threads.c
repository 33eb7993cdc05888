/*
 * peer-threads — an echo server for the weft benchmarks: blocking I/O, one
 * thread per connection. The main thread accepts; each connection's thread
 * reads and writes everything back with blocking calls, so a client that does
 * not read blocks its thread's write, and the thread reads no more: the
 * backlog stays in the kernel's socket buffers. Thread stacks are 64 KiB, so
 * 10,000 connections fit. --threads is accepted and ignored.
 */
#define PEER_NAME "peer-threads"

#include "peer_common.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct peer_desc g_desc = {
    .name = PEER_NAME,
    .about = "Echo server for the weft benchmarks: blocking I/O, a thread per connection.",
    .backpressure = "A client that does not read blocks its\n"
                    "connection's thread, which then reads no more.",
    .threads_ignored = "one thread per connection",
};

/* ---- one thread per connection ----------------------------------------------- */

/*
 * 64 KiB stacks, so 10,000 threads take 640 MiB of address space and only the
 * pages they touch: a connection thread needs its 16 KiB buffer and little
 * more.
 */
#define STACK_SIZE (64 * 1024)
#define BUF_SIZE   (16 * 1024)

static atomic_ulong g_live;

/* Writes all of p[0, n). Returns 0, or -1 when the connection failed. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Reads and echoes until the client closes. The blocking write is the
 * backpressure: while the client does not read, this thread does not read
 * either, and what waits is in the kernel's socket buffers.
 */
static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[BUF_SIZE];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || write_all(fd, buf, (size_t)n) != 0)
            break;
    }
    close(fd);
    atomic_fetch_sub(&g_live, 1);
    return NULL;
}

/* ---- the accept loop ----------------------------------------------------------- */

static unsigned long g_refused;

/* Accepts what waits, one thread each. The accepted sockets are blocking. */
static void accept_all(int lfd, const pthread_attr_t *attr)
{
    for (int i = 0; i < 256; i++) {
        int fd = peer_accept(lfd, 0);
        if (fd < 0)
            return;
        pthread_t t;
        atomic_fetch_add(&g_live, 1);
        int err = pthread_create(&t, attr, conn_main, (void *)(intptr_t)fd);
        if (err) {
            atomic_fetch_sub(&g_live, 1);
            close(fd);
            g_refused++;
            static bool warned;
            if (!warned)
                fprintf(stderr, PEER_NAME ": pthread_create: %s (refusing)\n", strerror(err));
            warned = true;
        }
    }
}

int main(int argc, char **argv)
{
    /*
     * SIGINT and SIGTERM stay blocked in every thread (connection threads
     * inherit the mask) and are let in only inside the main thread's ppoll.
     */
    struct peer_server s;
    int rc = peer_start(argc, argv, &g_desc, &s);
    if (rc != PEER_RUN)
        return rc;

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_attr_setstacksize(&attr, STACK_SIZE);
    if (err) {
        fprintf(stderr, PEER_NAME ": pthread_attr_setstacksize: %s\n", strerror(err));
        return 1;
    }

    peer_print_ready(s.opts.bind, s.port);

    while (!peer_stop) {
        struct pollfd p = {.fd = s.lfd, .events = POLLIN};
        int n = ppoll(&p, 1, NULL, &s.waitmask);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, PEER_NAME ": ppoll: %s\n", strerror(errno));
            return 1;
        }
        if (n > 0)
            accept_all(s.lfd, &attr);
    }
    /* Connection threads still blocked in read() end with the process. */
    fprintf(stderr,
            PEER_NAME ": accepted %lu connections (%lu still open); refused %lu (no thread); "
                      "shed %lu when out of fds\n",
            peer_accepted, atomic_load(&g_live), g_refused, peer_shed_count);
    return 0;
}
