/*
 * tests/unit/test_store_group.c - group commit in the SQLite run store (core/store.h,
 * wfh_store_group): grouped changes are invisible to another process until the commit
 * and all there after it; a call that fails inside a group takes back only its own
 * rows; a store closed with an open group keeps nothing of it (what a crash between
 * two commits loses); a group the engine lost under us (disk full) fails the commit
 * with one line naming the store; off commits what is open and goes back to one
 * transaction per call; a run found once in a group is not trusted after a prune in
 * the same group removed it, nor for another run's id; a queued row held back in a
 * group ends up exactly as if written at once (state, definition hash, start time,
 * the order steps are listed in), also when its attempt start fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "store.h"
#include "store_fixture.h"

/* What a second handle (another process's view) sees of step @p step: its state, or
 * -1 if the store has no such step. */
static int seen_state(const char *home, const char *run_id, const char *step)
{
    wfh_store *s = open_ok(home, WFH_STORE_NO_CREATE);
    wfh_store_run *r = NULL;
    int st = -1;
    if (wfh_store_run_load(s, run_id, &r) == 0) {
        const wfh_store_step *x = wfh_store_run_step(r, step);
        st = x ? (int)x->state : -1;
    }
    wfh_store_run_free(r);
    wfh_store_free(s);
    return st;
}

static void test_commit_makes_visible(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "g"); /* before the group: committed alone */
    assert_int_equal(wfh_store_group(s, 1), 0);
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    assert_int_equal(wfh_store_step_set_state(s, id, "a", WFH_STATE_QUEUED, "h", NULL, NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "a", 1, "k", NULL), 0);
    /* grouped: another handle does not see them yet (and is not blocked reading) */
    assert_int_equal(seen_state(home, id, "a"), -1);
    assert_int_equal(wfh_store_group_commit(s), 0);
    assert_int_equal(seen_state(home, id, "a"), WFH_STATE_RUNNING);
    /* the next turn opens a new group by itself */
    assert_int_equal(wfh_store_step_attempt_end(s, id, "a", 1, &ok, WFH_STATE_SUCCEEDED, "h", NULL), 0);
    assert_int_equal(wfh_store_log_append(s, id, "a", 1, 2, "a log line joins the group"), 0);
    assert_int_equal(seen_state(home, id, "a"), WFH_STATE_RUNNING);
    assert_int_equal(wfh_store_group_commit(s), 0);
    assert_int_equal(seen_state(home, id, "a"), WFH_STATE_SUCCEEDED);
    /* a commit with nothing open is a no-op */
    assert_int_equal(wfh_store_group_commit(s), 0);
    /* off: every call commits alone again */
    assert_int_equal(wfh_store_group(s, 0), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "b", WFH_STATE_QUEUED, "h", NULL, NULL), 0);
    assert_int_equal(seen_state(home, id, "b"), WFH_STATE_QUEUED);
    json_t *logs = NULL;
    assert_int_equal(wfh_store_logs(s, id, "a", &logs), 0);
    assert_int_equal(json_array_size(logs), 1);
    json_decref(logs);
    wfh_store_free(s);
    free(id);
    home_rm(home);
}

static void test_failed_call_takes_back_only_itself(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "g");
    assert_int_equal(wfh_store_group(s, 1), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "a", 1, "k", NULL), 0);
    /* the same attempt twice is refused; the first one stays in the group */
    assert_int_equal(wfh_store_attempt_start(s, id, "a", 1, "k", NULL), WFH_EINVAL);
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    assert_int_equal(wfh_store_step_attempt_end(s, id, "ghost", 1, &ok, WFH_STATE_SUCCEEDED, NULL, NULL),
                     WFH_ENOTFOUND);
    assert_int_equal(wfh_store_group_commit(s), 0);
    assert_int_equal(seen_state(home, id, "a"), WFH_STATE_RUNNING);
    assert_int_equal(seen_state(home, id, "ghost"), -1);
    wfh_store_free(s);
    free(id);
    home_rm(home);
}

static void test_close_with_open_group_keeps_nothing_of_it(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "g");
    assert_int_equal(wfh_store_group(s, 1), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "a", WFH_STATE_QUEUED, "h", NULL, NULL), 0);
    assert_int_equal(wfh_store_group_commit(s), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "a", 1, "k", NULL), 0);
    wfh_store_free(s); /* as a host killed before its next commit */
    assert_int_equal(seen_state(home, id, "a"), WFH_STATE_QUEUED);
    free(id);
    home_rm(home);
}

/* In a group a run found once is not looked up again (store_sqlite.c, known_run): a
 * prune in the same transaction that removed it, or another run's id, must still get
 * "no run", not a write into nothing or a foreign-key error. */
