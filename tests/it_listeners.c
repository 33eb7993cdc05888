/*
 * tests/it_listeners.c — many listeners in one server (weft_server_listen):
 * two TCP listeners and a Unix one, each with its own handler and user
 * data; the accept rate limit, the per-source limit and a listener's
 * max-conns refusing the excess and counting it; Unix socket files (stale
 * ones replaced, live ones and other files refused, the mode kept);
 * SO_REUSEPORT; TCP_NODELAY on accepted sockets unless the listener keeps
 * Nagle; and the spec parser.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "itlib.h"
#include "weft/weft.h"

/* Each listener's handler answers a line with its tag and the line. */
typedef struct tag {
    const char *text;
} tag;

static void answer(weft_conn *c, weft_ring *in)
{
    long nl = weft_ring_find(in, 0, '\n');
    if (nl < 0)
        return;
    const tag *t = weft_conn_origin_userdata(c);
    char line[128];
    int n = snprintf(line, sizeof(line), "%s %d ", t ? t->text : "none", weft_conn_listener(c));
    weft_send(c, line, (size_t)n);
    weft_send_from(c, in, (size_t)nl + 1);
}

/* A line to fd, the answer back (exactly want), within 3 s. */
static void ask(int fd, const char *want)
{
    IT_CHECK(itl_write_all(fd, "hi\n", 3, 3000) == 0, "write");
    char buf[128] = {0};
    size_t got = 0;
    int rc = itl_read_exact(fd, buf, strlen(want), 3000, &got);
    IT_CHECK(rc == 0 && memcmp(buf, want, strlen(want)) == 0, "answer '%.*s', want '%s' (%d)",
             (int)got, buf, want, rc);
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    IT_CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect %s: %s", path,
             strerror(errno));
    itl_set_nonblock(fd);
    return fd;
}

/* A TCP connection from source address src (127.0.0.x) to port. */
static int connect_from(const char *src, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    IT_CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s", src);
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    IT_CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s", strerror(errno));
    itl_set_nonblock(fd);
    return fd;
}

/*
 * TCP_NODELAY of the server's end of client (the server runs in this
 * process: the fd whose peer is client's own address); -1 if none found.
 */
static int server_nodelay(int client)
{
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof(me);
    IT_CHECK(getsockname(client, (struct sockaddr *)&me, &ml) == 0, "getsockname");
    DIR *d = opendir("/proc/self/fd");
    IT_CHECK(d, "/proc/self/fd: %s", strerror(errno));
    int v = -1;
    struct dirent *e;
    while (v < 0 && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        socklen_t pl = sizeof(peer);
        if (e->d_name[0] == '.' || fd == client || getpeername(fd, (struct sockaddr *)&peer, &pl))
            continue;
        if (pl != ml || memcmp(&peer, &me, ml) != 0)
            continue;
        int on = 0;
        socklen_t ol = sizeof(on);
        IT_CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &ol) == 0, "TCP_NODELAY");
        v = on != 0;
    }
    closedir(d);
    return v;
}

/* Is fd served (an answer comes) or refused (EOF or reset first)? */
static int served(int fd)
{
    if (itl_write_all(fd, "hi\n", 3, 2000) != 0)
        return 0;
    char buf[64];
    size_t got = 0;
    return itl_read_exact(fd, buf, 4, 2000, &got) == 0;
}

/* The latest snapshot's row for listener i, after the next sample. */
static weft_listener_snapshot row(weft_server *s, int i)
{
    itl_sleep_ms(150); /* stats every 50 ms: a sample after the events */
    weft_snapshot *snap = weft_server_snapshot(s, NULL);
    IT_CHECK(snap && i < snap->nlisteners, "no snapshot with listener %d", i);
    weft_listener_snapshot r = snap->listeners[i];
    weft_snapshot_free(snap);
    return r;
}

static void test_parse(void)
{
    weft_listener_opts o;
    const char *why;
    IT_CHECK(weft_listener_parse("127.0.0.1:80,rate=100,burst=5,per-source=3,max-conns=9,"
                                 "backlog=7,reuseport,nagle,keepalive=30,name=api",
                                 &o, &why) == 0,
             "a full spec: %s", why);
    IT_CHECK(o.rate == 100 && o.burst == 5 && o.per_source == 3 && o.max_conns == 9 &&
                 o.backlog == 7 && o.reuseport && o.nagle && o.keepalive_s == 30 &&
                 strncmp(o.name, "api", 3) == 0,
             "fields");
    IT_CHECK(weft_listener_parse("unix:/tmp/x.sock,mode=0600", &o, &why) == 0 && o.mode == 0600,
             "mode");
    const char *bad[] = {"",           "127.0.0.1",           "127.0.0.1:80,rate=x", "a.b:80",
                         "[::1]:80,x", "127.0.0.1:80,mode=9", "1.2.3.4:70000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        IT_CHECK(weft_listener_parse(bad[i], &o, &why) == -EINVAL && why, "'%s' accepted", bad[i]);
    }
}

