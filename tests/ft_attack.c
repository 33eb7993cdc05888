/*
 * tests/ft_attack.c — many bad clients of several kinds at once, beside
 * healthy ones.
 *
 * weft-echo --lines with a 10 s input stall and a 1 s output stall (so the
 * timeouts fire within the test; every other setting, the 1 MiB input cap
 * included, at its default; the input stall leaves the oversize senders
 * time to reach the cap on a busy machine or under a sanitizer, where a
 * worker turn with hundreds of bad clients can take a second). N bad clients (600 in CI), in six
 * kinds, each kind a thread of its own at SCHED_IDLE, all at once: slowloris  N/6   a byte every
 * 200 ms, never a newline reset      N/3   half a line, then a reset (SO_LINGER 0) oversize   N/100
 * (at least 2) a 2 MiB line with no newline (this thread at normal priority, so the line is not
 * slower than the input stall) slow       N/12  whole lines as fast as the server takes, never
 * reading halfclose  N/6   half a line, then shutdown(SHUT_WR), then wait for EOF knock      rest
 * connect and close at once, no byte sent while 16 healthy connections echo lines, every byte
 * verified.
 *
 * Asserts: the healthy traffic clean and flowing throughout; every bad
 * connection accepted and closed (accepted and closed grow by exactly the
 * number of bad clients, open returns to the healthy ones); the closes by
 * reason: closed_input_cap == oversize, closed_input_stall >= slowloris,
 * closed_input_stall + closed_output_stall == slowloris + slow (a slow
 * client paused with half a line read closes by input stall),
 * closed_error >= reset; every slowloris, oversize and slow client saw its
 * connection closed by the server; the fd count back to its start; the
 * server exits 0 on SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ft_lib.h"

#define GIVE_UP_MS 40000
#define BIG_LINE   (2L << 20)

static const char *const args[] = {"--lines",        "--input-stall", "10000",
                                   "--output-stall", "1000",          NULL};

enum { SLOWLORIS, RESET, OVERSIZE, SLOW, HALFCLOSE, KNOCK, KINDS };
static const char *const kind_name[KINDS] = {"slowloris", "reset",     "oversize",
                                             "slow",      "halfclose", "knock"};

typedef struct attacker {
    pthread_t thread;
    int kind, n;
    uint16_t port;
    int closed_by_server; /* connections the server closed (EOF or reset seen) */
    int still_open;       /* left open at the give-up time */
} attacker;

static char junk[65536]; /* 1000-byte lines, for the slow clients */
static char nonl[65536]; /* no newline, for the oversize line */

static void abort_conn(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* Did the server close fd? Reads (and drops) what is there; 1 on EOF or an
 * error other than EAGAIN. */
static int server_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0 || errno != EAGAIN;
    }
}

static int *connect_all(const attacker *a, int rcvbuf)
{
    int *fd = calloc((size_t)a->n, sizeof(int));
    IT_CHECK(fd, "out of memory");
    for (int i = 0; i < a->n; i++) {
        fd[i] = itl_connect("127.0.0.1", a->port, 5000, rcvbuf);
        IT_CHECK(fd[i] >= 0, "%s connect %d: %s", kind_name[a->kind], i, strerror(-fd[i]));
    }
    return fd;
}

/*
 * Drive the open connections of a kind until the server closed them all or
 * the give-up time: each round, step(fd, i) writes what the kind writes
 * (returns -1 when the write found the connection gone), then the
 * connection is checked for the server's close.
 */
static void drive(attacker *a, int *fd, int (*step)(int fd, long *state), long *state, int pause_ms,
                  int reads)
{
    int64_t t0 = itl_now_ms();
    int open = a->n;
    while (open > 0 && itl_now_ms() - t0 < GIVE_UP_MS) {
        for (int i = 0; i < a->n; i++) {
            if (fd[i] < 0)
                continue;
            int gone = step(fd[i], &state[i]) < 0;
            if (!gone && reads)
                gone = server_closed(fd[i]);
            if (gone) {
                close(fd[i]);
                fd[i] = -1;
                open--;
                a->closed_by_server++;
            }
        }
        itl_sleep_ms(pause_ms);
    }
    a->still_open = open;
}

