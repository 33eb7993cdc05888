/*
 * examples/chat/proto.h — the weft-chat line protocol: parsing one line into
 * a command. Pure functions with no weft dependency, so the fuzzer
 * (fuzz_chat.c) drives exactly the code the server runs.
 */
#ifndef WEFT_CHAT_PROTO_H
#define WEFT_CHAT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest nick or room name, in bytes (without the '#' of a room). */
#define CHAT_NAME_MAX 32
/* A password: 1 to CHAT_PASS_MAX bytes without spaces (at least
 * CHAT_PASS_MIN to register). Policies: long enough for a passphrase
 * without '-', short enough that a KDF input is bounded. */
#define CHAT_PASS_MIN 8
#define CHAT_PASS_MAX 128
/* The most lines one /history may ask for. */
#define CHAT_HISTORY_MAX 500
/* A shared file's name: 1 to CHAT_FILE_NAME_MAX of [A-Za-z0-9._-], not
 * starting with '.'; its ID: CHAT_FILE_ID_LEN lowercase hex digits; the
 * largest size a /send may announce (the server's --file-max is lower). */
#define CHAT_FILE_NAME_MAX 128
#define CHAT_FILE_ID_LEN   32
#define CHAT_FILE_SIZE_MAX (1ull << 40)

typedef enum chat_cmd_kind {
    CHAT_NONE,     /* an empty line: ignored */
    CHAT_TEXT,     /* plain text (or "//..." for text starting with '/') */
    CHAT_NICK,     /* /nick NAME */
    CHAT_JOIN,     /* /join ROOM  (a leading '#' is accepted and dropped) */
    CHAT_LEAVE,    /* /leave */
    CHAT_WHO,      /* /who */
    CHAT_MSG,      /* /msg NAME text */
    CHAT_QUIT,     /* /quit */
    CHAT_HELP,     /* /help */
    CHAT_REGISTER, /* /register NAME PASSWORD */
    CHAT_LOGIN,    /* /login NAME PASSWORD */
    CHAT_HISTORY,  /* /history [ROOM] [N]: name may be empty, count 0 when absent */
    CHAT_SEND,     /* /send NAME|#ROOM FILENAME SIZE, then SIZE bytes */
    CHAT_GET,      /* /get ID */
    CHAT_BAD,      /* a malformed or unknown command: see err */
} chat_cmd_kind;

/*
 * A parsed line. Pointers point into the line given to chat_parse (which is
 * not modified) and are not NUL-terminated.
 */
typedef struct chat_cmd {
    chat_cmd_kind kind;
    const char *name; /* NICK, JOIN, MSG: a valid name */
    size_t name_len;
    const char *text; /* TEXT, MSG: at least one byte; REGISTER, LOGIN: the password */
    size_t text_len;
    unsigned count;   /* HISTORY: N (1..CHAT_HISTORY_MAX), 0 when not given */
    bool to_room;     /* SEND: name is a room (it was written #ROOM) */
    uint64_t size;    /* SEND: the file's size, 1..CHAT_FILE_SIZE_MAX */
    const char *file; /* SEND: the file's name (chat_valid_file); GET: the ID */
    size_t file_len;
    const char *err;  /* BAD: a static sentence (no "error: " prefix) */
    const char *word; /* BAD: the command word as typed, for "unknown command" */
    size_t word_len;
} chat_cmd;

/*
 * Parse one line, without its '\n' (a trailing '\r' is dropped here).
 * Always fills *out; never reads beyond line[len].
 */
void chat_parse(const char *line, size_t len, chat_cmd *out);

/* True when s[0..n) is a valid nick or room name: 1..CHAT_NAME_MAX of [A-Za-z0-9_-]. */
bool chat_valid_name(const char *s, size_t n);
/* True when s[0..n) is a valid shared file name (CHAT_FILE_NAME_MAX). */
bool chat_valid_file(const char *s, size_t n);
/* True when s[0..n) is a file ID: CHAT_FILE_ID_LEN of [0-9a-f]. */
bool chat_valid_file_id(const char *s, size_t n);

#endif
