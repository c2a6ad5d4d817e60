/*
 * tests/unit/test_store.c - the run store (core/store.h) against real SQLite files:
 * the record/read round trip resume depends on, several processes writing one store
 * at once, and every way a store file can be bad (garbage, truncated, corrupt pages,
 * newer schema, a foreign database, a full disk) giving a one-line error naming it;
 * a schema-3 store (events with AUTOINCREMENT) upgraded on open with its events kept;
 * runs.db alone, copied after the last close, holding every committed run.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "home.h"
#include "store.h"
#include "store_fixture.h"

static char *db_path(const char *home)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/runs.db", home);
    return p;
}

/* The error is one line and names the store file: what a user sees from the CLI. */
static void assert_one_line_naming(const char *home)
{
    const char *msg = wfh_error_last();
    assert_non_null(strstr(msg, db_path(home)));
    assert_null(strchr(msg, '\n'));
}

static void test_roundtrip_and_resume(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "build");
    char *key = NULL;
    assert_int_equal(wfh_store_idempotency_key(id, "fetch", &key), 0);

    assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_RUNNING, NULL), 0);
    wfh_store_plugin_ref p = {"shell", "1.0.0", "deadbeef"};
    wfh_store_attempt_end fail = {WFH_STATE_FAILED, "exit 3", 3, 0, 1,
                                  "{\"profile\":\"strict\",\"landlock_abi\":7}"};
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    /* fetch: fails once, then succeeds with outputs */
    assert_int_equal(wfh_store_step_set_state(s, id, "fetch", WFH_STATE_RUNNING, "h1", NULL, NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "fetch", 1, key, &p), 0);
    assert_int_equal(wfh_store_attempt_finish(s, id, "fetch", 1, &fail), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "fetch", WFH_STATE_RETRYING, NULL, NULL, "exit 3"), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "fetch", 2, key, &p), 0);
    /* the same attempt twice is a caller bug, refused */
    assert_int_equal(wfh_store_attempt_start(s, id, "fetch", 2, key, &p), WFH_EINVAL);
    assert_int_equal(wfh_store_attempt_finish(s, id, "fetch", 2, &ok), 0);
    json_t *outs = json_pack("{s:s,s:i}", "body", "hello", "n", 42);
    assert_int_equal(wfh_store_step_set_state(s, id, "fetch", WFH_STATE_SUCCEEDED, NULL, outs, NULL), 0);
    json_decref(outs);
    /* big: outputs over the inline limit go to a file */
    char *bigtext = malloc(WFH_STORE_INLINE_MAX + 100);
    memset(bigtext, 'x', WFH_STORE_INLINE_MAX + 99);
    bigtext[WFH_STORE_INLINE_MAX + 99] = '\0';
    json_t *big = json_pack("{s:s}", "blob", bigtext);
    assert_int_equal(wfh_store_attempt_start(s, id, "big", 1, "k2", NULL), 0);
    assert_int_equal(wfh_store_step_attempt_end(s, id, "big", 1, &ok, WFH_STATE_SUCCEEDED, "h2", big), 0);
    assert_int_equal(wfh_store_step_attempt_end(s, id, "never", 1, &ok, WFH_STATE_SUCCEEDED, NULL, NULL), WFH_ENOTFOUND);
    json_decref(big);
    char ref[600];
    snprintf(ref, sizeof ref, "%s/outputs/%s/big.json", home, id);
    struct stat st;
    assert_int_equal(stat(ref, &st), 0);
    assert_true(st.st_size > WFH_STORE_INLINE_MAX);
    /* deploy: in flight when the host "dies" */
    assert_int_equal(wfh_store_attempt_start(s, id, "deploy", 1, "k3", &p), 0);
    assert_int_equal(wfh_store_log_append(s, id, "deploy", 1, 2, "pushing"), 0);
    assert_int_equal(wfh_store_log_append(s, id, "fetch", 2, 2, "got it"), 0);
    /* unknown run ids are reported, not invented */
    assert_int_equal(wfh_store_run_set_state(s, "nope", WFH_STATE_FAILED, NULL), WFH_ENOTFOUND);
    assert_int_equal(wfh_store_step_set_state(s, "nope", "x", WFH_STATE_RUNNING, NULL, NULL, NULL), WFH_ENOTFOUND);
    assert_int_equal(wfh_store_attempt_finish(s, id, "ghost", 1, &ok), WFH_ENOTFOUND);
    assert_int_equal(wfh_store_step_set_state(s, id, "../etc", WFH_STATE_RUNNING, NULL, NULL, NULL), WFH_EINVAL);
    wfh_store_free(s);

    /* a new process would see exactly this */
    s = open_ok(home, WFH_STORE_NO_CREATE);
    wfh_store_run *r = NULL;
    assert_int_equal(wfh_store_run_load(s, id, &r), 0);
    assert_string_equal(r->workflow, "build");
    assert_int_equal(r->state, WFH_STATE_RUNNING);
    assert_int_equal(r->step_count, 3);
    const wfh_store_step *f = wfh_store_run_step(r, "fetch");
    assert_non_null(f);
    assert_int_equal(f->state, WFH_STATE_SUCCEEDED);
    assert_int_equal(f->attempts, 2);
    assert_int_equal(f->in_flight, 0);
    assert_string_equal(f->def_hash, "h1");
    assert_string_equal(f->idempotency_key, key);
    assert_int_equal(json_integer_value(json_object_get(f->outputs, "n")), 42);
    const wfh_store_step *b = wfh_store_run_step(r, "big");
    assert_int_equal(strlen(json_string_value(json_object_get(b->outputs, "blob"))),
                     WFH_STORE_INLINE_MAX + 99);
    const wfh_store_step *d = wfh_store_run_step(r, "deploy");
    assert_int_equal(d->state, WFH_STATE_RUNNING);
    assert_int_equal(d->in_flight, 1);
    assert_null(d->outputs);
    assert_null(wfh_store_run_step(r, "absent"));
    wfh_store_run_free(r);

    json_t *show = NULL;
    assert_int_equal(wfh_store_run_show(s, id, &show), 0);
    json_t *a0 = json_array_get(json_object_get(json_array_get(json_object_get(show, "steps"), 0), "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "status")), "failed");
    assert_int_equal(json_integer_value(json_object_get(a0, "exit_code")), 3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a0, "plugin"), "file_hash")), "deadbeef");
    /* what confined the attempt is kept with it; an attempt without a report has null */
    assert_string_equal(json_string_value(json_object_get(json_object_get(a0, "sandbox"), "profile")), "strict");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a0, "sandbox"), "landlock_abi")), 7);
    json_t *a1 = json_array_get(json_object_get(json_array_get(json_object_get(show, "steps"), 0), "attempts"), 1);
    assert_true(json_is_null(json_object_get(a1, "sandbox")));
    json_decref(show);
    json_t *ev = NULL;
    assert_int_equal(wfh_store_events(s, id, &ev), 0);
    /* created, running, then fetch: running, #1 running, #1 failed, retrying, #2
     * running, #2 succeeded, succeeded; big: #1 running, #1 succeeded, succeeded;
     * deploy: #1 running */
    assert_int_equal(json_array_size(ev), 13);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "status")), "queued");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 5), "detail")), "exit 3");
    json_decref(ev);
    json_t *logs = NULL;
    assert_int_equal(wfh_store_logs(s, id, "deploy", &logs), 0);
    assert_int_equal(json_array_size(logs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(logs, 0), "msg")), "pushing");
    json_decref(logs);
    assert_int_equal(wfh_store_logs(s, id, NULL, &logs), 0);
    assert_int_equal(json_array_size(logs), 2);
    json_decref(logs);
    wfh_store_free(s);

    /* finish, list with filters, prune */
    s = open_ok(home, 0);
    char *id2 = new_run(s, "other");
    assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_FAILED, "deploy failed"), 0);
    json_t *list = NULL;
    wfh_store_filter flt = {.status = "failed"};
    assert_int_equal(wfh_store_runs_list(s, &flt, &list), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), id);
    json_decref(list);
    wfh_store_filter flt2 = {.workflow = "other"};
    assert_int_equal(wfh_store_runs_list(s, &flt2, &list), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    unsigned removed = 99;
    assert_int_equal(wfh_store_prune(s, 0, &removed), 0); /* nothing that old */
    assert_int_equal(removed, 0);
    assert_int_equal(wfh_store_prune(s, INT64_MAX, &removed), 0);
    assert_int_equal(removed, 1); /* the queued run is not pruned */
    assert_int_equal(stat(ref, &st), -1);
    assert_int_equal(wfh_store_run_show(s, id, &show), WFH_ENOTFOUND);
    assert_int_equal(wfh_store_run_show(s, id2, &show), 0);
    json_decref(show);
    wfh_store_free(s);
    free(id);
    free(id2);
    free(key);
    free(bigtext);
    home_rm(home);
}