static int send_some(int fd, const char *p, size_t len)
{
    ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
    return w < 0 && errno != EAGAIN && errno != EINTR ? -1 : (int)(w > 0 ? w : 0);
}

static int step_none(int fd, long *state)
{
    (void)fd;
    (void)state;
    return 0;
}

static int step_trickle(int fd, long *state)
{
    (void)state;
    return send_some(fd, "s", 1) < 0 ? -1 : 0;
}

static int step_oversize(int fd, long *sent)
{
    if (*sent >= BIG_LINE)
        return 0;
    size_t want = (size_t)(BIG_LINE - *sent < 65536 ? BIG_LINE - *sent : 65536);
    int w = send_some(fd, nonl, want);
    if (w > 0)
        *sent += w;
    return w < 0 ? -1 : 0;
}

static int step_slow(int fd, long *state)
{
    (void)state;
    return send_some(fd, junk, sizeof(junk)) < 0 ? -1 : 0;
}

static void *attack_main(void *arg)
{
    attacker *a = arg;
    /* The oversize senders keep the normal priority: at SCHED_IDLE on a busy
     * machine their line can arrive slower than the input stall, which
     * would then close them before the cap does (a different test). */
    if (a->kind != OVERSIZE)
        ft_fault_nice(1);
    long *state = calloc((size_t)a->n + 1, sizeof(long));
    IT_CHECK(state, "out of memory");
    int *fd;
    switch (a->kind) {
    case SLOWLORIS:
        fd = connect_all(a, 0);
        drive(a, fd, step_trickle, state, 200, 1);
        break;
    case RESET:
        /* In waves of 50: connect, half a line, reset. */
        for (int done = 0; done < a->n; done += 50) {
            attacker wave = *a;
            wave.n = a->n - done < 50 ? a->n - done : 50;
            fd = connect_all(&wave, 0);
            for (int i = 0; i < wave.n; i++) {
                (void)send_some(fd[i], "half a li", 9);
                abort_conn(fd[i]);
            }
            free(fd);
        }
        fd = NULL;
        break;
    case OVERSIZE:
        fd = connect_all(a, 0);
        drive(a, fd, step_oversize, state, 5, 1);
        break;
    case SLOW:
        fd = connect_all(a, 4096);
        drive(a, fd, step_slow, state, 20, 0);
        break;
    case HALFCLOSE:
        fd = connect_all(a, 0);
        for (int i = 0; i < a->n; i++) {
            (void)send_some(fd[i], "half a li", 9);
            shutdown(fd[i], SHUT_WR);
        }
        drive(a, fd, step_none, state, 50, 1);
        break;
    default: /* KNOCK */
        for (int i = 0; i < a->n; i++) {
            int f = itl_connect("127.0.0.1", a->port, 5000, 0);
            IT_CHECK(f >= 0, "knock connect %d: %s", i, strerror(-f));
            close(f);
        }
        fd = NULL;
        break;
    }
    free(fd);
    free(state);
    return NULL;
}

