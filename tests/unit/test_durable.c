/*
 * tests/unit/test_durable.c - core/durable.c in-process, against a real SQLite store
 * in a scratch home: definition hashes (what --allow-changed keeps), the hook's
 * mapping of scheduler events to store records, its veto when the store refuses a
 * write, resume's bookkeeping (reopen, restore), and a grouped creation committed
 * with the first turn (or the run's end), not before. The crash behaviour itself is
 * tested end to end in tests/integration/durable_*.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "diag.h"
#include "durable.h"
#include "error.h"
#include "scheduler.h"
#include "store.h"
#include "workflow.h"

static const char *FLOW = "name: t\n"
                          "env: {E: one}\n"
                          "steps:\n"
                          "  - id: a\n"
                          "    uses: echo\n"
                          "    with: {x: 1}\n"
                          "  - id: b\n"
                          "    uses: echo\n"
                          "    needs: [a]\n"
                          "    with: {y: '${{ steps.a.outputs.x }}'}\n"
                          "  - id: c\n"
                          "    uses: echo\n"
                          "    needs: [b]\n"
                          "  - id: lone\n"
                          "    uses: echo\n";

static wfh_workflow *parse(const char *text)
{
    wfh_diags d;
    wfh_workflow *wf = NULL;
    wfh_diags_init(&d, "t.yaml", NULL, 0);
    assert_int_equal(wfh_workflow_parse("t.yaml", text, strlen(text), &wf, &d), 0);
    assert_non_null(wf);
    wfh_workflow_validate(wf, NULL, &d);
    assert_int_equal(d.errors, 0);
    wfh_diags_free(&d);
    return wf;
}

/* The text with the first @p from replaced by @p to (malloc'd). */
static char *edit(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    assert_non_null(at);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

static void hashes(const char *text, char out[4][65])
{
    wfh_workflow *wf = parse(text);
    wfh_durable *d = NULL;
    assert_int_equal(wfh_durable_new(NULL, wf, &d), 0);
    for (size_t i = 0; i < 4; i++) {
        const char *h = wfh_durable_def_hash(d, i);
        assert_int_equal(strlen(h), 64);
        memcpy(out[i], h, 65);
    }
    wfh_durable_free(d);
    wfh_workflow_free(wf);
}

static void test_def_hash(void **state)
{
    (void)state;
    char base[4][65], again[4][65], h[4][65];
    hashes(FLOW, base);
    hashes(FLOW, again);
    for (int i = 0; i < 4; i++)
        assert_string_equal(base[i], again[i]); /* stable across loads */
    assert_string_not_equal(base[0], base[3]);  /* a has a `with`, lone has none */

    /* Changing b's `with` changes b and what needs it (c), not a or lone. */
    char *t = edit(FLOW, "{y: '${{ steps.a.outputs.x }}'}", "{y: '${{ steps.a.outputs.x }}!'}");
    hashes(t, h);
    free(t);
    assert_string_equal(h[0], base[0]);
    assert_string_not_equal(h[1], base[1]);
    assert_string_not_equal(h[2], base[2]);
    assert_string_equal(h[3], base[3]);

    /* A literal that reads like the template's result is not the template. */
    t = edit(FLOW, "{x: 1}", "{x: '1'}");
    hashes(t, h);
    free(t);
    assert_string_not_equal(h[0], base[0]);
    assert_string_not_equal(h[1], base[1]); /* downstream of a */
    assert_string_equal(h[3], base[3]);

    /* The workflow's env is read by every step. */
    t = edit(FLOW, "{E: one}", "{E: two}");
    hashes(t, h);
    free(t);
    for (int i = 0; i < 4; i++)
        assert_string_not_equal(h[i], base[i]);
}

typedef struct fixture {
    char home[64];
    wfh_store *st;
    wfh_workflow *wf;
    wfh_durable *d;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->home, sizeof f->home, "/tmp/wfh-durable-XXXXXX");
    if (!mkdtemp(f->home))
        return -1;
    /* The store records the workflow file's hash: give it a file. */
    char path[128];
    snprintf(path, sizeof path, "%s/t.yaml", f->home);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(FLOW, fp) < 0 || fclose(fp) != 0)
        return -1;
    wfh_diags d;
    wfh_diags_init(&d, path, NULL, 0);
    if (wfh_workflow_load(path, &f->wf, &d) < 0)
        return -1;
    wfh_workflow_validate(f->wf, NULL, &d);
    wfh_diags_free(&d);
    if (wfh_store_open(f->home, 0, &f->st) < 0 || wfh_durable_new(f->st, f->wf, &f->d) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    wfh_durable_free(f->d);
    wfh_store_free(f->st);
    wfh_workflow_free(f->wf);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->home);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static int ev(fixture *f, size_t step, wfh_sstate from, wfh_sstate to, unsigned attempt,
              const char *reason)
{
    wfh_sched_event e = {.step = step, .from = from, .to = to, .attempt = attempt,
                         .cause = -1, .reason = reason};
    return wfh_durable_on_event(f->d, &e);
}

