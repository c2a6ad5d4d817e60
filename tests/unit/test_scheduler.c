/*
 * tests/unit/test_scheduler.c - the step state machine (core/sched_state.c), run ids
 * and the plain display, without processes: DAG order, readiness counters, skip
 * propagation, cancel, illegal transitions, the hook's veto, and a chain long enough
 * that recursion or O(n^2) work would show. Then whole runs in-process (so the
 * sanitizers see the event loop) with the runner's fixture plugin: outputs flowing
 * between steps, a resumed step not run again, a run-store hook that vetoes a start.
 * The display holds a turn's lines and writes them at once (wfh_display_flush).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "diag.h"
#include "display.h"
#include "error.h"
#include "scheduler.h"
#include "workflow.h"

/* Events the hook saw, in order. */
typedef struct rec {
    wfh_sched_event ev[64];
    size_t n;
    size_t total;
    int veto_step;   /* veto transitions of this step to veto_to; -1: none */
    wfh_sstate veto_to;
} rec;

static int record(void *ud, const wfh_sched_event *ev)
{
    rec *r = ud;
    if (r->veto_step >= 0 && (size_t)r->veto_step == ev->step && ev->to == r->veto_to)
        return wfh_error_set(WFH_EIO, "store: disk full");
    if (r->n < 64)
        r->ev[r->n++] = *ev;
    r->total++;
    return 0;
}

/* Build a scheduler from a compact spec: needs[i] is a -1-terminated list. */
static wfh_sched *build(size_t n, const long spec[][4], rec *r)
{
    size_t *n_needs = calloc(n, sizeof *n_needs);
    size_t **needs = calloc(n, sizeof *needs);
    for (size_t i = 0; i < n; i++) {
        needs[i] = calloc(4, sizeof **needs);
        for (size_t k = 0; k < 4 && spec[i][k] >= 0; k++)
            needs[i][n_needs[i]++] = (size_t)spec[i][k];
    }
    wfh_sched *s = NULL;
    assert_int_equal(wfh_sched_new(n, n_needs, (const size_t *const *)needs, record, r, &s), 0);
    for (size_t i = 0; i < n; i++)
        free(needs[i]);
    free(needs);
    free(n_needs);
    return s;
}

static void run_ok(wfh_sched *s, size_t step)
{
    assert_int_equal(wfh_sched_transition(s, step, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, step, WFH_S_SUCCEEDED, NULL), 0);
}

static void test_chain_order(void **state)
{
    (void)state;
    rec r = {.veto_step = -1};
    const long spec[3][4] = {{-1}, {0, -1}, {1, -1}};
    wfh_sched *s = build(3, spec, &r);
    assert_int_equal(wfh_sched_state(s, 0), WFH_S_QUEUED);
    assert_int_equal(wfh_sched_state(s, 1), WFH_S_PENDING);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_next(s), -1); /* b must wait for a */
    run_ok(s, 0);
    assert_int_equal(wfh_sched_state(s, 1), WFH_S_QUEUED);
    assert_int_equal(wfh_sched_next(s), 1);
    assert_int_equal(wfh_sched_next(s), -1);
    run_ok(s, 1);
    assert_false(wfh_sched_finished(s));
    assert_int_equal(wfh_sched_next(s), 2);
    run_ok(s, 2);
    assert_true(wfh_sched_finished(s));
    assert_int_equal(wfh_sched_count(s, WFH_S_SUCCEEDED), 3);
    assert_int_equal(wfh_sched_attempts(s, 2), 1);
    /* a RUNNING, a SUCCEEDED, b QUEUED, b RUNNING, ... : the queueing is an event too */
    assert_int_equal(r.n, 8);
    assert_int_equal(r.ev[2].step, 1);
    assert_int_equal(r.ev[2].from, WFH_S_PENDING);
    assert_int_equal(r.ev[2].to, WFH_S_QUEUED);
    assert_int_equal(r.ev[0].attempt, 1);
    wfh_sched_free(s);
}