enum { WRITERS = 4, RUNS_EACH = 25 };

/* Each child creates runs and drives them through a full life; any error exits 1. */
static int writer(const char *home, int who)
{
    wfh_store *s = NULL;
    if (wfh_store_open(home, 0, &s) < 0) {
        fprintf(stderr, "writer %d: %s\n", who, wfh_error_last());
        return 1;
    }
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    for (int i = 0; i < RUNS_EACH; i++) {
        char *id = NULL, wf[32];
        snprintf(wf, sizeof wf, "w%d", who);
        wfh_store_run_new r = {.workflow = wf, .file_path = "f.yaml", .file_hash = "h"};
        json_t *o = json_pack("{s:i}", "i", i);
        int err = 0;
        if ((err = wfh_store_run_create(s, &r, &id)) < 0 ||
            (err = wfh_store_run_set_state(s, id, WFH_STATE_RUNNING, NULL)) < 0 ||
            (err = wfh_store_attempt_start(s, id, "a", 1, "k", NULL)) < 0 ||
            (err = wfh_store_log_append(s, id, "a", 1, 2, "line")) < 0 ||
            (err = wfh_store_attempt_finish(s, id, "a", 1, &ok)) < 0 ||
            (err = wfh_store_step_set_state(s, id, "a", WFH_STATE_SUCCEEDED, "d", o, NULL)) < 0 ||
            (err = wfh_store_run_set_state(s, id, WFH_STATE_SUCCEEDED, NULL)) < 0)
            fprintf(stderr, "writer %d: %s\n", who, wfh_error_last());
        json_decref(o);
        free(id);
        if (err < 0) {
            wfh_store_free(s);
            return 1;
        }
    }
    wfh_store_free(s);
    return 0;
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    char *home = home_new();
    pid_t pids[WRITERS];
    /* All children open a store that does not exist yet: schema creation races too. */
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0)
            _exit(writer(home, w));
    }
    for (int w = 0; w < WRITERS; w++) {
        int ws;
        assert_int_equal(waitpid(pids[w], &ws, 0), pids[w]);
        assert_true(WIFEXITED(ws));
        assert_int_equal(WEXITSTATUS(ws), 0);
    }
    wfh_store *s = open_ok(home, WFH_STORE_NO_CREATE);
    json_t *list = NULL;
    wfh_store_filter f = {.limit = 10000};
    assert_int_equal(wfh_store_runs_list(s, &f, &list), 0);
    assert_int_equal(json_array_size(list), WRITERS * RUNS_EACH);
    size_t i;
    json_t *run;
    json_array_foreach(list, i, run) {
        assert_string_equal(json_string_value(json_object_get(run, "status")), "succeeded");
        wfh_store_run *r = NULL;
        assert_int_equal(wfh_store_run_load(s, json_string_value(json_object_get(run, "id")), &r), 0);
        assert_int_equal(r->step_count, 1);
        assert_int_equal(r->steps[0].state, WFH_STATE_SUCCEEDED);
        assert_int_equal(r->steps[0].attempts, 1);
        assert_non_null(r->steps[0].outputs);
        wfh_store_run_free(r);
    }
    json_decref(list);
    wfh_store_free(s);
    home_rm(home);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A store with enough rows to span many pages. */
