/*
 * core/store_sqlite.c - the embedded run store engine: one SQLite file in WAL mode.
 *
 * Every mutating call is one BEGIN IMMEDIATE transaction (the write lock is taken up
 * front, so two hosts never deadlock upgrading a read lock) that also appends to the
 * append-only events table. Waiting for the lock is the busy timeout plus a few
 * retries with jitter. In a group (wfh_store_group) the calls are savepoints of one
 * such transaction, committed by wfh_store_group_commit: one fsync for many changes;
 * there a step's queued row waits for its attempt start and is written with it (sq.pend).
 * The write path's statements are prepared once per connection and reused (stmt_sql).
 * The schema carries a version (PRAGMA user_version) and an
 * application id, so a newer store or a foreign SQLite file is refused rather than
 * misread. The file header is checked before SQLite sees the file, because SQLite
 * reads a truncated file as zero pages and only fails later, mid-run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "store.h"

/* 'WFH1': lets `file` and us tell a run store from any other SQLite database. */
#define WFH_STORE_APP_ID 0x57464831
#define BUSY_TIMEOUT_MS 10000
#define LOCK_RETRIES 5

/*
 * The statements of the write path (and the reads `runs show` repeats per step),
 * prepared once per connection with SQLITE_PREPARE_PERSISTENT and reused: parsing SQL
 * was the largest part of the store's CPU per step (perf: sqlite3Parser, malloc), about
 * 19 parses per chained step. Statements built at run time (filters) are prepared per
 * use as before.
 */
enum {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SAVEPOINT,
    SQ_RELEASE,
    SQ_ROLLBACK_TO,
    SQ_SYNC_NORMAL,
    SQ_SYNC_FULL,
    SQ_EVENT_ADD,
    SQ_RUN_EXISTS,
    SQ_RUN_CREATE,
    SQ_RUN_SET_STATE,
    SQ_STEP_SET,
    SQ_ATTEMPT_STEP,
    SQ_ATTEMPT_STEP_QUEUED,
    SQ_ATTEMPT_ADD,
    SQ_ATTEMPT_FINISH,
    SQ_LOG_ADD,
    SQ_SHOW_ATTEMPTS,
    SQ_N_STMTS
};

static const char *const stmt_sql[SQ_N_STMTS] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_SAVEPOINT] = "SAVEPOINT wfh_call",
    [SQ_RELEASE] = "RELEASE wfh_call",
    [SQ_ROLLBACK_TO] = "ROLLBACK TO wfh_call",
    [SQ_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [SQ_SYNC_FULL] = "PRAGMA synchronous=FULL",
    [SQ_EVENT_ADD] = "INSERT INTO events(run_id, step_id, attempt, status, detail, at_ms)"
                     " VALUES(?,?,NULLIF(?,0),?,?,?)",
    [SQ_RUN_EXISTS] = "SELECT 1 FROM runs WHERE id=?",
    [SQ_RUN_CREATE] = "INSERT INTO runs(id, workflow, file, file_hash, status, created_ms, inputs)"
                      " VALUES(?,?,?,?,'queued',?,?)",
    [SQ_RUN_SET_STATE] = "UPDATE runs SET status=?1, error=?2,"
                         " started_ms=CASE WHEN ?1='running' THEN coalesce(started_ms, ?3)"
                         "  ELSE started_ms END,"
                         " finished_ms=CASE WHEN ?4 THEN ?3 ELSE NULL END WHERE id=?5",
    /* Outputs belong to a success only: a step sent back to queued (changed
     * definition) or failing on retry must not keep stale ones (see step_set_body). */
    [SQ_STEP_SET] = "INSERT INTO steps(run_id, step_id, status, def_hash, outputs, outputs_ref,"
                    " error, started_ms, finished_ms)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                    "  CASE WHEN ?3='running' THEN ?8 END, CASE WHEN ?9 THEN ?8 END)"
                    " ON CONFLICT(run_id, step_id) DO UPDATE SET status=?3,"
                    "  def_hash=coalesce(?4, def_hash), outputs=?5, outputs_ref=?6, error=?7,"
                    "  started_ms=CASE WHEN ?3='running' THEN coalesce(started_ms, ?8)"
                    "   WHEN ?3 IN ('queued','pending') THEN NULL ELSE started_ms END,"
                    "  finished_ms=CASE WHEN ?9 THEN ?8 END",
    /* The step is running from its first attempt on, whether or not the caller said so. */
    [SQ_ATTEMPT_STEP] = "INSERT INTO steps(run_id, step_id, status, started_ms)"
                        " VALUES(?,?,'running',?)"
                        " ON CONFLICT(run_id, step_id) DO UPDATE SET status='running',"
                        " started_ms=coalesce(started_ms, excluded.started_ms),"
                        " finished_ms=NULL, outputs=NULL, outputs_ref=NULL, error=NULL",
    /* The same for a step whose queued row was held back (pend_*): in one statement what
     * SQ_STEP_SET 'queued' followed by SQ_ATTEMPT_STEP leaves - the definition's hash
     * recorded, started now (queued had cleared it). */
    [SQ_ATTEMPT_STEP_QUEUED] = "INSERT INTO steps(run_id, step_id, status, def_hash, started_ms)"
                               " VALUES(?,?,'running',?,?)"
                               " ON CONFLICT(run_id, step_id) DO UPDATE SET status='running',"
                               " def_hash=coalesce(excluded.def_hash, def_hash),"
                               " started_ms=excluded.started_ms, finished_ms=NULL,"
                               " outputs=NULL, outputs_ref=NULL, error=NULL",
    [SQ_ATTEMPT_ADD] = "INSERT INTO attempts(run_id, step_id, attempt, status, idempotency_key,"
                       " plugin_name, plugin_version, plugin_hash, started_ms)"
                       " VALUES(?,?,?,'running',?,?,?,?,?)",
    [SQ_ATTEMPT_FINISH] = "UPDATE attempts SET status=?, error=?, exit_code=?, term_signal=?,"
                          " step_status=NULLIF(?,-1), finished_ms=?, sandbox=? WHERE run_id=?"
                          " AND step_id=? AND attempt=?",
    [SQ_LOG_ADD] = "INSERT INTO logs(run_id, step_id, attempt, level, msg, at_ms)"
                   " VALUES(?,?,NULLIF(?,0),?,?,?)",
    [SQ_SHOW_ATTEMPTS] = "SELECT attempt, status, error, exit_code, term_signal, step_status,"
                         " idempotency_key, plugin_name, plugin_version, plugin_hash,"
                         " started_ms, finished_ms, sandbox FROM attempts WHERE run_id=? AND"
                         " step_id=? ORDER BY attempt",
};

/* A step's 'queued' row held back in an open group (see pend_defer). */
typedef struct pend_row {
    char *step_id;  /* owned */
    char *def_hash; /* owned, may be NULL */
    char *error;    /* owned, may be NULL */
    int64_t now;
} pend_row;

