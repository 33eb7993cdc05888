/*
 * workers/io_uring.c — the io_uring backend: completions behind the seam.
 *
 * One ring per worker (liburing), set up with SINGLE_ISSUER and
 * DEFER_TASKRUN where the kernel has them: completions are produced only
 * inside the worker's own io_uring_enter, which is the one system call of
 * a turn (wait): it submits every request queued since the last turn and
 * waits for the next completion.
 *
 * Input. Each connection has one receive in flight (armed at attach, and
 * again whenever the state machine has taken what the last one brought).
 * The receive names no buffer: the kernel picks one from the worker's
 * provided-buffer ring (IOSQE_BUFFER_SELECT) only when bytes arrive, so an
 * idle connection holds no buffer, in the kernel or here. A completion is
 * reported as WK_IO_IN; recv then copies the bytes into the connection's
 * input ring (the same weft_ring API for the handler) and gives the buffer
 * back at once. A receive that filled its whole buffer is followed by
 * plain recv(2) calls into the ring while they come back full (a bulk
 * sender: direct_recv), so a fast stream is read in one turn as on epoll,
 * not a buffer per turn. The receive is single-shot: a connection that
 * stops reading (backpressure, the handler's pause) holds at most one
 * buffer and the kernel queues the rest in the socket,
 * where the window does the flow control; a multishot receive would keep
 * filling buffers until cancelled. When the buffer ring runs dry a
 * receive ends with ENOBUFS: the connection waits on a list and is armed
 * again once buffers come back.
 *
 * Output. send takes the output ring's storage whole (no copy): the bytes
 * go out with one IORING_OP_SEND (or SENDMSG for a wrapped ring) and
 * count in c->out_inflight until the last completion, which returns the
 * storage to the pool and reports WK_IO_OUT. A short send (a slow peer)
 * goes on from where it stopped at once, updating out_inflight and the
 * output-stall clock, so a peer that takes bytes slowly is not taken for
 * one that takes none (MSG_WAITALL would hide that until the end). One
 * send in flight per connection; the watermarks see out_inflight
 * (conn_pending_out), so backpressure and the output cap work as with
 * epoll. The ring borrows new storage from the
 * pool for what the handler sends meanwhile (a free-list hit, not an
 * allocation).
 *
 * sendfile is sendfile(2), as on the readiness backends: a non-blocking
 * socket answers EAGAIN when full, and a one-shot POLLOUT poll reports
 * when it may take more (a splice through a pipe would need a pipe per
 * sending connection and two requests per chunk for no fewer copies).
 *
 * Keys. A request's user_data carries what its completion needs: for a
 * receive or a poll, the connection's key (generation, slot) and the
 * operation in the low bits; for a send, its ur_out, which knows its
 * connection until that closes. close cancels what is in flight for the
 * connection before its fd goes: a completion that arrives afterwards
 * finds another generation in the slot (or the entry cleared) and only
 * gives its buffer back. A send still in flight at close is cancelled
 * synchronously, so its storage goes back to the pool at once and the
 * kernel never reads memory a later connection owns.
 *
 * The wake channel is an eventfd with a read in flight on the ring; its
 * completion (the counter read back to zero) is the wake-up.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "buffers/pool.h"
#include "buffers/ring.h"
#include "workers/io.h"
#include "workers/io_sock.h"
#include "workers/slab.h"

/*
 * Submission queue entries: a turn queues at most about two requests per
 * active connection (a receive and a send); when the queue fills it is
 * submitted early, so this bounds nothing but the batch.
 */
#define UR_ENTRIES 2048
/*
 * The provided buffers: at most UR_NBUFS of UR_BUF_SIZE bytes per worker
 * (16 MiB of address space, mapped at init). Only UR_NBUFS_START of them
 * are in the kernel's ring at first; when a receive finds none free, the
 * next wait adds as many as connections wait (buffers_grow). The ring
 * hands buffers out in turn, so every buffer it has is touched sooner or
 * later: growing on demand keeps the memory what the load needed, not the
 * maximum. A buffer is held only from a receive's completion until the
 * state machine copies it out (the same turn, unless the connection is
 * paused), so the count bounds the connections that receive in one turn,
 * not the connections held.
 */
#define UR_NBUFS       4096u
#define UR_NBUFS_START 64u
#define UR_BUF_SIZE    4096u
#define UR_BGID        0

