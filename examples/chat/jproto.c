/*
 * examples/chat/jproto.c — the JSON protocol (see jproto.h).
 *
 *   {"type":"register","user":"bob","password":"..."}
 *   {"type":"login","user":"bob","password":"..."}
 *   {"type":"nick","user":"bob"}            a guest's nick
 *   {"type":"join","room":"tea"}
 *   {"type":"leave"}  {"type":"who"}  {"type":"quit"}  {"type":"help"}
 *   {"type":"message","data":"hi all"}      to the current room
 *   {"type":"private","user":"amy","data":"psst"}
 *   {"type":"history"[,"room":"tea"][,"count":20]}
 *   {"type":"file","room":"tea"|"user":"amy","name":"a.txt","size":N}, then N bytes
 *   {"type":"get","id":"..."}
 *
 * Depth is checked on the raw bytes before jansson builds anything, so a
 * line of 4096 '[' costs a scan, not 4096 allocations.
 */
#include "jproto.h"

#include <jansson.h>
#include <string.h>

#include "utf8.h"

/* The deepest nesting in line, outside strings; stops counting past limit. */
static int depth_of(const char *p, size_t n, int limit)
{
    int d = 0, max = 0;
    bool str = false, esc = false;
    for (size_t i = 0; i < n && max <= limit; i++) {
        char c = p[i];
        if (str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
        } else if (c == '"') {
            str = true;
        } else if (c == '{' || c == '[') {
            if (++d > max)
                max = d;
        } else if (c == '}' || c == ']') {
            d--;
        }
    }
    return max;
}

static void bad(chat_cmd *out, const char *err)
{
    out->kind = CHAT_BAD;
    out->err = err;
}

/* A string field, or NULL when absent; *ok false when present and not a string. */
static const char *str_field(json_t *o, const char *key, size_t *n, bool *ok)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        *ok = false;
        return NULL;
    }
    *n = json_string_length(v);
    return json_string_value(v);
}

static bool clean_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return false;
    return true;
}

/* Fields other than those a type allows are refused: a typo is not ignored. */
static bool only_fields(json_t *o, const char *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        (void)v;
        size_t k = strlen(key);
        const char *p = allowed;
        bool found = false;
        while (*p && !found) {
            const char *e = strchr(p, ' ');
            size_t m = e ? (size_t)(e - p) : strlen(p);
            found = m == k && memcmp(p, key, k) == 0;
            p += m + (e ? 1 : 0);
        }
        if (!found)
            return false;
    }
    return true;
}

typedef struct jtype {
    const char *name;
    chat_cmd_kind kind;
    const char *fields; /* allowed, "type" included */
    const char *need;   /* required: u(ser) r(oom) p(assword) d(ata) */
} jtype;

static const jtype types[] = {
    {"register", CHAT_REGISTER, "type user password", "up"},
    {"login", CHAT_LOGIN, "type user password", "up"},
    {"nick", CHAT_NICK, "type user", "u"},
    {"join", CHAT_JOIN, "type room", "r"},
    {"leave", CHAT_LEAVE, "type", ""},
    {"who", CHAT_WHO, "type", ""},
    {"quit", CHAT_QUIT, "type", ""},
    {"help", CHAT_HELP, "type", ""},
    {"message", CHAT_TEXT, "type data", "d"},
    {"private", CHAT_MSG, "type user data", "ud"},
    {"history", CHAT_HISTORY, "type room count", ""},
    {"file", CHAT_SEND, "type user room name size", "n"},
    {"get", CHAT_GET, "type id", "i"},
};

