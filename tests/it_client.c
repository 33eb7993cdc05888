/*
 * it_client — the random echo conversation of it_echo_random against a
 * server that is already running (used by it_valgrind.sh).
 *
 * usage: it_client HOST PORT NCONNS BYTES-PER-CONN [SEED]
 *
 * Exits 0 when every byte came back in order, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "itlib.h"

int main(int argc, char **argv)
{
    IT_CHECK(argc == 5 || argc == 6, "usage: it_client HOST PORT NCONNS BYTES-PER-CONN [SEED]");
    long port = strtol(argv[2], NULL, 10);
    int n = (int)strtol(argv[3], NULL, 10);
    unsigned long long per = strtoull(argv[4], NULL, 10);
    unsigned long long seed = argc == 6 ? strtoull(argv[5], NULL, 10) : 7;
    IT_CHECK(port > 0 && port < 65536 && n > 0 && per > 0, "bad arguments");
    uint64_t max_msg = per < 65536 ? per : 65536;
    uint64_t got = itl_echo_random(argv[1], (uint16_t)port, n, per, max_msg, seed, 120000);
    IT_CHECK(got == (uint64_t)n * per, "echoed %llu bytes", (unsigned long long)got);
    printf("PASS\n");
    return 0;
}