/* Operations, in the low bits of user_data. */
enum { UR_OP_RECV = 1, UR_OP_SEND = 2, UR_OP_POLL = 3, UR_OP_WAKE = 4, UR_OP_SKIP = 5 };
#define UR_OP_MASK 7u

/* A connection's state in the backend (ur_conn.flags). */
enum {
    UR_LIVE = 1u << 0,       /* attached, not closed */
    UR_ARMED = 1u << 1,      /* a receive is in flight */
    UR_HAVE = 1u << 2,       /* a received buffer waits to be copied out */
    UR_EOF = 1u << 3,        /* a receive returned 0 */
    UR_RERR = 1u << 4,       /* a receive failed: rerr */
    UR_BUFWAIT = 1u << 5,    /* no buffer was free: on the wait list */
    UR_POLL = 1u << 6,       /* a POLLOUT poll is in flight (connect, sendfile) */
    UR_SHUT = 1u << 7,       /* FIN asked for while a send was in flight */
    UR_CONNECTING = 1u << 8, /* the POLLOUT in flight ends a connect */
    UR_DIRECT = 1u << 9,     /* bulk input: recv reads the socket (direct_recv) */
};

/* A send in flight: the storage it took and what the kernel reads. */
typedef struct ur_out {
    weft_conn *c; /* its connection, NULL once that closed */
    char *buf;    /* the output ring's storage, back to the pool at the end */
    uint32_t cap; /* its size (the pool's block size) */
    struct iovec iov[2];
    struct msghdr msg; /* for a wrapped ring: two segments */
    struct ur_out *next;
} ur_out;

/* Per slot: 24 bytes beside the connection's own 192 (docs/architecture.md). */
typedef struct ur_conn {
    ur_out *send; /* the send in flight, or NULL */
    int32_t serr; /* a send's error, for the next send */
    int32_t rerr; /* a receive's error (UR_RERR) */
    uint16_t bid; /* UR_HAVE: the buffer, its unread bytes from off */
    uint16_t off;
    uint16_t len;
    uint16_t flags; /* UR_* */
} ur_conn;

typedef struct ur_state {
    struct io_uring ring;
    int enabled; /* the ring was enabled on the worker's thread */
    bool vg;     /* running under valgrind (ring_setup) */
    int wakefd;
    uint64_t wakebuf;
    struct io_uring_buf_ring *br;
    char *bufs; /* UR_NBUFS * UR_BUF_SIZE, touched as given (nbufs) */
    size_t map_len;
    uint32_t nbufs; /* buffers given to the kernel's ring so far */
    uint32_t held;  /* of those, out of the ring now (UR_HAVE) */
    ur_conn *cs;    /* by slot */
    uint32_t ncs;
    uint64_t *bufwait; /* keys of connections waiting for a buffer */
    uint32_t nwait, capwait;
    ur_out *free_sends;
    void **chunks; /* ur_out allocations, freed at destroy */
    uint32_t nchunks;
} ur_state;

static ur_state *st_of(const wk_worker *w) { return w->io_state; }

static uint64_t ud_conn(const weft_conn *c, unsigned op)
{
    return ((uint64_t)c->gen << 32) | ((uint64_t)c->slot << 3) | op;
}

static ur_conn *side(ur_state *u, const weft_conn *c) { return &u->cs[c->slot]; }

/* ---- setup ----------------------------------------------------------------- */

/*
 * A test-only way to see the fallback: WEFT_URING_FAIL=EPERM (or ENOSYS,
 * ENOMEM) makes setup fail as a kernel that refuses io_uring does.
 */
static int forced_failure(void)
{
    const char *f = getenv("WEFT_URING_FAIL");
    if (!f || !*f)
        return 0;
    if (strcmp(f, "ENOSYS") == 0)
        return -ENOSYS;
    if (strcmp(f, "ENOMEM") == 0)
        return -ENOMEM;
    return -EPERM;
}

/*
 * Under valgrind (3.19) a thread blocked in io_uring_enter keeps
 * valgrind's big lock and every other thread stops: there the ring runs
 * without DEFER_TASKRUN and the wait blocks in poll(2) on the ring's fd
 * instead (vg_wait). Everything else is the same code.
 */
static bool under_valgrind(void) { return RUNNING_ON_VALGRIND != 0; }

