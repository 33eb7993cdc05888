/*
 * tools/weft-load/main.c — weft-load, a load generator for TCP echo servers
 * (weft-echo and its peers): every echoed byte is checked. This file only
 * starts the threads, waits for them and prints the report; load.h maps the
 * other files.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

thr *load_threads;
atomic_int load_stop;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&load_stop, 1);
}

/* SIGINT and SIGTERM end the run early (the report still comes); a closed
 * peer's SIGPIPE is ignored (send uses MSG_NOSIGNAL anyway). */
static void catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    options_parse(argc, argv);
    options_check_limits();
    catch_signals();

    unsigned n = load_cfg.threads;
    load_threads = load_calloc(n, sizeof(thr));
    for (unsigned i = 0; i < n; i++)
        thr_init(&load_threads[i], i);
    phase_init(n);
    for (unsigned i = 0; i < n; i++) {
        int rc = pthread_create(&load_threads[i].tid, NULL, thr_main, &load_threads[i]);
        if (rc != 0) {
            fprintf(stderr, "weft-load: pthread_create: %s\n", strerror(rc));
            exit(2);
        }
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(load_threads[i].tid, NULL);

    int rc = report_print();
    for (unsigned i = 0; i < n; i++)
        thr_free(&load_threads[i]);
    free(load_threads);
    return rc;
}
