/*
 * weft-chat — a multi-room chat server on weft (examples/chat). Line
 * protocol: /nick NAME, /join ROOM, /leave, /who, /msg NAME TEXT, /quit;
 * other lines go to everyone in the sender's room. See README.md, and
 * chat.c for how rooms spread over the workers stay consistent.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "chat.h"
#include "weft/weft.h"

/* Chat's own port; the other defaults are the chat library's (chat.h). */
#define CHAT_PORT 7070

static uint32_t g_max_line = CHAT_MAX_LINE;

static void defaults(weft_config *cfg, void *ud)
{
    (void)ud;
    cfg->port = CHAT_PORT;
    chat_config_defaults(cfg, CHAT_MAX_LINE);
}

static int option(weft_config *cfg, const char *name, const char *arg, const char **why, void *ud)
{
    (void)ud;
    (void)name; /* max-line */
    long long v;
    if (weft_parse_number(arg, 64, 1 << 24, &v) != 0) {
        *why = "expected a number from 64 to 16777216";
        return -EINVAL;
    }
    g_max_line = (uint32_t)v;
    cfg->input_cap = g_max_line + CHAT_HELD_EXTRA;
    return 0;
}

/* A small --output-cap brings the watermarks down with it. */
static int configure(weft_config *cfg, const char **why, void *ud)
{
    (void)why;
    (void)ud;
    chat_config_fit(cfg);
    return 0;
}

static int setup(weft_server *s, void *ud) { return chat_server_attach(ud, s, g_max_line); }

static const weft_program_option options[] = {
    {"max-line", "BYTES",
     "the longest line, newline included (default 4096);\n"
     "a longer one gets an error and the connection closes"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    weft_program prog = {
        .name = "weft-chat",
        .summary = "A multi-room chat server on weft. One line per command or message:\n"
                   "  /nick NAME        take a unique nick (1-32 of A-Z a-z 0-9 _ -)\n"
                   "  /join ROOM        join a room (leaving the current one)\n"
                   "  /leave            leave the current room\n"
                   "  /who              list the members of the current room\n"
                   "  /msg NAME TEXT    a private message\n"
                   "  /quit             close the connection\n"
                   "  anything else     '<nick> TEXT' to everyone in the room, you included\n"
                   "A member whose unread output would pass --output-cap (default 256K here)\n"
                   "is disconnected, so a slow reader never stalls a room; --sndbuf bounds\n"
                   "what the kernel holds before that cap counts.",
        .try_hint = "nc %s %u",
        .handler = chat_handler(),
        .options = options,
        .defaults = defaults,
        .option = option,
        .configure = configure,
        .setup = setup,
    };
    return chat_main(argc, argv, &prog);
}