/* A ring with the flags we want, or the ones an older kernel has. */
static int ring_setup(struct io_uring *ring, unsigned entries)
{
    int rc = forced_failure();
    if (rc != 0)
        return rc;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    /* Disabled until the worker's thread enables it: SINGLE_ISSUER makes
     * the enabling thread the ring's only submitter. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED;
    if (!under_valgrind())
        p.flags |= IORING_SETUP_DEFER_TASKRUN;
    rc = io_uring_queue_init_params(entries, ring, &p);
    if (rc == -EINVAL) { /* before 6.1 */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_R_DISABLED;
        rc = io_uring_queue_init_params(entries, ring, &p);
    }
    return rc;
}

/* Whether this kernel and process may use io_uring as we do: 0 or -errno. */
static int ur_probe(void)
{
    struct io_uring ring;
    int rc = ring_setup(&ring, 8);
    if (rc < 0)
        return rc;
    struct io_uring_probe *p = io_uring_get_probe_ring(&ring);
    static const int ops[] = {IORING_OP_RECV,           IORING_OP_SEND,         IORING_OP_SENDMSG,
                              IORING_OP_READ,           IORING_OP_ASYNC_CANCEL, IORING_OP_POLL_ADD,
                              IORING_OP_PROVIDE_BUFFERS};
    if (!p) {
        rc = -ENOSYS;
    } else {
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (!io_uring_opcode_supported(p, ops[i]))
                rc = -ENOSYS;
        io_uring_free_probe(p);
    }
    io_uring_queue_exit(&ring);
    return rc;
}

/* The next submission entry; when the queue is full, submit it first. */
static struct io_uring_sqe *sqe_get(ur_state *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        (void)io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static void arm_wake(ur_state *u)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return;
    io_uring_prep_read(sqe, u->wakefd, &u->wakebuf, sizeof(u->wakebuf), 0);
    io_uring_sqe_set_data64(sqe, UR_OP_WAKE);
}

static char *buf_at(ur_state *u, unsigned bid) { return u->bufs + (size_t)bid * UR_BUF_SIZE; }

/* Give buffer bid back to the kernel's ring. */
static void buf_recycle(ur_state *u, unsigned bid)
{
    io_uring_buf_ring_add(u->br, buf_at(u, bid), UR_BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(UR_NBUFS), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

/* Give the kernel's ring n more buffers (within UR_NBUFS). */
static void buffers_grow(ur_state *u, uint32_t n)
{
    if (n > UR_NBUFS - u->nbufs)
        n = UR_NBUFS - u->nbufs;
    for (uint32_t i = 0; i < n; i++)
        io_uring_buf_ring_add(u->br, buf_at(u, u->nbufs + i), UR_BUF_SIZE,
                              (unsigned short)(u->nbufs + i), io_uring_buf_ring_mask(UR_NBUFS),
                              (int)i);
    io_uring_buf_ring_advance(u->br, (int)n);
    u->nbufs += n;
}

static int bufs_setup(ur_state *u)
{
    size_t ring_len = UR_NBUFS * sizeof(struct io_uring_buf);
    u->map_len = ring_len + (size_t)UR_NBUFS * UR_BUF_SIZE;
    void *m = mmap(NULL, u->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    u->br = m;
    u->bufs = (char *)m + ring_len;
    io_uring_buf_ring_init(u->br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)u->br, .ring_entries = UR_NBUFS, .bgid = UR_BGID};
    int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc != 0) {
        munmap(m, u->map_len);
        return rc;
    }
    buffers_grow(u, UR_NBUFS_START);
    return 0;
}

static int ur_init(wk_worker *w)
{
    ur_state *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->vg = under_valgrind();
    int rc = ring_setup(&u->ring, UR_ENTRIES);
    if (rc < 0)
        goto fail_ring;
    if ((rc = bufs_setup(u)) != 0)
        goto fail_bufs;
    /*
     * Blocking, unlike the readiness backends' wake fd: io_uring honours
     * O_NONBLOCK on a read and would answer EAGAIN instead of waiting.
     * Writers never block on it (the counter would have to reach 2^64 - 2).
     */
    u->wakefd = eventfd(0, EFD_CLOEXEC);
    if (u->wakefd < 0) {
        rc = -errno;
        goto fail_wake;
    }
    arm_wake(u);
    w->io_state = u;
    return 0;
fail_wake:
    munmap(u->br, u->map_len);
fail_bufs:
    io_uring_queue_exit(&u->ring);
fail_ring:
    free(u);
    return rc;
}

static void ur_destroy(wk_worker *w)
{
    ur_state *u = st_of(w);
    if (!u)
        return;
    /* Closing the ring cancels what is left in flight (nothing: every
     * connection is closed, and close cancelled its sends). */
    io_uring_queue_exit(&u->ring);
    munmap(u->br, u->map_len);
    io_sock_close(u->wakefd, false);
    for (uint32_t i = 0; i < u->nchunks; i++)
        free(u->chunks[i]);
    free(u->chunks);
    free(u->cs);
    free(u->bufwait);
    free(u);
    w->io_state = NULL;
}

/* ---- input ----------------------------------------------------------------- */

/* Put a receive in flight for c (its bytes will land in a provided buffer). */
static void arm_recv(ur_state *u, weft_conn *c)
{
    ur_conn *s = side(u, c);
    if (s->flags & (UR_ARMED | UR_EOF | UR_RERR | UR_BUFWAIT | UR_DIRECT))
        return;
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) { /* cannot happen after a submit; retried as for no buffer */
        s->flags |= UR_BUFWAIT;
        return;
    }
    io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
    /* Armed when the socket was just found empty: wait for input before
     * trying (a receive is never issued only to fail). */
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = UR_BGID;
    io_uring_sqe_set_data64(sqe, ud_conn(c, UR_OP_RECV));
    s->flags |= UR_ARMED;
}