static void test_diamond_waits_for_all_needs(void **state)
{
    (void)state;
    rec r = {.veto_step = -1};
    /* 0 -> {1, 2} -> 3 */
    const long spec[4][4] = {{-1}, {0, -1}, {0, -1}, {1, 2, -1}};
    wfh_sched *s = build(4, spec, &r);
    assert_int_equal(wfh_sched_next(s), 0);
    run_ok(s, 0);
    /* both branches ready at once, in step order: they may run in parallel */
    assert_int_equal(wfh_sched_next(s), 1);
    assert_int_equal(wfh_sched_next(s), 2);
    assert_int_equal(wfh_sched_transition(s, 1, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 2, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_count(s, WFH_S_RUNNING), 2);
    assert_int_equal(wfh_sched_transition(s, 2, WFH_S_SUCCEEDED, NULL), 0);
    assert_int_equal(wfh_sched_state(s, 3), WFH_S_PENDING);
    assert_int_equal(wfh_sched_next(s), -1);
    assert_int_equal(wfh_sched_transition(s, 1, WFH_S_SUCCEEDED, NULL), 0);
    assert_int_equal(wfh_sched_next(s), 3);
    wfh_sched_free(s);
}

static void test_failure_skips_dependents_not_others(void **state)
{
    (void)state;
    rec r = {.veto_step = -1};
    /* 0 -> 1 -> 2, 0 -> 3 ; 4 independent; 5 needs 2 and 4 */
    const long spec[6][4] = {{-1}, {0, -1}, {1, -1}, {0, -1}, {-1}, {2, 4, -1}};
    wfh_sched *s = build(6, spec, &r);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_next(s), 4);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 4, WFH_S_RUNNING, NULL), 0);
    r.n = 0;
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_FAILED, "exit status 3"), 0);
    assert_int_equal(wfh_sched_state(s, 0), WFH_S_FAILED);
    assert_int_equal(wfh_sched_state(s, 1), WFH_S_SKIPPED);
    assert_int_equal(wfh_sched_state(s, 2), WFH_S_SKIPPED); /* transitively */
    assert_int_equal(wfh_sched_state(s, 3), WFH_S_SKIPPED);
    assert_int_equal(wfh_sched_state(s, 5), WFH_S_SKIPPED);
    assert_int_equal(wfh_sched_state(s, 4), WFH_S_RUNNING); /* independent: carries on */
    assert_false(wfh_sched_finished(s));
    /* the hook saw the failure with its reason, then each skip with its cause */
    assert_string_equal(r.ev[0].reason, "exit status 3");
    int saw2 = 0;
    for (size_t k = 1; k < r.n; k++) {
        assert_int_equal(r.ev[k].to, WFH_S_SKIPPED);
        if (r.ev[k].step == 2) {
            assert_int_equal(r.ev[k].cause, 1);
            saw2 = 1;
        }
    }
    assert_true(saw2);
    assert_int_equal(r.n, 5); /* 0 failed; 1, 3, 2, 5 skipped, each once */
    assert_int_equal(wfh_sched_transition(s, 4, WFH_S_SUCCEEDED, NULL), 0);
    assert_true(wfh_sched_finished(s));
    assert_int_equal(wfh_sched_count(s, WFH_S_SKIPPED), 4);
    assert_int_equal(wfh_sched_next(s), -1);
    wfh_sched_free(s);
}

static void test_cancel(void **state)
{
    (void)state;
    rec r = {.veto_step = -1};
    const long spec[4][4] = {{-1}, {-1}, {0, -1}, {1, -1}};
    wfh_sched *s = build(4, spec, &r);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), 0);
    /* 1 is queued but not started; 2 and 3 pending */
    assert_int_equal(wfh_sched_cancel(s, "cancelled"), 0);
    assert_int_equal(wfh_sched_state(s, 0), WFH_S_RUNNING); /* the caller kills it */
    assert_int_equal(wfh_sched_state(s, 1), WFH_S_CANCELLED);
    assert_int_equal(wfh_sched_state(s, 2), WFH_S_CANCELLED);
    assert_int_equal(wfh_sched_state(s, 3), WFH_S_CANCELLED);
    assert_int_equal(wfh_sched_next(s), -1); /* the stale queue entry of 1 is dropped */
    assert_false(wfh_sched_finished(s));
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_CANCELLED, "cancelled"), 0);
    assert_true(wfh_sched_finished(s));
    assert_int_equal(wfh_sched_count(s, WFH_S_CANCELLED), 4);
    wfh_sched_free(s);
}

