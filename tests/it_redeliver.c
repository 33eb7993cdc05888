/*
 * it_redeliver — a handler that stops consuming when weft_send reports
 * backpressure (1) gets its ring again once output drains, without any new
 * input from the peer.
 *
 * The handler answers each 8-byte request with 64 KiB, and stops as soon
 * as weft_send returns 1 (output above the 256 KiB high watermark),
 * leaving the other requests in the ring. The client sends 40 requests in
 * one write and then only reads: it must receive all 40 answers.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/weft.h"

#define REQS   40
#define ANSWER (64 * 1024)

static char answer[ANSWER];

static void on_data(weft_conn *c, weft_ring *in)
{
    while (weft_ring_len(in) >= 8) {
        weft_ring_consume(in, 8);
        if (weft_send(c, answer, sizeof(answer)) != 0)
            return; /* backpressure (or closing): leave the rest for later */
    }
}

int main(void)
{
    memset(answer, 'a', sizeof(answer));
    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 1;
    cfg.stats_interval_ms = 0;
    weft_handler h = {.on_data = on_data};
    weft_server *s;
    if (weft_server_new(&cfg, &h, NULL, &s) != 0 || weft_server_start(s) != 0) {
        fprintf(stderr, "it_redeliver: cannot start a server\n");
        return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(weft_server_port(s))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        return 1;
    }
    char req[REQS * 8];
    memset(req, 'r', sizeof(req));
    if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req)) {
        perror("write");
        return 1;
    }
    size_t want = (size_t)REQS * ANSWER, got = 0;
    char buf[65536];
    while (got < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            break; /* five seconds without a byte: the rest never comes */
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    weft_server_stop(s);
    weft_server_wait(s);
    weft_stats st;
    weft_server_stats(s, &st);
    weft_server_free(s);
    printf("it_redeliver: received %zu of %zu bytes; %llu backpressure pauses\n", got, want,
           (unsigned long long)st.bp_pauses);
    if (got != want || st.bp_pauses == 0) {
        printf("FAIL\n");
        return 1;
    }
    return 0;
}