static void test_known_run_forgotten_after_prune(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    assert_int_equal(wfh_store_group(s, 1), 0);
    char *id = new_run(s, "g");
    assert_int_equal(wfh_store_step_set_state(s, id, "a", WFH_STATE_QUEUED, "h", NULL, NULL), 0);
    assert_int_equal(wfh_store_step_set_state(s, "20000101T000000Z-0000000000000000", "a",
                                              WFH_STATE_QUEUED, "h", NULL, NULL),
                     WFH_ENOTFOUND);
    assert_int_equal(wfh_store_step_set_state(s, id, "b", WFH_STATE_QUEUED, "h", NULL, NULL), 0);
    assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_SUCCEEDED, NULL), 0);
    unsigned removed = 0;
    assert_int_equal(wfh_store_prune(s, INT64_MAX, &removed), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(wfh_store_step_set_state(s, id, "c", WFH_STATE_QUEUED, "h", NULL, NULL),
                     WFH_ENOTFOUND);
    assert_int_equal(wfh_store_attempt_start(s, id, "c", 1, "k", NULL), WFH_ENOTFOUND);
    assert_int_equal(wfh_store_group_commit(s), 0);
    wfh_store_free(s);
    free(id);
    home_rm(home);
}

/* Run @p run_id as another process sees it through `runs show` (owned by the caller). */
static json_t *seen_run(const char *home, const char *run_id)
{
    wfh_store *s = open_ok(home, WFH_STORE_NO_CREATE);
    json_t *run = NULL;
    assert_int_equal(wfh_store_run_show(s, run_id, &run), 0);
    wfh_store_free(s);
    return run;
}

/* The row of step @p step as another process sees it (owned by the caller). */
static json_t *seen_row(const char *home, const char *run_id, const char *step)
{
    json_t *run = seen_run(home, run_id), *out = NULL, *x;
    size_t i;
    json_array_foreach(json_object_get(run, "steps"), i, x) {
        if (strcmp(json_string_value(json_object_get(x, "id")), step) == 0)
            out = json_incref(x);
    }
    json_decref(run);
    assert_non_null(out);
    return out;
}

/* The steps of @p run_id in the order `runs show` lists them, comma-separated. */
static void seen_order(const char *home, const char *run_id, char *buf, size_t n)
{
    json_t *run = seen_run(home, run_id), *x;
    size_t i;
    buf[0] = '\0';
    json_array_foreach(json_object_get(run, "steps"), i, x) {
        strncat(buf, json_string_value(json_object_get(x, "id")), n - strlen(buf) - 1);
        strncat(buf, ",", n - strlen(buf) - 1);
    }
    json_decref(run);
}

/* store_sqlite.c holds a queued row back until the step starts (sq.pend): what is
 * committed must be what writing it at once gave. */