typedef struct sq {
    sqlite3 *db;   /* owned */
    char *path;    /* owned */
    unsigned flags;
    dev_t dev;     /* identity of the database file while db is open (see held_*) */
    ino_t ino;
    int held;      /* 1 if counted in held_files */
    int group;     /* wfh_store_group is on: calls are savepoints in one transaction */
    int in_group;  /* that transaction is open (taken at the first call after a commit) */
    int group_lost; /* SQLite rolled it back under us (I/O error): the commit must fail */
    /* A run found (run_exists) in the group's open transaction: while we hold the write
     * lock nobody else can remove it, so the lookup is not repeated for every step
     * (~5% of the store's cost per pass step). Empty when unknown; cleared whenever the
     * transaction ends or any part of it is rolled back, and by prune. */
    char known_run[64];
    /*
     * Queued step rows held back in the open group (pend_defer): a pass step is queued
     * and started in the same turn, and writing its row twice was ~14 000 of the ~240 000
     * instructions of a chained pass step. Each row's event is written at once; the row
     * is written by the step's attempt start in the same statement as its running state,
     * or by pend_flush before any other write, `runs show` or the commit, in the order
     * the rows were queued (so rowids, the order `runs show` lists steps in, do not
     * change). A row that cannot be written loses the whole group (group_lose).
     * Entries [pend_head, pend_n) are live; pend_slot is an open-addressing index of
     * them by step id (-1 empty; a slot naming an entry below pend_head is free).
     */
    pend_row *pend;    /* owned [pend_cap] */
    size_t pend_head, pend_n, pend_cap;
    int *pend_slot;    /* owned [pend_cap * 2] */
    char pend_run[64]; /* the run every live entry belongs to */
    /* owned: the statements every run writes with, each prepared on first use and kept
     * for the life of the connection (see stmt_sql); reset after every use */
    sqlite3_stmt *stmt[SQ_N_STMTS];
} sq;

/*
 * Database files this process has open through SQLite. POSIX record locks belong to
 * the process, and close() of ANY descriptor of a file drops all of them, so opening
 * and closing a store file ourselves (header_check) while another connection of this
 * process holds it would silently drop that connection's locks and let concurrent
 * hosts corrupt the store (sqlite.org/howtocorrupt.html, 2.2). The header is checked
 * only when no connection of ours holds the file.
 */
static struct {
    dev_t dev;
    ino_t ino;
    int n;
} held_files[16];
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

/* Adjust the count for @p q's file by @p delta; returns the count before the change. */
static int held_adjust(dev_t dev, ino_t ino, int delta)
{
    int before = 0;
    pthread_mutex_lock(&held_lock);
    size_t free_slot = sizeof held_files / sizeof held_files[0];
    for (size_t i = 0; i < sizeof held_files / sizeof held_files[0]; i++) {
        if (held_files[i].n > 0 && held_files[i].dev == dev && held_files[i].ino == ino) {
            before = held_files[i].n;
            held_files[i].n += delta;
            pthread_mutex_unlock(&held_lock);
            return before;
        }
        if (held_files[i].n == 0 && free_slot == sizeof held_files / sizeof held_files[0])
            free_slot = i;
    }
    if (delta > 0 && free_slot < sizeof held_files / sizeof held_files[0]) {
        held_files[free_slot].dev = dev;
        held_files[free_slot].ino = ino;
        held_files[free_slot].n = delta;
    }
    pthread_mutex_unlock(&held_lock);
    return before;
}

/* True if a connection of this process holds the file at @p path. */
static int held_by_us(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    int n = held_adjust(st.st_dev, st.st_ino, 0);
    return n > 0;
}

/*
 * The events table (schema 4): seq is a plain INTEGER PRIMARY KEY, the rowid, no longer
 * AUTOINCREMENT. A new event still gets max(seq)+1, so a run's events stay in the order
 * they were written and every live seq is unique; what AUTOINCREMENT added was only that
 * the seq of a deleted (pruned) newest event is never handed out again, and it cost a
 * read and a rewrite of sqlite_sequence on every insert: about 8 300 of the ~17 000
 * instructions of an event insert (callgrind, sqlite3 CLI, 4 000 inserts), and a chained
 * pass step writes 4 events. Nothing reads events across runs by seq.
 */
#define EVENTS_SQL(name)                                                                    \
    "CREATE TABLE " name "("                                                                \
    " seq INTEGER PRIMARY KEY,"                                                             \
    " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"                          \
    " step_id TEXT, attempt INTEGER, status TEXT NOT NULL, detail TEXT,"                    \
    " at_ms INTEGER NOT NULL);"
#define EVENTS_INDEX_SQL                                                                    \
    "CREATE INDEX events_run ON events(run_id, seq);"                                       \
    "CREATE TRIGGER events_append_only BEFORE UPDATE ON events"                             \
    " BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"

/* Schema 3 -> 4: the events table rebuilt without AUTOINCREMENT, every row and seq kept
 * (dropping the old table drops its index, trigger and sqlite_sequence row; the first
 * two are made again on the new one). */
static const char events_upgrade_sql[] =
    EVENTS_SQL("events_v4")
    "INSERT INTO events_v4(seq, run_id, step_id, attempt, status, detail, at_ms)"
    " SELECT seq, run_id, step_id, attempt, status, detail, at_ms FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v4 RENAME TO events;"
    EVENTS_INDEX_SQL;

static const char schema_sql[] =
    "CREATE TABLE runs("
    " id TEXT PRIMARY KEY, workflow TEXT NOT NULL, file TEXT NOT NULL,"
    " file_hash TEXT NOT NULL, status TEXT NOT NULL, error TEXT,"
    " created_ms INTEGER NOT NULL, started_ms INTEGER, finished_ms INTEGER,"
    " inputs TEXT);"
    "CREATE INDEX runs_created ON runs(created_ms);"
    "CREATE TABLE steps("
    " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " step_id TEXT NOT NULL, status TEXT NOT NULL, def_hash TEXT,"
    " outputs TEXT, outputs_ref TEXT, error TEXT, started_ms INTEGER, finished_ms INTEGER,"
    " PRIMARY KEY(run_id, step_id));"
    "CREATE TABLE attempts("
    " run_id TEXT NOT NULL, step_id TEXT NOT NULL, attempt INTEGER NOT NULL,"
    " status TEXT NOT NULL, error TEXT, exit_code INTEGER, term_signal INTEGER,"
    " step_status INTEGER, idempotency_key TEXT NOT NULL, plugin_name TEXT,"
    " plugin_version TEXT, plugin_hash TEXT, started_ms INTEGER NOT NULL,"
    " finished_ms INTEGER, sandbox TEXT, PRIMARY KEY(run_id, step_id, attempt),"
    " FOREIGN KEY(run_id, step_id) REFERENCES steps(run_id, step_id) ON DELETE CASCADE);"
    EVENTS_SQL("events")
    EVENTS_INDEX_SQL
    "CREATE TABLE logs("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " step_id TEXT, attempt INTEGER, level INTEGER NOT NULL, msg TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL);"
    "CREATE INDEX logs_run ON logs(run_id, seq);";

/* One message per failure class, each naming the file, so a user knows what to do. */
static int db_fail(sq *q, int rc, const char *what)
{
    const char *msg = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return wfh_error_set(WFH_EIO, "run store %s: disk full while %s (%s)", q->path, what,
                             msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return wfh_error_set(WFH_EIO,
                             "run store %s is corrupt (%s while %s): move it aside or restore "
                             "it from a backup",
                             q->path, msg, what);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return wfh_error_set(WFH_EIO, "run store %s: still locked by another process after "
                             "%d s while %s", q->path, BUSY_TIMEOUT_MS / 1000, what);
    case SQLITE_CONSTRAINT:
        return wfh_error_set(WFH_EINVAL, "run store %s: %s while %s", q->path, msg, what);
    default:
        return wfh_error_set(WFH_EIO, "run store %s: %s while %s", q->path, msg, what);
    }
}

static void jitter_sleep(int attempt)
{
    struct timespec ts = {0, (long)(attempt * 20 + rand() % 50) * 1000000L};
    nanosleep(&ts, NULL);
}

static int exec_sql(sq *q, const char *sql, const char *what)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(q, rc, what);
}

