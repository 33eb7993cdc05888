/*
 * it_remote — reaching connections from another thread: weft_send_to
 * delivers to the connection an id names, and to no other (a stale id of a
 * closed connection whose slot was reused delivers nothing); weft_broadcast
 * runs once on every worker.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/weft.h"

#define N 10

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ids[2 * N];
static uint16_t ports[2 * N]; /* the peer port of each id, to match clients */
static int nids, closed, broadcast_runs;

static void on_open(weft_conn *c)
{
    struct sockaddr_storage ss;
    weft_conn_peer(c, &ss);
    pthread_mutex_lock(&mu);
    ports[nids] = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    ids[nids++] = weft_conn_id(c);
    pthread_mutex_unlock(&mu);
}

/* The id of the connection whose client socket is fd. */
static uint64_t id_of(int fd)
{
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    getsockname(fd, (struct sockaddr *)&me, &len);
    for (int i = 0; i < nids; i++)
        if (ports[i] == ntohs(me.sin_port))
            return ids[i];
    return UINT64_MAX;
}

static void on_data(weft_conn *c, weft_ring *in) { weft_ring_consume(in, weft_ring_len(in)); }

static void on_close(weft_conn *c, weft_close_reason r)
{
    pthread_mutex_lock(&mu);
    closed++;
    pthread_mutex_unlock(&mu);
}

static void count_run(weft_server *s, int worker, void *arg)
{
    pthread_mutex_lock(&mu);
    broadcast_runs++;
    pthread_mutex_unlock(&mu);
}

static int wait_count(int *v, int want)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&mu);
        int got = *v;
        pthread_mutex_unlock(&mu);
        if (got >= want)
            return 0;
        usleep(10000);
    }
    return -1;
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? fd : -1;
}

/* Read what arrives within ms milliseconds. */
static ssize_t read_for(int fd, char *buf, size_t cap, int ms)
{
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < cap && poll(&p, 1, ms) == 1) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(void)
{
    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 2;
    cfg.stats_interval_ms = 0;
    cfg.close_linger_ms = 0;
    weft_handler h = {.on_open = on_open, .on_data = on_data, .on_close = on_close};
    weft_server *s;
    CHECK(weft_server_new(&cfg, &h, NULL, &s) == 0 && weft_server_start(s) == 0, "start");
    uint16_t port = weft_server_port(s);

    int fds[N];
    for (int i = 0; i < N; i++)
        CHECK((fds[i] = dial(port)) >= 0, "connect %d", i);
    CHECK(wait_count(&nids, N) == 0, "on_open ran %d times, not %d", nids, N);

    /* Each connection gets exactly its own message. */
    for (int i = 0; i < N; i++) {
        char msg[32];
        int k = snprintf(msg, sizeof(msg), "to-%d;", i);
        CHECK(weft_send_to(s, id_of(fds[i]), msg, (size_t)k) == 0, "send_to %d", i);
    }
    for (int i = 0; i < N; i++) {
        char want[32], got[64];
        int k = snprintf(want, sizeof(want), "to-%d;", i);
        ssize_t n = read_for(fds[i], got, sizeof(got), 300);
        CHECK(n == k && memcmp(got, want, (size_t)k) == 0, "connection %d got %zd bytes", i, n);
    }

    /* A stale id: close connection 0, let a new one take its slot. */
    uint64_t stale = id_of(fds[0]);
    close(fds[0]);
    CHECK(wait_count(&closed, 1) == 0, "no close seen");
    int fresh = dial(port);
    CHECK(fresh >= 0 && wait_count(&nids, N + 1) == 0, "reconnect");
    CHECK(weft_send_to(s, stale, "stale", 5) == 0, "send_to a stale id is posted");
    char buf[16];
    CHECK(read_for(fresh, buf, sizeof(buf), 300) == 0, "a stale id reached a new connection");
    CHECK(weft_send_to(s, (uint64_t)99 << 48, "x", 1) == -22, "an id of no worker is -EINVAL");

    CHECK(weft_broadcast(s, count_run, NULL) == 2, "broadcast posted to 2 workers");
    CHECK(wait_count(&broadcast_runs, 2) == 0, "broadcast ran %d times", broadcast_runs);

    for (int i = 1; i < N; i++)
        close(fds[i]);
    close(fresh);
    weft_server_stop(s);
    CHECK(weft_server_wait(s) == 0, "wait");
    weft_server_free(s);
    CHECK(broadcast_runs == 2, "broadcast ran %d times in all", broadcast_runs);
    printf("it_remote: ok\n");
    return 0;
}