static void fill_store(const char *home, int runs)
{
    wfh_store *s = open_ok(home, WFH_STORE_SYNC_NORMAL);
    for (int i = 0; i < runs; i++) {
        char *id = new_run(s, "filler");
        for (int j = 0; j < 5; j++)
            assert_int_equal(wfh_store_log_append(s, id, "x", 1, 2,
                             "a log line long enough to fill pages quickly ........................"), 0);
        free(id);
    }
    wfh_store_free(s);
}

/* Copy runs.db alone (not its -wal or -shm) from @p from to the home @p to. */
static void copy_db_alone(const char *from, const char *to)
{
    char src[512];
    snprintf(src, sizeof src, "%s", db_path(from));
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    write_file(db_path(to), buf, (size_t)n);
    free(buf);
}

/* After the last connection closes, runs.db by itself holds every committed change: the
 * close checkpoints, and the -wal file SQLite keeps between connections
 * (SQLITE_FCNTL_PERSIST_WAL) is left empty, so a truncated runs.db is still told from a
 * pending WAL (test_truncated_file). Twice: the second cycle reuses the kept -wal. */
static void test_db_alone_after_close(void **state)
{
    (void)state;
    char *home = home_new();
    char *ids[2];
    for (int cycle = 0; cycle < 2; cycle++) {
        wfh_store *s = open_ok(home, 0);
        ids[cycle] = new_run(s, cycle ? "second" : "first");
        assert_int_equal(wfh_store_run_set_state(s, ids[cycle], WFH_STATE_RUNNING, NULL), 0);
        assert_int_equal(wfh_store_step_set_state(s, ids[cycle], "a", WFH_STATE_SUCCEEDED, "h",
                                                  NULL, NULL),
                         0);
        wfh_store_free(s);
        char wal[600];
        struct stat st;
        snprintf(wal, sizeof wal, "%s-wal", db_path(home));
        if (stat(wal, &st) == 0)
            assert_int_equal(st.st_size, 0);

        char *copy = home_new();
        copy_db_alone(home, copy);
        s = open_ok(copy, WFH_STORE_NO_CREATE);
        for (int i = 0; i <= cycle; i++) {
            wfh_store_run *r = NULL;
            assert_int_equal(wfh_store_run_load(s, ids[i], &r), 0);
            assert_string_equal(r->workflow, i ? "second" : "first");
            assert_int_equal(r->state, WFH_STATE_RUNNING);
            const wfh_store_step *a = wfh_store_run_step(r, "a");
            assert_non_null(a);
            assert_int_equal(a->state, WFH_STATE_SUCCEEDED);
            wfh_store_run_free(r);
        }
        wfh_store_free(s);
        home_rm(copy);
    }
    free(ids[0]);
    free(ids[1]);
    home_rm(home);
}

