/*
 * examples/kv/resp.h — an incremental parser for RESP2 requests.
 *
 * A request is either a multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or an
 * inline command (a line of words separated by blanks, as typed in telnet).
 * The parser reads from a resp_src, up to two contiguous segments (a weft
 * ring's bytes are two segments when they wrap), and owns no input: the
 * caller keeps the bytes in place until a command is complete.
 *
 * The parser keeps its progress between calls, so a command that arrives a
 * few bytes at a time is scanned once: a bulk string of known length is
 * waited for in O(1) per call, a header line is searched only past where the
 * last call stopped. It depends on nothing but libc, so the fuzz target
 * (fuzz_resp.c) drives it directly.
 *
 * Memory. A command that is still arriving costs nothing beyond the parser
 * struct, whatever its "*N" header announces: its arguments are counted as
 * they arrive, and only the first RESP_SMALL_ARGS are remembered (in the
 * struct). The argument table of a longer command is allocated once the
 * whole command is in the caller's buffer, with exactly argc entries (at
 * most max_args * sizeof(resp_arg)), and resp_next gives it back unless it
 * is small (RESP_KEEP_SLOTS). So the bytes of a partial command, which the
 * caller holds under its own input cap, are the only memory a client can
 * make a connection keep; what a complete command needs lives only while
 * it runs. The scratch copy of the one argument that straddles the two
 * segments follows the same rule (RESP_KEEP_SCRATCH).
 *
 *     resp_parser p;  resp_init(&p, &limits);
 *     for (;;) {                                  // on each arrival of input
 *         resp_src src = ...;                     // the unconsumed bytes
 *         int r = resp_parse(&p, &src);
 *         if (r == RESP_NEED) break;              // keep the bytes, wait
 *         if (r == RESP_ERR) { reply p.err; close; }
 *         run(p.argc, p.argv);                    // argv valid until consumed
 *         consume(p.used); resp_next(&p);
 *     }
 *     resp_free(&p);
 */
#ifndef WEFT_KV_RESP_H
#define WEFT_KV_RESP_H

#include <stddef.h>

enum {
    RESP_ERR = -1, /* protocol error: p->err says why, p->err_kind what kind;
                      the stream is unusable */
    RESP_NEED = 0, /* the next command is not complete yet */
    RESP_CMD = 1,  /* a whole command: p->argc arguments in p->argv */
};

/* What kind of RESP_ERR: the caller counts them apart. */
typedef enum resp_err_kind {
    RESP_E_PROTO = 1, /* malformed: not RESP */
    RESP_E_LIMIT,     /* well-formed but over a resp_limits bound */
    RESP_E_NOMEM,     /* the argument table or scratch could not be allocated */
} resp_err_kind;

/* The unconsumed input: seg[0] then seg[1] (either may be empty). */
typedef struct resp_src {
    const char *seg[2];
    size_t len[2];
} resp_src;

/* One argument of a complete command; not NUL-terminated. */
typedef struct resp_arg {
    const char *p;
    size_t len;
} resp_arg;

/* What the parser accepts; a request over a limit is a protocol error. */
typedef struct resp_limits {
    size_t max_bulk; /* longest bulk string (Redis: proto-max-bulk-len) */
    size_t max_line; /* longest inline command or header line (Redis: 64 KiB) */
    size_t max_args; /* most arguments in one multibulk (Redis: 1024*1024) */
    size_t max_cmd;  /* most bytes one command may span: kept below the
                        server's input cap so the parser, not the cap,
                        refuses an oversized command, with a reply */
} resp_limits;

/* Redis's limits, with max_cmd given. */
resp_limits resp_limits_default(size_t max_cmd);

/* Arguments remembered while a command arrives (and its table's first size). */
#define RESP_SMALL_ARGS 8
/* Argument tables up to this many entries are kept for the next command. */
#define RESP_KEEP_SLOTS 64
/* A scratch buffer up to this size is kept for the next command. */
#define RESP_KEEP_SCRATCH 1024u

/* Parser state. Fields other than argc, argv, used, err and err_kind are private. */
typedef struct resp_parser {
    resp_limits lim;
    /* The complete command (after RESP_CMD). */
    size_t argc;
    resp_arg *argv;
    size_t used;     /* bytes the command spans; consume them, then resp_next */
    const char *err; /* after RESP_ERR: the reply text, without "-" and CRLF */
    resp_err_kind err_kind;
    /* Progress in the command being parsed (offsets from the source's start). */
    int state;
    size_t pos;   /* first byte not parsed yet */
    size_t scan;  /* a line's '\n' was searched for up to here */
    size_t want;  /* arguments declared by the multibulk header */
    size_t first; /* where the first bulk header starts */
    size_t bulk;  /* length of the bulk string being waited for */
    /* Arguments: offsets while parsing (the first RESP_SMALL_ARGS of a
       multibulk, every word of an inline command), pointers once complete. */
    union resp_slot {
        struct {
            size_t off, len;
        } span;
        resp_arg arg;
    } * slot;
    size_t cap;
    union resp_slot small[RESP_SMALL_ARGS];
    char *scratch; /* the one argument that straddles the two segments */
    size_t scratch_cap;
    char errbuf[128];
} resp_parser;

/* Start a parser; nothing is allocated until a command needs it. */
void resp_init(resp_parser *p, const resp_limits *lim);

/*
 * Parse the next command from src, which must hold the same unconsumed
 * bytes as on the previous call plus any that arrived since. Returns
 * RESP_CMD (argc, argv and used are set; argc may be 0 for an empty
 * command, which the caller just consumes), RESP_NEED or RESP_ERR.
 */
int resp_parse(resp_parser *p, const resp_src *src);

/* After RESP_CMD and consuming p->used bytes: get ready for the next one. */
void resp_next(resp_parser *p);

/* Free what the parser allocated. */
void resp_free(resp_parser *p);

/*
 * Strict base-10 integer as Redis's string2ll: an optional '-', no leading
 * zeros, no blanks, within int64. Returns 0 and stores *out, or -1.
 */
int resp_strtoll(const char *s, size_t len, long long *out);

#endif /* WEFT_KV_RESP_H */
