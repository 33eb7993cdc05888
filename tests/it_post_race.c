/*
 * it_post_race — regression test: weft_post must never return 0 for a
 * function that does not run.
 *
 * A poster checks that the worker has not exited and pushes; the worker
 * marks itself exited and drains its inbox a last time. A push landing
 * after that drain was lost. Now poster and worker order their flags
 * sequentially consistently (a poster is counted in w->posting, and the
 * worker waits for the count to reach zero before its last drain).
 *
 * Two threads post to worker 0 in a loop while the server stops; asserts
 * that every weft_post that returned 0 ran. Up to 300 rounds; stops at the
 * first loss.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "itlib.h"
#include "weft/weft.h"

static atomic_long g_posted, g_ran;
static atomic_int g_go;
static weft_server *g_s;

static void on_data(weft_conn *c, weft_ring *in) { weft_ring_consume(in, weft_ring_len(in)); }
static void count(weft_server *s, int w, void *arg) { atomic_fetch_add(&g_ran, 1); }

static void *poster(void *arg)
{
    while (!atomic_load(&g_go))
        ;
    for (;;) {
        int rc = weft_post(g_s, 0, count, NULL);
        if (rc == 0)
            atomic_fetch_add(&g_posted, 1);
        else if (rc == -ESHUTDOWN)
            return NULL;
    }
}

int main(void)
{
    for (int round = 0; round < 300; round++) {
        weft_config cfg = weft_config_default();
        cfg.port = 0;
        cfg.workers = 1;
        cfg.pin = WEFT_PIN_NONE;
        cfg.log_level = WEFT_LOG_WARN;
        weft_handler h = {.on_data = on_data};
        atomic_store(&g_posted, 0);
        atomic_store(&g_ran, 0);
        atomic_store(&g_go, 0);
        IT_CHECK(weft_server_new(&cfg, &h, NULL, &g_s) == 0, "weft_server_new");
        IT_CHECK(weft_server_start(g_s) == 0, "weft_server_start");
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            IT_CHECK(pthread_create(&t[i], NULL, poster, NULL) == 0, "pthread_create");
        atomic_store(&g_go, 1);
        weft_server_stop(g_s);
        IT_CHECK(weft_server_wait(g_s) == 0, "weft_server_wait");
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        weft_server_free(g_s);
        long posted = atomic_load(&g_posted), ran = atomic_load(&g_ran);
        IT_CHECK(posted == ran, "round %d: weft_post returned 0 %ld times but %ld ran (%ld lost)",
                 round, posted, ran, posted - ran);
    }
    printf("PASS\n");
    return 0;
}