static void test_illegal_transitions(void **state)
{
    (void)state;
    rec r = {.veto_step = -1};
    const long spec[2][4] = {{-1}, {0, -1}};
    wfh_sched *s = build(2, spec, &r);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_SUCCEEDED, NULL), WFH_EINVAL);
    assert_non_null(strstr(wfh_error_last(), "queued to succeeded"));
    assert_int_equal(wfh_sched_transition(s, 1, WFH_S_RUNNING, NULL), WFH_EINVAL);
    assert_int_equal(wfh_sched_transition(s, 7, WFH_S_RUNNING, NULL), WFH_EINVAL);
    assert_int_equal(wfh_sched_state(s, 0), WFH_S_QUEUED);
    run_ok(s, 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_FAILED, NULL), WFH_EINVAL);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), WFH_EINVAL);
    assert_int_equal(wfh_sched_state(s, 0), WFH_S_SUCCEEDED);
    wfh_sched_free(s);
}

static void test_hook_veto_keeps_state(void **state)
{
    (void)state;
    rec r = {.veto_step = 0, .veto_to = WFH_S_RUNNING};
    const long spec[2][4] = {{-1}, {0, -1}};
    wfh_sched *s = build(2, spec, &r);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), WFH_EIO);
    assert_string_equal(wfh_error_last(), "store: disk full");
    assert_int_equal(wfh_sched_state(s, 0), WFH_S_QUEUED);
    assert_int_equal(wfh_sched_attempts(s, 0), 0);
    assert_int_equal(r.total, 0);
    r.veto_step = -1;
    run_ok(s, 0);
    assert_int_equal(wfh_sched_state(s, 1), WFH_S_QUEUED);
    wfh_sched_free(s);
}

static void test_retry_path_counts_attempts(void **state)
{
    (void)state;
    rec r = {.veto_step = -1};
    const long spec[1][4] = {{-1}};
    wfh_sched *s = build(1, spec, &r);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RETRYING, "transient"), 0);
    assert_int_equal(wfh_sched_next(s), -1);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_QUEUED, NULL), 0);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_attempts(s, 0), 2);
    assert_int_equal(r.ev[r.n - 1].attempt, 2);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_TIMED_OUT, "timed out after 1s"), 0);
    assert_true(wfh_sched_finished(s));
    assert_string_equal(wfh_sstate_expr_status(WFH_S_TIMED_OUT), "failure");
    assert_string_equal(wfh_sstate_name(WFH_S_TIMED_OUT), "timed_out");
    wfh_sched_free(s);
}

static void test_restore_for_resume(void **state)
{
    (void)state;
    rec r = {.veto_step = -1};
    /* 0 -> 1 -> 2 ; 3 needs 0 */
    const long spec[4][4] = {{-1}, {0, -1}, {1, -1}, {0, -1}};
    wfh_sched *s = build(4, spec, &r);
    /* 1 cannot be restored before the step it needs */
    assert_int_equal(wfh_sched_restore(s, 1, 1), WFH_EINVAL);
    assert_int_equal(wfh_sched_restore(s, 0, 2), 0);
    assert_int_equal(wfh_sched_restore(s, 1, 1), 0);
    assert_int_equal(wfh_sched_state(s, 0), WFH_S_SUCCEEDED);
    assert_int_equal(wfh_sched_attempts(s, 0), 2);
    /* the hook saw no event for the restored steps, only the queueing of their
     * dependents: 1 and 3 when 0 was restored, then 2 */
    assert_int_equal(r.n, 3);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(r.ev[k].to, WFH_S_QUEUED);
    assert_int_equal(r.ev[0].step, 1);
    assert_int_equal(r.ev[1].step, 3);
    assert_int_equal(r.ev[2].step, 2);
    assert_int_equal(wfh_sched_next(s), 3); /* stale entries of 0 and 1 are skipped */
    assert_int_equal(wfh_sched_next(s), 2);
    assert_int_equal(wfh_sched_next(s), -1);
    assert_int_equal(wfh_sched_restore(s, 0, 1), WFH_EINVAL); /* already terminal */
    run_ok(s, 2);
    run_ok(s, 3);
    assert_true(wfh_sched_finished(s));
    wfh_sched_free(s);
}

