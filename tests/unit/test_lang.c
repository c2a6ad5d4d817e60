/*
 * tests/unit/test_lang.c - the language's run-time rules in-process (so the sanitizers
 * see them): durations, retry decisions and waits (fixed, exponential with a cap, full
 * jitter, the retry-after hint), secret masking in each encoding and in JSON, inputs
 * checking, the scheduler flags behind `if: always()` and continue_on_error, and the
 * keys loaded from YAML with their errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wfhost/plugin.h>

#include "diag.h"
#include "error.h"
#include "lang.h"
#include "scheduler.h"
#include "secrets.h"
#include "workflow.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct { const char *s; uint64_t ms; } ok[] = {
        {"30s", 30000}, {"5m", 300000}, {"1h30m", 5400000}, {"500ms", 500},
        {"1.5s", 1500}, {"2", 2000}, {"1h", 3600000}, {"1m30s", 90000}, {"0.25", 250},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t ms = 0;
        assert_int_equal(wfh_duration_parse(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"", "0s", "-1s", "5 m", "5x", "s", "1h-5m", "0",
                                      "abc", "10000000000h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 0;
        assert_int_equal(wfh_duration_parse(bad[i], &ms), WFH_EINVAL);
    }
    char buf[32];
    wfh_duration_format(700, buf, sizeof buf);
    assert_string_equal(buf, "700ms");
    wfh_duration_format(5400000, buf, sizeof buf);
    assert_string_equal(buf, "1h30m0s");
}

static void test_retry_rules(void **state)
{
    (void)state;
    wfh_retry p = {.max_attempts = 3, .initial_ms = 100, .on_mask = 1u << WFH_STEP_FAILED};
    assert_true(wfh_retry_should(&p, 1, WFH_STEP_FAILED));
    assert_true(wfh_retry_should(&p, 2, WFH_STEP_FAILED));
    assert_false(wfh_retry_should(&p, 3, WFH_STEP_FAILED)); /* max_attempts counts all */
    assert_false(wfh_retry_should(&p, 1, WFH_STEP_TRANSIENT));
    assert_false(wfh_retry_should(&p, 1, WFH_STEP_OK));
    assert_int_equal(wfh_retry_delay(&p, 1, 0, 0), 100);
    assert_int_equal(wfh_retry_delay(&p, 5, 0, 0), 100); /* fixed */
    assert_int_equal(wfh_retry_delay(&p, 1, 2500, 0), 2500); /* the hint wins */
    p.exponential = 1;
    assert_int_equal(wfh_retry_delay(&p, 1, 0, 0), 100);
    assert_int_equal(wfh_retry_delay(&p, 2, 0, 0), 200);
    assert_int_equal(wfh_retry_delay(&p, 4, 0, 0), 800);
    p.max_ms = 500;
    assert_int_equal(wfh_retry_delay(&p, 4, 0, 0), 500);
    assert_int_equal(wfh_retry_delay(&p, 1000, 0, 0), 500); /* no overflow */
    p.jitter_full = 1;
    for (uint64_t r = 0; r < 2000; r += 7)
        assert_true(wfh_retry_delay(&p, 4, 0, r * 2654435761u) <= 500);
    assert_int_equal(wfh_retry_delay(&p, 4, 0, 501), 0); /* 501 % 501 */
    /* no policy: one attempt */
    assert_int_equal(wfh_retry_for(NULL, NULL)->max_attempts, 1);
}

static void test_masking(void **state)
{
    (void)state;
    wfh_secrets *s = NULL;
    wfh_workflow wf;
    memset(&wf, 0, sizeof wf);
    wf.path = "x.yaml";
    assert_int_equal(wfh_secrets_load(&wf, NULL, &s), 0);
    assert_int_equal(wfh_secrets_add(s, "T", "abc"), WFH_EINVAL);
    assert_int_equal(wfh_secrets_add(s, "T", "p@ss w/rd\"é"), 0);
    assert_int_equal(wfh_secrets_count(s), 1);
    static const struct { const char *in, *out; } cases[] = {
        {"a p@ss w/rd\"é b", "a *** b"},
        {"json: p@ss w/rd\\\"\\u00E9!", "json: ***!"},
        {"json: p@ss w/rd\\\"\\u00e9!", "json: ***!"},
        {"json: p@ss w\\/rd\\\"é", "json: ***"},
        {"url: p%40ss%20w%2Frd%22%C3%A9;", "url: ***;"},
        {"form: p%40ss+w%2Frd%22%C3%A9", "form: ***"},
        {"b64: cEBzcyB3L3JkIsOp", "b64: ***"},      /* base64("p@ss w/rd\"é") */
        {"twice p@ss w/rd\"ép@ss w/rd\"é.", "twice ******."},
        {"nothing here", "nothing here"},
        {"p@ss w/rd", "p@ss w/rd"},                  /* a prefix is not the secret */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t ol = 0;
        char *m = wfh_secrets_mask(s, cases[i].in, strlen(cases[i].in), &ol);
        assert_non_null(m);
        assert_string_equal(m, cases[i].out);
        assert_int_equal(ol, strlen(cases[i].out));
        free(m);
    }
    /* base64 at the other two alignments: the value after one and two other bytes */
    char *m = wfh_secrets_mask(s, "eHBAc3Mgdy9yZCLDqQ==", 20, NULL); /* "xp@ss w/rd\"é" */
    assert_non_null(m);
    assert_non_null(strstr(m, "***"));
    free(m);
    m = wfh_secrets_mask(s, "eHlwQHNzIHcvcmQiw6k=", 20, NULL); /* "xyp@ss w/rd\"é" */
    assert_non_null(m);
    assert_non_null(strstr(m, "***"));
    free(m);
    json_t *doc = json_pack("{s:s,s:[s,i],s:{s:s}}", "a", "x p@ss w/rd\"é", "b",
                            "p@ss w/rd\"é", 3, "p@ss w/rd\"é", "k", "v");
    json_t *md = wfh_secrets_mask_json(s, doc);
    char *text = json_dumps(md, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text, "{\"***\":{\"k\":\"v\"},\"a\":\"x ***\",\"b\":[\"***\",3]}");
    free(text);
    json_decref(md);
    json_decref(doc);
    /* no secrets: a copy */
    m = wfh_secrets_mask(NULL, "abc", 3, NULL);
    assert_string_equal(m, "abc");
    free(m);
    wfh_secrets_free(s);
    wfh_secrets_free(NULL);
}

