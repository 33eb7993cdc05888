/*
 * it_echo_random — weft-echo echoes every byte, in order, under random
 * message sizes and random write/read splits.
 *
 * usage: it_echo_random PATH-TO-WEFT-ECHO
 *
 * Starts weft-echo with 2 workers on 127.0.0.1 (port 0) and runs 8
 * concurrent connections of 8 MiB each (64 MiB in all): messages of 1 byte
 * to 1 MiB, written in random non-blocking chunks interleaved with reads,
 * every echoed byte checked against the connection's seeded stream.
 * Asserts that the server's fd count returns to its starting value once
 * the clients close, and that SIGTERM stops it with exit status 0.
 *
 * usage: it_echo_random PATH-TO-WEFT-ECHO ipv6
 *
 * The same over IPv6: weft-echo bound to ::1 (--bind ::1: no IPv4
 * listener), 2 connections of 4 MiB to ::1, every byte checked. Where ::1
 * cannot be bound (no IPv6 loopback, as in some containers) it exits with
 * IT_SKIP (77), which ctest reports as skipped, not passed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itlib.h"

#define MiB (1024ULL * 1024)

/* Can this host bind a TCP socket on ::1? */
static int ipv6_loopback_ok(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Run the echo conversation against one server and check it cleans up. */
static void run(const char *echo, const char *bind, int nconns, uint64_t per_conn, uint64_t seed)
{
    const char *args[] = {"--bind", bind, "--workers", "2", NULL};
    itl_server srv;
    int rc = itl_server_start(&srv, echo, args, 20000);
    IT_CHECK(rc == 0, "start %s --bind %s: %s", echo, bind, strerror(-rc));
    int base = itl_count_fds(srv.pid);
    IT_CHECK(base > 0, "cannot read /proc/%d/fd", (int)srv.pid);

    const char *host = strcmp(bind, "::1") == 0 ? "::1" : "127.0.0.1";
    uint64_t got = itl_echo_random(host, srv.port, nconns, per_conn, MiB, seed, 90000);
    IT_CHECK(got == (uint64_t)nconns * per_conn, "echoed %llu bytes", (unsigned long long)got);

    int now = itl_wait_fds(srv.pid, base, 10000);
    IT_CHECK(now == base, "server holds %d fds after every client closed, %d before", now, base);
    IT_CHECK(itl_server_alive(&srv), "server died");
    rc = itl_server_stop(&srv, 20000);
    IT_CHECK(rc == 0, "weft-echo exit status %d after SIGTERM (want 0)", rc);
}

/* ctest's SKIP_RETURN_CODE for this test (tests/integration.cmake). */
#define IT_SKIP 77

int main(int argc, char **argv)
{
    IT_CHECK(argc == 2 || (argc == 3 && strcmp(argv[2], "ipv6") == 0),
             "usage: it_echo_random PATH-TO-WEFT-ECHO [ipv6]");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2) {
        run(argv[1], "127.0.0.1", 8, 8 * MiB, 1);
        printf("ipv4: 8 connections x 8 MiB echoed and verified\n");
    } else if (ipv6_loopback_ok()) {
        run(argv[1], "::1", 2, 4 * MiB, 2);
        printf("ipv6: 2 connections x 4 MiB echoed and verified on ::1\n");
    } else {
        printf("SKIP: ::1 cannot be bound on this host (no IPv6 loopback)\n");
        return IT_SKIP;
    }
    printf("PASS\n");
    return 0;
}