static void fill(chat_cmd *out, const jtype *t, json_t *o, size_t max_data)
{
    bool ok = true;
    size_t un = 0, rn = 0, pn = 0, dn = 0;
    const char *u = str_field(o, "user", &un, &ok);
    const char *r = str_field(o, "room", &rn, &ok);
    const char *p = str_field(o, "password", &pn, &ok);
    const char *d = str_field(o, "data", &dn, &ok);
    size_t fn = 0, in = 0;
    const char *f = str_field(o, "name", &fn, &ok);
    const char *id = str_field(o, "id", &in, &ok);
    json_t *size = json_object_get(o, "size");
    json_t *count = json_object_get(o, "count");
    if (!ok || (count && !json_is_integer(count)) || (size && !json_is_integer(size))) {
        bad(out, "a field has the wrong JSON type");
        return;
    }
    if ((strchr(t->need, 'u') && !u) || (strchr(t->need, 'r') && !r) ||
        (strchr(t->need, 'p') && !p) || (strchr(t->need, 'd') && !d) ||
        (strchr(t->need, 'n') && (!f || !size || !u == !r)) || (strchr(t->need, 'i') && !id)) {
        bad(out, "a required field is missing");
        return;
    }
    if ((u && !chat_valid_name(u, un)) || (r && !chat_valid_name(r, rn))) {
        bad(out, "user and room are 1 to 32 of A-Z a-z 0-9 _ -");
        return;
    }
    if (p && (pn == 0 || pn > CHAT_PASS_MAX)) {
        bad(out, "password is 1 to 128 bytes");
        return;
    }
    if (d && (dn == 0 || dn > max_data || !clean_text(d, dn))) {
        bad(out, "data is 1 to max-line bytes, no control characters but tab");
        return;
    }
    if (count && (json_integer_value(count) < 1 || json_integer_value(count) > CHAT_HISTORY_MAX)) {
        bad(out, "count is 1 to 500");
        return;
    }
    if ((f && !chat_valid_file(f, fn)) || (id && !chat_valid_file_id(id, in))) {
        bad(out, "name is 1 to 128 of A-Z a-z 0-9 . _ - (not first '.'), id 32 hex");
        return;
    }
    if (size &&
        (json_integer_value(size) < 1 || (uint64_t)json_integer_value(size) > CHAT_FILE_SIZE_MAX)) {
        bad(out, "size is 1 to 2^40");
        return;
    }
    out->kind = t->kind;
    out->file = f ? f : id;
    out->file_len = f ? fn : in;
    out->size = size ? (uint64_t)json_integer_value(size) : 0;
    if (t->kind == CHAT_SEND) {
        out->to_room = r != NULL;
        out->name = r ? r : u;
        out->name_len = r ? rn : un;
        return;
    }
    if (t->kind == CHAT_JOIN || t->kind == CHAT_HISTORY) {
        out->name = r;
        out->name_len = r ? rn : 0;
    } else {
        out->name = u;
        out->name_len = u ? un : 0;
    }
    out->text = p ? p : d;
    out->text_len = p ? pn : dn;
    out->count = count ? (unsigned)json_integer_value(count) : 0;
}

void chat_json_parse(const char *line, size_t len, size_t max_data, chat_cmd *out, void **keep)
{
    memset(out, 0, sizeof(*out));
    *keep = NULL;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (depth_of(line, len, CHAT_JSON_DEPTH) > CHAT_JSON_DEPTH) {
        bad(out, "JSON nested too deep");
        return;
    }
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!o) {
        bad(out, "bad JSON");
        return;
    }
    *keep = o;
    if (!json_is_object(o)) {
        bad(out, "a line is one JSON object");
        return;
    }
    json_t *type = json_object_get(o, "type");
    if (!json_is_string(type)) {
        bad(out, "\"type\" is missing or not a string");
        return;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(json_string_value(type), types[i].name) != 0)
            continue;
        if (!only_fields(o, types[i].fields)) {
            bad(out, "an unknown field for this type");
            return;
        }
        return fill(out, &types[i], o, max_data);
    }
    bad(out, "unknown type");
}

void chat_json_free(void *keep) { json_decref(keep); }

size_t chat_json_str(char *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    o[k++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t m = utf8_len(u + i, n - i);
        if (c == '"' || c == '\\') {
            o[k++] = '\\';
            o[k++] = (char)c;
            i++;
        } else if (c == '\t') {
            o[k++] = '\\';
            o[k++] = 't';
            i++;
        } else if (m == 0 || c < 0x20 || c == 0x7F) {
            memcpy(o + k, "\xEF\xBF\xBD", 3); /* U+FFFD */
            k += 3;
            i++;
        } else {
            memcpy(o + k, s + i, m);
            k += m;
            i += m;
        }
    }
    o[k++] = '"';
    return k;
}
