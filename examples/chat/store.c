/*
 * examples/chat/store.c — weft-chat's SQLite store and its writer thread
 * (see store.h).
 *
 * Durability. The database runs in WAL mode. With synchronous=NORMAL (the
 * default) a commit is a write into the WAL file without an fsync: it
 * survives the process being killed (kill -9: the bytes are in the page
 * cache, the next open replays the WAL) but not a power loss or a kernel
 * crash, which may lose the last commits (never corrupt the file). With
 * --db-sync full, each commit fsyncs the WAL and survives those too. A room
 * line is delivered, to its sender included, only after its batch
 * committed: what a sender saw echoed is in the database.
 *
 * Batching. The writer takes what is queued, up to BATCH items, into one
 * transaction: under load one commit (and, with FULL, one fsync) serves
 * hundreds of messages; when idle each message commits alone, so batching
 * adds no latency that a lone message would feel.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq.h"

/* Items per transaction at most: a policy (bounds a batch's latency and memory). */
#define BATCH 512

struct chat_store {
    sqlite3 *db;
    char *path;
    jobq q;
    _Atomic size_t msgs; /* STORE_MSG items queued, for the soft cap */
    uint32_t queue;
    store_done_fn done;
    void *ud;
    pthread_t writer;
    bool running;
    store_item *stop; /* the item that tells the writer to exit */
    sqlite3_stmt *ins_msg, *sel_hist, *ins_acct, *ins_off, *sel_off, *del_off;
    sqlite3_stmt *sum_file, *ins_file, *done_file, *del_file, *sel_file, *old_file, *del_old;
};