static void test_bad_needs_refused(void **state)
{
    (void)state;
    size_t n_needs[2] = {0, 1};
    size_t bad[1] = {5};
    const size_t *needs[2] = {NULL, bad};
    wfh_sched *s = (wfh_sched *)1;
    assert_int_equal(wfh_sched_new(2, n_needs, needs, NULL, NULL, &s), WFH_EINVAL);
    assert_null(s);
}

/* Random DAGs, random outcomes, random completion order with up to K running: the
 * invariants hold every time. A step runs only once all its needs succeeded; at the
 * end every step is terminal, and it was skipped exactly when some need did not
 * succeed. */
static void test_random_dags_keep_invariants(void **state)
{
    (void)state;
    enum { N = 60 };
    unsigned seed = 12345;
    for (int round = 0; round < 300; round++) {
        size_t n_needs[N], need_buf[N][4];
        const size_t *needs[N];
        int outcome_ok[N];
        for (size_t i = 0; i < N; i++) {
            n_needs[i] = 0;
            size_t want = i ? (size_t)(rand_r(&seed) % 4) : 0;
            for (size_t k = 0; k < want; k++) {
                size_t p = (size_t)rand_r(&seed) % i; /* only earlier steps: acyclic */
                int dup = 0;
                for (size_t q = 0; q < n_needs[i]; q++)
                    dup |= need_buf[i][q] == p;
                if (!dup)
                    need_buf[i][n_needs[i]++] = p;
            }
            needs[i] = need_buf[i];
            outcome_ok[i] = rand_r(&seed) % 5 != 0;
        }
        wfh_sched *s = NULL;
        assert_int_equal(wfh_sched_new(N, n_needs, needs, NULL, NULL, &s), 0);
        size_t running[N], n_running = 0, limit = 1 + (size_t)(rand_r(&seed) % 6);
        int ran[N] = {0};
        for (;;) {
            long next;
            while (n_running < limit && (next = wfh_sched_next(s)) >= 0) {
                for (size_t k = 0; k < n_needs[next]; k++)
                    assert_int_equal(wfh_sched_state(s, needs[next][k]), WFH_S_SUCCEEDED);
                assert_int_equal(wfh_sched_transition(s, (size_t)next, WFH_S_RUNNING, NULL), 0);
                assert_false(ran[next]);
                ran[next] = 1;
                running[n_running++] = (size_t)next;
            }
            if (n_running == 0)
                break;
            size_t pick = (size_t)rand_r(&seed) % n_running, step = running[pick];
            running[pick] = running[--n_running];
            assert_int_equal(wfh_sched_transition(s, step, outcome_ok[step] ? WFH_S_SUCCEEDED
                                                                             : WFH_S_FAILED,
                                                  NULL),
                             0);
        }
        assert_true(wfh_sched_finished(s));
        for (size_t i = 0; i < N; i++) {
            int all_needs_ok = 1;
            for (size_t k = 0; k < n_needs[i]; k++)
                all_needs_ok &= wfh_sched_state(s, needs[i][k]) == WFH_S_SUCCEEDED;
            wfh_sstate st = wfh_sched_state(s, i);
            if (all_needs_ok) {
                assert_int_equal(st, outcome_ok[i] ? WFH_S_SUCCEEDED : WFH_S_FAILED);
                assert_true(ran[i]);
            } else {
                assert_int_equal(st, WFH_S_SKIPPED);
                assert_false(ran[i]);
            }
        }
        wfh_sched_free(s);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 200 000 steps in one chain, and the same count fanned out from one root. A failure
 * at the top must skip the whole chain without recursion; a quadratic walk would take
 * minutes here, so the time bound is generous and still catches it. */
static void test_large_graphs(void **state)
{
    (void)state;
    const size_t n = 200000;
    size_t *n_needs = calloc(n, sizeof *n_needs);
    size_t *prevs = calloc(n, sizeof *prevs);
    const size_t **needs = calloc(n, sizeof *needs);
    for (size_t i = 1; i < n; i++) {
        prevs[i] = i - 1;
        n_needs[i] = 1;
        needs[i] = &prevs[i];
    }
    double t0 = now_s();
    wfh_sched *s = NULL;
    assert_int_equal(wfh_sched_new(n, n_needs, needs, NULL, NULL, &s), 0);
    assert_int_equal(wfh_sched_next(s), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_RUNNING, NULL), 0);
    assert_int_equal(wfh_sched_transition(s, 0, WFH_S_FAILED, "boom"), 0);
    assert_true(wfh_sched_finished(s));
    assert_int_equal(wfh_sched_count(s, WFH_S_SKIPPED), n - 1);
    wfh_sched_free(s);

    /* fan-out: all children of step 0; they become ready in index order */
    for (size_t i = 1; i < n; i++)
        prevs[i] = 0;
    assert_int_equal(wfh_sched_new(n, n_needs, needs, NULL, NULL, &s), 0);
    long first = wfh_sched_next(s);
    assert_int_equal(first, 0);
    run_ok(s, 0);
    for (size_t i = 1; i < n; i++) {
        long next = wfh_sched_next(s);
        assert_int_equal(next, (long)i);
        run_ok(s, i);
    }
    assert_true(wfh_sched_finished(s));
    wfh_sched_free(s);
    double took = now_s() - t0;
    assert_true(took < 5.0);
    free(n_needs);
    free(prevs);
    free((void *)needs);
}

static void test_run_id(void **state)
{
    (void)state;
    char a[WFH_RUN_ID_LEN + 1], b[WFH_RUN_ID_LEN + 1];
    assert_int_equal(wfh_run_id_new(a), 0);
    struct timespec ts = {0, 3 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(wfh_run_id_new(b), 0);
    assert_int_equal(strlen(a), WFH_RUN_ID_LEN);
    assert_int_equal(strspn(a, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), WFH_RUN_ID_LEN);
    assert_true(a[0] <= '7'); /* 128 bits in 130: the first digit holds 3 bits */
    assert_true(strcmp(a, b) < 0); /* later run, later id */
    /* the first 10 digits are the millisecond time: decode and compare with now */
    uint64_t ms = 0;
    const char *digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (int i = 0; i < 10; i++)
        ms = ms * 32 + (uint64_t)(strchr(digits, b[i]) - digits);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    assert_true(ms <= now_ms && now_ms - ms < 5000);
}

static void test_plain_display(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *ids[3] = {"who", "greet", "after"};
    wfh_display *d = wfh_display_new(f, 0, 3, ids);
    assert_non_null(d);
    assert_false(wfh_display_live(d));
    wfh_display_run_start(d, "01ABC", "hello");
    wfh_display_step_start(d, 0, 1, 0);
    wfh_display_log(d, 0, "line one\nline two\n", 18);
    wfh_display_step_end(d, 0, WFH_S_SUCCEEDED, 12, NULL);
    wfh_display_step_end(d, 1, WFH_S_FAILED, 1500, "exit status 3\nsecond line");
    wfh_display_step_end(d, 2, WFH_S_SKIPPED, WFH_DISPLAY_NEVER_RAN, "needs 'greet', which did not succeed");
    wfh_display_run_end(d, "failed", 1, 1, 1, 0, 1600);
    wfh_display_free(d);
    fclose(f);
    assert_string_equal(buf, "run 01ABC (hello)\n"
                             "who | line one\n"
                             "who | line two\n"
                             "[1/3] ok   who (12 ms)\n"
                             "[2/3] FAIL greet (1.50 s): exit status 3\n"
                             "[3/3] skip after: needs 'greet', which did not succeed\n"
                             "run failed: 1 succeeded, 1 failed, 1 skipped (1.60 s)\n");
    free(buf);
}

/* A stream that counts the write calls reaching it (fopencookie, unbuffered, like
 * stderr) and keeps the bytes. */
typedef struct counted {
    char text[4096];
    size_t len;
    int writes;
} counted;

static ssize_t counted_write(void *cookie, const char *buf, size_t size)
{
    counted *c = cookie;
    c->writes++;
    size_t room = sizeof c->text - 1 - c->len;
    size_t n = size < room ? size : room;
    memcpy(c->text + c->len, buf, n);
    c->len += n;
    c->text[c->len] = '\0';
    return (ssize_t)size;
}

/* Issue #8: finished steps and log lines are held until wfh_display_flush, which hands
 * them to the stream in one write (they were three writes a step); the rare lines go
 * out at once, after what was held, so the order stays; free writes what is left. */
static void test_display_holds_a_turn(void **state)
{
    (void)state;
    counted c = {.len = 0};
    cookie_io_functions_t io = {.write = counted_write};
    FILE *f = fopencookie(&c, "w", io);
    assert_non_null(f);
    setvbuf(f, NULL, _IONBF, 0);
    const char *ids[4] = {"a", "b", "c", "d"};
    wfh_display *d = wfh_display_new(f, 0, 4, ids);
    assert_non_null(d);
    wfh_display_run_start(d, "01ABC", "held");
    assert_int_equal(c.writes, 1); /* the run id at once: scripts read it first */
    wfh_display_step_end(d, 0, WFH_S_SUCCEEDED, 1, NULL);
    wfh_display_log(d, 1, "hello\n", 6);
    wfh_display_step_end(d, 1, WFH_S_SUCCEEDED, 2, NULL);
    assert_int_equal(c.writes, 1);
    assert_null(strstr(c.text, "ok   a"));
    wfh_display_flush(d, 0);
    assert_int_equal(c.writes, 2);
    assert_string_equal(c.text, "run 01ABC (held)\n[1/4] ok   a (1 ms)\nb | hello\n"
                                "[2/4] ok   b (2 ms)\n");
    wfh_display_flush(d, 0); /* nothing held: no write */
    assert_int_equal(c.writes, 2);
    wfh_display_step_end(d, 2, WFH_S_FAILED, 3, "boom");
    wfh_display_note(d, "a note");
    assert_int_equal(c.writes, 3);
    assert_non_null(strstr(c.text, "[3/4] FAIL c (3 ms): boom\na note\n"));
    wfh_display_step_end(d, 3, WFH_S_SKIPPED, WFH_DISPLAY_NEVER_RAN, NULL);
    wfh_display_free(d);
    assert_int_equal(c.writes, 4);
    assert_non_null(strstr(c.text, "a note\n[4/4] skip d\n"));
    fclose(f);
}

static void test_live_display_neutralises_control_bytes(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *ids[2] = {"a", "b"};
    wfh_display *d = wfh_display_new(f, 1, 2, ids);
    wfh_display_step_start(d, 0, 1, 1000);
    wfh_display_step_start(d, 1, 1, 1000);
    wfh_display_tick(d, 1500);
    wfh_display_log(d, 0, "evil\x1b[2J", 8);
    wfh_display_step_end(d, 0, WFH_S_SUCCEEDED, 500, NULL);
    wfh_display_tick(d, 1600);
    wfh_display_free(d);
    fclose(f);
    assert_null(strstr(buf, "\x1b[2J"));
    assert_non_null(strstr(buf, "a | evil?[2J"));
    /* the status block is taken off before text scrolls: "up 2 lines, clear" */
    assert_non_null(strstr(buf, "\r\x1b[2A\x1b[J"));
    /* and redrawn with only b running */
    const char *tail = strstr(buf, "[1/2] ok   a");
    assert_non_null(tail);
    assert_non_null(strstr(tail, "[1/2] b (600 ms)"));
    free(buf);
}

/* ---- whole runs, in-process, with tests/plugins/fixture.so ---------------------------- */

typedef struct fx {
    char dir[64];
    char yaml[96];
    wfh_workflow *wf;
    wfh_catalog *cat;
    FILE *human;
} fx;

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* Returns 0, or 1 when the fixture plugin is not built (the test is skipped). */
static int fx_open(fx *f, const char *yaml_text)
{
    memset(f, 0, sizeof *f);
    const char *build = getenv("WFH_BUILD");
    char so[512];
    snprintf(so, sizeof so, "%s/tests/plugins/fixture.so", build ? build : ".");
    if (access(so, R_OK) != 0)
        return 1;
    snprintf(f->dir, sizeof f->dir, "/tmp/wfh-sched-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char dst[128];
    snprintf(dst, sizeof dst, "%s/fixture.so", f->dir);
    assert_int_equal(copy_file(so, dst), 0);
    snprintf(f->yaml, sizeof f->yaml, "%s/flow.yaml", f->dir);
    FILE *y = fopen(f->yaml, "w");
    assert_non_null(y);
    fputs(yaml_text, y);
    fclose(y);
    wfh_diags d;
    wfh_diags_init(&d, f->yaml, NULL, 0);
    assert_int_equal(wfh_workflow_load(f->yaml, &f->wf, &d), 0);
    const char *so_paths[] = {dst};
    assert_int_equal(wfh_catalog_open_unsigned(so_paths, 1, &f->cat), 0);
    wfh_workflow_validate(f->wf, f->cat, &d);
    if (d.errors)
        wfh_diags_print(&d, stderr);
    assert_int_equal(d.errors, 0);
    wfh_diags_free(&d);
    f->human = fopen("/dev/null", "w");
    assert_non_null(f->human);
    return 0;
}

static void fx_close(fx *f)
{
    char path[128];
    wfh_workflow_free(f->wf);
    wfh_catalog_free(f->cat);
    fclose(f->human);
    snprintf(path, sizeof path, "%s/fixture.so", f->dir);
    unlink(path);
    unlink(f->yaml);
    rmdir(f->dir);
}

static const char *const flow_yaml =
    "name: flow\n"
    "steps:\n"
    "  - id: a\n"
    "    uses: echo\n"
    "    with: {x: 1}\n"
    "  - id: b\n"
    "    uses: echo\n"
    "    needs: [a]\n"
    "    with:\n"
    "      from_a: \"${{ steps.a.outputs.inputs.x }}\"\n"
    "      a_status: \"${{ steps.a.status }}\"\n"
    "  - id: c\n"
    "    uses: crash\n"
    "  - id: d\n"
    "    uses: echo\n"
    "    needs: [c]\n";

static json_t *step_json(json_t *doc, const char *id)
{
    return json_object_get(json_object_get(doc, "steps"), id);
}

static void test_run_in_process(void **state)
{
    (void)state;
    fx f;
    if (fx_open(&f, flow_yaml))
        skip();
    wfh_run_opts o = {.concurrency = 2, .human = f.human, .tty = 0, .run_id = "RUNID"};
    wfh_run *r = NULL;
    assert_int_equal(wfh_run_new(f.wf, f.cat, &o, &r), 0);
    assert_string_equal(wfh_run_id(r), "RUNID");
    assert_int_equal(wfh_run_exec(r), WFH_EFAILED);
    json_t *doc = wfh_run_to_json(r);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "failed");
    json_t *b = step_json(doc, "b");
    assert_string_equal(json_string_value(json_object_get(b, "status")), "succeeded");
    json_t *in = json_object_get(json_object_get(b, "outputs"), "inputs");
    assert_int_equal(json_integer_value(json_object_get(in, "from_a")), 1);
    assert_string_equal(json_string_value(json_object_get(in, "a_status")), "success");
    assert_string_equal(json_string_value(json_object_get(step_json(doc, "c"), "status")), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(step_json(doc, "c"), "error")), "SIGSEGV"));
    assert_string_equal(json_string_value(json_object_get(step_json(doc, "d"), "status")), "skipped");
    json_decref(doc);
    wfh_run_free(r);
    fx_close(&f);
}