int main(int argc, char **argv)
{
    ft_opts o;
    ft_parse(argc, argv, 0, 600, &o);
    ft_need_fds(o.n + 64);
    if (o.baseline_ms > 0)
        return ft_run_baseline("attack", &o, args);
    memset(nonl, 'o', sizeof(nonl));
    memset(junk, 'j', sizeof(junk));
    for (size_t i = 1000; i < sizeof(junk); i += 1000)
        junk[i] = '\n'; /* the slow clients' lines */

    itl_server srv;
    char sock[108];
    ft_server_start(&srv, o.echo, args, sock, NULL);
    ft_healthy *h = ft_healthy_start(srv.port, o.healthy_conns, 10, 9);
    int base_fds = ft_settle(&srv, sock, o.healthy_conns);
    int64_t acc0 = ft_stat(sock, "accepted"), closed0 = ft_stat(sock, "closed");

    attacker a[KINDS];
    int n = (int)o.n, total = 0;
    int count[KINDS] = {n / 6, n / 3, n / 100 < 2 ? 2 : n / 100, n / 12, n / 6, 0};
    for (int k = 0; k < KNOCK; k++)
        total += count[k];
    count[KNOCK] = n > total ? n - total : 1;
    total = 0;
    for (int k = 0; k < KINDS; k++) {
        a[k] = (attacker){.kind = k, .n = count[k], .port = srv.port};
        total += count[k];
        IT_CHECK(pthread_create(&a[k].thread, NULL, attack_main, &a[k]) == 0, "pthread_create");
    }
    int64_t t0 = itl_now_ms();
    /* While the attack is at its worst, the healthy side must keep going. */
    itl_sleep_ms(500);
    ft_healthy_expect_progress(h, 5000, "during the attack");
    for (int k = 0; k < KINDS; k++)
        pthread_join(a[k].thread, NULL);
    int64_t took = itl_now_ms() - t0;

    int64_t open = ft_wait_stat_eq(sock, "open", o.healthy_conns, 10000);
    int64_t acc = ft_stat(sock, "accepted") - acc0;
    int64_t closed = ft_stat(sock, "closed") - closed0;
    int64_t cap = ft_stat(sock, "closed_input_cap"), istall = ft_stat(sock, "closed_input_stall"),
            ostall = ft_stat(sock, "closed_output_stall"), err = ft_stat(sock, "closed_error"),
            peer = ft_stat(sock, "closed_peer");
    fprintf(stderr,
            "attack: %d bad clients (slowloris %d, reset %d, oversize %d, slow %d, halfclose %d, "
            "knock %d) in %lld ms; accepted %lld, closed %lld, open %lld; closed by input_cap "
            "%lld, input_stall %lld, output_stall %lld, error %lld, peer %lld\n",
            total, count[SLOWLORIS], count[RESET], count[OVERSIZE], count[SLOW], count[HALFCLOSE],
            count[KNOCK], (long long)took, (long long)acc, (long long)closed, (long long)open,
            (long long)cap, (long long)istall, (long long)ostall, (long long)err, (long long)peer);
    ft_healthy_expect_progress(h, 5000, "after the attack");
    ft_healthy_result r;
    ft_healthy_stop(h, &r);
    ft_healthy_check("attack", "fault", o.n, &r, 1);

    for (int k = 0; k < KINDS; k++)
        IT_CHECK(a[k].still_open == 0, "%d %s connections still open after %d ms", a[k].still_open,
                 kind_name[k], GIVE_UP_MS);
    for (int k = SLOWLORIS; k <= HALFCLOSE; k++)
        IT_CHECK(k == RESET || a[k].closed_by_server == count[k],
                 "%d of %d %s connections saw the server close them", a[k].closed_by_server,
                 count[k], kind_name[k]);
    IT_CHECK(acc == total, "accepted grew by %lld, want %d", (long long)acc, total);
    IT_CHECK(open == o.healthy_conns, "open %lld after the attack, want %d", (long long)open,
             o.healthy_conns);
    IT_CHECK(closed == total, "closed grew by %lld, want %d", (long long)closed, total);
    IT_CHECK(cap == count[OVERSIZE], "closed_input_cap %lld, want %d", (long long)cap,
             count[OVERSIZE]);
    IT_CHECK(istall >= count[SLOWLORIS] && istall + ostall == count[SLOWLORIS] + count[SLOW],
             "closed_input_stall %lld + closed_output_stall %lld, want %d slowloris + %d slow",
             (long long)istall, (long long)ostall, count[SLOWLORIS], count[SLOW]);
    IT_CHECK(err >= count[RESET], "closed_error %lld, want >= %d resets", (long long)err,
             count[RESET]);
    base_fds -= o.healthy_conns;
    int fds = itl_wait_fds(srv.pid, base_fds, 5000);
    IT_CHECK(fds == base_fds, "server holds %d fds, %d before the attack", fds, base_fds);
    IT_CHECK(itl_server_stop(&srv, 10000) == 0, "server exit status");
    unlink(sock);
    return 0;
}