static void test_garbage_file(void **state)
{
    (void)state;
    char *home = home_new();
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 13);
    write_file(db_path(home), junk, sizeof junk);
    wfh_store *s = NULL;
    assert_int_equal(wfh_store_open(home, 0, &s), WFH_EIO);
    assert_null(s);
    assert_one_line_naming(home);
    assert_int_equal(wfh_store_open(home, WFH_STORE_NO_CREATE, &s), WFH_EIO);
    write_file(db_path(home), "SQLite", 6); /* shorter than a header */
    assert_int_equal(wfh_store_open(home, 0, &s), WFH_EIO);
    assert_one_line_naming(home);
    home_rm(home);
}

static void test_truncated_file(void **state)
{
    (void)state;
    char *home = home_new();
    fill_store(home, 60);
    struct stat st;
    assert_int_equal(stat(db_path(home), &st), 0);
    assert_true(st.st_size > 8 * 4096);
    assert_int_equal(truncate(db_path(home), st.st_size / 2), 0);
    wfh_store *s = NULL;
    assert_int_equal(wfh_store_open(home, 0, &s), WFH_EIO);
    assert_non_null(strstr(wfh_error_last(), "truncated"));
    assert_one_line_naming(home);
    home_rm(home);
}

static void test_corrupt_pages(void **state)
{
    (void)state;
    char *home = home_new();
    fill_store(home, 60);
    /* Keep page 1 (header and schema root), scribble over everything after it. */
    int fd = open(db_path(home), O_WRONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char junk[4096];
    memset(junk, 0xA5, sizeof junk);
    for (off_t off = 4096; off < st.st_size; off += (off_t)sizeof junk)
        assert_int_equal(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
    close(fd);
    wfh_store *s = NULL;
    int err = wfh_store_open(home, 0, &s);
    if (err == 0) {
        /* page 1 alone may pass: the first read of a scribbled page must fail cleanly */
        json_t *list = NULL;
        wfh_store_filter f = {.limit = 10000};
        err = wfh_store_runs_list(s, &f, &list);
        json_decref(list);
        wfh_store_free(s);
    }
    assert_int_equal(err, WFH_EIO);
    assert_one_line_naming(home);
    home_rm(home);
}

static void test_newer_schema_and_foreign_db(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store_free(open_ok(home, 0));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path(home), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    wfh_store *s = NULL;
    assert_int_equal(wfh_store_open(home, 0, &s), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "newer wfhost"));
    assert_one_line_naming(home);
    assert_int_equal(wfh_store_open(home, WFH_STORE_NO_CREATE, &s), WFH_EINVAL);

    unlink(db_path(home));
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", db_path(home));
    unlink(wal);
    assert_int_equal(sqlite3_open(db_path(home), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(wfh_store_open(home, 0, &s), WFH_EIO);
    assert_non_null(strstr(wfh_error_last(), "not a wfhost run store"));
    home_rm(home);
}

static int count_cb(void *arg, int n, char **v, char **names)
{
    (void)n;
    (void)names;
    *(long *)arg = v[0] ? atol(v[0]) : -1;
    return 0;
}

/* One integer from @p sql on the raw file (-1 for NULL). */
static long sql_long(const char *home, const char *sql)
{
    sqlite3 *db = NULL;
    long out = -2;
    assert_int_equal(sqlite3_open(db_path(home), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, count_cb, &out, NULL), SQLITE_OK);
    sqlite3_close(db);
    return out;
}

/* Schema 4 took AUTOINCREMENT off events.seq: a schema-3 store is rebuilt when opened,
 * every event kept with its seq, still append-only, and new events follow on. */
static void test_schema3_events_upgraded(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "old");
    assert_int_equal(wfh_store_step_set_state(s, id, "a", WFH_STATE_QUEUED, "h", NULL, NULL), 0);
    wfh_store_free(s);
    /* make it what schema 3 wrote: events with AUTOINCREMENT, its sequence ahead */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path(home), &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN;"
                                  "CREATE TABLE ev3(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                                  " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
                                  " step_id TEXT, attempt INTEGER, status TEXT NOT NULL,"
                                  " detail TEXT, at_ms INTEGER NOT NULL);"
                                  "INSERT INTO ev3 SELECT * FROM events;"
                                  "DROP TABLE events; ALTER TABLE ev3 RENAME TO events;"
                                  "CREATE INDEX events_run ON events(run_id, seq);"
                                  "CREATE TRIGGER events_append_only BEFORE UPDATE ON events"
                                  " BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
                                  "PRAGMA user_version=3; COMMIT;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sql_long(home, "SELECT count(*) FROM sqlite_master WHERE name='events'"
                                    " AND sql LIKE '%AUTOINCREMENT%'"),
                     1);
    long before = sql_long(home, "SELECT count(*) FROM events");
    long last = sql_long(home, "SELECT max(seq) FROM events");
    assert_true(before >= 2);

    s = open_ok(home, WFH_STORE_NO_CREATE); /* even a reader upgrades */
    wfh_store_free(s);
    assert_int_equal(sql_long(home, "PRAGMA user_version"), WFH_STORE_SCHEMA_VERSION);
    assert_int_equal(sql_long(home, "SELECT count(*) FROM sqlite_master WHERE name='events'"
                                    " AND sql LIKE '%AUTOINCREMENT%'"),
                     0);
    assert_int_equal(sql_long(home, "SELECT count(*) FROM events"), before);
    assert_int_equal(sql_long(home, "SELECT max(seq) FROM events"), last);
    assert_int_equal(sql_long(home, "SELECT count(*) FROM sqlite_master WHERE"
                                    " name IN ('events_run','events_append_only','events_v4')"),
                     2);
    assert_int_equal(sql_long(home, "SELECT count(*) FROM sqlite_sequence WHERE name='events'"), 0);

    s = open_ok(home, 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "b", WFH_STATE_QUEUED, "h", NULL, NULL), 0);
    json_t *ev = NULL;
    assert_int_equal(wfh_store_events(s, id, &ev), 0);
    assert_int_equal((long)json_array_size(ev), before + 1);
    json_t *newest = json_array_get(ev, json_array_size(ev) - 1);
    assert_int_equal(json_integer_value(json_object_get(newest, "seq")), last + 1);
    assert_string_equal(json_string_value(json_object_get(newest, "step")), "b");
    json_decref(ev);
    wfh_store_free(s);
    assert_int_equal(sqlite3_open(db_path(home), &db), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "UPDATE events SET detail='x'", NULL, NULL, NULL),
                         SQLITE_OK); /* still append-only */
    sqlite3_close(db);
    free(id);
    home_rm(home);
}