/* The cached statement @p id, prepared on first use; NULL with rc set if it cannot be. */
static sqlite3_stmt *stmt_get(sq *q, int id, int *rc)
{
    *rc = SQLITE_OK;
    if (!q->stmt[id])
        *rc = sqlite3_prepare_v3(q->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                 &q->stmt[id], NULL);
    return q->stmt[id];
}

/* Give back a statement: a cached one is reset for its next use (its bindings cleared,
 * so no borrowed string outlives the call), any other is finalized. */
static void stmt_done(sq *q, sqlite3_stmt *st)
{
    for (int i = 0; i < SQ_N_STMTS; i++) {
        if (q->stmt[i] == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    }
    sqlite3_finalize(st);
}

/* Run cached statement @p id that takes no arguments and returns no rows (transaction
 * control, pragmas). @return SQLite's result code (SQLITE_OK on success). */
static int stmt_exec(sq *q, int id)
{
    int rc;
    sqlite3_stmt *st = stmt_get(q, id, &rc);
    if (!st)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Take the write lock now (see the file comment); the busy timeout waits first. */
static int lock_begin(sq *q, const char *what)
{
    int rc = SQLITE_BUSY;
    for (int i = 0; i < LOCK_RETRIES && (rc & 0xff) == SQLITE_BUSY; i++) {
        rc = stmt_exec(q, SQ_BEGIN);
        if ((rc & 0xff) == SQLITE_BUSY)
            jitter_sleep(i + 1);
    }
    return rc == SQLITE_OK ? 0 : db_fail(q, rc, what);
}

static void pend_clear(sq *q);
static int pend_flush(sq *q, size_t upto);

/* The group's transaction is gone: so is everything grouped so far (the held-back rows'
 * events too), and the group's commit must fail. */
static void group_forget(sq *q)
{
    q->in_group = 0;
    q->group_lost = 1;
    q->known_run[0] = '\0';
    pend_clear(q);
}

/* SQLite ends a transaction by itself on some errors (I/O, disk full). */
static void group_check(sq *q)
{
    if (q->in_group && sqlite3_get_autocommit(q->db))
        group_forget(q);
}

/* One mutating call: its own transaction, or a savepoint in the open group (core/
 * store.h, wfh_store_group), so a call that fails still takes back only its own rows.
 * Held-back rows are written first, outside the savepoint: those before entry @p keep
 * (all of them for SIZE_MAX, none for pend_head). */
static int tx_begin_keep(sq *q, const char *what, size_t keep)
{
    if (!q->group)
        return lock_begin(q, what);
    group_check(q);
    int err;
    if (!q->in_group) {
        if ((err = lock_begin(q, what)) < 0)
            return err;
        q->in_group = 1;
    }
    if ((err = pend_flush(q, keep)) < 0)
        return err;
    int rc = stmt_exec(q, SQ_SAVEPOINT);
    return rc == SQLITE_OK ? 0 : db_fail(q, rc, what);
}

static int tx_begin(sq *q, const char *what)
{
    return tx_begin_keep(q, what, SIZE_MAX);
}

static void tx_rollback(sq *q)
{
    q->known_run[0] = '\0';
    if (q->group) {
        group_check(q);
        if (q->in_group && stmt_exec(q, SQ_ROLLBACK_TO) == SQLITE_OK)
            stmt_exec(q, SQ_RELEASE);
        return;
    }
    if (!sqlite3_get_autocommit(q->db))
        stmt_exec(q, SQ_ROLLBACK);
}

static int tx_commit(sq *q, const char *what)
{
    int rc = stmt_exec(q, q->group ? SQ_RELEASE : SQ_COMMIT);
    if (rc == SQLITE_OK)
        return 0;
    int err = db_fail(q, rc, what);
    tx_rollback(q);
    return err;
}

static int sq_group_commit(void *impl)
{
    sq *q = impl;
    group_check(q);
    if (q->group_lost) {
        q->group_lost = 0;
        return wfh_error_set(WFH_EIO, "run store %s: a write failed and took the changes "
                             "grouped with it along (see the error before this one)", q->path);
    }
    if (!q->in_group)
        return 0;
    int err = pend_flush(q, SIZE_MAX);
    if (err < 0) {
        q->group_lost = 0; /* reported just now */
        return err;
    }
    q->in_group = 0;
    q->known_run[0] = '\0';
    int rc = stmt_exec(q, SQ_COMMIT);
    if (rc == SQLITE_OK)
        return 0;
    err = db_fail(q, rc, "committing a group of state changes");
    if (!sqlite3_get_autocommit(q->db))
        stmt_exec(q, SQ_ROLLBACK);
    return err;
}

static int sq_group(void *impl, int on)
{
    sq *q = impl;
    int err = on ? 0 : sq_group_commit(q);
    q->group = on;
    return err;
}

/* Bind arguments described by @p fmt: 't' const char * (NULL binds NULL), 'i' int64_t,
 * 'u' unsigned, 'd' int; then hand @p st out in *out, or give it back (stmt_done) and
 * return the error. */
static int bind_args(sq *q, sqlite3_stmt *st, sqlite3_stmt **out, const char *what,
                     const char *fmt, va_list ap)
{
    int rc = SQLITE_OK;
    for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
        int idx = i + 1;
        switch (fmt[i]) {
        case 't': {
            const char *s = va_arg(ap, const char *);
            /* SQLITE_STATIC: the string outlives the statement's use, which ends (reset,
             * bindings cleared, or finalized) before the call that bound it returns */
            rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, idx);
            break;
        }
        case 'i': rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t)); break;
        case 'u': rc = sqlite3_bind_int64(st, idx, (sqlite3_int64)va_arg(ap, unsigned)); break;
        case 'd': rc = sqlite3_bind_int(st, idx, va_arg(ap, int)); break;
        default: rc = SQLITE_MISUSE; break;
        }
    }
    if (rc != SQLITE_OK) {
        int err = db_fail(q, rc, what);
        stmt_done(q, st);
        return err;
    }
    *out = st;
    return 0;
}

/*
 * Prepare @p sql (built at run time) and bind arguments described by @p fmt (see
 * bind_args). The statement goes to *out, for run_stmt or rows_to_array, which
 * finalize it.
 */
static int prep(sq *q, sqlite3_stmt **out, const char *what, const char *sql,
                const char *fmt, ...)
{
    va_list ap;
    sqlite3_stmt *st = NULL; /* owned until handed out */
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(q, rc, what);
    va_start(ap, fmt);
    int err = bind_args(q, st, out, what, fmt, ap);
    va_end(ap);
    return err;
}

/* The same for cached statement @p id: *out is borrowed from @p q, and run_stmt or
 * rows_to_array reset it instead of finalizing it. */
static int prep_id(sq *q, sqlite3_stmt **out, const char *what, int id, const char *fmt, ...)
{
    va_list ap;
    int rc;
    sqlite3_stmt *st = stmt_get(q, id, &rc);
    if (!st)
        return db_fail(q, rc, what);
    va_start(ap, fmt);
    int err = bind_args(q, st, out, what, fmt, ap);
    va_end(ap);
    return err;
}

/* Run a statement that returns no rows; *changes (if non-NULL) gets the row count. */
static int run_stmt(sq *q, sqlite3_stmt *st, const char *what, int *changes)
{
    int rc = sqlite3_step(st);
    stmt_done(q, st);
    if (rc != SQLITE_DONE)
        return db_fail(q, rc, what);
    if (changes)
        *changes = sqlite3_changes(q->db);
    return 0;
}