/* c's receive found no buffer: arm it again once one comes back. */
static int wait_for_buffer(ur_state *u, weft_conn *c)
{
    if (u->nwait == u->capwait) {
        uint32_t ncap = u->capwait ? u->capwait * 2 : 64;
        uint64_t *n = realloc(u->bufwait, ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        u->bufwait = n;
        u->capwait = ncap;
    }
    u->bufwait[u->nwait++] = conn_key(c);
    side(u, c)->flags |= UR_BUFWAIT;
    return 0;
}

/*
 * Before a wait: re-arm the receives that found no buffer, first giving
 * the ring more buffers while it may have more, then as many as there are
 * buffers back in the kernel's ring.
 */
static void rearm_waiting(wk_worker *w, ur_state *u)
{
    if (u->nwait == 0)
        return;
    if (u->nwait > u->nbufs - u->held)
        buffers_grow(u, u->nwait - (u->nbufs - u->held));
    uint32_t i = 0;
    while (i < u->nwait && u->held + i < u->nbufs) {
        uint64_t key = u->bufwait[i++];
        weft_conn *c = wk_conn_at(w, (uint32_t)key);
        if (!c || c->gen != (uint32_t)(key >> 32) || c->slot >= u->ncs)
            continue;
        ur_conn *s = side(u, c);
        if ((s->flags & (UR_LIVE | UR_BUFWAIT)) != (UR_LIVE | UR_BUFWAIT))
            continue;
        s->flags &= ~UR_BUFWAIT;
        arm_recv(u, c);
    }
    memmove(u->bufwait, u->bufwait + i, (u->nwait - i) * sizeof(*u->bufwait));
    u->nwait -= i;
}

/* Copy up to max bytes of buffer (p, n) into r's free space; bytes copied. */
static size_t copy_in(weft_ring *r, const char *p, size_t n, size_t max)
{
    struct iovec iov[2];
    int k = ring_free_segs(r, iov, n < max ? n : max);
    size_t done = 0;
    for (int i = 0; i < k; i++) {
        memcpy(iov[i].iov_base, p + done, iov[i].iov_len);
        done += iov[i].iov_len;
    }
    ring_produce(r, done);
    return done;
}

/*
 * Read the socket itself, after a receive that filled its whole buffer
 * (n bytes of it already in `in`): a bulk sender, whose bytes the state
 * machine takes in one turn as on epoll (a read of what the ring has
 * room for) instead of a buffer per turn. While such reads come back
 * full, the next recv reads again (UR_DIRECT); the first short one arms
 * the receive again, whose completion is the next input event.
 */
static ssize_t direct_recv(ur_state *u, weft_conn *c, weft_ring *in, size_t max, size_t n)
{
    ur_conn *s = side(u, c);
    ssize_t r = io_sock_recv(c->fd, in, max - n);
    if (r > 0 && (size_t)r == max - n) {
        s->flags |= UR_DIRECT;
        return (ssize_t)max;
    }
    s->flags &= ~UR_DIRECT;
    if (r > 0 || r == -EAGAIN) {
        n += r > 0 ? (size_t)r : 0;
        arm_recv(u, c);
        return n > 0 ? (ssize_t)n : -EAGAIN;
    }
    if (n > 0) { /* the end or the error again from the receive */
        arm_recv(u, c);
        return (ssize_t)n;
    }
    if (r == 0) {
        s->flags |= UR_EOF;
    } else {
        s->flags |= UR_RERR;
        s->rerr = (int32_t)r;
    }
    return r;
}

static ssize_t ur_recv(wk_worker *w, weft_conn *c, weft_ring *in, size_t max)
{
    ur_state *u = st_of(w);
    ur_conn *s = side(u, c);
    if (s->flags & UR_DIRECT)
        return direct_recv(u, c, in, max, 0);
    if (s->flags & UR_HAVE) {
        size_t n = copy_in(in, buf_at(u, s->bid) + s->off, s->len, max);
        if (n == 0)
            return -ENOBUFS; /* no room: never a 0 that reads as EOF */
        s->off = (uint16_t)(s->off + n);
        s->len = (uint16_t)(s->len - n);
        if (s->len > 0)
            return (ssize_t)n;
        bool full = s->off == UR_BUF_SIZE;
        s->flags &= ~UR_HAVE;
        u->held--;
        buf_recycle(u, s->bid);
        if (full && n < max)
            return direct_recv(u, c, in, max, n);
        arm_recv(u, c);
        return (ssize_t)n;
    }
    if (s->flags & UR_EOF)
        return 0;
    if (s->flags & UR_RERR)
        return s->rerr;
    arm_recv(u, c);
    return -EAGAIN;
}

/* A receive completed. */
static unsigned on_recv(wk_worker *w, ur_state *u, weft_conn *c, const struct io_uring_cqe *cqe)
{
    ur_conn *s = side(u, c);
    bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    s->flags &= ~UR_ARMED;
    if (cqe->res > 0 && has_buf) {
        s->flags |= UR_HAVE;
        s->bid = (uint16_t)bid;
        s->off = 0;
        s->len = (uint16_t)cqe->res;
        u->held++;
        return WK_IO_IN;
    }
    if (has_buf)
        buf_recycle(u, bid);
    switch (cqe->res) {
    case 0:
        s->flags |= UR_EOF;
        return WK_IO_IN | WK_IO_HUP;
    case -ENOBUFS:
        if (wait_for_buffer(u, c) == 0)
            return 0;
        s->rerr = -ENOMEM;
        break;
    case -EINTR:
    case -EAGAIN:
        arm_recv(u, c);
        return 0;
    default:
        s->rerr = cqe->res;
        break;
    }
    s->flags |= UR_RERR;
    return WK_IO_IN | WK_IO_ERR;
}

/* ---- output ---------------------------------------------------------------- */

static ur_out *send_get(ur_state *u)
{
    if (!u->free_sends) {
        enum { N = 64 };
        void **nc = realloc(u->chunks, (u->nchunks + 1) * sizeof(*nc));
        if (!nc)
            return NULL;
        u->chunks = nc;
        ur_out *a = calloc(N, sizeof(*a));
        if (!a)
            return NULL;
        u->chunks[u->nchunks++] = a;
        for (int i = 0; i < N; i++) {
            a[i].next = u->free_sends;
            u->free_sends = &a[i];
        }
    }
    ur_out *x = u->free_sends;
    u->free_sends = x->next;
    return x;
}

static void send_put(ur_state *u, ur_out *x)
{
    x->c = NULL;
    x->buf = NULL;
    x->next = u->free_sends;
    u->free_sends = x;
}

/* Smallest power of two >= v, at least base. */
static uint32_t block_size(uint32_t v, uint32_t base)
{
    uint32_t p = base;
    while (p < v)
        p <<= 1;
    return p;
}

/*
 * Take the first `take` bytes of `out` for a send: its storage, whole when
 * it holds no more; else the rest moves to new storage first (a file
 * queued behind ring bytes is the only such caller). 0 or -ENOMEM.
 */
static int take_storage(wk_worker *w, weft_ring *out, size_t take, ur_out *x)
{
    int k = weft_ring_peek(out, x->iov);
    if (x->iov[0].iov_len >= take) {
        x->iov[0].iov_len = take;
        k = 1;
    } else if (k == 2 && x->iov[0].iov_len + x->iov[1].iov_len > take) {
        x->iov[1].iov_len = take - x->iov[0].iov_len;
    }
    x->msg = (struct msghdr){.msg_iov = x->iov, .msg_iovlen = (size_t)k};
    x->cap = out->cap;
    size_t rest = weft_ring_len(out) - take;
    if (rest == 0) {
        x->buf = ring_detach(out);
        return 0;
    }
    uint32_t ncap = block_size((uint32_t)rest, w->g->cfg->ring_size);
    char *nb = pool_get(&w->pool, ncap);
    if (!nb)
        return -ENOMEM;
    weft_ring_consume(out, take);
    x->buf = ring_relocate(out, nb, ncap);
    return 0;
}

/* Queue x's bytes (one segment: SEND; a wrapped ring: SENDMSG). */
static void send_submit(ur_state *u, weft_conn *c, ur_out *x, struct io_uring_sqe *sqe)
{
    if (x->msg.msg_iovlen == 1)
        io_uring_prep_send(sqe, c->fd, x->iov[0].iov_base, x->iov[0].iov_len, MSG_NOSIGNAL);
    else
        io_uring_prep_sendmsg(sqe, c->fd, &x->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)x | UR_OP_SEND);
}