struct store_reader {
    sqlite3 *db;
    sqlite3_stmt *sel_hash;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS accounts(name TEXT PRIMARY KEY COLLATE NOCASE,"
    " hash TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY, room TEXT NOT NULL,"
    " user TEXT NOT NULL, ts INTEGER NOT NULL, text TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS messages_room ON messages(room, id);"
    "CREATE TABLE IF NOT EXISTS offline(id INTEGER PRIMARY KEY,"
    " recipient TEXT NOT NULL COLLATE NOCASE, sender TEXT NOT NULL, ts INTEGER NOT NULL,"
    " text TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS offline_to ON offline(recipient, id);"
    "CREATE TABLE IF NOT EXISTS files(id TEXT PRIMARY KEY, owner TEXT NOT NULL COLLATE NOCASE,"
    " target TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " done INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS files_owner ON files(owner);"
    /* Uploads a crash cut short: their .part files go too (chat.c). */
    "DELETE FROM files WHERE done=0;";

store_item *store_item_new(store_kind kind, size_t len)
{
    store_item *it = calloc(1, sizeof(*it) + len + 1);
    if (it) {
        it->kind = kind;
        it->len = len;
    }
    return it;
}

void store_item_free(store_item *it)
{
    if (it) {
        free(it->out);
        free(it);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the writer's work, one item at a time inside a transaction ---------- */

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : rc == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
}

/* Append "TS\tUSER\tTEXT\n" to it->out (grown as needed). */
static int out_line(store_item *it, size_t *cap, int64_t ts, const char *user,
                    const unsigned char *text)
{
    size_t need = 24 + strlen(user) + strlen((const char *)text) + 3;
    if (it->out_len + need > *cap) {
        size_t n = (*cap ? *cap * 2 : 4096);
        while (n < it->out_len + need)
            n *= 2;
        char *p = realloc(it->out, n);
        if (!p)
            return -ENOMEM;
        it->out = p;
        *cap = n;
    }
    it->out_len += (size_t)snprintf(it->out + it->out_len, *cap - it->out_len, "%lld\t%s\t%s\n",
                                    (long long)ts, user, text);
    return 0;
}

/* Run a bound query of rows (ts, user, text) into it->out and it->count. */
static int read_rows(sqlite3_stmt *s, store_item *it)
{
    size_t cap = 0;
    unsigned n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (out_line(it, &cap, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
                     sqlite3_column_text(s, 2)) == 0)
            n++;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    it->count = n;
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* The last it->count messages of it->room, oldest first. */
static int read_history(chat_store *st, store_item *it)
{
    sqlite3_bind_text(st->sel_hist, 1, it->room, -1, SQLITE_STATIC);
    sqlite3_bind_int(st->sel_hist, 2, (int)it->count);
    return read_rows(st->sel_hist, it);
}

/* Take it->user's offline messages: read them, then delete them. */
static int take_inbox(chat_store *st, store_item *it)
{
    sqlite3_bind_text(st->sel_off, 1, it->user, -1, SQLITE_STATIC);
    if (read_rows(st->sel_off, it) != 0)
        return -EIO;
    sqlite3_bind_text(st->del_off, 1, it->user, -1, SQLITE_STATIC);
    return step_done(st->del_off);
}

/* A file of it->user's, if its files stay under it->quota bytes. */
static int file_new(chat_store *st, store_item *it)
{
    sqlite3_stmt *s = st->sum_file;
    sqlite3_bind_text(s, 1, it->user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int64_t used = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW)
        return -EIO;
    if ((uint64_t)used + it->size > it->quota)
        return -EDQUOT;
    s = st->ins_file;
    sqlite3_bind_text(s, 1, it->fid, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, it->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, it->to, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, it->text, (int)it->len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (int64_t)it->size);
    sqlite3_bind_int64(s, 6, now_ms());
    return step_done(s);
}

static int file_get(chat_store *st, store_item *it)
{
    sqlite3_stmt *s = st->sel_file;
    sqlite3_bind_text(s, 1, it->fid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), res = -ENOENT;
    if (rc == SQLITE_ROW) {
        snprintf(it->user, sizeof(it->user), "%s", (const char *)sqlite3_column_text(s, 0));
        snprintf(it->to, sizeof(it->to), "%s", (const char *)sqlite3_column_text(s, 1));
        it->out = strdup((const char *)sqlite3_column_text(s, 2));
        it->out_len = it->out ? strlen(it->out) : 0;
        it->size = (uint64_t)sqlite3_column_int64(s, 3);
        res = it->out ? 0 : -ENOMEM;
    } else if (rc != SQLITE_DONE) {
        res = -EIO;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return res;
}

/* The IDs of the files older than it->ts into it->out, then forget them. */
static int file_expire(chat_store *st, store_item *it)
{
    sqlite3_stmt *s = st->old_file;
    sqlite3_bind_int64(s, 1, it->ts);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        if (it->out_len + CHAT_FILE_ID_LEN + 2 > cap) {
            size_t n = cap ? cap * 2 : 1024;
            char *p = realloc(it->out, n);
            if (!p)
                break; /* the rest stays until the next round */
            it->out = p;
            cap = n;
        }
        it->out_len += (size_t)snprintf(it->out + it->out_len, cap - it->out_len, "%s\n", id);
        it->count++;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return -EIO;
    sqlite3_bind_int64(st->del_old, 1, it->ts);
    return step_done(st->del_old);
}

/* One bound statement naming it->fid, run to its end. */
static int by_fid(sqlite3_stmt *s, store_item *it)
{
    sqlite3_bind_text(s, 1, it->fid, -1, SQLITE_STATIC);
    return step_done(s);
}

static int apply(chat_store *st, store_item *it)
{
    sqlite3_stmt *s;
    switch (it->kind) {
    case STORE_MSG:
        it->ts = now_ms();
        s = st->ins_msg;
        sqlite3_bind_text(s, 1, it->room, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, it->user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, it->ts);
        sqlite3_bind_text(s, 4, it->text, (int)it->len, SQLITE_STATIC);
        if (step_done(s) != 0)
            return -EIO;
        it->id = sqlite3_last_insert_rowid(st->db);
        return 0;
    case STORE_PASS:
    case STORE_FENCE:
        return 0;
    case STORE_HISTORY:
        return read_history(st, it);
    case STORE_REGISTER:
        s = st->ins_acct;
        sqlite3_bind_text(s, 1, it->user, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, it->text, (int)it->len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now_ms());
        return step_done(s);
    case STORE_OFFLINE:
        it->ts = now_ms();
        s = st->ins_off;
        sqlite3_bind_text(s, 1, it->to, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, it->user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, it->ts);
        sqlite3_bind_text(s, 4, it->text, (int)it->len, SQLITE_STATIC);
        return step_done(s) == 0 ? 0 : -EIO;
    case STORE_INBOX:
        return take_inbox(st, it);
    case STORE_FILE_NEW:
        return file_new(st, it);
    case STORE_FILE_DONE:
        return by_fid(st->done_file, it);
    case STORE_FILE_DROP:
        return by_fid(st->del_file, it);
    case STORE_FILE_GET:
        return file_get(st, it);
    case STORE_FILE_EXPIRE:
        return file_expire(st, it);
    }
    return -EINVAL;
}

/*
 * One transaction over batch[0..n). A failed commit fails every item of
 * the batch that had succeeded (none of them is in the database).
 */
static void commit_batch(chat_store *st, store_item **batch, int n)
{
    bool ok = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    for (int i = 0; i < n; i++)
        batch[i]->result = ok ? apply(st, batch[i]) : -EIO;
    if (ok && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "weft-chat: database commit failed: %s\n", sqlite3_errmsg(st->db));
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        for (int i = 0; i < n; i++)
            batch[i]->result = -EIO;
    }
}

static void *writer_main(void *arg)
{
    chat_store *st = arg;
    store_item *batch[BATCH];
    bool stopping = false;
    while (!stopping) {
        int n = 0;
        store_item *it = jobq_pop(&st->q);
        do {
            if (it == st->stop) {
                stopping = true; /* FIFO: everything before it is in this batch */
                break;
            }
            if (it->kind == STORE_MSG)
                atomic_fetch_sub_explicit(&st->msgs, 1, memory_order_relaxed);
            batch[n++] = it;
        } while (n < BATCH && (it = jobq_trypop(&st->q)));
        if (n == 0)
            continue;
        commit_batch(st, batch, n);
        for (int i = 0; i < n; i++)
            st->done(batch[i], st->ud);
    }
    return NULL;
}

/* ---- opening and closing -------------------------------------------------- */

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **s)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) == SQLITE_OK ? 0
                                                                                            : -EIO;
}

static void finalize_all(chat_store *st)
{
    sqlite3_stmt *all[] = {st->ins_msg,  st->sel_hist, st->ins_acct, st->ins_off,   st->sel_off,
                           st->del_off,  st->sum_file, st->ins_file, st->done_file, st->del_file,
                           st->sel_file, st->old_file, st->del_old};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
}

int store_open(chat_store **out, const store_opts *o, char *why_buf, size_t why_len)
{
    chat_store *st = calloc(1, sizeof(*st));
    if (!st || !(st->path = strdup(o->path)) || !(st->stop = store_item_new(STORE_PASS, 0))) {
        snprintf(why_buf, why_len, "out of memory");
        goto fail;
    }
    st->queue = o->queue ? o->queue : 1;
    st->done = o->done;
    st->ud = o->ud;
    if (sqlite3_open_v2(o->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(why_buf, why_len, "cannot open the database %s: %s", o->path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
             o->sync_full ? "FULL" : "NORMAL");
    if (sqlite3_busy_timeout(st->db, 5000) != SQLITE_OK ||
        sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        prepare(st->db, "INSERT INTO messages(room,user,ts,text) VALUES(?,?,?,?)", &st->ins_msg) !=
            0 ||
        prepare(st->db,
                "SELECT ts,user,text FROM (SELECT id,ts,user,text FROM messages WHERE room=?"
                " ORDER BY id DESC LIMIT ?) ORDER BY id",
                &st->sel_hist) != 0 ||
        prepare(st->db, "INSERT INTO accounts(name,hash,created) VALUES(?,?,?)", &st->ins_acct) !=
            0 ||
        prepare(st->db, "INSERT INTO offline(recipient,sender,ts,text) VALUES(?,?,?,?)",
                &st->ins_off) != 0 ||
        prepare(st->db, "SELECT ts,sender,text FROM offline WHERE recipient=? ORDER BY id",
                &st->sel_off) != 0 ||
        prepare(st->db, "DELETE FROM offline WHERE recipient=?", &st->del_off) != 0 ||
        prepare(st->db, "SELECT coalesce(sum(size),0) FROM files WHERE owner=?", &st->sum_file) !=
            0 ||
        prepare(st->db, "INSERT INTO files(id,owner,target,name,size,ts) VALUES(?,?,?,?,?,?)",
                &st->ins_file) != 0 ||
        prepare(st->db, "UPDATE files SET done=1 WHERE id=?", &st->done_file) != 0 ||
        prepare(st->db, "DELETE FROM files WHERE id=?", &st->del_file) != 0 ||
        prepare(st->db, "SELECT owner,target,name,size FROM files WHERE id=? AND done=1",
                &st->sel_file) != 0 ||
        prepare(st->db, "SELECT id FROM files WHERE ts<?", &st->old_file) != 0 ||
        prepare(st->db, "DELETE FROM files WHERE ts<?", &st->del_old) != 0) {
        snprintf(why_buf, why_len, "database %s: %s", o->path, sqlite3_errmsg(st->db));
        goto fail;
    }
    /* Twice the message cap: the rest is for notices and account work. */
    if (jobq_init(&st->q, (size_t)st->queue * 2) != 0) {
        snprintf(why_buf, why_len, "out of memory");
        goto fail;
    }
    int rc = pthread_create(&st->writer, NULL, writer_main, st);
    if (rc != 0) {
        jobq_destroy(&st->q);
        snprintf(why_buf, why_len, "cannot start the database writer: %s", strerror(rc));
        goto fail;
    }
    st->running = true;
    *out = st;
    return 0;
fail:
    if (st) {
        finalize_all(st);
        sqlite3_close(st->db);
        free(st->path);
        free(st->stop);
        free(st);
    }
    return -EIO;
}

int store_push(chat_store *st, store_item *it)
{
    if (it->kind == STORE_MSG) {
        if (atomic_fetch_add_explicit(&st->msgs, 1, memory_order_relaxed) >= st->queue) {
            atomic_fetch_sub_explicit(&st->msgs, 1, memory_order_relaxed);
            return -EAGAIN;
        }
        if (jobq_push(&st->q, it) != 0) {
            atomic_fetch_sub_explicit(&st->msgs, 1, memory_order_relaxed);
            return -EAGAIN;
        }
        return 0;
    }
    return jobq_push(&st->q, it);
}

size_t store_backlog(chat_store *st) { return jobq_len(&st->q); }

int store_accounts(chat_store *st, void (*fn)(const char *name, void *arg), void *arg)
{
    sqlite3_stmt *s;
    if (prepare(st->db, "SELECT name FROM accounts", &s) != 0)
        return -EIO;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(s, 0), arg);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_reader_open(chat_store *st, store_reader **out)
{
    store_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    if (sqlite3_open_v2(st->path, &r->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(r->db, 5000) != SQLITE_OK ||
        prepare(r->db, "SELECT hash FROM accounts WHERE name=?", &r->sel_hash) != 0) {
        store_reader_close(r);
        return -EIO;
    }
    *out = r;
    return 0;
}

int store_reader_hash(store_reader *r, const char *name, char *hash, size_t hash_len)
{
    sqlite3_stmt *s = r->sel_hash;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), found = 0;
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(s, 0);
        found = h && strlen(h) < hash_len;
        if (found)
            strcpy(hash, h);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -EIO;
}

void store_reader_close(store_reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->sel_hash);
    sqlite3_close(r->db);
    free(r);
}

void store_close(chat_store *st)
{
    if (!st)
        return;
    if (st->running) {
        /* The stop item has its own cell: the queue's room beyond the message cap. */
        while (jobq_push(&st->q, st->stop) != 0)
            sched_yield();
        pthread_join(st->writer, NULL);
        jobq_destroy(&st->q);
    }
    finalize_all(st);
    sqlite3_close(st->db);
    free(st->path);
    free(st->stop);
    free(st);
}