static void test_held_back_queued_rows(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "g");
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    assert_int_equal(wfh_store_group(s, 1), 0);
    /* queued a, b, c; c starts first: the listed order stays a, b, c */
    assert_int_equal(wfh_store_step_set_state(s, id, "a", WFH_STATE_QUEUED, "ha", NULL, "why-a"), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "b", WFH_STATE_QUEUED, "hb", NULL, NULL), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "c", WFH_STATE_QUEUED, "hc", NULL, NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "c", 1, "kc", NULL), 0);
    /* queued twice before it starts: the second one counts */
    assert_int_equal(wfh_store_step_set_state(s, id, "d", WFH_STATE_QUEUED, "hd1", NULL, NULL), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "d", WFH_STATE_QUEUED, "hd2", NULL, NULL), 0);
    assert_int_equal(wfh_store_group_commit(s), 0);
    char order[64];
    seen_order(home, id, order, sizeof order);
    assert_string_equal(order, "a,b,c,d,");
    json_t *a = seen_row(home, id, "a"), *c = seen_row(home, id, "c"), *d = seen_row(home, id, "d");
    assert_string_equal(json_string_value(json_object_get(a, "status")), "queued");
    assert_string_equal(json_string_value(json_object_get(a, "def_hash")), "ha");
    assert_string_equal(json_string_value(json_object_get(a, "error")), "why-a");
    assert_true(json_is_null(json_object_get(a, "started_ms")));
    assert_string_equal(json_string_value(json_object_get(c, "status")), "running");
    assert_string_equal(json_string_value(json_object_get(c, "def_hash")), "hc");
    assert_true(json_is_integer(json_object_get(c, "started_ms")));
    assert_string_equal(json_string_value(json_object_get(d, "def_hash")), "hd2");
    json_decref(a);
    json_decref(c);
    json_decref(d);

    /* a finished step queued again (changed definition) and started: running, new
     * hash, no old outputs or error, started again */
    json_t *outs = json_pack("{s:i}", "x", 1);
    assert_int_equal(wfh_store_step_attempt_end(s, id, "c", 1, &ok, WFH_STATE_SUCCEEDED, "hc", outs), 0);
    json_decref(outs);
    assert_int_equal(wfh_store_step_set_state(s, id, "c", WFH_STATE_QUEUED, "hc2", NULL, "changed"), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "c", 2, "kc", NULL), 0);
    /* an attempt start that fails leaves the held-back row queued */
    assert_int_equal(wfh_store_step_set_state(s, id, "b", WFH_STATE_QUEUED, "hb2", NULL, NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "b", 1, "kb", NULL), 0);
    assert_int_equal(wfh_store_step_set_state(s, id, "b", WFH_STATE_QUEUED, "hb3", NULL, NULL), 0);
    assert_int_equal(wfh_store_attempt_start(s, id, "b", 1, "kb", NULL), WFH_EINVAL);
    assert_int_equal(wfh_store_group(s, 0), 0);
    c = seen_row(home, id, "c");
    assert_string_equal(json_string_value(json_object_get(c, "status")), "running");
    assert_string_equal(json_string_value(json_object_get(c, "def_hash")), "hc2");
    assert_true(json_is_null(json_object_get(c, "outputs")));
    assert_true(json_is_null(json_object_get(c, "error")));
    assert_true(json_is_integer(json_object_get(c, "started_ms")));
    json_t *b = seen_row(home, id, "b");
    assert_string_equal(json_string_value(json_object_get(b, "status")), "queued");
    assert_string_equal(json_string_value(json_object_get(b, "def_hash")), "hb3");
    json_decref(b);
    json_decref(c);
    seen_order(home, id, order, sizeof order);
    assert_string_equal(order, "a,b,c,d,");
    wfh_store_free(s);
    free(id);
    home_rm(home);
}

static void test_full_disk_fails_the_commit(void **state)
{
    (void)state;
    char *home = home_new();
    wfh_store *s = open_ok(home, 0);
    char *id = new_run(s, "g");
    char path[600];
    snprintf(path, sizeof path, "%s/runs.db", home);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* EFBIG instead of SIGXFSZ once the files may not grow much more: a full disk */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim.rlim_cur = (rlim_t)st.st_size + 64 * 1024;
    lim.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(wfh_store_group(s, 1), 0);
    char *text = malloc(48 * 1024);
    memset(text, 'x', 48 * 1024 - 1);
    text[48 * 1024 - 1] = '\0';
    json_t *outs = json_pack("{s:s}", "blob", text);
    wfh_store_attempt_end ok = {WFH_STATE_SUCCEEDED, NULL, 0, 0, 0, NULL};
    int err = 0;
    char step[32];
    for (int i = 0; i < 40 && err == 0; i++) {
        snprintf(step, sizeof step, "s%d", i);
        err = wfh_store_attempt_start(s, id, step, 1, "k", NULL);
        if (err == 0)
            err = wfh_store_step_attempt_end(s, id, step, 1, &ok, WFH_STATE_SUCCEEDED, "h", outs);
    }
    if (err == 0)
        err = wfh_store_group_commit(s);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(err, WFH_EIO);
    assert_non_null(strstr(wfh_error_last(), path));
    assert_null(strchr(wfh_error_last(), '\n'));
    /* whatever the commit's fate, the handle works again once there is room */
    (void)wfh_store_group_commit(s);
    assert_int_equal(wfh_store_group(s, 0), 0);
    assert_int_equal(wfh_store_run_set_state(s, id, WFH_STATE_FAILED, "disk full"), 0);
    wfh_store_free(s);
    s = open_ok(home, WFH_STORE_NO_CREATE);
    wfh_store_run *r = NULL;
    assert_int_equal(wfh_store_run_load(s, id, &r), 0);
    assert_int_equal(r->state, WFH_STATE_FAILED);
    wfh_store_run_free(r);
    wfh_store_free(s);
    json_decref(outs);
    free(text);
    free(id);
    home_rm(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_makes_visible),
        cmocka_unit_test(test_failed_call_takes_back_only_itself),
        cmocka_unit_test(test_close_with_open_group_keeps_nothing_of_it),
        cmocka_unit_test(test_full_disk_fails_the_commit),
        cmocka_unit_test(test_known_run_forgotten_after_prune),
        cmocka_unit_test(test_held_back_queued_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