static wfh_workflow *parse(const char *yaml, wfh_diags *d)
{
    wfh_workflow *wf = NULL;
    wfh_diags_init(d, "t.yaml", NULL, 0);
    wfh_workflow_parse("t.yaml", yaml, strlen(yaml), &wf, d);
    return wf;
}

static void test_keys_and_inputs(void **state)
{
    (void)state;
    wfh_diags d;
    wfh_workflow *wf = parse("name: t\n"
                             "defaults: {timeout: 2m, retry: {max_attempts: 4, backoff: exponential}}\n"
                             "inputs:\n"
                             "  n: {type: number, default: 3}\n"
                             "  s: {type: string, required: true}\n"
                             "  l: {type: list}\n"
                             "secrets: [TOKEN]\n"
                             "steps:\n"
                             "  - id: a\n"
                             "    uses: shell\n"
                             "    if: always() && inputs.n > 2\n"
                             "    timeout: 1h30m\n"
                             "    continue_on_error: true\n"
                             "    retry: {max_attempts: 2, on: [transient], initial: 5s, max: 10s, jitter: full}\n"
                             "  - id: b\n"
                             "    uses: shell\n",
                             &d);
    assert_non_null(wf);
    assert_int_equal(d.errors, 0);
    assert_int_equal(wf->default_timeout_ms, 120000);
    assert_int_equal(wf->default_retry.max_attempts, 4);
    assert_true(wf->default_retry.exponential);
    const wfh_step *a = &wf->steps[0], *b = &wf->steps[1];
    assert_non_null(a->cond);
    assert_true(a->cond_status_fn);
    assert_true(a->continue_on_error);
    assert_int_equal(a->timeout_ms, 5400000);
    assert_int_equal(a->retry.max_attempts, 2);
    assert_int_equal(a->retry.on_mask, 1u << WFH_STEP_TRANSIENT);
    assert_int_equal(a->retry.initial_ms, 5000);
    assert_int_equal(a->retry.max_ms, 10000);
    assert_true(a->retry.jitter_full);
    assert_ptr_equal(wfh_retry_for(wf, b), &wf->default_retry);
    assert_int_equal(wfh_timeout_for(wf, b), 120000);
    assert_int_equal(wf->n_secrets, 1);
    assert_string_equal(wf->secrets[0], "TOKEN");

    json_t *given = json_pack("{s:s}", "s", "x"), *out = NULL;
    assert_int_equal(wfh_inputs_resolve(wf, given, &out), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 3);
    assert_true(json_is_null(json_object_get(out, "l")));
    json_decref(out);
    json_object_set_new(given, "n", json_string("3"));
    assert_int_equal(wfh_inputs_resolve(wf, given, &out), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "input 'n' must be a number"));
    json_object_del(given, "n");
    json_object_del(given, "s");
    assert_int_equal(wfh_inputs_resolve(wf, given, &out), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "input 's' is required"));
    json_decref(given);
    json_t *v = NULL;
    assert_int_equal(wfh_inputs_parse_arg(wf, "n", "4.5", &v), 0);
    assert_true(json_is_real(v));
    json_decref(v);
    assert_int_equal(wfh_inputs_parse_arg(wf, "s", "{not json", &v), 0); /* a string */
    assert_string_equal(json_string_value(v), "{not json");
    json_decref(v);
    assert_int_equal(wfh_inputs_parse_arg(wf, "l", "[1,", &v), WFH_EUSAGE);
    wfh_workflow_free(wf);
    wfh_diags_free(&d);

    /* every bad key is reported, with the others still loaded */
    wf = parse("name: t\n"
               "defaults: {timeout: soon, retries: {}}\n"
               "inputs: {x: {type: text}}\n"
               "secrets: [lower]\n"
               "steps:\n"
               "  - id: a\n"
               "    uses: shell\n"
               "    if: ${{ 1 + }}\n"
               "    continue_on_error: maybe\n"
               "    retry: {max_attempts: 3, backof: fixed}\n",
               &d);
    assert_int_equal(d.errors, 7);
    wfh_workflow_free(wf);
    wfh_diags_free(&d);
}