static const wfh_store_step *loaded(wfh_store_run *r, const char *id)
{
    const wfh_store_step *s = wfh_store_run_step(r, id);
    assert_non_null(s);
    return s;
}

static void test_events_recorded(void **state)
{
    fixture *f = *state;
    wfh_store_run *r = NULL;

    /* No run yet: the hook refuses rather than let a change go unrecorded. */
    assert_int_equal(ev(f, 0, WFH_S_QUEUED, WFH_S_RUNNING, 1, NULL), WFH_EINVAL);

    assert_int_equal(wfh_durable_create(f->d, "RUN1"), 0);
    assert_int_equal(ev(f, 0, WFH_S_QUEUED, WFH_S_RUNNING, 1, NULL), 0);
    /* The same attempt again is a store error, and the hook passes it on: a veto. */
    assert_true(ev(f, 0, WFH_S_QUEUED, WFH_S_RUNNING, 1, NULL) < 0);
    assert_int_equal(ev(f, 0, WFH_S_RUNNING, WFH_S_RETRYING, 1, "boom"), 0);
    assert_int_equal(ev(f, 0, WFH_S_RETRYING, WFH_S_QUEUED, 1, NULL), 0);
    assert_int_equal(ev(f, 0, WFH_S_QUEUED, WFH_S_RUNNING, 2, NULL), 0);
    assert_int_equal(ev(f, 1, WFH_S_PENDING, WFH_S_QUEUED, 0, NULL), 0);
    assert_int_equal(ev(f, 2, WFH_S_PENDING, WFH_S_SKIPPED, 0, "needs b"), 0);

    assert_int_equal(wfh_store_run_load(f->st, "RUN1", &r), 0);
    assert_int_equal(r->state, WFH_STATE_RUNNING);
    const wfh_store_step *a = loaded(r, "a");
    assert_int_equal(a->state, WFH_STATE_RUNNING);
    assert_int_equal(a->attempts, 2);
    assert_int_equal(a->in_flight, 2);
    assert_string_equal(a->idempotency_key, "RUN1/a");
    assert_string_equal(a->def_hash, wfh_durable_def_hash(f->d, 0));
    assert_int_equal(loaded(r, "b")->state, WFH_STATE_QUEUED);
    assert_int_equal(loaded(r, "c")->state, WFH_STATE_SKIPPED);
    assert_null(wfh_store_run_step(r, "lone")); /* never reached */
    wfh_store_run_free(r);

    /* Resume: the in-flight attempt is recorded as failed, the run as running. */
    wfh_durable *d2 = NULL;
    assert_int_equal(wfh_durable_new(f->st, f->wf, &d2), 0);
    assert_int_equal(wfh_durable_reopen(d2, "RUN1", 0, &r), 0);
    assert_int_equal(loaded(r, "a")->in_flight, 2); /* as it was when the host stopped */
    wfh_store_run_free(r);
    assert_int_equal(wfh_store_run_load(f->st, "RUN1", &r), 0);
    assert_int_equal(loaded(r, "a")->in_flight, 0);
    wfh_store_run_free(r);

    /* The run's end. */
    assert_int_equal(wfh_durable_finish(d2, WFH_EFAILED, "run RUN1 failed"), 0);
    assert_int_equal(wfh_store_run_load(f->st, "RUN1", &r), 0);
    assert_int_equal(r->state, WFH_STATE_FAILED);
    assert_string_equal(r->error, "run RUN1 failed");
    wfh_store_run_free(r);

    /* Retry: the unsuccessful steps are queued again, the run is running. */
    assert_int_equal(wfh_durable_reopen(d2, "RUN1", 1, &r), 0);
    assert_int_equal(r->state, WFH_STATE_FAILED); /* the record as loaded */
    wfh_store_run_free(r);
    assert_int_equal(wfh_store_run_load(f->st, "RUN1", &r), 0);
    assert_int_equal(r->state, WFH_STATE_RUNNING);
    assert_int_equal(loaded(r, "c")->state, WFH_STATE_QUEUED);
    wfh_store_run_free(r);
    wfh_durable_free(d2);
}

