/*
 * tests/it_sendfile.c — files in the output path on real sockets
 * (weft_send_file): a 100 MB file arrives byte-exact between buffered
 * bytes, ranges are right, several files and buffered bytes stay in
 * order, a slow reader is paused by the watermarks (the bytes of a file
 * count) and still gets every byte, and no fd leaks.
 *
 * The server runs in-process; its handler reads one request line,
 * "OFF LEN\n", and answers "[" + those bytes of the file + "]".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itlib.h"
#include "weft/weft.h"

#define FILE_SIZE (100u << 20)

static char g_path[64];

/* The file's byte at offset i: a pattern every range can be checked against. */
static unsigned char byte_at(uint64_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

static void make_file(void)
{
    snprintf(g_path, sizeof(g_path), "/tmp/weft-it-sendfile-%d", (int)getpid());
    int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    IT_CHECK(fd >= 0, "create %s", g_path);
    static unsigned char buf[1 << 16];
    for (uint64_t off = 0; off < FILE_SIZE; off += sizeof(buf)) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = byte_at(off + i);
        IT_CHECK(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "write");
    }
    close(fd);
}

static atomic_int g_files_sent;

static void on_data(weft_conn *c, weft_ring *in)
{
    long nl;
    while ((nl = weft_ring_find(in, 0, '\n')) >= 0) {
        char line[64] = {0};
        weft_ring_copyout(in, 0, line, nl < 63 ? (size_t)nl : 63);
        weft_ring_consume(in, (size_t)nl + 1);
        unsigned long long off, len;
        int parts = sscanf(line, "%llu %llu", &off, &len);
        int fd = open(g_path, O_RDONLY | O_CLOEXEC);
        if (parts != 2 || fd < 0) {
            weft_close(c);
            return;
        }
        weft_send(c, "[", 1);
        weft_send_file(c, fd, (off_t)off, len); /* the fd is weft's now */
        weft_send(c, "]", 1);
        atomic_fetch_add(&g_files_sent, 1);
    }
}

/* Ask for OFF LEN; read "[" bytes "]" back and check every byte. */
static void fetch(uint16_t port, uint64_t off, uint64_t len, int slow)
{
    int fd = itl_connect("127.0.0.1", port, 2000, slow ? 16384 : 0);
    IT_CHECK(fd >= 0, "connect");
    char req[64];
    int n =
        snprintf(req, sizeof(req), "%llu %llu\n", (unsigned long long)off, (unsigned long long)len);
    IT_CHECK(itl_write_all(fd, req, (size_t)n, 2000) == 0, "request");
    static unsigned char buf[1 << 16];
    size_t got = 0;
    IT_CHECK(itl_read_exact(fd, buf, 1, 5000, &got) == 0 && buf[0] == '[', "opening bracket");
    for (uint64_t done = 0; done < len;) {
        size_t want = len - done < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);
        if (slow && done < (4u << 20))
            itl_sleep_ms(2); /* a slow reader for the first 4 MB */
        IT_CHECK(itl_read_exact(fd, buf, want, 20000, &got) == 0, "at %llu of %llu",
                 (unsigned long long)done, (unsigned long long)len);
        for (size_t i = 0; i < want; i++)
            if (buf[i] != byte_at(off + done + i))
                IT_CHECK(0, "byte %llu of range %llu+%llu is wrong", (unsigned long long)(done + i),
                         (unsigned long long)off, (unsigned long long)len);
        done += want;
    }
    IT_CHECK(itl_read_exact(fd, buf, 1, 5000, &got) == 0 && buf[0] == ']', "closing bracket");
    close(fd);
}

int main(void)
{
    make_file();
    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 2;
    cfg.stats_interval_ms = 0;
    weft_handler h = {.on_data = on_data};
    weft_server *s;
    IT_CHECK(weft_server_new(&cfg, &h, NULL, &s) == 0, "server");
    IT_CHECK(weft_server_start(s) == 0, "start");
    int fds0 = itl_count_fds(getpid());
    uint16_t port = weft_server_port(s);

    fetch(port, 0, FILE_SIZE, 0);        /* the whole file */
    fetch(port, 12345, 678901, 0);       /* a range inside */
    fetch(port, FILE_SIZE - 10, 10, 0);  /* the last bytes */
    fetch(port, 7, 0, 0);                /* an empty range */
    fetch(port, 1u << 20, 24u << 20, 1); /* a slow reader */

    /* Two ranges pipelined on one connection: in order, each bracketed. */
    int fd = itl_connect("127.0.0.1", port, 2000, 0);
    IT_CHECK(itl_write_all(fd, "100 3\n200 4\n", 12, 2000) == 0, "pipelined");
    unsigned char two[11];
    size_t got;
    IT_CHECK(itl_read_exact(fd, two, sizeof(two), 5000, &got) == 0, "pipelined answers");
    IT_CHECK(two[0] == '[' && two[4] == ']' && two[5] == '[' && two[10] == ']', "brackets");
    for (int i = 0; i < 3; i++)
        IT_CHECK(two[1 + i] == byte_at(100 + (uint64_t)i), "first range");
    for (int i = 0; i < 4; i++)
        IT_CHECK(two[6 + i] == byte_at(200 + (uint64_t)i), "second range");
    close(fd);

    /* Every file the handler opened was closed by weft once sent. */
    int fds1 = itl_wait_fds(getpid(), fds0, 3000);
    IT_CHECK(fds1 == fds0, "fds: %d before, %d after", fds0, fds1);
    weft_server_stop(s);
    IT_CHECK(weft_server_wait(s) == 0, "wait");
    weft_stats st;
    weft_server_stats(s, &st);
    weft_server_free(s);
    unlink(g_path);
    IT_CHECK(atomic_load(&g_files_sent) == 7, "files sent: %d", atomic_load(&g_files_sent));
    printf("it_sendfile: 100 MB whole, ranges, pipelined, slow reader, no fd left: ok "
           "(%llu bytes out, %llu writes)\n",
           (unsigned long long)st.bytes_out, (unsigned long long)st.writes);
    return 0;
}