static ssize_t ur_send(wk_worker *w, weft_conn *c, weft_ring *out, size_t max)
{
    ur_state *u = st_of(w);
    ur_conn *s = side(u, c);
    if (s->serr) {
        int e = s->serr;
        s->serr = 0;
        return e;
    }
    if (s->send)
        return -EAGAIN; /* its completion reports WK_IO_OUT */
    size_t len = weft_ring_len(out);
    if (len == 0 || max == 0)
        return 0;
    size_t take = len < max ? len : max;
    ur_out *x = send_get(u);
    struct io_uring_sqe *sqe = x ? sqe_get(u) : NULL;
    if (!sqe || take_storage(w, out, take, x) != 0) {
        if (x)
            send_put(u, x);
        return -ENOMEM;
    }
    x->c = c;
    s->send = x;
    c->out_inflight = (uint32_t)take;
    send_submit(u, c, x, sqe);
    return (ssize_t)take;
}

/*
 * A short send: the rest goes out from where the peer stopped taking. The
 * state machine hears nothing until the end (its C_WANT_OUT waits for the
 * one output event of this send), but pending output shrinks
 * (out_inflight) and the output-stall clock sees a peer that takes bytes
 * (last_out).
 */
static int send_more(wk_worker *w, ur_state *u, ur_out *x, size_t done)
{
    weft_conn *c = x->c;
    struct iovec *v = x->iov;
    while (done > 0) {
        size_t k = done < v[0].iov_len ? done : v[0].iov_len;
        v[0].iov_base = (char *)v[0].iov_base + k;
        v[0].iov_len -= k;
        done -= k;
        if (v[0].iov_len == 0 && x->msg.msg_iovlen == 2) {
            v[0] = v[1];
            x->msg.msg_iovlen = 1;
        }
    }
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return -ENOMEM;
    c->out_inflight = (uint32_t)(v[0].iov_len + (x->msg.msg_iovlen == 2 ? v[1].iov_len : 0));
    c->last_out = (uint32_t)w->now_ms;
    send_submit(u, c, x, sqe);
    return 0;
}

