/*
 * tests/unit/test_store_pg.c - the run store's PostgreSQL engine against a real server.
 * tests/integration/store_postgres.sh starts one and runs this with $WFH_TEST_PG_URL;
 * run alone (ctest -L unit) without that variable, it says so and skips.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "error.h"
#include "store.h"

static const char *url;

static wfh_store *open_ok(void)
{
    wfh_store *s = NULL;
    if (wfh_store_open_url(url, NULL, 0, &s) < 0)
        fail_msg("open: %s", wfh_error_last());
    return s;
}

static void sql(const char *q)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
}

static void test_roundtrip(void **state)
{
    (void)state;
    wfh_store *s = open_ok();
    char *id = NULL;
    wfh_store_run_new rn = {.workflow = "pgflow", .file_path = "f.yaml", .file_hash = "h"};
    assert_int_equal(wfh_store_run_create(s, &rn, &id), 0);
    assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_RUNNING, NULL), 0);
    wfh_store_plugin_ref p = {"db", "0.1.0", "abcd"};
    wfh_store_attempt_end fail = {WFH_STATE_FAILED, "boom", 1, 0, 1, NULL};
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    assert_int_equal(wfh_store_attempt_start(s, id, "a", 1, "key-a", &p), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "a", 1, "key-a", &p), WFH_EINVAL);
    assert_int_equal(wfh_store_step_attempt_end(s, id, "a", 1, &fail, WFH_STATE_RETRYING, "d1", NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "a", 2, "key-a", &p), 0);
    char *blob = malloc(WFH_STORE_INLINE_MAX + 10);
    memset(blob, 'y', WFH_STORE_INLINE_MAX + 9);
    blob[WFH_STORE_INLINE_MAX + 9] = '\0';
    json_t *outs = json_pack("{s:s,s:i}", "blob", blob, "n", 7);
    assert_int_equal(wfh_store_step_attempt_end(s, id, "a", 2, &ok, WFH_STATE_SUCCEEDED, NULL, outs), 0);
    json_decref(outs);
    assert_int_equal(wfh_store_attempt_start(s, id, "b", 1, "key-b", NULL), 0);
    assert_int_equal(wfh_store_log_append(s, id, "b", 1, 2, "working"), 0);
    assert_int_equal(wfh_store_log_append(s, "nope", "b", 1, 2, "x"), WFH_ENOTFOUND);
    assert_int_equal(wfh_store_run_set_state(s, "nope", WFH_STATE_FAILED, NULL), WFH_ENOTFOUND);
    wfh_store_free(s);

    s = open_ok();
    wfh_store_run *r = NULL;
    assert_int_equal(wfh_store_run_reopen(s, id, "host died", &r), 0);
    const wfh_store_step *a = wfh_store_run_step(r, "a");
    assert_int_equal(a->state, WFH_STATE_SUCCEEDED);
    assert_int_equal(a->attempts, 2);
    assert_string_equal(a->def_hash, "d1");
    assert_string_equal(a->idempotency_key, "key-a");
    assert_int_equal(json_integer_value(json_object_get(a->outputs, "n")), 7);
    assert_int_equal(strlen(json_string_value(json_object_get(a->outputs, "blob"))), WFH_STORE_INLINE_MAX + 9);
    assert_int_equal(wfh_store_run_step(r, "b")->in_flight, 1);
    wfh_store_run_free(r);
    assert_int_equal(wfh_store_run_load(s, id, &r), 0);
    assert_int_equal(wfh_store_run_step(r, "b")->in_flight, 0);
    assert_int_equal(r->state, WFH_STATE_RUNNING);
    wfh_store_run_free(r);
    json_t *ev = NULL, *logs = NULL, *list = NULL, *show = NULL;
    assert_int_equal(wfh_store_events(s, id, &ev), 0);
    /* queued, running; a: #1 running, #1 failed, retrying, #2 running, #2 succeeded,
     * succeeded; b: #1 running; reopen: b #1 failed, run running */
    assert_int_equal(json_array_size(ev), 11);
    json_decref(ev);
    assert_int_equal(wfh_store_logs(s, id, NULL, &logs), 0);
    assert_int_equal(json_array_size(logs), 1);
    json_decref(logs);
    assert_int_equal(wfh_store_run_show(s, id, &show), 0);
    json_t *a1 = json_array_get(json_object_get(json_array_get(json_object_get(show, "steps"), 0), "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(a1, "error")), "boom");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a1, "plugin"), "file_hash")), "abcd");
    json_decref(show);
    assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_FAILED, "b died"), 0);
    wfh_store_filter f = {.workflow = "pgflow", .status = "failed"};
    assert_int_equal(wfh_store_runs_list(s, &f, &list), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    unsigned removed = 0;
    assert_int_equal(wfh_store_prune(s, INT64_MAX, &removed), 0);
    assert_true(removed >= 1);
    assert_int_equal(wfh_store_run_show(s, id, &show), WFH_ENOTFOUND);
    wfh_store_free(s);
    free(blob);
    free(id);
}