static int event_add(sq *q, const char *run_id, const char *step_id, unsigned attempt,
                     wfh_state st, const char *detail, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int err = prep_id(q, &s, "appending an event", SQ_EVENT_ADD, "ttutti", run_id, step_id,
                      attempt, wfh_store_state_name(st), detail, now);
    return err < 0 ? err : run_stmt(q, s, "appending an event", NULL);
}

/* ---- queued rows held back in a group (see sq.pend) ---------------------------------- */

static void pend_clear(sq *q)
{
    for (size_t i = q->pend_head; i < q->pend_n; i++) {
        free(q->pend[i].step_id);
        free(q->pend[i].def_hash);
        free(q->pend[i].error);
    }
    q->pend_head = q->pend_n = 0;
    if (q->pend_slot)
        memset(q->pend_slot, 0xff, q->pend_cap * 2 * sizeof *q->pend_slot);
}

static size_t pend_hash(const char *s)
{
    size_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The live entry for @p step_id, or SIZE_MAX. */
static size_t pend_find(const sq *q, const char *step_id)
{
    if (q->pend_head == q->pend_n)
        return SIZE_MAX;
    size_t mask = q->pend_cap * 2 - 1;
    for (size_t h = pend_hash(step_id) & mask;; h = (h + 1) & mask) {
        int i = q->pend_slot[h];
        if (i < 0)
            return SIZE_MAX;
        if ((size_t)i >= q->pend_head && strcmp(q->pend[i].step_id, step_id) == 0)
            return (size_t)i;
    }
}

static void pend_index(sq *q, size_t i)
{
    size_t mask = q->pend_cap * 2 - 1;
    size_t h = pend_hash(q->pend[i].step_id) & mask;
    while (q->pend_slot[h] >= 0 && (size_t)q->pend_slot[h] >= q->pend_head)
        h = (h + 1) & mask;
    q->pend_slot[h] = (int)i;
}

/* Room for one more entry: the live ones moved to the front, the array grown if
 * needed, the index rebuilt. @return 0 or WFH_ENOMEM. */
static int pend_room(sq *q)
{
    if (q->pend_n < q->pend_cap)
        return 0;
    size_t live = q->pend_n - q->pend_head;
    size_t cap = q->pend_cap ? q->pend_cap : 16;
    while (live + 1 > cap / 2)
        cap *= 2;
    if (cap > (size_t)INT_MAX / 2)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
    if (cap != q->pend_cap) {
        pend_row *rows = realloc(q->pend, cap * sizeof *rows);
        if (!rows)
            return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
        q->pend = rows;
        int *slots = realloc(q->pend_slot, cap * 2 * sizeof *slots);
        if (!slots)
            return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
        q->pend_slot = slots;
        q->pend_cap = cap;
    }
    memmove(q->pend, q->pend + q->pend_head, live * sizeof *q->pend);
    q->pend_head = 0;
    q->pend_n = live;
    memset(q->pend_slot, 0xff, q->pend_cap * 2 * sizeof *q->pend_slot);
    for (size_t i = 0; i < live; i++)
        pend_index(q, i);
    return 0;
}

/* Hold back step @p step_id's queued row (its event is written already). @return 0,
 * or 1 if it cannot be held (the caller writes it now). */
static int pend_defer(sq *q, const char *run_id, const char *step_id, const char *def_hash,
                      const char *error, int64_t now)
{
    if (q->pend_head < q->pend_n && strcmp(q->pend_run, run_id) != 0)
        return 1;
    if (strlen(run_id) >= sizeof q->pend_run || pend_find(q, step_id) != SIZE_MAX ||
        pend_room(q) < 0)
        return 1;
    pend_row *r = &q->pend[q->pend_n];
    r->step_id = strdup(step_id);
    r->def_hash = def_hash ? strdup(def_hash) : NULL;
    r->error = error ? strdup(error) : NULL;
    r->now = now;
    if (!r->step_id || (def_hash && !r->def_hash) || (error && !r->error)) {
        free(r->step_id);
        free(r->def_hash);
        free(r->error);
        return 1;
    }
    if (q->pend_head == q->pend_n)
        strcpy(q->pend_run, run_id);
    pend_index(q, q->pend_n++);
    return 0;
}

/* Drop the first live entry (its row is written). */
static void pend_pop(sq *q)
{
    pend_row *r = &q->pend[q->pend_head++];
    free(r->step_id);
    free(r->def_hash);
    free(r->error);
    if (q->pend_head == q->pend_n)
        pend_clear(q);
}

/* Roll the open group back now: a queued event must not be committed without its row.
 * The group's commit then fails (group_lost). */
static void group_lose(sq *q)
{
    if (!sqlite3_get_autocommit(q->db))
        stmt_exec(q, SQ_ROLLBACK);
    group_forget(q);
}

/* Write a step's 'queued' row (its event is written already) in the open group, outside
 * any call's savepoint; if it cannot be written the group is lost (group_lose). */
static int queued_row_write(sq *q, const char *run_id, const char *step_id,
                            const char *def_hash, const char *error, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int err = prep_id(q, &s, "recording a step state", SQ_STEP_SET, "tttttttid", run_id,
                      step_id, wfh_store_state_name(WFH_STATE_QUEUED), def_hash, NULL, NULL,
                      error, now, 0);
    if (err < 0 || (err = run_stmt(q, s, "recording a step state", NULL)) < 0)
        group_lose(q);
    return err;
}

/*
 * Write the held-back rows before entry @p upto (all for SIZE_MAX), oldest first. They
 * belong to the open group, outside any call's savepoint: if one cannot be written the
 * whole group is rolled back and the commit will fail (a queued event without its row
 * must not be committed).
 */
static int pend_flush(sq *q, size_t upto)
{
    if (upto > q->pend_n)
        upto = q->pend_n;
    /* counted, not compared with pend_head: popping the last one starts over at 0 */
    for (size_t todo = upto > q->pend_head ? upto - q->pend_head : 0; todo > 0; todo--) {
        pend_row *r = &q->pend[q->pend_head];
        int err = queued_row_write(q, q->pend_run, r->step_id, r->def_hash, r->error, r->now);
        if (err < 0)
            return err;
        pend_pop(q);
    }
    return 0;
}

static int run_exists(sq *q, const char *run_id)
{
    if (q->in_group && q->known_run[0] && strcmp(q->known_run, run_id) == 0)
        return 0;
    sqlite3_stmt *s = NULL;
    int err = prep_id(q, &s, "looking up a run", SQ_RUN_EXISTS, "t", run_id);
    if (err < 0)
        return err;
    int rc = sqlite3_step(s);
    stmt_done(q, s);
    if (rc == SQLITE_ROW) {
        if (q->in_group && strlen(run_id) < sizeof q->known_run)
            strcpy(q->known_run, run_id);
        return 0;
    }
    if (rc == SQLITE_DONE)
        return wfh_error_set(WFH_ENOTFOUND, "run store %s: no run '%s'", q->path, run_id);
    return db_fail(q, rc, "looking up a run");
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Check the 100-byte header ourselves: SQLite would accept a truncated file and fail
 * only when it reaches a missing page. In WAL mode the header's page count is that of
 * the last completed checkpoint, which the file holds, so a shorter file is truncated.
 */
static int header_check(const char *path)
{
    unsigned char h[100];
    int err = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0
                               : wfh_error_set(WFH_EIO, "run store %s: cannot open: %s", path,
                                               strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        err = wfh_error_set(WFH_EIO, "run store %s: %s", path, strerror(errno));
        goto done;
    }
    if (st.st_size == 0)
        goto done; /* being created (by us or a concurrent host) */
    ssize_t n = pread(fd, h, sizeof h, 0);
    if (n != (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0) {
        err = wfh_error_set(WFH_EIO,
                            "run store %s is corrupt or not a SQLite file (bad header): move "
                            "it aside or restore it from a backup",
                            path);
        goto done;
    }
    uint32_t page_size = (uint32_t)h[16] << 8 | h[17];
    if (page_size == 1)
        page_size = 65536;
    uint32_t pages = be32(h + 28);
    /* With a non-empty -wal file next to it, a checkpoint may have been cut short after
     * writing page 1 but before extending the file: SQLite finishes it from the WAL, so
     * the size says nothing then. */
    char wal[4096];
    struct stat wst;
    snprintf(wal, sizeof wal, "%s-wal", path);
    int wal_pending = stat(wal, &wst) == 0 && wst.st_size > 0;
    if (!wal_pending && be32(h + 24) == be32(h + 92) && pages > 0 &&
        (uint64_t)st.st_size < (uint64_t)page_size * pages) {
        err = wfh_error_set(WFH_EIO,
                            "run store %s is truncated (%lld bytes, header says %llu): restore "
                            "it from a backup",
                            path, (long long)st.st_size,
                            (unsigned long long)page_size * pages);
        goto done;
    }
done:
    close(fd);
    return err;
}

static int pragma_int(sq *q, const char *sql, int *out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(s, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_OK ? 0 : db_fail(q, rc, "reading the schema version");
}

/* Create the schema once, even when several hosts open a new store at the same time. */
static int schema_check(sq *q)
{
    int version = 0, app = 0, tables = 0, err;
    if ((err = pragma_int(q, "PRAGMA user_version", &version)) < 0)
        return err;
    if (version > WFH_STORE_SCHEMA_VERSION)
        goto newer;
    if (version == WFH_STORE_SCHEMA_VERSION)
        goto check_app;
    /* Migrating an existing store is not creating one: done even for list/show. */
    if (version == 0 && (q->flags & WFH_STORE_NO_CREATE))
        return wfh_error_set(WFH_EIO, "run store %s has no schema (not a wfhost run store?)",
                             q->path);
    if ((err = tx_begin(q, "creating the schema")) < 0)
        return err;
    if ((err = pragma_int(q, "PRAGMA user_version", &version)) < 0)
        goto fail;
    if (version == 0) {
        if ((err = pragma_int(q, "SELECT count(*) FROM sqlite_master", &tables)) < 0)
            goto fail;
        if (tables > 0) {
            err = wfh_error_set(WFH_EIO, "%s is a SQLite database but not a wfhost run store",
                                q->path);
            goto fail;
        }
        if ((err = exec_sql(q, schema_sql, "creating the schema")) < 0)
            goto fail;
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d; PRAGMA application_id=%d",
                 WFH_STORE_SCHEMA_VERSION, WFH_STORE_APP_ID);
        if ((err = exec_sql(q, sql, "creating the schema")) < 0)
            goto fail;
    } else if (version < WFH_STORE_SCHEMA_VERSION) {
        /* schema 2: runs.inputs, NULL for runs recorded before it (resume then has no
         * recorded inputs and resolves the workflow's defaults); schema 3:
         * attempts.sandbox, what confined each attempt, NULL before it; schema 4: events
         * without AUTOINCREMENT (events_upgrade_sql) */
        char sql[192];
        snprintf(sql, sizeof sql, "%s%sPRAGMA user_version=%d",
                 version < 2 ? "ALTER TABLE runs ADD COLUMN inputs TEXT; " : "",
                 version < 3 ? "ALTER TABLE attempts ADD COLUMN sandbox TEXT; " : "",
                 WFH_STORE_SCHEMA_VERSION);
        if ((version < 4 && (err = exec_sql(q, events_upgrade_sql, "upgrading the schema")) < 0) ||
            (err = exec_sql(q, sql, "upgrading the schema")) < 0)
            goto fail;
    }
    if ((err = tx_commit(q, "creating the schema")) < 0)
        return err;
    if (version > WFH_STORE_SCHEMA_VERSION)
        goto newer;
check_app:
    if ((err = pragma_int(q, "PRAGMA application_id", &app)) < 0)
        return err;
    if (app != WFH_STORE_APP_ID)
        return wfh_error_set(WFH_EIO, "%s is a SQLite database but not a wfhost run store",
                             q->path);
    return 0;
newer:
    return wfh_error_set(WFH_EINVAL,
                         "run store %s was written by a newer wfhost (schema %d; this wfhost "
                         "reads up to %d): upgrade wfhost",
                         q->path, version, WFH_STORE_SCHEMA_VERSION);
fail:
    tx_rollback(q);
    return err;
}

static void sq_close(void *impl)
{
    sq *q = impl;
    if (!q)
        return;
    pend_clear(q); /* an open group's transaction ends with the connection */
    free(q->pend);
    free(q->pend_slot);
    for (int i = 0; i < SQ_N_STMTS; i++)
        sqlite3_finalize(q->stmt[i]); /* sqlite3_close refuses while any is alive */
    /* The last connection's close checkpoints; this has it then cut the kept -wal file
     * to zero bytes (see sq_open), not only while it is closing. */
    if (q->db)
        (void)sqlite3_exec(q->db, "PRAGMA journal_size_limit=0", NULL, NULL, NULL);
    sqlite3_close(q->db);
    if (q->held)
        held_adjust(q->dev, q->ino, -1);
    free(q->path);
    free(q);
}

/*
 * Process-wide SQLite settings, made once before SQLite initializes (if something in
 * this process used SQLite first, the calls are refused and nothing changes):
 *  - no allocation statistics: SQLite counted every allocation under a global mutex
 *    for sqlite3_memory_used(), which wfhost never reads (~125 000 lock/unlock pairs
 *    per 1 000 chained pass steps, ~3% of the host's instructions, callgrind);
 *  - a call's savepoint (statement) journal stays in memory up to 1 MiB instead of
 *    64 KiB: once one call's journal outgrew 64 KiB (a chain of 10 000 pass steps, at
 *    about step 7 971) SQLite moved it to a temporary file for the rest of the
 *    connection, and every later savepoint wrote pages there (6 042 pwrite64 more).
 */
static pthread_once_t sqlite_config_once = PTHREAD_ONCE_INIT;

static void sqlite_config(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 1 << 20);
}

static int sq_open(const char *path, unsigned flags, void **impl)
{
    int err = 0, rc;
    sq *q = calloc(1, sizeof *q); /* owned until handed out */
    if (!q || !(q->path = strdup(path))) {
        free(q);
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", path);
    }
    q->flags = flags;
    pthread_once(&sqlite_config_once, sqlite_config);
    if ((flags & WFH_STORE_NO_CREATE) && access(path, F_OK) < 0) {
        err = wfh_error_set(WFH_ENOTFOUND, "run store %s does not exist yet", path);
        goto done;
    }
    /* A store another host is creating this instant can show a partial first page:
     * look again briefly before calling it corrupt (creation takes microseconds). */
    for (int i = 0; !held_by_us(path) && (err = header_check(path)) < 0 && i < 5; i++)
        jitter_sleep(1);
    if (err < 0)
        goto done;
    /* Read-only callers still open read-write: reading a WAL database needs the -shm
     * file, and a reader never writes rows anyway. */
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                 ((flags & WFH_STORE_NO_CREATE) ? 0 : SQLITE_OPEN_CREATE);
    rc = sqlite3_open_v2(path, &q->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        err = db_fail(q, rc, "opening");
        goto done;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        q->dev = st.st_dev;
        q->ino = st.st_ino;
        q->held = 1;
        held_adjust(q->dev, q->ino, +1);
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
    /* Switching to WAL needs a moment of exclusive access: retry if a peer holds it. */
    rc = SQLITE_BUSY;
    for (int i = 0; i < LOCK_RETRIES && (rc & 0xff) == SQLITE_BUSY; i++) {
        rc = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if ((rc & 0xff) == SQLITE_BUSY)
            jitter_sleep(i + 1);
    }
    if (rc != SQLITE_OK) {
        err = db_fail(q, rc, "switching to WAL mode");
        goto done;
    }
    /*
     * Keep the -wal and -shm files when the last connection closes. SQLite's default
     * unlinks both at every close and creates them again at the next open: for a
     * one-step `wfhost exec`, two new inodes and two unlinks on every start, which on
     * ext4 cost ~0.2 ms each (perf: ext4_create, recently_deleted). The close still
     * checkpoints everything into runs.db first (a copy of runs.db alone holds every
     * committed run: tests/unit/test_store.c), and then cuts the -wal file to zero bytes
     * (journal_size_limit=0 at close, sq_close), so after a clean exit header_check still
     * finds no pending WAL and still tells a truncated runs.db from one SQLite is about
     * to complete. While the connection is open the limit stays unset: a long run's WAL
     * is reused in place after each checkpoint rather than cut and grown again.
     */
    int persist = 1;
    (void)sqlite3_file_control(q->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    if ((err = exec_sql(q, (flags & WFH_STORE_SYNC_NORMAL)
                               ? "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON"
                               : "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON",
                        "configuring")) < 0)
        goto done;
    if ((err = schema_check(q)) < 0)
        goto done;
    *impl = q;
    q = NULL;
done:
    sq_close(q);
    return err;
}

static int sq_run_create(void *impl, const char *id, const wfh_store_run_new *r, int64_t now)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    int err = tx_begin(q, "creating a run");
    if (err < 0)
        return err;
    err = prep_id(q, &s, "creating a run", SQ_RUN_CREATE, "ttttit", id, r->workflow, r->file_path,
                  r->file_hash, now, r->inputs_json);
    if (err < 0)
        goto fail;
    err = run_stmt(q, s, "creating a run", NULL);
    if (err < 0)
        goto fail;
    if ((err = event_add(q, id, NULL, 0, WFH_STATE_QUEUED, r->file_path, now)) < 0)
        goto fail;
    return tx_commit(q, "creating a run");
fail:
    tx_rollback(q);
    return err;
}

static int sq_run_set_state(void *impl, const char *id, wfh_state st, const char *error,
                            int64_t now)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    int changes = 0;
    int err = tx_begin(q, "recording a run state");
    if (err < 0)
        return err;
    err = prep_id(q, &s, "recording a run state", SQ_RUN_SET_STATE, "ttidt",
                  wfh_store_state_name(st), error, now, wfh_store_state_is_final(st), id);
    if (err < 0 || (err = run_stmt(q, s, "recording a run state", &changes)) < 0)
        goto fail;
    if (changes == 0) {
        err = wfh_error_set(WFH_ENOTFOUND, "run store %s: no run '%s'", q->path, id);
        goto fail;
    }
    if ((err = event_add(q, id, NULL, 0, st, error, now)) < 0)
        goto fail;
    return tx_commit(q, "recording a run state");
fail:
    tx_rollback(q);
    return err;
}

/* The step's row and event; the caller holds the transaction. */
static int step_set_body(sq *q, const char *run_id, const char *step_id, wfh_state st,
                         const char *def_hash, const char *outputs_json,
                         const char *outputs_ref, const char *error, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int err;
    if ((err = run_exists(q, run_id)) < 0)
        return err;
    /* Outputs belong to a success only: a step sent back to queued (changed definition)
     * or failing on retry must not keep stale ones. */
    err = prep_id(
        q, &s, "recording a step state", SQ_STEP_SET, "tttttttid", run_id, step_id,
        wfh_store_state_name(st), def_hash, st == WFH_STATE_SUCCEEDED ? outputs_json : NULL,
        st == WFH_STATE_SUCCEEDED ? outputs_ref : NULL, error, now, wfh_store_state_is_final(st));
    if (err < 0 || (err = run_stmt(q, s, "recording a step state", NULL)) < 0)
        return err;
    return event_add(q, run_id, step_id, 0, st, error, now);
}

static int sq_step_set_state(void *impl, const char *run_id, const char *step_id,
                             wfh_state st, const char *def_hash, const char *outputs_json,
                             const char *outputs_ref, const char *error, int64_t now)
{
    sq *q = impl;
    /* queued in a group: the row may wait for the step's start (sq.pend), unless the
     * step has one waiting already (then everything is written, in order) */
    int hold = q->group && st == WFH_STATE_QUEUED;
    int err = tx_begin_keep(q, "recording a step state",
                            hold && pend_find(q, step_id) == SIZE_MAX ? q->pend_head : SIZE_MAX);
    if (err < 0)
        return err;
    if (hold) {
        if ((err = run_exists(q, run_id)) < 0 ||
            (err = event_add(q, run_id, step_id, 0, st, error, now)) < 0)
            goto fail;
        if ((err = tx_commit(q, "recording a step state")) < 0)
            return err;
        if (pend_defer(q, run_id, step_id, def_hash, error, now) == 0)
            return 0;
        /* not held back (rows of another run are, the run id is too long for pend_run,
         * or out of memory): write it now, in the group itself, its event being there
         * already */
        if ((err = pend_flush(q, SIZE_MAX)) < 0)
            return err;
        return queued_row_write(q, run_id, step_id, def_hash, error, now);
    }
    if ((err = step_set_body(q, run_id, step_id, st, def_hash, outputs_json, outputs_ref,
                             error, now)) < 0)
        goto fail;
    return tx_commit(q, "recording a step state");
fail:
    tx_rollback(q);
    return err;
}

static int sq_attempt_start(void *impl, const char *run_id, const char *step_id,
                            unsigned attempt, const char *key, const wfh_store_plugin_ref *p,
                            int64_t now)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    /* a held-back queued row of this step is written with its running state, after
     * the ones queued before it */
    size_t k = q->group && strcmp(q->pend_run, run_id) == 0 ? pend_find(q, step_id) : SIZE_MAX;
    int err = tx_begin_keep(q, "recording an attempt start", k);
    if (err < 0)
        return err;
    if (k >= q->pend_n) /* a lost group took it along (pend_clear) */
        k = SIZE_MAX;
    if ((err = run_exists(q, run_id)) < 0)
        goto fail;
    if (k != SIZE_MAX)
        err = prep_id(q, &s, "recording an attempt start", SQ_ATTEMPT_STEP_QUEUED, "ttti",
                      run_id, step_id, q->pend[k].def_hash, now);
    else
        err = prep_id(q, &s, "recording an attempt start", SQ_ATTEMPT_STEP, "tti", run_id,
                      step_id, now);
    if (err < 0 || (err = run_stmt(q, s, "recording an attempt start", NULL)) < 0)
        goto fail;
    err = prep_id(q, &s, "recording an attempt start", SQ_ATTEMPT_ADD, "ttutttti", run_id, step_id,
                  attempt, key, p ? p->name : NULL, p ? p->version : NULL, p ? p->file_hash : NULL,
                  now);
    if (err < 0)
        goto fail;
    if ((err = run_stmt(q, s, "recording an attempt start", NULL)) < 0) {
        if (err == WFH_EINVAL)
            err = wfh_error_set(WFH_EINVAL,
                                "run store %s: attempt %u of step '%s' in run '%s' was already "
                                "recorded",
                                q->path, attempt, step_id, run_id);
        goto fail;
    }
    if ((err = event_add(q, run_id, step_id, attempt, WFH_STATE_RUNNING, NULL, now)) < 0)
        goto fail;
    if ((err = tx_commit(q, "recording an attempt start")) < 0)
        return err;
    if (k != SIZE_MAX && q->pend_head == k && q->pend_head < q->pend_n)
        pend_pop(q); /* written; on failure it stays held, its write rolled back */
    return 0;
fail:
    tx_rollback(q);
    return err;
}

/* The attempt's row and event; the caller holds the transaction. */
static int attempt_finish_body(sq *q, const char *run_id, const char *step_id,
                               unsigned attempt, const wfh_store_attempt_end *e, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int changes = 0;
    int err = prep_id(q, &s, "recording an attempt end", SQ_ATTEMPT_FINISH, "ttddditttu",
                      wfh_store_state_name(e->state), e->error, e->exit_code, e->term_signal,
                      e->step_status, now, e->sandbox_json, run_id, step_id, attempt);
    if (err < 0 || (err = run_stmt(q, s, "recording an attempt end", &changes)) < 0)
        return err;
    if (changes == 0)
        return wfh_error_set(WFH_ENOTFOUND,
                             "run store %s: attempt %u of step '%s' in run '%s' was never "
                             "started",
                             q->path, attempt, step_id, run_id);
    return event_add(q, run_id, step_id, attempt, e->state, e->error, now);
}

static int sq_attempt_finish(void *impl, const char *run_id, const char *step_id,
                             unsigned attempt, const wfh_store_attempt_end *e, int64_t now)
{
    sq *q = impl;
    int err = tx_begin(q, "recording an attempt end");
    if (err < 0)
        return err;
    if ((err = attempt_finish_body(q, run_id, step_id, attempt, e, now)) < 0) {
        tx_rollback(q);
        return err;
    }
    return tx_commit(q, "recording an attempt end");
}

static int sq_attempt_end_step(void *impl, const char *run_id, const char *step_id,
                               unsigned attempt, const wfh_store_attempt_end *e,
                               wfh_state step_state, const char *def_hash,
                               const char *outputs_json, const char *outputs_ref, int64_t now)
{
    sq *q = impl;
    int err = tx_begin(q, "recording an attempt end");
    if (err < 0)
        return err;
    if ((err = attempt_finish_body(q, run_id, step_id, attempt, e, now)) < 0 ||
        (err = step_set_body(q, run_id, step_id, step_state, def_hash, outputs_json,
                             outputs_ref, e->error, now)) < 0) {
        tx_rollback(q);
        return err;
    }
    return tx_commit(q, "recording an attempt end");
}

static int sq_log_append(void *impl, const char *run_id, const char *step_id,
                         unsigned attempt, int level, const char *msg, int64_t now)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    int err;
    /* A log line need not cost an fsync: in WAL mode the next FULL commit (the next
     * state change) makes it durable too, and a crash before that loses only log text.
     * Set outside the transaction, where the pager picks it up. */
    if (!(q->flags & WFH_STORE_SYNC_NORMAL) && !q->group)
        stmt_exec(q, SQ_SYNC_NORMAL);
    if ((err = tx_begin(q, "appending a log line")) < 0)
        goto done;
    if ((err = run_exists(q, run_id)) < 0)
        goto fail;
    err = prep_id(q, &s, "appending a log line", SQ_LOG_ADD, "ttudti", run_id, step_id, attempt,
                  level, msg, now);
    if (err < 0 || (err = run_stmt(q, s, "appending a log line", NULL)) < 0)
        goto fail;
    err = tx_commit(q, "appending a log line");
    goto done;
fail:
    tx_rollback(q);
done:
    if (!(q->flags & WFH_STORE_SYNC_NORMAL) && !q->group)
        stmt_exec(q, SQ_SYNC_FULL);
    return err;
}