/* The scheduler flags: a RUN_AFTER_FAILURE step is queued once its failed need ends; a
 * TOLERATE_FAILURE step's failure queues its dependents. */
static void test_sched_flags(void **state)
{
    (void)state;
    /* 0 -> 1 (always), 0 -> 2 (plain), 3 (tolerated) -> 4 */
    size_t n_needs[5] = {0, 1, 1, 0, 1};
    size_t n1[1] = {0}, n2[1] = {0}, n4[1] = {3};
    const size_t *needs[5] = {NULL, n1, n2, NULL, n4};
    wfh_sched *s = NULL;
    assert_int_equal(wfh_sched_new(5, n_needs, needs, NULL, NULL, &s), 0);
    assert_int_equal(wfh_sched_set_flags(s, 1, WFH_SCHED_RUN_AFTER_FAILURE), 0);
    assert_int_equal(wfh_sched_set_flags(s, 3, WFH_SCHED_TOLERATE_FAILURE), 0);
    assert_int_equal(wfh_sched_set_flags(s, 9, 0), WFH_EINVAL);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_next(s), 3);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_FAILED, "x"), 0);
    assert_int_equal(wfh_sched_state(s, 1), WFH_S_QUEUED);
    assert_int_equal(wfh_sched_state(s, 2), WFH_S_SKIPPED);
    assert_int_equal(wfh_sched_transition(s, 3, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 3, WFH_S_RETRYING, "again"), 0);
    assert_int_equal(wfh_sched_transition(s, 3, WFH_S_QUEUED, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 3, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_attempts(s, 3), 2);
    assert_int_equal(wfh_sched_transition(s, 3, WFH_S_TIMED_OUT, "slow"), 0);
    assert_int_equal(wfh_sched_tolerated(s), 1);
    assert_int_equal(wfh_sched_state(s, 4), WFH_S_QUEUED);
    /* a cancelled need still cancels a RUN_AFTER_FAILURE step */
    wfh_sched_free(s);
    assert_int_equal(wfh_sched_new(5, n_needs, needs, NULL, NULL, &s), 0);
    assert_int_equal(wfh_sched_set_flags(s, 1, WFH_SCHED_RUN_AFTER_FAILURE), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_CANCELLED, "stop"), 0);
    assert_int_equal(wfh_sched_state(s, 1), WFH_S_CANCELLED);
    wfh_sched_free(s);
}

/* matrix expansion (axes in file order, exclude, include merging or adding) and the
 * needs that on_failure/finally steps get. */
static void test_matrix_and_handlers(void **state)
{
    (void)state;
    wfh_diags d;
    wfh_workflow *wf = parse("name: t\n"
                             "steps:\n"
                             "  - id: a\n"
                             "    uses: shell\n"
                             "    matrix:\n"
                             "      os: [l, m]\n"
                             "      v: [1, 2]\n"
                             "      exclude: [{os: m, v: 1}]\n"
                             "      include: [{os: l, v: 2, x: true}, {os: b, v: 9}]\n"
                             "  - id: b\n"
                             "    uses: shell\n"
                             "on_failure:\n"
                             "  - id: c\n"
                             "    uses: shell\n"
                             "finally:\n"
                             "  - id: e\n"
                             "    uses: shell\n"
                             "    needs: a\n",
                             &d);
    assert_non_null(wf);
    assert_int_equal(d.errors, 0);
    char *m = json_dumps(wf->steps[0].matrix, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(m, "[{\"os\":\"l\",\"v\":1},{\"os\":\"l\",\"v\":2,\"x\":true},"
                           "{\"os\":\"m\",\"v\":2},{\"os\":\"b\",\"v\":9}]");
    free(m);
    assert_int_equal(wf->n_steps, 4);
    assert_int_equal(wf->steps[2].handler, 1);
    assert_int_equal(wf->steps[2].n_needs, 2); /* a, b */
    assert_int_equal(wf->steps[3].handler, 2);
    assert_int_equal(wf->steps[3].n_needs, 3); /* a (once), b, c */
    assert_int_equal(wfh_workflow_step_index(wf, "e"), 3);
    wfh_workflow_free(wf);
    wfh_diags_free(&d);

    wf = parse("name: t\n"
               "steps:\n"
               "  - id: a\n"
               "    uses: shell\n"
               "    matrix: {os: [l], exclude: [{os: l}]}\n"
               "  - id: b\n"
               "    uses: shell\n"
               "    matrix: {os: []}\n",
               &d);
    assert_int_equal(d.errors, 2); /* everything excluded; an empty axis */
    wfh_workflow_free(wf);
    wfh_diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_retry_rules),
        cmocka_unit_test(test_masking),
        cmocka_unit_test(test_keys_and_inputs),
        cmocka_unit_test(test_sched_flags),
        cmocka_unit_test(test_matrix_and_handlers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
