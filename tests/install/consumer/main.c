/*
 * An embedding program built against an installed weft: it starts a server
 * on a free loopback port, echoes a few messages through it, stops it and
 * checks the counters. Exits 0 only if every step worked.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <weft/weft.h>

#ifndef WEFT_PKG_VERSION
#error "build with -DWEFT_PKG_VERSION=\"x.y.z\" (the version the package reported)"
#endif

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "consumer: " __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                                       \
        return 1;                                                                                  \
    } while (0)

static void on_data(weft_conn *c, weft_ring *in) { weft_send_from(c, in, weft_ring_len(in)); }

/* Send msg and read the same bytes back; 0 on success. */
static int echo_once(int fd, const char *msg)
{
    size_t len = strlen(msg), got = 0;
    char buf[256];

    if (write(fd, msg, len) != (ssize_t)len)
        return -1;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return memcmp(buf, msg, len) == 0 ? 0 : -1;
}

int main(void)
{
    static const char *msgs[] = {"hello, installed weft\n", "x", "a longer line: 0123456789\n"};
    weft_handler h = {.on_data = on_data};
    weft_config cfg = weft_config_default();
    const char *why = NULL;
    weft_server *s = NULL;
    weft_stats st;
    uint64_t total = 0;
    int rc, fd;

    if (strcmp(WEFT_VERSION, WEFT_PKG_VERSION) != 0)
        FAIL("header says %s, the package says %s", WEFT_VERSION, WEFT_PKG_VERSION);

    cfg.bind_addr = "127.0.0.1";
    cfg.port = 0;
    cfg.workers = 2;
    cfg.pin = WEFT_PIN_NONE;
    if (weft_config_validate(&cfg, &why) != 0)
        FAIL("config rejected: %s", why ? why : "?");
    rc = weft_server_new(&cfg, &h, NULL, &s);
    if (rc != 0)
        FAIL("weft_server_new: %s", weft_strerror(rc));
    rc = weft_server_start(s);
    if (rc != 0)
        FAIL("weft_server_start: %s", weft_strerror(rc));
    if (weft_server_port(s) == 0)
        FAIL("no port bound");

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(weft_server_port(s));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        FAIL("connect to port %u: %s", weft_server_port(s), strerror(errno));
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        if (echo_once(fd, msgs[i]) != 0)
            FAIL("message %zu did not come back", i);
        total += strlen(msgs[i]);
    }
    close(fd);

    weft_server_stop(s);
    rc = weft_server_wait(s);
    if (rc != 0)
        FAIL("weft_server_wait: %s", weft_strerror(rc));
    weft_server_stats(s, &st);
    if (st.accepted != 1 || st.bytes_in != total || st.bytes_out != total)
        FAIL("counters: accepted %llu, in %llu, out %llu (expected 1, %llu, %llu)",
             (unsigned long long)st.accepted, (unsigned long long)st.bytes_in,
             (unsigned long long)st.bytes_out, (unsigned long long)total,
             (unsigned long long)total);
    printf("consumer: weft %s echoed %llu bytes on port %u\n", WEFT_VERSION,
           (unsigned long long)total, weft_server_port(s));
    weft_server_free(s);
    return 0;
}
