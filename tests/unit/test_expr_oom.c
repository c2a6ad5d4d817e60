/*
 * tests/unit/test_expr_oom.c - out-of-memory paths of the expression code.
 *
 * SQLite-style fault injection: this executable defines malloc/calloc/realloc itself
 * (on top of glibc's __libc_* functions), so the Nth allocation can be made to fail.
 * For N = 1, 2, ... every parse/evaluate/template call below must either succeed or
 * fail cleanly with an error, never crash, and leave no allocation behind. Sanitizer
 * builds bring their own allocator, so there the test only runs the cases once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

#if defined(__SANITIZE_ADDRESS__)
#define WFH_OWN_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WFH_OWN_MALLOC 0
#endif
#endif
#ifndef WFH_OWN_MALLOC
#define WFH_OWN_MALLOC 1
#endif

static long fail_at = -1; /* the allocation number that fails; -1: none */
static long alloc_no;      /* allocations since the counter was reset */
static long live;          /* allocations not yet freed */
static int failed;         /* the planned failure happened */

#if WFH_OWN_MALLOC
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);

static int should_fail(void)
{
    if (fail_at >= 0 && ++alloc_no == fail_at) {
        failed = 1;
        return 1;
    }
    return 0;
}

void *malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = __libc_malloc(n);
    if (p)
        live++;
    return p;
}

void *calloc(size_t a, size_t b)
{
    if (should_fail())
        return NULL;
    void *p = __libc_calloc(a, b);
    if (p)
        live++;
    return p;
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (should_fail())
        return NULL;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        live--;
    __libc_free(p);
}
#endif

static const char contexts_json[] =
    "{\"inputs\": {\"name\": \"World\", \"list\": [\"a\", \"b\"], \"obj\": {\"k\": \"v\"}},"
    " \"steps\": {\"build\": {\"outputs\": {\"path\": \"/tmp\"}}}}";

static const char *const expressions[] = {
    "format('{0}-{1}', inputs.name, join(inputs.list, '+'))",
    "toJSON(fromJSON('{\"a\": [1, 2, {\"b\": null}]}'))",
    "contains(steps.*.outputs.path, '/TMP') && startsWith(upper(inputs.name), 'wor')",
    "inputs.list[*] == inputs.obj.* || split('a,b,c', ',')[1]",
    "default(steps.build.outputs.missing, lower('ÀB'), trim('  x '))",
    "case(length(inputs.list) > 1, 'ß' == 'SS', 'no') ? 1 : 2",
    "steps.build.outputs.nope",
    "nosuch(1) && 2",
    "1 2",
};

static const char *const templates[] = {
    "a ${{ inputs.name }} b ${{ inputs.list }} c ${{ inputs.obj }}",
    "${{ fromJSON('[1,2]') }}",
    "x ${{ 'unterminated",
};

/* One round of everything; every failure must be a clean error. */
static void run_all(json_t *contexts)
{
    const char *const scope_names[] = {"inputs", "steps", NULL};
    wfh_expr_scope scope = {.contexts = scope_names};
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    env.strict_step_outputs = 1;
    for (size_t i = 0; i < sizeof expressions / sizeof expressions[0]; i++) {
        wfh_expr *e = NULL;
        wfh_expr_error err;
        json_t *out = NULL;
        if (wfh_expr_parse(expressions[i], strlen(expressions[i]), &scope, &e, &err) == 0) {
            assert_non_null(e);
            if (wfh_expr_eval(e, &env, &out, &err) == 0) {
                assert_non_null(out);
                char *s = wfh_expr_to_string(out);
                free(s);
                json_decref(out);
            } else {
                assert_null(out);
                assert_true(err.kind == WFH_EXPR_ERR_EVALUATION);
            }
            wfh_expr_free(e);
        } else {
            assert_null(e);
            assert_true(err.kind != WFH_EXPR_ERR_NONE);
        }
    }
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
        wfh_tmpl *t = NULL;
        wfh_expr_error err;
        json_t *out = NULL;
        if (wfh_tmpl_parse(templates[i], strlen(templates[i]), &scope, &t, &err) == 0) {
            if (wfh_tmpl_eval(t, &env, &out, &err) == 0)
                json_decref(out);
            else
                assert_null(out);
            wfh_tmpl_free(t);
        } else {
            assert_null(t);
        }
    }
}

static void test_allocation_failures(void **state)
{
    (void)state;
    json_t *contexts = json_loads(contexts_json, 0, NULL);
    assert_non_null(contexts);
    run_all(contexts); /* warm up: lazily made things (locale, stdio) are made now */
    if (!WFH_OWN_MALLOC) {
        json_decref(contexts);
        skip();
    }
    long rounds = 0;
    for (long n = 1; n < 100000; n++) {
        long before = live;
        alloc_no = 0;
        failed = 0;
        fail_at = n;
        run_all(contexts);
        fail_at = -1;
        if (live != before)
            print_message("allocation %ld failing leaks %ld allocation(s)\n", n, live - before);
        assert_int_equal(live, before);
        rounds++;
        if (!failed)
            break; /* the whole run needed fewer than n allocations: all paths covered */
    }
    print_message("%ld allocation failure points checked\n", rounds);
    assert_true(rounds > 100);
    json_decref(contexts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