/* A send completed (or went part of the way): c hears WK_IO_OUT. */
static void on_send(wk_worker *w, ur_state *u, ur_out *x, int res)
{
    weft_conn *c = x->c;
    if (c && res > 0 && (uint32_t)res < c->out_inflight && send_more(w, u, x, (size_t)res) == 0)
        return;
    if (x->buf)
        pool_put(&w->pool, x->buf, x->cap);
    send_put(u, x);
    if (!c)
        return; /* closed meanwhile */
    ur_conn *s = side(u, c);
    unsigned what = WK_IO_OUT;
    if (res < 0 || (uint32_t)res < c->out_inflight) {
        s->serr = res < 0 ? res : res == 0 ? -EPIPE : -ENOMEM; /* ENOMEM: no SQE */
        what |= WK_IO_ERR;
    }
    s->send = NULL;
    c->out_inflight = 0;
    if (s->flags & UR_SHUT) {
        s->flags &= ~UR_SHUT;
        int rc = io_sock_shutdown_wr(c->fd);
        if (rc != 0 && !s->serr)
            s->serr = rc;
    }
    wk_io_event(w, conn_key(c), what);
}

/* A one-shot POLLOUT for c: the end of a connect, room for sendfile. */
static void arm_pollout(ur_state *u, weft_conn *c)
{
    ur_conn *s = side(u, c);
    if (s->flags & UR_POLL)
        return;
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return;
    io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, ud_conn(c, UR_OP_POLL));
    s->flags |= UR_POLL;
}

