/*
 * tests/st_commands.c — a program's own admin commands
 * (weft_server_add_command): called with their arguments, answered in
 * order among the built-in ones, listed by help; bad names and late
 * registrations refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "itlib.h"
#include "weft/weft.h"

static char *echo_args(weft_server *s, const char *args, void *ud)
{
    (void)s;
    char *t = malloc(128);
    snprintf(t, 128, "%s args=[%s]\n", (const char *)ud, args);
    return t;
}

static void sink(weft_conn *c, weft_ring *in)
{
    (void)c;
    weft_ring_consume(in, weft_ring_len(in));
}

int main(void)
{
    char path[108];
    snprintf(path, sizeof(path), "/tmp/weft-st-commands-%d.sock", (int)getpid());
    weft_config cfg = weft_config_default();
    cfg.port = 0;
    cfg.workers = 1;
    cfg.stats_interval_ms = 50;
    cfg.admin_socket = path;
    weft_handler h = {.on_data = sink};
    weft_server *s;
    IT_CHECK(weft_server_new(&cfg, &h, NULL, &s) == 0, "server");
    IT_CHECK(weft_server_add_command(s, "backend-drain", "drain a backend", echo_args, "drain") ==
                 0,
             "add");
    IT_CHECK(weft_server_add_command(s, "stats", "x", echo_args, NULL) == -EINVAL, "builtin name");
    IT_CHECK(weft_server_add_command(s, "two words", "x", echo_args, NULL) == -EINVAL, "bad name");
    IT_CHECK(weft_server_add_command(s, "backend-drain", "x", echo_args, NULL) == -EINVAL, "twice");
    IT_CHECK(weft_server_start(s) == 0, "start");
    IT_CHECK(weft_server_add_command(s, "late", "x", echo_args, NULL) == -EBUSY, "after start");
    itl_sleep_ms(150);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    IT_CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
    const char *req = "backend-drain  web-1 now \nhelp\nbackend-drain\nnope\nquit\n";
    IT_CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req), "write");
    char buf[8192];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    char *one = strstr(buf, "drain args=[web-1 now]\n");
    char *help = strstr(buf, "  backend-drain ");
    char *two = strstr(buf, "drain args=[]\n");
    char *bad = strstr(buf, "error: unknown command 'nope'");
    IT_CHECK(one && help && two && bad && one < help && help < two && two < bad,
             "answers, in order: %s", buf);
    IT_CHECK(strstr(help, "drain a backend"), "help lists the command's text");
    weft_server_stop(s);
    IT_CHECK(weft_server_wait(s) == 0, "wait");
    weft_server_free(s);
    printf("st_commands: a program's command, its arguments, help, order, refusals: ok\n");
    return 0;
}