static void test_absent_read_only(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = NULL;
    assert_int_equal(wfh_store_open(home, WFH_STORE_NO_CREATE, &s), WFH_ENOTFOUND);
    assert_int_equal(access(db_path(home), F_OK), -1); /* and nothing was created */
    home_rm(home);
}

/* A file-size limit makes writes fail the way a full disk does, in a child only. */
static void test_disk_full(void **state)
{
    (void)state;
    char *home = home_new();
    fill_store(home, 1);
    char *id = NULL;
    {
        wfh_store *s = open_ok(home, 0);
        id = new_run(s, "victim");
        assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_RUNNING, NULL), 0);
        wfh_store_free(s);
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {256 * 1024, 256 * 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        wfh_store *s = NULL;
        if (wfh_store_open(home, 0, &s) < 0)
            _exit(3);
        char line[2048];
        memset(line, 'z', sizeof line - 1);
        line[sizeof line - 1] = '\0';
        int err = 0, written = 0;
        for (; written < 100000 && err == 0; written++)
            err = wfh_store_log_append(s, id, "a", 1, 2, line);
        const char *msg = wfh_error_last();
        int good = err == WFH_EIO && strstr(msg, db_path(home)) && !strchr(msg, '\n');
        if (!good)
            fprintf(stderr, "disk-full child: err %d: %s\n", err, msg);
        wfh_store_free(s);
        /* tell the parent how many appends were acknowledged (the last one failed) */
        int acked = written - 1;
        _exit(good && write(fds[1], &acked, sizeof acked) == (ssize_t)sizeof acked ? 0 : 1);
    }
    int ws, acked = -1;
    close(fds[1]);
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    assert_int_equal(read(fds[0], &acked, sizeof acked), (ssize_t)sizeof acked);
    close(fds[0]);
    /* Afterwards the store is intact, holds exactly the acknowledged lines (no half
     * transaction), and the run is still only running. */
    wfh_store *s = open_ok(home, 0);
    json_t *logs = NULL;
    assert_int_equal(wfh_store_logs(s, id, NULL, &logs), 0);
    assert_true(json_array_size(logs) > 10);
    assert_int_equal(json_array_size(logs), acked);
    json_decref(logs);
    wfh_store_run *r = NULL;
    assert_int_equal(wfh_store_run_load(s, id, &r), 0);
    assert_int_equal(r->state, WFH_STATE_RUNNING);
    wfh_store_run_free(r);
    wfh_store_free(s);
    free(id);
    home_rm(home);
}

