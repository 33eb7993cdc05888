/*
 * tests/test_io_sock.c — workers/io_sock.c: the socket calls the readiness
 * backends share.
 *
 * io_sock_recv fills a ring's free space with one read(2) or readv(2) (both
 * segments when the space wraps) and marks it held; io_sock_send writes the
 * held bytes with one send(2) or sendmsg(2) and consumes what was taken;
 * both return negative errnos (EAGAIN, EPIPE without a SIGPIPE, ENOBUFS for
 * a full ring instead of a 0 that would read as EOF). A pump through small
 * rings runs every wrap position against a checked stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ring_helpers.h"
#include "workers/io_sock.h"

/* --- fd paths --------------------------------------------------------------- */

static void set_nonblock(int fd) { assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0); }

/*
 * io_sock_recv marks what it read as held: the ring grows by exactly the
 * count it returns, and by nothing when it fails.
 */
static ssize_t read_produce(weft_ring *r, int fd, size_t max)
{
    size_t before = weft_ring_len(r);
    ssize_t n = io_sock_recv(fd, r, max);
    assert_int_equal(weft_ring_len(r), before + (n > 0 ? (size_t)n : 0));
    return n;
}

static void sockpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void write_all(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void test_read_fd_contiguous(void **state)
{
    (void)state;
    int sv[2];
    sockpair(sv);
    weft_ring r;
    ring_new_at(&r, 64, 0);
    write_all(sv[1], "hello, ring", 11);
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), 11);
    expect_contents(&r, "hello, ring", 11);
    /* max bounds the read. */
    write_all(sv[1], "0123456789", 10);
    assert_int_equal(read_produce(&r, sv[0], 4), 4);
    expect_contents(&r, "hello, ring0123", 15);
    assert_int_equal(read_produce(&r, sv[0], 100), 6);
    expect_contents(&r, "hello, ring0123456789", 21);
    ring_free(&r);
    close(sv[0]);
    close(sv[1]);
}

static void test_read_fd_wrapped(void **state)
{
    (void)state;
    int sv[2];
    sockpair(sv);
    weft_ring r;
    /* Empty at index 11: the free space is 5 bytes at the end, then 11. */
    ring_new_at(&r, 16, 11);
    unsigned char want[16];
    fill_pattern(want, 16, 77);
    write_all(sv[1], want, 16);
    /* One readv fills both segments. */
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), 16);
    expect_contents(&r, want, 16);
    assert_memory_equal(r.buf + 11, want, 5);
    assert_memory_equal(r.buf, want + 5, 11);

    /* Partly full, free space wraps, max cuts into the second segment. */
    weft_ring_consume(&r, 10); /* data: 6 bytes at 5..10; free 11..15, 0..4 */
    write_all(sv[1], "ABCDEFGHIJ", 10);
    assert_int_equal(read_produce(&r, sv[0], 7), 7);
    unsigned char exp[16];
    memcpy(exp, want + 10, 6);
    memcpy(exp + 6, "ABCDEFG", 7);
    expect_contents(&r, exp, 13);
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), 3);
    memcpy(exp + 13, "HIJ", 3);
    expect_contents(&r, exp, 16);

    /* Less pending than the free space: a short readv. */
    weft_ring_consume(&r, 16);
    r.head = r.tail = 13;
    write_all(sv[1], "xyz12", 5);
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), 5);
    expect_contents(&r, "xyz12", 5);
    ring_free(&r);
    close(sv[0]);
    close(sv[1]);
}

static void test_read_fd_eagain_eof(void **state)
{
    (void)state;
    int sv[2];
    sockpair(sv);
    set_nonblock(sv[0]);
    weft_ring r;
    ring_new_at(&r, 16, 14);
    ring_append(&r, "q", 1);

    /* Nothing pending: -EAGAIN and the ring is untouched. */
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), -EAGAIN);
    expect_contents(&r, "q", 1);

    /* Peer closed: 0. */
    write_all(sv[1], "last", 4);
    close(sv[1]);
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), 4);
    expect_contents(&r, "qlast", 5);
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), 0);
    expect_contents(&r, "qlast", 5);

    /* A bad fd: a negative errno, not a crash or a count. */
    assert_int_equal(read_produce(&r, -1, SIZE_MAX), -EBADF);

    /* No room (max 0, or a full ring): -ENOBUFS, never a 0 that reads as EOF. */
    assert_int_equal(read_produce(&r, sv[0], 0), -ENOBUFS);
    ring_append(&r, "0123456789a", 11);
    assert_int_equal(ring_space(&r), 0);
    assert_int_equal(read_produce(&r, sv[0], SIZE_MAX), -ENOBUFS);
    ring_free(&r);
    close(sv[0]);
}