static unsigned on_poll(ur_state *u, weft_conn *c, int res)
{
    ur_conn *s = side(u, c);
    s->flags &= ~UR_POLL;
    unsigned what = WK_IO_OUT;
    if (res < 0 || (res & POLLERR))
        what |= WK_IO_ERR;
    if (res > 0 && (res & POLLHUP))
        what |= WK_IO_HUP;
    if (s->flags & UR_CONNECTING) {
        s->flags &= ~UR_CONNECTING;
        if (!(what & (WK_IO_ERR | WK_IO_HUP)))
            arm_recv(u, c); /* connected: input from now on */
    }
    return what;
}

static ssize_t ur_sendfile(wk_worker *w, weft_conn *c, int fd, off_t *off, size_t len)
{
    ur_state *u = st_of(w);
    if (side(u, c)->send)
        return -EAGAIN; /* ring bytes before the file are still going out */
    ssize_t n = io_sock_sendfile(c->fd, fd, off, len);
    if (n == -EAGAIN)
        arm_pollout(u, c);
    return n;
}

static int ur_shutdown_wr(wk_worker *w, weft_conn *c)
{
    ur_conn *s = side(st_of(w), c);
    if (s->send) { /* FIN after what was taken */
        s->flags |= UR_SHUT;
        return 0;
    }
    return io_sock_shutdown_wr(c->fd);
}

/* ---- attach, connect, close ------------------------------------------------ */

/* c's entry in the slot table, made fresh; 0 or -ENOMEM. */
static int side_open(wk_worker *w, weft_conn *c)
{
    ur_state *u = st_of(w);
    if (c->slot >= u->ncs) {
        uint32_t n = u->ncs ? u->ncs : 256;
        while (n <= c->slot)
            n *= 2;
        ur_conn *ncs = realloc(u->cs, n * sizeof(*ncs));
        if (!ncs)
            return -ENOMEM;
        memset(ncs + u->ncs, 0, (n - u->ncs) * sizeof(*ncs));
        u->cs = ncs;
        u->ncs = n;
    }
    io_sock_setup(c->fd, w->g->cfg);
    *side(u, c) = (ur_conn){.flags = UR_LIVE};
    return 0;
}

static int ur_attach(wk_worker *w, weft_conn *c)
{
    int rc = side_open(w, c);
    if (rc == 0)
        arm_recv(st_of(w), c);
    return rc;
}

/*
 * While the connect is in progress no receive is in flight: a receive
 * would take the connect's error (SO_ERROR) for itself, and `connected`
 * could not tell a refusal from a later failure. The POLLOUT that ends
 * the connect arms it (on_poll).
 */
static int ur_connect(wk_worker *w, weft_conn *c, const struct sockaddr *sa, socklen_t len,
                      unsigned sockopts)
{
    int rc = io_sock_connect_attach(w, c, sa, len, sockopts, side_open);
    if (rc < 0)
        return rc;
    ur_state *u = st_of(w);
    if (rc == 1) {
        arm_recv(u, c);
    } else {
        side(u, c)->flags |= UR_CONNECTING;
        arm_pollout(u, c);
    }
    return rc;
}

/* Cancel the request whose user_data is ud; its completion still comes. */
static void cancel(ur_state *u, uint64_t ud)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, ud, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, UR_OP_SKIP);
}

/*
 * The send in flight for a closing connection: cancelled now, so its
 * storage can go back to the pool at once. If it completed meanwhile its
 * completion is simply not reported.
 */
static void cancel_send_now(wk_worker *w, ur_state *u, weft_conn *c, ur_out *x)
{
    struct io_uring_sync_cancel_reg reg = {
        .addr = (uint64_t)(uintptr_t)x | UR_OP_SEND,
        .timeout = {.tv_sec = -1, .tv_nsec = -1},
    };
    int rc = io_uring_register_sync_cancel(&u->ring, &reg);
    x->c = NULL;
    /* 0: cancelled; -ENOENT: it already ended (its CQE is queued). Only
     * then may the storage go back: otherwise the CQE returns it. */
    if (rc == 0 || rc == -ENOENT) {
        pool_put(&w->pool, x->buf, x->cap);
        x->buf = NULL;
    }
    c->out_inflight = 0;
}

