/*
 * tests/unit/test_sched_instant.c - built-in `pass` steps in the scheduler (issue #8),
 * without processes: WFH_SCHED_INSTANT steps wait in a queue of their own (also those
 * queued when the state machine is made, before they were flagged), and whole runs of
 * pass steps in-process: outputs are the evaluated `with`, every step gets its RUNNING
 * and SUCCEEDED events, a 1000-step chain and fan-out finish with a handful of group
 * commits (on_flush calls) instead of one per step, and a vetoed event stops the run.
 * Validation: a registry plugin that still declares a type `pass` (installed before the
 * name was reserved) does not replace the built-in, and validate warns once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diag.h"
#include "error.h"
#include "scheduler.h"
#include "workflow.h"

static int no_hook(void *ud, const wfh_sched_event *ev)
{
    (void)ud;
    (void)ev;
    return 0;
}

/* a (plain) and p (instant) are roots; q (instant) and b (plain) need both. */
static void test_instant_queue(void **state)
{
    (void)state;
    size_t n_needs[4] = {0, 0, 2, 2};
    size_t both[2] = {0, 1};
    const size_t *needs[4] = {NULL, NULL, both, both};
    wfh_sched *s = NULL;
    assert_int_equal(wfh_sched_new(4, n_needs, needs, no_hook, NULL, &s), 0);
    assert_int_equal(wfh_sched_set_flags(s, 1, WFH_SCHED_INSTANT), 0);
    assert_int_equal(wfh_sched_set_flags(s, 2, WFH_SCHED_INSTANT), 0);
    /* p was queued at creation, before its flag: it moved to the instant queue */
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_next(s), -1);
    assert_int_equal(wfh_sched_next_instant(s), 1);
    assert_int_equal(wfh_sched_next_instant(s), -1);
    assert_int_equal(wfh_sched_transition(s, 1, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 1, WFH_S_SUCCEEDED, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_SUCCEEDED, NULL), 0);
    /* each dependent in its own queue */
    assert_int_equal(wfh_sched_next_instant(s), 2);
    assert_int_equal(wfh_sched_next_instant(s), -1);
    assert_int_equal(wfh_sched_next(s), 3);
    assert_int_equal(wfh_sched_next(s), -1);
    /* cancelled while queued: a stale entry, skipped */
    assert_int_equal(wfh_sched_cancel(s, "cancelled"), 0);
    assert_int_equal(wfh_sched_next_instant(s), -1);
    wfh_sched_free(s);
}

typedef struct counts {
    size_t running, succeeded, other, flushes;
    long veto_step; /* veto its RUNNING; -1: none */
} counts;

static int count_event(void *ud, const wfh_sched_event *ev)
{
    counts *c = ud;
    if ((long)ev->step == c->veto_step && ev->to == WFH_S_RUNNING)
        return wfh_error_set(WFH_EIO, "store full");
    if (ev->to == WFH_S_RUNNING)
        c->running++;
    else if (ev->to == WFH_S_SUCCEEDED)
        c->succeeded++;
    else if (ev->to != WFH_S_QUEUED)
        c->other++;
    return 0;
}

static int count_flush(void *ud)
{
    ((counts *)ud)->flushes++;
    return 0;
}

/* Parse, validate (no catalog: pass needs none) and run @p yaml; returns
 * wfh_run_exec's result, with the run (owned) in *out when @p out is set. */
static int run_yaml(const char *yaml, counts *c, wfh_workflow **wfo, wfh_run **out)
{
    wfh_diags d;
    wfh_diags_init(&d, "t.yaml", yaml, strlen(yaml));
    wfh_workflow *wf = NULL;
    assert_int_equal(wfh_workflow_parse("t.yaml", yaml, strlen(yaml), &wf, &d), 0);
    assert_int_equal(wfh_workflow_validate(wf, NULL, &d), 0);
    wfh_diags_free(&d);
    FILE *human = fopen("/dev/null", "w");
    assert_non_null(human);
    wfh_run_opts o = {.concurrency = 2, .human = human, .tty = 0, .on_event = count_event,
                      .on_event_ud = c, .on_flush = count_flush};
    wfh_run *r = NULL;
    assert_int_equal(wfh_run_new(wf, NULL, &o, &r), 0);
    int err = wfh_run_exec(r);
    fclose(human);
    *wfo = wf;
    *out = r;
    return err;
}