/* The current row as a JSON object keyed by column name (NULL columns become null). */
static int row_to_json(sq *q, sqlite3_stmt *st, json_t **out)
{
    json_t *o = json_object(); /* owned until handed out */
    if (!o)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        json_t *v; /* new reference, stolen by json_object_set_new */
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
        case SQLITE_NULL: v = json_null(); break;
        default:
            v = json_stringn((const char *)sqlite3_column_text(st, i),
                             (size_t)sqlite3_column_bytes(st, i));
            break;
        }
        if (!v || json_object_set_new(o, sqlite3_column_name(st, i), v) < 0) {
            json_decref(o);
            return wfh_error_set(WFH_EIO, "run store %s: a text column is not UTF-8 (corrupt?)",
                                 q->path);
        }
    }
    *out = o;
    return 0;
}

/* Step through @p st (given back here: stmt_done), appending each row to array @p arr. */
static int rows_to_array(sq *q, sqlite3_stmt *st, json_t *arr, const char *what)
{
    int rc, err = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = NULL;
        if ((err = row_to_json(q, st, &row)) < 0)
            goto done;
        json_array_append_new(arr, row);
    }
    if (rc != SQLITE_DONE)
        err = db_fail(q, rc, what);
done:
    stmt_done(q, st);
    return err;
}