static void test_reopen_and_hash(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "resume-me");
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_RUNNING, NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "done", 1, "k1", NULL), 0);
    assert_int_equal(wfh_store_attempt_finish(s, id, "done", 1, &ok), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "done", WFH_STATE_SUCCEEDED, NULL, NULL, NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "cut", 1, "k2", NULL), 0);
    /* the host dies here; a new one resumes */
    wfh_store_free(s);
    s = open_ok(home, 0);
    wfh_store_run *r = NULL;
    assert_int_equal(wfh_store_run_reopen(s, id, "host died", &r), 0);
    assert_int_equal(wfh_store_run_step(r, "cut")->in_flight, 1);
    assert_int_equal(wfh_store_run_step(r, "done")->state, WFH_STATE_SUCCEEDED);
    wfh_store_run_free(r);
    json_t *show = NULL;
    assert_int_equal(wfh_store_run_show(s, id, &show), 0);
    json_t *cut = json_array_get(json_object_get(show, "steps"), 1);
    json_t *a1 = json_array_get(json_object_get(cut, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(a1, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(a1, "error")), "host died");
    json_decref(show);
    /* the next attempt gets the next number and the same key */
    assert_int_equal(wfh_store_run_load(s, id, &r), 0);
    assert_int_equal(wfh_store_run_step(r, "cut")->in_flight, 0);
    assert_int_equal(wfh_store_run_step(r, "cut")->attempts, 1);
    assert_string_equal(wfh_store_run_step(r, "cut")->idempotency_key, "k2");
    assert_int_equal(r->state, WFH_STATE_RUNNING);
    wfh_store_run_free(r);
    assert_int_equal(wfh_store_run_reopen(s, "nope", NULL, &r), WFH_ENOTFOUND);
    wfh_store_free(s);

    char path[600], *hex = NULL;
    snprintf(path, sizeof path, "%s/f", home);
    write_file(path, "abc", 3);
    assert_int_equal(wfh_store_hash_file(path, &hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(hex);
    snprintf(path, sizeof path, "%s/missing", home);
    assert_int_equal(wfh_store_hash_file(path, &hex), WFH_EIO);
    assert_non_null(strstr(wfh_error_last(), path));
    free(id);
    home_rm(home);
}

/* SIGKILL a writer at random moments: every change it was told had committed is there,
 * and the file passes SQLite's own integrity check. */
static void test_sigkill_writer(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "crashy");
    wfh_store_free(s);
    srand((unsigned)getpid());
    for (int round = 0; round < 6; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            wfh_store *c = NULL;
            if (wfh_store_open(home, WFH_STORE_SYNC_NORMAL, &c) < 0)
                _exit(1);
            for (int i = 0;; i++) {
                char step[32];
                snprintf(step, sizeof step, "r%d-s%d", round, i);
                json_t *o = json_pack("{s:i}", "i", i);
                if (wfh_store_attempt_start(c, id, step, 1, "k", NULL) < 0 ||
                    wfh_store_step_set_state(c, id, step, WFH_STATE_SUCCEEDED, NULL, o, NULL) < 0)
                    _exit(2);
                json_decref(o);
                if (write(fds[1], &i, sizeof i) != (ssize_t)sizeof i)
                    _exit(3);
            }
        }
        close(fds[1]);
        int acked = -1, v;
        /* wait for the first commit, so the kill lands mid-stream, not mid-open */
        assert_int_equal(read(fds[0], &acked, sizeof acked), (ssize_t)sizeof acked);
        struct timespec ts = {0, (long)(rand() % 80) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        assert_true(WIFSIGNALED(ws)); /* it was still writing, not failing */
        while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
            acked = v;
        close(fds[0]);
        assert_true(acked >= 0);
        s = open_ok(home, 0);
        wfh_store_run *r = NULL;
        assert_int_equal(wfh_store_run_load(s, id, &r), 0);
        for (int i = 0; i <= acked; i++) {
            char step[32];
            snprintf(step, sizeof step, "r%d-s%d", round, i);
            const wfh_store_step *st = wfh_store_run_step(r, step);
            assert_non_null(st);
            assert_int_equal(st->state, WFH_STATE_SUCCEEDED);
            assert_int_equal(json_integer_value(json_object_get(st->outputs, "i")), i);
        }
        wfh_store_run_free(r);
        wfh_store_free(s);
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        assert_int_equal(sqlite3_open(db_path(home), &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    free(id);
    home_rm(home);
}

static void test_home_rule(void **state)
{
    (void)state;
    char *p = NULL;
    assert_int_equal(wfh_home_path("/x/y", &p), 0);
    assert_string_equal(p, "/x/y");
    free(p);
    setenv("WFH_HOME", "/from/env", 1);
    assert_int_equal(wfh_home_path(NULL, &p), 0);
    assert_string_equal(p, "/from/env");
    free(p);
    unsetenv("WFH_HOME");
    setenv("XDG_DATA_HOME", "/xdg", 1);
    assert_int_equal(wfh_home_path(NULL, &p), 0);
    assert_string_equal(p, geteuid() == 0 ? "/var/lib/wfhost" : "/xdg/wfhost");
    free(p);
    char *home = home_new();
    char deep[600];
    snprintf(deep, sizeof deep, "%s/a/b/c", home);
    assert_int_equal(wfh_home_ensure(deep), 0);
    assert_int_equal(wfh_home_ensure(deep), 0);
    snprintf(deep, sizeof deep, "%s/a/file", home);
    write_file(deep, "x", 1);
    assert_int_equal(wfh_home_ensure(deep), WFH_EIO);
    home_rm(home);
}

/* Not an assertion: prints what synchronous=FULL costs per state change vs NORMAL. */
static void test_sync_cost(void **state)
{
    (void)state;
    unsigned modes[2] = {0, WFH_STORE_SYNC_NORMAL};
    for (int m = 0; m < 2; m++) {
        char *home = home_new();
        wfh_store *s = open_ok(home, modes[m]);
        char *id = new_run(s, "timing");
        struct timespec t0, t1;
        enum { N = 200 };
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < N; i++)
            assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_RUNNING, NULL), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / N;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < N; i++)
            assert_int_equal(wfh_store_log_append(s, id, "a", 1, 2, "a log line"), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double lus = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / N;
        printf("store: %s: %.0f us per state change, %.0f us per log line\n",
               m ? "synchronous=NORMAL" : "synchronous=FULL", us, lus);
        free(id);
        wfh_store_free(s);
        home_rm(home);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_resume),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_db_alone_after_close),
        cmocka_unit_test(test_garbage_file),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_corrupt_pages),
        cmocka_unit_test(test_newer_schema_and_foreign_db),
        cmocka_unit_test(test_schema3_events_upgraded),
        cmocka_unit_test(test_absent_read_only),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_reopen_and_hash),
        cmocka_unit_test(test_sigkill_writer),
        cmocka_unit_test(test_home_rule),
        cmocka_unit_test(test_sync_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