static void test_concurrent_hosts(void **state)
{
    (void)state;
    enum { HOSTS = 4, RUNS = 10 };
    pid_t pids[HOSTS];
    for (int h = 0; h < HOSTS; h++) {
        if ((pids[h] = fork()) == 0) {
            wfh_store *s = NULL;
            wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
            if (wfh_store_open_url(url, NULL, 0, &s) < 0)
                _exit(1);
            for (int i = 0; i < RUNS; i++) {
                char *id = NULL;
                wfh_store_run_new rn = {.workflow = "many", .file_path = "f", .file_hash = "h"};
                if (wfh_store_run_create(s, &rn, &id) < 0 ||
                    wfh_store_attempt_start(s, id, "x", 1, "k", NULL) < 0 ||
                    wfh_store_step_attempt_end(s, id, "x", 1, &ok, WFH_STATE_SUCCEEDED, NULL, NULL) < 0 ||
                    wfh_store_run_set_state(s, id, WFH_STATE_SUCCEEDED, NULL) < 0) {
                    fprintf(stderr, "host %d: %s\n", h, wfh_error_last());
                    _exit(2);
                }
                free(id);
            }
            wfh_store_free(s);
            _exit(0);
        }
    }
    for (int h = 0; h < HOSTS; h++) {
        int ws;
        assert_int_equal(waitpid(pids[h], &ws, 0), pids[h]);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    wfh_store *s = open_ok();
    json_t *list = NULL;
    wfh_store_filter f = {.workflow = "many", .status = "succeeded", .limit = 1000};
    assert_int_equal(wfh_store_runs_list(s, &f, &list), 0);
    assert_int_equal(json_array_size(list), HOSTS * RUNS);
    json_decref(list);
    wfh_store_free(s);
}

static void test_newer_schema_and_refused(void **state)
{
    (void)state;
    wfh_store *s = NULL;
    sql("UPDATE wfh_meta SET value='99' WHERE key='schema_version'");
    assert_int_equal(wfh_store_open_url(url, NULL, 0, &s), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "newer wfhost"));
    sql("UPDATE wfh_meta SET value='1' WHERE key='schema_version'");
    assert_int_equal(wfh_store_open_url("postgresql://u:s3cret@127.0.0.1:1/x", NULL, 0, &s), WFH_EIO);
    assert_null(strstr(wfh_error_last(), "s3cret"));
    assert_non_null(strstr(wfh_error_last(), "postgresql://127.0.0.1:1/x"));
    assert_int_equal(wfh_store_open_url("mysql://x", NULL, 0, &s), WFH_EINVAL);
}

int main(void)
{
    url = getenv("WFH_TEST_PG_URL");
    if (!url || !*url) {
        puts("test_store_pg: SKIP: WFH_TEST_PG_URL is not set (tests/integration/"
             "store_postgres.sh sets it after starting a server)");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_concurrent_hosts),
        cmocka_unit_test(test_newer_schema_and_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