static void read_exact(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k <= 0)
            fail_msg("read_exact: %zd (%s) after %zu of %zu", k, strerror(errno), got, n);
        got += (size_t)k;
    }
}

static void test_send_fd_contiguous_and_wrapped(void **state)
{
    (void)state;
    int sv[2];
    sockpair(sv);
    weft_ring r;
    unsigned char want[16], got[16];
    fill_pattern(want, 16, 5);

    /* One segment: send(2). */
    ring_new_at(&r, 16, 2);
    ring_append(&r, want, 9);
    assert_int_equal(io_sock_send(sv[0], &r, SIZE_MAX), 9);
    expect_contents(&r, NULL, 0);
    read_exact(sv[1], got, 9);
    assert_memory_equal(got, want, 9);
    ring_free(&r);

    /* Two segments: one sendmsg(2) sends both, in order. */
    ring_new_at(&r, 16, 9);
    ring_append(&r, want, 16);
    struct iovec iov[2];
    assert_int_equal(weft_ring_peek(&r, iov), 2);
    assert_int_equal(io_sock_send(sv[0], &r, SIZE_MAX), 16);
    expect_contents(&r, NULL, 0);
    assert_int_equal(r.head, 0);
    read_exact(sv[1], got, 16);
    assert_memory_equal(got, want, 16);
    ring_free(&r);

    /* Nothing to send: nothing written, nothing consumed. */
    ring_new_at(&r, 16, 0);
    assert_true(io_sock_send(sv[0], &r, SIZE_MAX) <= 0);
    expect_contents(&r, NULL, 0);
    set_nonblock(sv[1]);
    assert_int_equal(read(sv[1], got, sizeof(got)), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    ring_free(&r);
    close(sv[0]);
    close(sv[1]);
}

static void test_send_fd_partial(void **state)
{
    (void)state;
    int sv[2];
    sockpair(sv);
    int small = 4096;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    set_nonblock(sv[0]);

    const uint32_t cap = 1u << 20;
    weft_ring r;
    ring_new_at(&r, cap, cap - 1000); /* the data wraps after 1000 bytes */
    unsigned char *want = malloc(cap);
    assert_non_null(want);
    rng_state = 42;
    for (uint32_t i = 0; i < cap; i++)
        want[i] = (unsigned char)rnd();
    ring_append(&r, want, cap);

    /* The peer does not read: the socket fills and a send comes up short. */
    size_t sent = 0;
    ssize_t n;
    while ((n = io_sock_send(sv[0], &r, SIZE_MAX)) > 0) {
        sent += (size_t)n;
        assert_int_equal(weft_ring_len(&r), cap - sent);
        assert_true(sent < cap);
    }
    assert_int_equal(n, -EAGAIN);
    assert_true(sent > 0);
    /* What remains is exactly the unsent suffix. */
    unsigned char *rest = malloc(cap);
    assert_non_null(rest);
    assert_int_equal(weft_ring_copyout(&r, 0, rest, cap), cap - sent);
    assert_memory_equal(rest, want + sent, cap - sent);
    /* And the peer got exactly the prefix. */
    read_exact(sv[1], rest, sent);
    assert_memory_equal(rest, want, sent);

    free(rest);
    free(want);
    ring_free(&r);
    close(sv[0]);
    close(sv[1]);
}

static void test_send_fd_epipe(void **state)
{
    (void)state;
    int sv[2];
    sockpair(sv);
    close(sv[1]);
    weft_ring r;
    ring_new_at(&r, 16, 12);
    ring_append(&r, "goes nowhere", 12); /* wrapped: sendmsg path */
    /* MSG_NOSIGNAL: -EPIPE, not a SIGPIPE that would kill this test. */
    assert_int_equal(io_sock_send(sv[0], &r, SIZE_MAX), -EPIPE);
    expect_contents(&r, "goes nowhere", 12);
    weft_ring_consume(&r, 8); /* 4 bytes at 4..7: send path */
    assert_int_equal(io_sock_send(sv[0], &r, SIZE_MAX), -EPIPE);
    expect_contents(&r, "here", 4);
    ring_free(&r);
    close(sv[0]);
}

/*
 * Pump a pseudo-random stream from socket A through a small ring to socket B
 * with random read bounds, so read/readv and send/sendmsg all run many times
 * over every wrap position; B must receive the stream unchanged.
 */
static void test_fd_pump(void **state)
{
    (void)state;
    static const uint32_t caps[] = {16, 64, 4096};
    for (size_t ci = 0; ci < sizeof(caps) / sizeof(caps[0]); ci++) {
        int a[2], b[2];
        sockpair(a);
        sockpair(b);
        set_nonblock(a[0]);
        set_nonblock(a[1]);
        set_nonblock(b[0]);
        set_nonblock(b[1]);
        weft_ring r;
        ring_new_at(&r, caps[ci], 0);

        const size_t total = 300000;
        uint64_t wseed = 1000 + ci, cseed = 1000 + ci;
        size_t written = 0, checked = 0;
        rng_state = 7 + ci;
        unsigned char chunk[8192];
        int spins = 0;
        while (checked < total) {
            assert_true(++spins < 10000000);
            /* Producer: write a random-sized piece of the stream. */
            if (written < total) {
                size_t n = rnd_upto(sizeof(chunk) - 1) + 1;
                if (n > total - written)
                    n = total - written;
                uint64_t s = wseed;
                for (size_t i = 0; i < n; i++) {
                    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                    chunk[i] = (unsigned char)(s >> 56);
                }
                ssize_t k = write(a[1], chunk, n);
                if (k > 0) {
                    /* Advance the stream state by exactly k bytes. */
                    for (ssize_t i = 0; i < k; i++)
                        wseed = wseed * 6364136223846793005ULL + 1442695040888963407ULL;
                    written += (size_t)k;
                } else {
                    assert_true(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
                }
            }
            /* The ring: read a bounded amount, sometimes send. */
            size_t before = weft_ring_len(&r);
            size_t max = rnd_upto(caps[ci] + 2);
            ssize_t k = read_produce(&r, a[0], max);
            if (k > 0) {
                size_t lim = max < caps[ci] - before ? max : caps[ci] - before;
                assert_true((size_t)k <= lim);
                assert_int_equal(weft_ring_len(&r), before + (size_t)k);
            } else if (max == 0 || before == caps[ci]) {
                /* No room: no call, and never a 0 that would read as EOF. */
                assert_int_equal(k, -ENOBUFS);
            } else {
                assert_int_equal(k, -EAGAIN);
            }
            if (weft_ring_len(&r) > 0 && (rnd() & 1)) {
                before = weft_ring_len(&r);
                ssize_t s = io_sock_send(b[0], &r, SIZE_MAX);
                if (s > 0)
                    assert_int_equal(weft_ring_len(&r), before - (size_t)s);
                else
                    assert_int_equal(s, -EAGAIN);
            }
            gbuf_check(r.buf, r.cap);
            /* Consumer: check what arrived. */
            ssize_t g = read(b[1], chunk, sizeof(chunk));
            if (g > 0) {
                for (ssize_t i = 0; i < g; i++) {
                    cseed = cseed * 6364136223846793005ULL + 1442695040888963407ULL;
                    if (chunk[i] != (unsigned char)(cseed >> 56))
                        fail_msg("cap %u: stream byte %zu corrupted", caps[ci],
                                 checked + (size_t)i);
                }
                checked += (size_t)g;
            } else {
                assert_true(g < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            }
        }
        assert_int_equal(checked, total);
        assert_int_equal(weft_ring_len(&r), 0);
        ring_free(&r);
        close(a[0]);
        close(a[1]);
        close(b[0]);
        close(b[1]);
    }
}

/* max bounds a send, in one segment or across the wrap. */
static void test_send_max(void **state)
{
    (void)state;
    int sv[2];
    sockpair(sv);
    weft_ring r;
    unsigned char want[16], got[16];
    fill_pattern(want, 16, 9);
    ring_new_at(&r, 16, 12); /* 4 bytes at the end, 12 after the wrap */
    ring_append(&r, want, 16);
    assert_int_equal(io_sock_send(sv[0], &r, 3), 3);   /* inside the first segment */
    assert_int_equal(io_sock_send(sv[0], &r, 0), 0);   /* nothing asked: no call */
    assert_int_equal(io_sock_send(sv[0], &r, 5), 5);   /* across the wrap */
    assert_int_equal(io_sock_send(sv[0], &r, 100), 8); /* the rest */
    read_exact(sv[1], got, 16);
    assert_memory_equal(got, want, 16);
    ring_free(&r);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_fd_contiguous),
        cmocka_unit_test(test_read_fd_wrapped),
        cmocka_unit_test(test_read_fd_eagain_eof),
        cmocka_unit_test(test_send_fd_contiguous_and_wrapped),
        cmocka_unit_test(test_send_fd_partial),
        cmocka_unit_test(test_send_fd_epipe),
        cmocka_unit_test(test_send_max),
        cmocka_unit_test(test_fd_pump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
