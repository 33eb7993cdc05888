/*
 * examples/chat/proto.c — the weft-chat line parser (see proto.h).
 *
 * Grammar (one line, '\n' already removed, a trailing '\r' dropped):
 *
 *     line    = ""                      ; ignored
 *             | text                    ; not starting with '/'
 *             | "//" text               ; text that starts with '/'
 *             | "/" word [ SP+ args ]   ; a command
 *     name    = 1*32 ( ALPHA / DIGIT / "_" / "-" )
 *
 * Names are case-sensitive. Text is relayed byte for byte: it cannot hold a
 * '\n' (that ends the line), so it cannot forge another line.
 */
#include "proto.h"

#include <string.h>

bool chat_valid_name(const char *s, size_t n)
{
    if (n == 0 || n > CHAT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool chat_valid_file(const char *s, size_t n)
{
    if (n == 0 || n > CHAT_FILE_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

bool chat_valid_file_id(const char *s, size_t n)
{
    if (n != CHAT_FILE_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Skip spaces from *p (at most end). */
static const char *skip_sp(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

/* The token at p up to the next space or end. */
static const char *token_end(const char *p, const char *end)
{
    while (p < end && *p != ' ')
        p++;
    return p;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static void bad(chat_cmd *out, const char *err)
{
    out->kind = CHAT_BAD;
    out->err = err;
}

/* A command with no arguments: trailing spaces are fine, anything else is not. */
static void no_args(chat_cmd *out, chat_cmd_kind k, const char *args, const char *end,
                    const char *usage)
{
    if (skip_sp(args, end) != end)
        bad(out, usage);
    else
        out->kind = k;
}

/* One name argument (NICK, JOIN), optionally with a '#' before it. */
static void one_name(chat_cmd *out, chat_cmd_kind k, const char *args, const char *end,
                     bool hash_ok, const char *usage)
{
    const char *p = skip_sp(args, end);
    if (hash_ok && p < end && *p == '#')
        p++;
    const char *e = token_end(p, end);
    if (!chat_valid_name(p, (size_t)(e - p)) || skip_sp(e, end) != end) {
        bad(out, usage);
        return;
    }
    out->kind = k;
    out->name = p;
    out->name_len = (size_t)(e - p);
}

/* NAME PASSWORD: a valid name, one space, 1..CHAT_PASS_MAX bytes without a space. */
static void name_pass(chat_cmd *out, chat_cmd_kind k, const char *args, const char *end,
                      const char *usage)
{
    const char *p = skip_sp(args, end);
    const char *e = token_end(p, end);
    const char *pw = skip_sp(e, end);
    const char *pe = token_end(pw, end);
    if (!chat_valid_name(p, (size_t)(e - p)) || pe == pw || (size_t)(pe - pw) > CHAT_PASS_MAX ||
        skip_sp(pe, end) != end) {
        bad(out, usage);
        return;
    }
    out->kind = k;
    out->name = p;
    out->name_len = (size_t)(e - p);
    out->text = pw;
    out->text_len = (size_t)(pe - pw);
}

/* NAME|#ROOM FILENAME SIZE */
static void send_args(chat_cmd *out, const char *args, const char *end)
{
    static const char usage[] = "usage: /send NAME|#ROOM FILENAME SIZE";
    const char *p = skip_sp(args, end);
    bool room = p < end && *p == '#';
    const char *n = room ? p + 1 : p;
    const char *ne = token_end(n, end);
    const char *f = skip_sp(ne, end);
    const char *fe = token_end(f, end);
    const char *z = skip_sp(fe, end);
    const char *ze = token_end(z, end);
    uint64_t size = 0;
    bool ok = chat_valid_name(n, (size_t)(ne - n)) && chat_valid_file(f, (size_t)(fe - f)) &&
              ze > z && skip_sp(ze, end) == end;
    for (const char *q = z; ok && q < ze; q++) {
        ok = *q >= '0' && *q <= '9' && size <= CHAT_FILE_SIZE_MAX;
        size = size * 10 + (uint64_t)(*q - '0');
    }
    if (!ok || size == 0 || size > CHAT_FILE_SIZE_MAX) {
        bad(out, usage);
        return;
    }
    out->kind = CHAT_SEND;
    out->to_room = room;
    out->name = n;
    out->name_len = (size_t)(ne - n);
    out->file = f;
    out->file_len = (size_t)(fe - f);
    out->size = size;
}

/* [#ROOM] [N]: either, both or none. */
static void history_args(chat_cmd *out, const char *args, const char *end)
{
    static const char usage[] = "usage: /history [ROOM] [N] (N from 1 to 500)";
    const char *p = skip_sp(args, end);
    const char *e = token_end(p, end);
    if (p < end && (*p == '#' || !(*p >= '0' && *p <= '9'))) {
        const char *n = *p == '#' ? p + 1 : p;
        if (!chat_valid_name(n, (size_t)(e - n))) {
            bad(out, usage);
            return;
        }
        out->name = n;
        out->name_len = (size_t)(e - n);
        p = skip_sp(e, end);
        e = token_end(p, end);
    }
    if (p < end) {
        unsigned v = 0;
        for (const char *q = p; q < e; q++) {
            if (*q < '0' || *q > '9' || v > CHAT_HISTORY_MAX) {
                bad(out, usage);
                return;
            }
            v = v * 10 + (unsigned)(*q - '0');
        }
        if (v == 0 || v > CHAT_HISTORY_MAX || skip_sp(e, end) != end) {
            bad(out, usage);
            return;
        }
        out->count = v;
    }
    out->kind = CHAT_HISTORY;
}

void chat_parse(const char *line, size_t len, chat_cmd *out)
{
    memset(out, 0, sizeof(*out));
    if (len > 0 && line[len - 1] == '\r')
        len--;
    const char *end = line + len;
    if (len == 0) {
        out->kind = CHAT_NONE;
        return;
    }
    if (line[0] != '/' || (len >= 2 && line[1] == '/')) {
        out->kind = CHAT_TEXT;
        out->text = line[0] == '/' ? line + 1 : line;
        out->text_len = line[0] == '/' ? len - 1 : len;
        return;
    }
    const char *w = line + 1;
    const char *we = token_end(w, end);
    size_t wn = (size_t)(we - w);
    out->word = w;
    out->word_len = wn;
    if (word_is(w, wn, "nick")) {
        one_name(out, CHAT_NICK, we, end, false, "usage: /nick NAME (1 to 32 of A-Z a-z 0-9 _ -)");
    } else if (word_is(w, wn, "join")) {
        one_name(out, CHAT_JOIN, we, end, true, "usage: /join ROOM (1 to 32 of A-Z a-z 0-9 _ -)");
    } else if (word_is(w, wn, "leave")) {
        no_args(out, CHAT_LEAVE, we, end, "usage: /leave");
    } else if (word_is(w, wn, "who")) {
        no_args(out, CHAT_WHO, we, end, "usage: /who");
    } else if (word_is(w, wn, "quit")) {
        no_args(out, CHAT_QUIT, we, end, "usage: /quit");
    } else if (word_is(w, wn, "help")) {
        no_args(out, CHAT_HELP, we, end, "usage: /help");
    } else if (word_is(w, wn, "register")) {
        name_pass(out, CHAT_REGISTER, we, end, "usage: /register NAME PASSWORD");
    } else if (word_is(w, wn, "login")) {
        name_pass(out, CHAT_LOGIN, we, end, "usage: /login NAME PASSWORD");
    } else if (word_is(w, wn, "history")) {
        history_args(out, we, end);
    } else if (word_is(w, wn, "send")) {
        send_args(out, we, end);
    } else if (word_is(w, wn, "get")) {
        const char *p = skip_sp(we, end);
        const char *e = token_end(p, end);
        if (!chat_valid_file_id(p, (size_t)(e - p)) || skip_sp(e, end) != end) {
            bad(out, "usage: /get ID (32 hex digits, from the announcement)");
            return;
        }
        out->kind = CHAT_GET;
        out->file = p;
        out->file_len = (size_t)(e - p);
    } else if (word_is(w, wn, "msg")) {
        const char *p = skip_sp(we, end);
        const char *e = token_end(p, end);
        const char *t = e < end ? e + 1 : end; /* one space separates name and text */
        if (!chat_valid_name(p, (size_t)(e - p)) || t >= end) {
            bad(out, "usage: /msg NAME text");
            return;
        }
        out->kind = CHAT_MSG;
        out->name = p;
        out->name_len = (size_t)(e - p);
        out->text = t;
        out->text_len = (size_t)(end - t);
    } else {
        bad(out, "unknown command (try /help)");
    }
}