static const char run_cols[] = "id, workflow, file, file_hash, status, error, created_ms,"
                               " started_ms, finished_ms";

static int sq_runs_list(void *impl, const wfh_store_filter *f, json_t **out)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    char sql[512];
    json_t *arr = json_array(); /* owned until handed out */
    int err;
    snprintf(sql, sizeof sql,
             "SELECT %s FROM runs WHERE (?1 IS NULL OR status=?1) AND (?2 IS NULL OR "
             "workflow=?2) AND created_ms>=?3 ORDER BY created_ms DESC, id DESC LIMIT ?4",
             run_cols);
    if (!arr)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
    err = prep(q, &s, "listing runs", sql, "ttiu", f->status, f->workflow, f->since_ms,
               f->limit ? f->limit : 100u);
    if (err < 0 || (err = rows_to_array(q, s, arr, "listing runs")) < 0)
        goto done;
    *out = arr;
    arr = NULL;
done:
    json_decref(arr);
    return err;
}

/* Parse a stored JSON column (written by json_dumps) back into JSON in place. */
static int json_column_parse(sq *q, json_t *row, const char *key, const char *what)
{
    json_t *txt = json_object_get(row, key);
    if (!json_is_string(txt))
        return 0;
    json_error_t je;
    json_t *v = json_loads(json_string_value(txt), JSON_DECODE_ANY, &je);
    if (!v)
        return wfh_error_set(WFH_EIO, "run store %s is corrupt (%s are not JSON: %s)",
                             q->path, what, je.text);
    json_object_set_new(row, key, v);
    return 0;
}