static void test_changed_file(void **state)
{
    fixture *f = *state;
    wfh_store_run *r = NULL;
    int changed = -1;
    assert_int_equal(wfh_durable_create(f->d, "RUN2"), 0);
    assert_int_equal(wfh_store_run_load(f->st, "RUN2", &r), 0);
    assert_int_equal(wfh_durable_check_file(f->d, r, 0, &changed), 0);
    assert_int_equal(changed, 0);
    /* The file changes under the run. */
    FILE *fp = fopen(f->wf->path, "a");
    assert_non_null(fp);
    fputs("# edited\n", fp);
    fclose(fp);
    assert_int_equal(wfh_durable_check_file(f->d, r, 0, &changed), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "--allow-changed"));
    assert_int_equal(wfh_durable_check_file(f->d, r, 1, &changed), 0);
    assert_int_equal(changed, 1);
    wfh_store_run_free(r);
}

/* The state of run @p id as another process sees it, or -1 if it has no such run. */
static int seen_run_state(const fixture *f, const char *id)
{
    wfh_store *other = NULL;
    wfh_store_run *r = NULL;
    assert_int_equal(wfh_store_open(f->home, WFH_STORE_NO_CREATE, &other), 0);
    int st = wfh_store_run_load(other, id, &r) == 0 ? (int)r->state : -1;
    wfh_store_run_free(r);
    wfh_store_free(other);
    return st;
}

/* wfh_durable_create_grouped: the creation waits for the first turn's commit (the
 * scheduler's first on_flush only turns grouping on), and a run that ends before any
 * turn is committed by wfh_durable_finish. */
static void test_create_grouped(void **state)
{
    fixture *f = *state;
    assert_int_equal(wfh_durable_create_grouped(f->d, "RUN3"), 0);
    assert_int_equal(seen_run_state(f, "RUN3"), -1);
    assert_int_equal(wfh_durable_on_flush(f->d), 0); /* the scheduler's first call */
    assert_int_equal(seen_run_state(f, "RUN3"), -1);
    assert_int_equal(ev(f, 0, WFH_S_PENDING, WFH_S_QUEUED, 0, NULL), 0);
    assert_int_equal(ev(f, 0, WFH_S_QUEUED, WFH_S_RUNNING, 1, NULL), 0);
    assert_int_equal(seen_run_state(f, "RUN3"), -1);
    assert_int_equal(wfh_durable_on_flush(f->d), 0); /* the first turn's commit */
    assert_int_equal(seen_run_state(f, "RUN3"), WFH_STATE_RUNNING);
    assert_int_equal(wfh_durable_finish(f->d, 0, NULL), 0);
    assert_int_equal(seen_run_state(f, "RUN3"), WFH_STATE_SUCCEEDED);

    wfh_durable *d2 = NULL;
    assert_int_equal(wfh_durable_new(f->st, f->wf, &d2), 0);
    assert_int_equal(wfh_durable_create_grouped(d2, "RUN4"), 0);
    assert_int_equal(seen_run_state(f, "RUN4"), -1);
    assert_int_equal(wfh_durable_finish(d2, WFH_EFAILED, "ended before its first turn"), 0);
    assert_int_equal(seen_run_state(f, "RUN4"), WFH_STATE_FAILED);
    wfh_durable_free(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_def_hash),
        cmocka_unit_test_setup_teardown(test_events_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_grouped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
