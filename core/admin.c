/*
 * core/admin.c — the admin Unix socket and its commands (see admin.h).
 */
#include "core/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/inherit.h"
#include "core/log.h"
#include "core/server-t.h"
#include "stats/admin_proto.h"
#include "stats/sampler.h"

static const char help_text[] = "commands:\n"
                                "  stats        counters and rates, one \"name value\" a line\n"
                                "  stats json   the same and per-worker detail as one JSON line\n"
                                "  workers      a row per worker\n"
                                "  metrics      Prometheus text exposition format\n"
                                "  help         this list\n"
                                "  quit         close after the answers\n";

/* Queue text, or an error line when making it failed. */
static void answer(ep_client *c, char *text, int err)
{
    if (!text)
        text = strdup(err == -EAGAIN ? "error: no sample yet\n" : "error: out of memory\n");
    ep_answer(c, text);
}

static void render(st_sampler *sp, ep_client *c, weft_format fmt)
{
    int err = 0;
    char *t = sampler_render(sp, fmt, &err);
    answer(c, t, err);
}

/* The program's command named by the first word of line, or 0 when none. */
static int own_command(struct weft_server *s, ep_client *c, const char *line)
{
    size_t n = strcspn(line, " \t");
    for (int i = 0; i < s->ncmds; i++)
        if (strlen(s->cmds[i].name) == n && !strncmp(s->cmds[i].name, line, n)) {
            const char *args = line + n;
            while (*args == ' ' || *args == '\t')
                args++;
            answer(c, s->cmds[i].fn(s, args, s->cmds[i].ud), -ENOMEM);
            return 1;
        }
    return 0;
}

/* help: the built-in commands and the program's. */
static char *help_of(struct weft_server *s)
{
    size_t len = sizeof(help_text);
    for (int i = 0; i < s->ncmds; i++)
        len += strlen(s->cmds[i].name) + strlen(s->cmds[i].help) + 8;
    char *t = malloc(len);
    if (!t)
        return NULL;
    size_t k = (size_t)snprintf(t, len, "%s", help_text);
    for (int i = 0; i < s->ncmds; i++)
        k += (size_t)snprintf(t + k, len - k, "  %-12s %s\n", s->cmds[i].name, s->cmds[i].help);
    return t;
}

static void command(admin_ctx *ax, ep_client *c, char *line)
{
    st_sampler *sp = ax->sampler;
    const char *word;
    switch (adm_parse_line(line, &word)) {
    case ADM_NONE:
        break;
    case ADM_STATS:
        render(sp, c, WEFT_FORMAT_TEXT);
        break;
    case ADM_STATS_JSON:
        render(sp, c, WEFT_FORMAT_JSON);
        break;
    case ADM_WORKERS:
        render(sp, c, WEFT_FORMAT_WORKERS);
        break;
    case ADM_METRICS:
        render(sp, c, WEFT_FORMAT_PROMETHEUS);
        break;
    case ADM_HELP:
        answer(c, help_of(ax->srv), -ENOMEM);
        break;
    case ADM_QUIT:
        c->closing = 1;
        break;
    case ADM_UNKNOWN: {
        if (own_command(ax->srv, c, word))
            break;
        char msg[160];
        snprintf(msg, sizeof(msg), "error: unknown command '%.64s' (try 'help')\n", word);
        answer(c, strdup(msg), -ENOMEM);
        break;
    }
    }
}

/* Take the complete lines in c->in, one at a time: the next is read once
 * this answer is out. */
static void admin_input(void *ctx, ep_client *c)
{
    while (!c->out && !c->closing) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (!nl) {
            if (c->inlen >= ADM_LINE_MAX) {
                c->closing = c->draining = 1;
                char msg[96];
                snprintf(msg, sizeof(msg), "error: command longer than %d bytes\n",
                         ADM_LINE_MAX - 1);
                answer(c, strdup(msg), -ENOMEM);
            }
            return;
        }
        *nl = 0;
        size_t used = (size_t)(nl - c->in) + 1;
        command(ctx, c, c->in);
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

static void admin_refuse(void *ctx, int fd, ep_refusal why)
{
    (void)ctx;
    static const char busy[] = "error: too many admin clients\n";
    static const char room[] = "error: the server is out of file descriptors or memory\n";
    const char *m = why == EP_BUSY ? busy : room;
    ssize_t n = send(fd, m, strlen(m), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
}

const ep_proto admin_proto = {
    .name = "admin socket",
    .max_clients = ADM_MAX_CLIENTS,
    .in_max = ADM_LINE_MAX,
    .wait_ns = ADM_IDLE_NS,
    .input = admin_input,
    .refuse = admin_refuse,
};

/* Bind path (see admin_listen). Returns the fd or a negative errno. */
static int bind_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    int fd = inh_take((struct sockaddr *)&sa, sizeof(sa), NULL);
    if (fd >= 0)
        return fd; /* the predecessor's, passed on a reload */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST;
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -errno;
        int live = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(probe);
        if (live)
            return -EADDRINUSE;
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Linux creates the socket file with the fd's mode: no umask games. */
    if (fchmod(fd, 0600) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(path, 0600) != 0 || listen(fd, 64) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int admin_listen(struct weft_server *s, char *path, size_t size, int *fd)
{
    *fd = -1;
    const char *want = s->cfg.admin_socket;
    int explicit_path = want != NULL;
    if (explicit_path)
        snprintf(path, size, "%s", want);
    else
        snprintf(path, size, "/tmp/weft-%u.sock", s->port);
    if (!*path)
        return 0;
    int rc = bind_socket(path);
    if (rc >= 0) {
        *fd = rc;
        return 0;
    }
    wlog(s, explicit_path ? WEFT_LOG_ERROR : WEFT_LOG_WARN, "admin socket %s: %s%s", path,
         rc == -EADDRINUSE ? "another live server answers there" : weft_strerror(rc),
         explicit_path ? "" : "; continuing without it");
    return explicit_path ? rc : 0;
}