int main(void)
{
    test_parse();
    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 2;
    cfg.stats_interval_ms = 50;
    cfg.admin_socket = "";
    static const tag t0 = {"zero"}, t1 = {"one"}, tu = {"unix"};
    weft_handler h = {.on_data = answer};
    weft_server *s;
    IT_CHECK(weft_server_new(&cfg, &h, (void *)&t0, &s) == 0, "server");

    /* Listener 1: a second TCP port, its own user data, Nagle kept. */
    weft_listener_opts o1 = {
        .addr = "127.0.0.1:0", .name = "second", .ud = (void *)&t1, .nagle = true};
    IT_CHECK(weft_server_listen(s, &o1) == 1, "listener 1");
    /* Listener 2: Unix, over a stale socket file left by a "crash". */
    char path[108];
    snprintf(path, sizeof(path), "/tmp/weft-it-lsn-%d.sock", (int)getpid());
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un ua = {.sun_family = AF_UNIX};
    snprintf(ua.sun_path, sizeof(ua.sun_path), "%s", path);
    IT_CHECK(bind(stale, (struct sockaddr *)&ua, sizeof(ua)) == 0, "stale bind");
    close(stale); /* the file stays; nobody listens */
    char spec[160];
    snprintf(spec, sizeof(spec), "unix:%s", path);
    weft_listener_opts ou = {.addr = spec, .ud = (void *)&tu, .mode = 0600};
    IT_CHECK(weft_server_listen(s, &ou) == 2, "unix listener over a stale file");
    struct stat st;
    IT_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
    /* A live one is refused, and so is a file that is no socket. */
    IT_CHECK(weft_server_listen(s, &ou) == -EADDRINUSE, "a live socket path");
    char file[128];
    snprintf(file, sizeof(file), "/tmp/weft-it-lsn-%d.file", (int)getpid());
    FILE *f = fopen(file, "w");
    fclose(f);
    char fspec[160];
    snprintf(fspec, sizeof(fspec), "unix:%s", file);
    weft_listener_opts of = {.addr = fspec};
    IT_CHECK(weft_server_listen(s, &of) == -EEXIST, "a regular file at the path");
    unlink(file);

    /* Listener 3: rate 5/s with a burst of 5. Listener 4: 2 per source.
     * Listener 5: at most 2 open. */
    weft_listener_opts orate = {.addr = "127.0.0.1:0", .name = "rated", .rate = 5, .burst = 5};
    weft_listener_opts osrc = {.addr = "127.0.0.1:0", .name = "per-source", .per_source = 2};
    weft_listener_opts omax = {.addr = "127.0.0.1:0", .name = "capped", .max_conns = 2};
    IT_CHECK(weft_server_listen(s, &orate) == 3 && weft_server_listen(s, &osrc) == 4 &&
                 weft_server_listen(s, &omax) == 5,
             "limited listeners");
    /* SO_REUSEPORT: a second listener on the same port, only when both ask. */
    weft_listener_opts orp = {.addr = "127.0.0.1:0", .reuseport = true};
    IT_CHECK(weft_server_listen(s, &orp) == 6, "reuseport listener");
    char same[64];
    snprintf(same, sizeof(same), "127.0.0.1:%u", weft_server_listener_port(s, 6));
    weft_listener_opts orp2 = {.addr = same, .reuseport = true};
    weft_listener_opts orp3 = {.addr = same};
    IT_CHECK(weft_server_listen(s, &orp3) == -EADDRINUSE, "same port without reuseport");
    IT_CHECK(weft_server_listen(s, &orp2) == 7, "same port with reuseport on both");
    IT_CHECK(weft_server_start(s) == 0, "start");
    IT_CHECK(weft_server_listen(s, &o1) == -EBUSY, "a listener after start");
    IT_CHECK(weft_server_listeners(s) == 8, "8 listeners");

    /* Each listener runs its own handler data; listener() says which. */
    int a = itl_connect("127.0.0.1", weft_server_listener_port(s, 0), 2000, 0);
    int b = itl_connect("127.0.0.1", weft_server_listener_port(s, 1), 2000, 0);
    int u = unix_connect(path);
    ask(a, "zero 0 hi\n");
    ask(b, "one 1 hi\n");
    ask(u, "unix 2 hi\n");
    /* TCP_NODELAY by default; not where the listener keeps Nagle. */
    IT_CHECK(server_nodelay(a) == 1, "listener 0: TCP_NODELAY %d, want 1", server_nodelay(a));
    IT_CHECK(server_nodelay(b) == 0, "listener 1 (nagle): TCP_NODELAY %d, want 0",
             server_nodelay(b));
    close(a), close(b), close(u);

    /* Rate: 20 at once, about the burst served, the rest refused and counted. */
    int fds[20], ok = 0;
    for (int i = 0; i < 20; i++)
        fds[i] = itl_connect("127.0.0.1", weft_server_listener_port(s, 3), 2000, 0);
    for (int i = 0; i < 20; i++) {
        ok += served(fds[i]);
        close(fds[i]);
    }
    weft_listener_snapshot r = row(s, 3);
    IT_CHECK(ok >= 5 && ok <= 7 && r.rejected_rate == (uint64_t)(20 - ok) &&
                 r.accepted == (uint64_t)ok,
             "rate 5/s, burst 5: %d served, accepted %llu, rejected_rate %llu", ok,
             (unsigned long long)r.accepted, (unsigned long long)r.rejected_rate);

    /* The limit changes at run time: none now, so all 20 are served. */
    IT_CHECK(weft_server_listener_limit(s, 3, 0, 0) == 0, "limit");
    IT_CHECK(weft_server_listener_limit(s, 99, 0, 0) == -EINVAL, "limit of no listener");
    int ok2 = 0;
    for (int i = 0; i < 20; i++)
        fds[i] = itl_connect("127.0.0.1", weft_server_listener_port(s, 3), 2000, 0);
    for (int i = 0; i < 20; i++) {
        ok2 += served(fds[i]);
        close(fds[i]);
    }
    IT_CHECK(ok2 == 20, "without a rate limit: %d of 20 served", ok2);

    /* Per source: 2 from 127.0.0.1 held open, the 3rd refused; another
     * source is not; closing one lets the first source in again. */
    uint16_t ps = weft_server_listener_port(s, 4);
    int p1 = connect_from("127.0.0.1", ps), p2 = connect_from("127.0.0.1", ps);
    IT_CHECK(served(p1) && served(p2), "two from one source");
    int p3 = connect_from("127.0.0.1", ps);
    IT_CHECK(!served(p3), "a third from the same source must be refused");
    close(p3);
    int q1 = connect_from("127.0.0.2", ps);
    IT_CHECK(served(q1), "another source is not limited by the first");
    close(p1);
    itl_sleep_ms(100); /* the worker sees the close and gives the count back */
    int p4 = connect_from("127.0.0.1", ps);
    IT_CHECK(served(p4), "after a close the source may connect again");
    r = row(s, 4);
    IT_CHECK(r.rejected_source == 1 && r.accepted == 4 && r.open == 3,
             "per-source: rejected %llu, accepted %llu, open %llu",
             (unsigned long long)r.rejected_source, (unsigned long long)r.accepted,
             (unsigned long long)r.open);
    close(p2), close(q1), close(p4);

    /* max-conns 2: the third open one is refused. */
    uint16_t mp = weft_server_listener_port(s, 5);
    int m1 = itl_connect("127.0.0.1", mp, 2000, 0), m2 = itl_connect("127.0.0.1", mp, 2000, 0);
    IT_CHECK(served(m1) && served(m2), "two under max-conns");
    int m3 = itl_connect("127.0.0.1", mp, 2000, 0);
    IT_CHECK(!served(m3), "a third over max-conns must be refused");
    r = row(s, 5);
    IT_CHECK(r.rejected_max == 1 && r.open == 2, "max-conns: rejected %llu, open %llu",
             (unsigned long long)r.rejected_max, (unsigned long long)r.open);
    close(m1), close(m2), close(m3);

    weft_server_stop(s);
    IT_CHECK(weft_server_wait(s) == 0, "wait");
    weft_server_free(s);
    IT_CHECK(access(path, F_OK) != 0, "the Unix socket file is removed at the end");
    printf("it_listeners: 3 handlers, rate (%d of 20 served), per-source, max-conns, unix files, "
           "reuseport, nodelay/nagle, parser: ok\n",
           ok);
    return 0;
}
