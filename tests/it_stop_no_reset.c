/*
 * it_stop_no_reset — regression test: at an orderly stop, output the server
 * already wrote must not be lost when the peer is still sending.
 *
 * close(2) on a socket with unread input sends a RST instead of a FIN, and
 * the RST makes the peer's kernel discard what it had received but not yet
 * delivered. weft therefore closes gracefully with a lingering close
 * (workers/conn.c): shutdown(SHUT_WR) once output is flushed, then read and
 * discard until EOF or close_linger_ms, then close.
 *
 * A client (small receive buffer) keeps sending while reading slowly; the
 * server is stopped after 300 ms. Asserts that the client then receives
 * every byte the server wrote, followed by EOF, not a reset.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itlib.h"
#include "weft/weft.h"

static void on_data(weft_conn *c, weft_ring *in) { weft_send_from(c, in, weft_ring_len(in)); }

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    weft_config cfg = weft_config_default();
    cfg.bind_addr = "127.0.0.1";
    cfg.port = 0;
    cfg.workers = 1;
    cfg.log_level = WEFT_LOG_WARN;
    weft_handler h = {.on_data = on_data};
    weft_server *s;
    IT_CHECK(weft_server_new(&cfg, &h, NULL, &s) == 0, "weft_server_new");
    IT_CHECK(weft_server_start(s) == 0, "weft_server_start");
    int fd = itl_connect("127.0.0.1", weft_server_port(s), 5000, 16384);
    IT_CHECK(fd >= 0, "connect: %s", strerror(-fd));

    static char out[65536], in[4096];
    memset(out, 'a', sizeof(out));
    unsigned long long got = 0;
    int64_t t0 = itl_now_ms();
    int stopped = 0, err = 0, eof = 0;
    while (!eof && !err && itl_now_ms() - t0 < 20000) {
        if (!stopped && itl_now_ms() - t0 > 300) {
            weft_server_stop(s);
            stopped = 1;
        }
        if (send(fd, out, sizeof(out), MSG_NOSIGNAL) < 0 && errno != EAGAIN)
            err = errno; /* keep sending until the server goes away */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 5);
        for (int i = 0; i < 4; i++) { /* read slowly */
            ssize_t r = read(fd, in, sizeof(in));
            if (r > 0) {
                got += (unsigned long long)r;
                continue;
            }
            if (r == 0)
                eof = 1;
            else if (errno != EAGAIN)
                err = errno;
            break;
        }
    }
    IT_CHECK(weft_server_wait(s) == 0, "weft_server_wait");
    weft_stats st;
    weft_server_stats(s, &st);
    printf("server read %llu and wrote %llu bytes; the client received %llu, then %s\n",
           (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out, got,
           err   ? strerror(err)
           : eof ? "EOF"
                 : "nothing (timeout)");
    weft_server_free(s);
    close(fd);
    IT_CHECK(err == 0, "the client saw '%s' at the orderly stop", strerror(err));
    IT_CHECK(got == st.bytes_out, "%llu bytes the server wrote never arrived",
             (unsigned long long)(st.bytes_out - got));
    printf("PASS\n");
    return 0;
}