static int outputs_parse(sq *q, json_t *step)
{
    return json_column_parse(q, step, "outputs", "step outputs");
}

static int sq_run_show(void *impl, const char *id, json_t **out)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    json_t *arr = json_array(), *run = NULL, *steps = json_array(); /* owned */
    char sql[256];
    int err;
    if (!arr || !steps) {
        err = wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
        goto done;
    }
    /* Rows held back in an open group are part of what this connection reads. */
    if ((err = pend_flush(q, SIZE_MAX)) < 0)
        goto done;
    /* One read transaction, so the run, its steps and attempts are one snapshot. */
    if ((err = exec_sql(q, "BEGIN", "reading a run")) < 0)
        goto done;
    snprintf(sql, sizeof sql, "SELECT %s, inputs FROM runs WHERE id=?", run_cols);
    if ((err = prep(q, &s, "reading a run", sql, "t", id)) < 0 ||
        (err = rows_to_array(q, s, arr, "reading a run")) < 0)
        goto done;
    if (json_array_size(arr) == 0) {
        err = wfh_error_set(WFH_ENOTFOUND, "run store %s: no run '%s'", q->path, id);
        goto done;
    }
    run = json_incref(json_array_get(arr, 0));
    if ((err = json_column_parse(q, run, "inputs", "run inputs")) < 0)
        goto done;
    err = prep(q, &s, "reading steps",
               "SELECT step_id AS id, status, def_hash, outputs, outputs_ref, error,"
               " started_ms, finished_ms FROM steps WHERE run_id=? ORDER BY rowid",
               "t", id);
    if (err < 0 || (err = rows_to_array(q, s, steps, "reading steps")) < 0)
        goto done;
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step) {
        json_t *atts = json_array(), *a;
        size_t j;
        if (!atts) {
            err = wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
            goto done;
        }
        json_object_set_new(step, "attempts", atts);
        if ((err = outputs_parse(q, step)) < 0)
            goto done;
        if (json_is_null(json_object_get(step, "outputs_ref")))
            json_object_del(step, "outputs_ref");
        err = prep_id(q, &s, "reading attempts", SQ_SHOW_ATTEMPTS, "tt", id,
                      json_string_value(json_object_get(step, "id")));
        if (err < 0 || (err = rows_to_array(q, s, atts, "reading attempts")) < 0)
            goto done;
        json_array_foreach(atts, j, a) {
            json_t *plugin = json_pack("{s:O,s:O,s:O}", "name", json_object_get(a, "plugin_name"),
                                       "version", json_object_get(a, "plugin_version"),
                                       "file_hash", json_object_get(a, "plugin_hash"));
            json_object_del(a, "plugin_name");
            json_object_del(a, "plugin_version");
            json_object_del(a, "plugin_hash");
            json_object_set_new(a, "plugin", plugin ? plugin : json_null());
            if ((err = wfh_store_attempt_sandbox_parse(a, q->path)) < 0)
                goto done;
        }
    }
    json_object_set(run, "steps", steps);
    *out = run;
    run = NULL;