static void ur_close(wk_worker *w, weft_conn *c, bool reset)
{
    ur_state *u = st_of(w);
    ur_conn *s = side(u, c);
    if (s->flags & UR_ARMED)
        cancel(u, ud_conn(c, UR_OP_RECV));
    if (s->flags & UR_POLL)
        cancel(u, ud_conn(c, UR_OP_POLL));
    if (s->send)
        cancel_send_now(w, u, c, s->send);
    if (s->flags & UR_HAVE) {
        u->held--;
        buf_recycle(u, s->bid);
    }
    *s = (ur_conn){0};
    /*
     * The socket itself goes (FIN or RST to the peer) when the cancelled
     * receive lets go of it, at the next submit: the next turn's wait; the
     * fd number is free now, and a connection that gets it has another key.
     */
    io_sock_close(c->fd, reset);
    c->fd = -1;
    /* A stopping worker may not turn again: let the socket go now. */
    if (w->stopping)
        (void)io_uring_submit(&u->ring);
}

/* ---- wait and wake --------------------------------------------------------- */

/* What one completion says; events are reported from here. */
static int on_cqe(wk_worker *w, ur_state *u, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    unsigned op = (unsigned)(ud & UR_OP_MASK);
    if (op == UR_OP_WAKE) {
        arm_wake(u);
        wk_io_woken(w);
        return 1;
    }
    if (op == UR_OP_SEND) {
        on_send(w, u, (ur_out *)(uintptr_t)(ud & ~(uint64_t)UR_OP_MASK), cqe->res);
        return 1;
    }
    if (op != UR_OP_RECV && op != UR_OP_POLL)
        return 0; /* a cancel that found nothing: nothing to say */
    uint32_t slot = (uint32_t)ud >> 3, gen = (uint32_t)(ud >> 32);
    weft_conn *c = wk_conn_at(w, slot);
    bool live = c && c->gen == gen && slot < u->ncs && (u->cs[slot].flags & UR_LIVE);
    if (!live) { /* closed since: only give the buffer back */
        if (op == UR_OP_RECV && (cqe->flags & IORING_CQE_F_BUFFER))
            buf_recycle(u, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        return 0;
    }
    unsigned what = op == UR_OP_RECV ? on_recv(w, u, c, cqe) : on_poll(u, c, cqe->res);
    if (what)
        wk_io_event(w, ((uint64_t)gen << 32) | slot, what);
    return what != 0;
}

/* enter for valgrind: submit, then block in poll(2) while nothing is done. */
static int vg_wait(ur_state *u, int timeout_ms)
{
    int rc = io_uring_submit_and_get_events(&u->ring);
    if (rc < 0 || io_uring_cq_ready(&u->ring) > 0)
        return rc;
    struct pollfd p = {.fd = u->ring.ring_fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) < 0)
        return -errno;
    return io_uring_submit_and_get_events(&u->ring);
}

static int enter(ur_state *u, int timeout_ms)
{
    if (timeout_ms != 0 && u->vg)
        return vg_wait(u, timeout_ms);
    if (timeout_ms == 0)
        return io_uring_submit_and_get_events(&u->ring);
    if (timeout_ms < 0)
        return io_uring_submit_and_wait(&u->ring, 1);
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    struct io_uring_cqe *cqe;
    return io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
}

/*
 * Enable the ring on the worker's thread, which SINGLE_ISSUER makes its
 * only submitter. (Debian's liburing 2.3 declares io_uring_enable_rings
 * but does not export it: the register call itself.)
 */
static int enable_ring(ur_state *u)
{
    if (syscall(__NR_io_uring_register, u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) !=
        0)
        return -errno;
    u->enabled = 1;
    return 0;
}

static int ur_wait(wk_worker *w, int timeout_ms)
{
    ur_state *u = st_of(w);
    if (!u->enabled) {
        int rc = enable_ring(u);
        if (rc < 0)
            return rc;
    }
    rearm_waiting(w, u);
    int rc = enter(u, timeout_ms);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    int n = 0;
    unsigned head, seen = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        n += on_cqe(w, u, cqe);
        seen++;
    }
    io_uring_cq_advance(&u->ring, seen);
    return n;
}

static void ur_wake(wk_worker *w) { io_wake_fd_signal(st_of(w)->wakefd); }

/* The io_uring backend's operations (workers/io.h). */
const wk_io_ops wk_io_uring = {
    .name = "uring",
    .probe = ur_probe,
    .init = ur_init,
    .destroy = ur_destroy,
    .attach = ur_attach,
    .recv = ur_recv,
    .send = ur_send,
    .sendfile = ur_sendfile,
    .connect = ur_connect,
    .connected = io_sock_op_connected,
    .shutdown_wr = ur_shutdown_wr,
    .close = ur_close,
    .discard = io_sock_op_discard,
    .wait = ur_wait,
    .wake = ur_wake,
};