static void test_run_restores_recorded_steps(void **state)
{
    (void)state;
    fx f;
    if (fx_open(&f, flow_yaml))
        skip();
    wfh_run_opts o = {.concurrency = 1, .human = f.human, .tty = 0};
    wfh_run *r = NULL;
    assert_int_equal(wfh_run_new(f.wf, f.cat, &o, &r), 0);
    json_t *rec_out = json_pack("{s:{s:i}}", "inputs", "x", 41);
    assert_int_equal(wfh_run_restore(r, 0, rec_out, 3), 0);
    json_decref(rec_out);
    assert_int_equal(wfh_run_restore(r, 1, NULL, 1), 0);
    wfh_run_exec(r);
    json_t *doc = wfh_run_to_json(r);
    json_t *a = step_json(doc, "a");
    assert_string_equal(json_string_value(json_object_get(a, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(a, "attempts")), 3);
    assert_true(json_is_null(json_object_get(a, "started_at"))); /* not run again */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(a, "outputs"), "inputs"), "x")), 41);
    json_t *b = step_json(doc, "b");
    assert_true(json_is_null(json_object_get(b, "started_at")));
    json_decref(doc);
    wfh_run_free(r);
    fx_close(&f);
}

typedef struct veto {
    long veto_step;
    size_t events;
} veto;