done:
    tx_rollback(q);
    json_decref(arr);
    json_decref(steps);
    json_decref(run);
    return err;
}

static int sq_logs(void *impl, const char *run_id, const char *step_id, json_t **out)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    json_t *arr = json_array(); /* owned until handed out */
    int err;
    if (!arr)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
    if ((err = run_exists(q, run_id)) < 0)
        goto done;
    err = prep(q, &s, "reading logs",
               "SELECT step_id AS step, attempt, level, msg, at_ms FROM logs"
               " WHERE run_id=?1 AND (?2 IS NULL OR step_id=?2) ORDER BY seq",
               "tt", run_id, step_id);
    if (err < 0 || (err = rows_to_array(q, s, arr, "reading logs")) < 0)
        goto done;
    *out = arr;
    arr = NULL;
done:
    json_decref(arr);
    return err;
}

static int sq_events(void *impl, const char *run_id, json_t **out)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    json_t *arr = json_array(); /* owned until handed out */
    int err;
    if (!arr)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
    if ((err = run_exists(q, run_id)) < 0)
        goto done;
    err = prep(q, &s, "reading events",
               "SELECT seq, step_id AS step, attempt, status, detail, at_ms FROM events"
               " WHERE run_id=? ORDER BY seq",
               "t", run_id);
    if (err < 0 || (err = rows_to_array(q, s, arr, "reading events")) < 0)
        goto done;
    *out = arr;
    arr = NULL;
done:
    json_decref(arr);
    return err;
}

static int sq_prune(void *impl, int64_t before_ms, unsigned *removed, json_t **refs)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    json_t *arr = json_array(); /* owned until handed out */
    int changes = 0, err;
    static const char final_states[] =
        "('succeeded','failed','cancelled','timed_out','skipped')";
    char sql[400];
    if (!arr)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
    if ((err = tx_begin(q, "pruning runs")) < 0)
        goto done;
    q->known_run[0] = '\0'; /* the run it knew may be among those removed */
    snprintf(sql, sizeof sql,
             "SELECT s.run_id AS run, s.outputs_ref AS ref FROM steps s JOIN runs r"
             " ON r.id=s.run_id WHERE r.created_ms<? AND r.status IN %s"
             " AND s.outputs_ref IS NOT NULL",
             final_states);
    if ((err = prep(q, &s, "pruning runs", sql, "i", before_ms)) < 0 ||
        (err = rows_to_array(q, s, arr, "pruning runs")) < 0)
        goto fail;
    snprintf(sql, sizeof sql, "DELETE FROM runs WHERE created_ms<? AND status IN %s",
             final_states);
    if ((err = prep(q, &s, "pruning runs", sql, "i", before_ms)) < 0 ||
        (err = run_stmt(q, s, "pruning runs", &changes)) < 0)
        goto fail;
    if ((err = tx_commit(q, "pruning runs")) < 0)
        goto done;
    if (removed)
        *removed = (unsigned)changes;
    *refs = arr;
    arr = NULL;
    goto done;
fail:
    tx_rollback(q);
done:
    json_decref(arr);
    return err;
}

static int sq_run_reopen(void *impl, const char *id, const char *why, int64_t now)
{
    sq *q = impl;
    sqlite3_stmt *s = NULL;
    json_t *lost = json_array(); /* owned: the attempts that were in flight */
    int err;
    if (!lost)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", q->path);
    if ((err = tx_begin(q, "reopening a run")) < 0)
        goto done;
    if ((err = run_exists(q, id)) < 0)
        goto fail;
    if ((err = prep(q, &s, "reopening a run",
                    "SELECT step_id, attempt FROM attempts WHERE run_id=? AND status='running'",
                    "t", id)) < 0 ||
        (err = rows_to_array(q, s, lost, "reopening a run")) < 0)
        goto fail;
    if ((err = prep(q, &s, "reopening a run",
                    "UPDATE attempts SET status='failed', error=?, finished_ms=?"
                    " WHERE run_id=? AND status='running'",
                    "tit", why, now, id)) < 0 ||
        (err = run_stmt(q, s, "reopening a run", NULL)) < 0)
        goto fail;
    size_t i;
    json_t *a;
    json_array_foreach(lost, i, a) {
        if ((err = event_add(q, id, json_string_value(json_object_get(a, "step_id")),
                             (unsigned)json_integer_value(json_object_get(a, "attempt")),
                             WFH_STATE_FAILED, why, now)) < 0)
            goto fail;
    }
    if ((err = prep(q, &s, "reopening a run",
                    "UPDATE runs SET status='running', error=NULL, finished_ms=NULL,"
                    " started_ms=coalesce(started_ms, ?) WHERE id=?",
                    "it", now, id)) < 0 ||
        (err = run_stmt(q, s, "reopening a run", NULL)) < 0)
        goto fail;
    if ((err = event_add(q, id, NULL, 0, WFH_STATE_RUNNING, "resumed", now)) < 0)
        goto fail;
    err = tx_commit(q, "reopening a run");
    goto done;
fail:
    tx_rollback(q);
done:
    json_decref(lost);
    return err;
}

const wfh_store_ops wfh_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .run_create = sq_run_create,
    .run_set_state = sq_run_set_state,
    .step_set_state = sq_step_set_state,
    .attempt_start = sq_attempt_start,
    .attempt_finish = sq_attempt_finish,
    .attempt_end_step = sq_attempt_end_step,
    .log_append = sq_log_append,
    .runs_list = sq_runs_list,
    .run_show = sq_run_show,
    .logs = sq_logs,
    .events = sq_events,
    .prune = sq_prune,
    .run_reopen = sq_run_reopen,
    .group = sq_group,
    .group_commit = sq_group_commit,
};