static void test_pass_outputs(void **state)
{
    (void)state;
    const char *yaml = "name: p\n"
                       "steps:\n"
                       "  - id: a\n    uses: pass\n    with: {n: 2, s: x, l: [1, 2]}\n"
                       "  - id: b\n    uses: pass\n    needs: a\n"
                       "    with: {m: '${{ steps.a.outputs.s }}y', n: '${{ steps.a.outputs.n }}'}\n"
                       "  - id: c\n    uses: pass\n    needs: b\n"
                       "    if: ${{ steps.b.outputs.n == 3 }}\n"
                       "  - id: e\n    uses: pass\n    for_each: ${{ steps.a.outputs.l }}\n"
                       "    needs: a\n    with: {i: '${{ item }}'}\n"
                       "outputs: {m: '${{ steps.b.outputs.m }}'}\n";
    counts c = {.veto_step = -1};
    wfh_workflow *wf = NULL;
    wfh_run *r = NULL;
    assert_int_equal(run_yaml(yaml, &c, &wf, &r), 0);
    json_t *doc = wfh_run_to_json(r);
    assert_non_null(doc);
    json_t *steps = json_object_get(doc, "steps");
    json_t *a = json_object_get(json_object_get(steps, "a"), "outputs");
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 2);
    assert_int_equal(json_array_size(json_object_get(a, "l")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(steps, "b"), "outputs"), "m")),
        "xy");
    assert_string_equal(json_string_value(json_object_get(json_object_get(steps, "c"), "status")),
                        "skipped");
    json_t *e = json_object_get(json_object_get(steps, "e"), "outputs");
    assert_int_equal(json_array_size(e), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 1), "i")), 2);
    assert_string_equal(json_string_value(json_object_get(wfh_run_outputs(r), "m")), "xy");
    assert_int_equal(c.running, 3);
    assert_int_equal(c.succeeded, 3);
    json_decref(doc);
    wfh_run_free(r);
    wfh_workflow_free(wf);
}

/* @p n pass steps, chained or not. Owned string. */
static char *many(size_t n, int chain)
{
    size_t cap = 64 + n * 80, off = 0;
    char *y = malloc(cap);
    assert_non_null(y);
    off += (size_t)snprintf(y + off, cap - off, "name: many\nsteps:\n");
    for (size_t i = 1; i <= n; i++) {
        off += (size_t)snprintf(y + off, cap - off, "  - id: s%zu\n    uses: pass\n    with: {v: %zu}\n", i, i);
        if (chain && i > 1)
            off += (size_t)snprintf(y + off, cap - off, "    needs: s%zu\n", i - 1);
    }
    return y;
}

static void test_many_pass_steps_few_commits(void **state)
{
    (void)state;
    for (int chain = 0; chain < 2; chain++) {
        char *y = many(1000, chain);
        counts c = {.veto_step = -1};
        wfh_workflow *wf = NULL;
        wfh_run *r = NULL;
        assert_int_equal(run_yaml(y, &c, &wf, &r), 0);
        assert_int_equal(c.running, 1000);
        assert_int_equal(c.succeeded, 1000);
        assert_int_equal(c.other, 0);
        /* one commit per 256 pass steps, plus the start and the wait/stop: not 2000 */
        assert_true(c.flushes <= 8);
        wfh_run_free(r);
        wfh_workflow_free(wf);
        free(y);
    }
}

static void test_veto_stops_pass_steps(void **state)
{
    (void)state;
    char *y = many(50, 1);
    counts c = {.veto_step = 9}; /* s10 */
    wfh_workflow *wf = NULL;
    wfh_run *r = NULL;
    int err = run_yaml(y, &c, &wf, &r);
    assert_true(err < 0);
    assert_int_equal(c.succeeded, 9);
    json_t *doc = wfh_run_to_json(r);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "failed");
    json_decref(doc);
    wfh_run_free(r);
    wfh_workflow_free(wf);
    free(y);
}

/* A catalog as a registry holding plugin "passy", whose one step type is named `pass`. */
static void test_registry_pass_type_is_shadowed(void **state)
{
    (void)state;
    wfh_type_meta t = {.name = (char *)"pass", .input_schema = json_object()};
    wfh_plugin_meta p = {.name = (char *)"passy", .version = (char *)"1.0.0", .types = &t,
                         .n_types = 1, .path = (char *)"/nonexistent/passy.so"};
    t.plugin = &p;
    wfh_catalog cat = {.plugins = &p, .n_plugins = 1};
    const char *yaml = "name: s\nsteps:\n"
                       "  - id: a\n    uses: pass\n    with: {x: 1}\n"
                       "  - id: b\n    uses: pass\n";
    wfh_diags d;
    wfh_diags_init(&d, "s.yaml", yaml, strlen(yaml));
    wfh_workflow *wf = NULL;
    assert_int_equal(wfh_workflow_parse("s.yaml", yaml, strlen(yaml), &wf, &d), 0);
    assert_int_equal(wfh_workflow_validate(wf, &cat, &d), 0);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.warnings, 1);
    assert_non_null(strstr(d.items[0].message, "plugin 'passy' in the registry declares step type 'pass'"));
    assert_ptr_equal(wf->steps[0].meta, wfh_builtin_type("pass"));
    assert_null(wf->steps[0].meta->plugin);
    assert_true(wfh_step_is_pass(&wf->steps[1]));
    wfh_workflow_free(wf);
    wfh_diags_free(&d);
    json_decref(t.input_schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instant_queue),
        cmocka_unit_test(test_pass_outputs),
        cmocka_unit_test(test_many_pass_steps_few_commits),
        cmocka_unit_test(test_veto_stops_pass_steps),
        cmocka_unit_test(test_registry_pass_type_is_shadowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
