/*
 * examples/http/http_static.c — static files under --root (http_static.h).
 *
 * The file is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
 * relative to the root directory's fd: the kernel itself refuses a path
 * that would resolve outside the root, ".." and symlinks included, so no
 * string check can be fooled by a symlink planted under the root. The path
 * check below (no ".." segment, no NUL) is a second fence, and turns such
 * requests into a plain 404 without a system call.
 *
 * open(2) and fstat(2) run on the worker: for files in the page cache
 * they take microseconds; a server of cold files on slow disks would want
 * them on a thread pool (nginx's aio threads), which this example leaves.
 */
#include "http_static.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int g_root = -1;

int http_static_root(const char *dir)
{
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (g_root >= 0)
        close(g_root);
    g_root = fd;
    return 0;
}

int http_static_enabled(void) { return g_root >= 0; }

/* ---- reading the head ------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Decode the request target [t, t+n) into r->path: the path only (no
 * query, no scheme/authority), percent-decoded, refusing NUL and any ".."
 * segment.
 */
static void decode_path(http_static_req *r, const char *t, size_t n)
{
    size_t k = 0;
    if (n > 7 && !strncasecmp(t, "http://", 7)) { /* absolute-form: skip the authority */
        const char *slash = memchr(t + 7, '/', n - 7);
        if (!slash) {
            memcpy(r->path, "/", 2);
            return;
        }
        n -= (size_t)(slash - t);
        t = slash;
    }
    for (size_t i = 0; i < n && t[i] != '?' && t[i] != '#'; i++) {
        int ch = (unsigned char)t[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval(t[i + 1]) : -1, lo = i + 2 < n ? hexval(t[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                r->bad = 1;
                return;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || k + 1 >= sizeof(r->path)) {
            r->bad = 1;
            return;
        }
        r->path[k++] = (char)ch;
    }
    r->path[k] = '\0';
    if (r->path[0] != '/') {
        r->bad = 1;
        return;
    }
    /* A ".." segment anywhere ("/../x", "/a/..", "/a/../b"): refused. */
    for (const char *p = r->path; (p = strstr(p, "..")) != NULL; p += 2)
        if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
            r->bad = 1;
}

/* "bytes=A-B" | "bytes=A-" | "bytes=-N" (one range only). */
static void parse_range(http_static_req *r, const char *v)
{
    r->has_range = 1;
    if (strncasecmp(v, "bytes=", 6) != 0 || strchr(v, ','))
        return; /* another unit, or several ranges: the whole file */
    v += 6;
    char *end;
    if (*v == '-') {
        r->r_suffix = 1;
        r->r_last = strtoull(v + 1, &end, 10);
        r->range_ok = end != v + 1 && (*end == '\0' || *end == ' ');
        return;
    }
    r->r_first = strtoull(v, &end, 10);
    if (end == v || *end != '-')
        return;
    v = end + 1;
    if (*v == '\0' || *v == ' ') {
        r->r_last = UINT64_MAX;
        r->range_ok = 1;
        return;
    }
    r->r_last = strtoull(v, &end, 10);
    r->range_ok = end != v && r->r_last >= r->r_first;
}

void http_static_parse(const weft_ring *in, size_t head_len, http_static_req *r)
{
    memset(r, 0, sizeof(*r));
    r->ims = -1;
    char line[1200];
    size_t off = 0, n;
    int first = 1;
    while (off < head_len) {
        long nl = weft_ring_find(in, off, '\n');
        if (nl < 0 || (size_t)nl >= head_len)
            break;
        n = (size_t)nl - off;
        size_t keep = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
        weft_ring_copyout(in, off, line, keep);
        line[keep] = '\0';
        if (keep && line[keep - 1] == '\r')
            line[--keep] = '\0';
        off = (size_t)nl + 1;
        if (first) {
            if (keep == 0)
                continue; /* empty lines before the request line */
            first = 0;
            char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
            if (!sp2 || n >= sizeof(line) - 1) {
                r->bad = 1; /* a target longer than we keep */
                continue;
            }
            decode_path(r, sp1 + 1, (size_t)(sp2 - sp1 - 1));
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!strcasecmp(line, "range"))
            parse_range(r, v);
        else if (!strcasecmp(line, "if-modified-since")) {
            struct tm tm;
            memset(&tm, 0, sizeof(tm));
            const char *e = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            if (e && *e == '\0')
                r->ims = (int64_t)timegm(&tm);
        }
    }
}

/* ---- answering ------------------------------------------------------------------ */

static const char *type_of(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".css", "text/css"},
        {".js", "text/javascript"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},
        {".pdf", "application/pdf"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (!strcasecmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}

/* Open path under the root, beneath it only; the fd or -1 (errno set). */
static int open_beneath(const char *path)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    while (*path == '/')
        path++;
    return (int)syscall(SYS_openat2, g_root, *path ? path : ".", &how, sizeof(how));
}

/* A short answer without a file body. */
static int small(weft_conn *c, int status, const char *reason, const char *extra,
                 const char *conn_hdr, int head_only, http_count_fn count)
{
    count(c, status);
    static const char body[] = "not found\n";
    char head[512];
    int has_body = status == 404;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: weft-http\r\n%sContent-Length: %zu\r\n%s%s\r\n",
                     status, reason, has_body ? "Content-Type: text/plain\r\n" : "",
                     has_body ? sizeof(body) - 1 : 0, extra, conn_hdr);
    int rc = weft_send(c, head, (size_t)n);
    if (rc >= 0 && has_body && !head_only)
        rc = weft_send(c, body, sizeof(body) - 1);
    return rc;
}

int http_static_answer(weft_conn *c, const http_static_req *r, int head_only, const char *conn_hdr,
                       http_count_fn count)
{
    char path[1100];
    int st_code = 200;
    int *status = &st_code;
    if (r->bad || g_root < 0)
        return small(c, 404, "Not Found", "", conn_hdr, head_only, count);
    size_t pl = strlen(r->path);
    snprintf(path, sizeof(path), "%s%s", r->path, pl && r->path[pl - 1] == '/' ? "index.html" : "");
    int fd = open_beneath(path);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd); /* a directory: its index.html, if any */
        snprintf(path, sizeof(path), "%s/index.html", r->path);
        fd = open_beneath(path);
    }
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return small(c, 404, "Not Found", "", conn_hdr, head_only, count);
    }
    char lm[64];
    struct tm tm;
    gmtime_r(&st.st_mtime, &tm);
    strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (r->ims >= 0 && (int64_t)st.st_mtime <= r->ims) {
        close(fd);
        char extra[96];
        snprintf(extra, sizeof(extra), "Last-Modified: %s\r\n", lm);
        return small(c, 304, "Not Modified", extra, conn_hdr, 1, count);
    }
    uint64_t size = (uint64_t)st.st_size, first = 0, len = size;
    char range[96] = "";
    *status = 200;
    if (r->has_range && r->range_ok) {
        if (r->r_suffix) {
            len = r->r_last < size ? r->r_last : size;
            first = size - len;
        } else {
            first = r->r_first;
            uint64_t last = r->r_last < size ? r->r_last : size - 1;
            len = first < size ? last - first + 1 : 0;
        }
        if (first >= size || len == 0) {
            close(fd);
            char extra[96];
            snprintf(extra, sizeof(extra), "Content-Range: bytes */%llu\r\n",
                     (unsigned long long)size);
            return small(c, 416, "Range Not Satisfiable", extra, conn_hdr, 1, count);
        }
        snprintf(range, sizeof(range), "Content-Range: bytes %llu-%llu/%llu\r\n",
                 (unsigned long long)first, (unsigned long long)(first + len - 1),
                 (unsigned long long)size);
        *status = 206;
    }
    char head[768];
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nServer: weft-http\r\nContent-Type: %s\r\n"
                 "Content-Length: %llu\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n%s%s\r\n",
                 *status, *status == 206 ? "Partial Content" : "OK", type_of(path),
                 (unsigned long long)len, lm, range, conn_hdr);
    count(c, *status);
    int rc = weft_send(c, head, (size_t)n);
    if (rc < 0 || head_only) {
        close(fd);
        return rc;
    }
    return weft_send_file(c, fd, (off_t)first, len); /* the fd is weft's now */
}