static int veto_hook(void *ud, const wfh_sched_event *ev)
{
    veto *v = ud;
    v->events++;
    if ((long)ev->step == v->veto_step && ev->to == WFH_S_RUNNING)
        return wfh_error_set(WFH_EIO, "runs.db: disk full");
    return 0;
}

static void test_run_store_hook_veto_stops_the_run(void **state)
{
    (void)state;
    fx f;
    if (fx_open(&f, flow_yaml))
        skip();
    veto v = {.veto_step = 1};
    wfh_run_opts o = {.concurrency = 1, .human = f.human, .tty = 0, .on_event = veto_hook,
                      .on_event_ud = &v};
    wfh_run *r = NULL;
    assert_int_equal(wfh_run_new(f.wf, f.cat, &o, &r), 0);
    assert_int_equal(wfh_run_exec(r), WFH_EIO);
    assert_string_equal(wfh_error_last(), "runs.db: disk full");
    json_t *doc = wfh_run_to_json(r);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(doc, "error")), "runs.db: disk full");
    json_t *b = step_json(doc, "b");
    /* b was never started: the event could not be recorded first */
    assert_int_equal(json_integer_value(json_object_get(b, "attempts")), 0);
    assert_true(json_is_null(json_object_get(b, "started_at")));
    assert_true(v.events > 0);
    json_decref(doc);
    wfh_run_free(r);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_order),
        cmocka_unit_test(test_diamond_waits_for_all_needs),
        cmocka_unit_test(test_failure_skips_dependents_not_others),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_illegal_transitions),
        cmocka_unit_test(test_hook_veto_keeps_state),
        cmocka_unit_test(test_retry_path_counts_attempts),
        cmocka_unit_test(test_restore_for_resume),
        cmocka_unit_test(test_bad_needs_refused),
        cmocka_unit_test(test_random_dags_keep_invariants),
        cmocka_unit_test(test_large_graphs),
        cmocka_unit_test(test_run_id),
        cmocka_unit_test(test_plain_display),
        cmocka_unit_test(test_live_display_neutralises_control_bytes),
        cmocka_unit_test(test_display_holds_a_turn),
        cmocka_unit_test(test_run_in_process),
        cmocka_unit_test(test_run_restores_recorded_steps),
        cmocka_unit_test(test_run_store_hook_veto_stops_the_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
