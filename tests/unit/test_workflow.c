/*
 * tests/unit/test_workflow.c - loading: the issue-2 contract (keys, ids, uses, needs,
 * with, env), positioned errors with "did you mean" hints, templates compiled at load
 * time and evaluated into JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "workflow.h"

typedef struct loaded {
    wfh_diags d;
    wfh_workflow *wf;
    int err;
} loaded;

static void load(loaded *l, const char *text)
{
    wfh_diags_init(&l->d, "t.yaml", NULL, 0);
    l->wf = NULL;
    l->err = wfh_workflow_parse("t.yaml", text, strlen(text), &l->wf, &l->d);
}

static void unload(loaded *l)
{
    wfh_diags_free(&l->d);
    wfh_workflow_free(l->wf);
}

/* The diagnostic whose message contains @p needle, or a test failure listing them. */
static const wfh_diag *find(const loaded *l, const char *needle)
{
    for (size_t i = 0; i < l->d.count; i++)
        if (strstr(l->d.items[i].message, needle))
            return &l->d.items[i];
    for (size_t i = 0; i < l->d.count; i++)
        fprintf(stderr, "  have %u:%u: %s\n", l->d.items[i].line, l->d.items[i].col,
                l->d.items[i].message);
    fail_msg("no diagnostic contains '%s'", needle);
    return NULL;
}

static void expect_at(const loaded *l, const char *needle, unsigned line, unsigned col,
                      const char *hint)
{
    const wfh_diag *x = find(l, needle);
    if (x->line != line || x->col != col)
        fail_msg("'%s' at %u:%u, expected %u:%u", x->message, x->line, x->col, line, col);
    if (hint) {
        assert_non_null(x->hint);
        assert_string_equal(x->hint, hint);
    }
}

static const char hello[] = "name: hello\n"
                            "description: the issue-2 example\n"
                            "env:\n"
                            "  GREETING: hello\n"
                            "  PORT: 8080\n"
                            "steps:\n"
                            "  - id: who\n"
                            "    uses: shell\n"
                            "    with:\n"
                            "      run: echo \"name=world\" >> \"$WFH_OUTPUT\"\n"
                            "  - id: greet\n"
                            "    uses: shell@1\n"
                            "    needs: [who]\n"
                            "    with:\n"
                            "      run: echo \"$GREETING ${{ steps.who.outputs.name }}\"\n"
                            "      retries: 3\n"
                            "      argv: [a, 2, true, ~]\n"
                            "  - id: last\n"
                            "    uses: shell\n"
                            "    needs: greet\n"
                            "    env: {A: '${{ env.GREETING }}'}\n";

static void test_hello_loads(void **state)
{
    (void)state;
    loaded l;
    load(&l, hello);
    assert_int_equal(l.err, 0);
    assert_int_equal(l.d.errors, 0);
    wfh_workflow *wf = l.wf;
    assert_string_equal(wf->name, "hello");
    assert_string_equal(wf->description, "the issue-2 example");
    assert_int_equal(wf->n_steps, 3);
    assert_string_equal(wf->steps[0].id, "who");
    assert_string_equal(wf->steps[0].type, "shell");
    assert_int_equal(wf->steps[0].major, -1);
    assert_int_equal(wf->steps[0].line, 7);
    assert_int_equal(wf->steps[0].col, 5);
    assert_int_equal(wf->steps[1].major, 1);
    assert_int_equal(wf->steps[1].uses_line, 12);
    assert_int_equal(wf->steps[1].uses_col, 11);
    assert_int_equal(wf->steps[1].n_needs, 1);
    assert_string_equal(wf->steps[1].need_ids[0], "who");
    assert_int_equal(wf->steps[2].n_needs, 1); /* a single string is a list of one */
    assert_string_equal(wf->steps[2].need_ids[0], "greet");
    assert_int_equal(wfh_workflow_step_index(wf, "greet"), 1);
    assert_int_equal(wfh_workflow_step_index(wf, "nope"), -1);
    /* env values are strings even when they look like numbers */
    json_t *env = NULL;
    char err[256];
    assert_int_equal(wfh_value_eval(wf->env, NULL, &env, err, sizeof err), 0);
    char *txt = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(txt, "{\"GREETING\":\"hello\",\"PORT\":\"8080\"}");
    free(txt);
    json_decref(env);
    /* with: plain scalars are typed, the template is compiled */
    const wfh_value *with = wf->steps[1].with;
    assert_int_equal(with->kind, WFH_V_OBJECT);
    assert_int_equal(with->n, 3);
    assert_int_equal(with->items[0]->kind, WFH_V_TMPL);
    assert_int_equal(with->items[1]->kind, WFH_V_LITERAL);
    assert_true(json_is_integer(with->items[1]->literal));
    unload(&l);
}

static void test_value_eval(void **state)
{
    (void)state;
    loaded l;
    load(&l, hello);
    assert_int_equal(l.err, 0);
    json_t *ctx = json_loads("{\"steps\":{\"who\":{\"outputs\":{\"name\":\"world\"}}},"
                             "\"env\":{\"GREETING\":\"hi\"}}",
                             0, NULL);
    wfh_expr_env env = {.contexts = ctx};
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(wfh_value_eval(l.wf->steps[1].with, &env, &out, err, sizeof err), 0);
    char *txt = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(txt, "{\"argv\":[\"a\",2,true,null],\"retries\":3,"
                             "\"run\":\"echo \\\"$GREETING world\\\"\"}");
    free(txt);
    json_decref(out);
    assert_int_equal(wfh_value_eval(l.wf->steps[2].env, &env, &out, err, sizeof err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "A")), "hi");
    json_decref(out);
    /* NULL evaluates to an empty object: a step without `with:` */
    assert_int_equal(wfh_value_eval(NULL, &env, &out, err, sizeof err), 0);
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
    json_decref(ctx);
    unload(&l);
}

static void test_unknown_keys_hint(void **state)
{
    (void)state;
    loaded l;
    load(&l, "name: x\n"
             "stepz:\n"
             "  - id: a\n"
             "steps:\n"
             "  - id: a\n"
             "    uses: shell\n"
             "    need: [b]\n"
             "    whit: {}\n"
             "    frobnicate: 1\n");
    assert_int_equal(l.err, WFH_EINVAL);
    expect_at(&l, "unknown key 'stepz' in the workflow", 2, 1, "did you mean 'steps'?");
    expect_at(&l, "unknown key 'need' in a step", 7, 5, "did you mean 'needs'?");
    expect_at(&l, "unknown key 'whit' in a step", 8, 5, "did you mean 'with'?");
    const wfh_diag *x = find(&l, "unknown key 'frobnicate'");
    assert_null(x->hint);
    assert_int_equal(l.d.errors, 4);
    unload(&l);
}

static void test_step_shape_errors(void **state)
{
    (void)state;
    loaded l;
    load(&l, "steps:\n"                 /* 1 */
             "  - id: Build\n"          /* 2 */
             "    uses: shell\n"        /* 3 */
             "  - id: a\n"              /* 4 */
             "    uses: Shell@x\n"      /* 5 */
             "  - id: a\n"              /* 6 */
             "    uses: shell\n"        /* 7 */
             "  - uses: shell\n"        /* 8 */
             "  - id: c\n"              /* 9 */
             "    needs: {a: 1}\n"      /* 10 */
             "    with: [1]\n"          /* 11 */
             "    env: {1X: a, B: [1]}\n" /* 12 */
             "  - just a string\n");    /* 13 */
    assert_int_equal(l.err, WFH_EINVAL);
    expect_at(&l, "invalid step id 'Build'", 2, 9, NULL);
    expect_at(&l, "invalid step type 'Shell@x'", 5, 11, NULL);
    expect_at(&l, "duplicate step id 'a' (first at line 4)", 6, 9, NULL);
    expect_at(&l, "step 4 has no 'id'", 8, 5, NULL);
    expect_at(&l, "step c has no 'uses'", 9, 5, NULL);
    expect_at(&l, "needs must be a step id or a list", 10, 12, NULL);
    expect_at(&l, "with must be a mapping", 11, 11, NULL);
    expect_at(&l, "invalid environment variable name '1X'", 12, 11, NULL);
    expect_at(&l, "env value 'B' must be a string", 12, 21, NULL);
    expect_at(&l, "step 6 must be a mapping, not a scalar", 13, 5, NULL);
    expect_at(&l, "the workflow has no 'name'", 1, 1, NULL);
    unload(&l);
}

static void test_top_level_shape(void **state)
{
    (void)state;
    loaded l;
    load(&l, "- a\n- b\n");
    expect_at(&l, "a workflow must be a mapping, not a list", 1, 1, NULL);
    unload(&l);
    load(&l, "name: [x]\nsteps: []\n");
    expect_at(&l, "name must be a string, not a list", 1, 7, NULL);
    expect_at(&l, "steps is empty", 2, 8, NULL);
    unload(&l);
    load(&l, "name: x\nsteps: {a: 1}\n");
    expect_at(&l, "steps must be a list, not a mapping", 2, 8, NULL);
    unload(&l);
    load(&l, "name: x\nsteps:\n  - id: a\n    uses: shell\n  bad\n");
    assert_int_equal(l.err, WFH_EPARSE);
    assert_true(l.d.errors >= 1);
    assert_in_range(l.d.items[0].line, 5, 6); /* where libyaml notices */
    unload(&l);
}

static void test_expression_errors_positioned(void **state)
{
    (void)state;
    loaded l;
    /* an unknown context is refused at parse time, pointing inside the scalar */
    load(&l, "name: x\n"
             "steps:\n"
             "  - id: a\n"
             "    uses: shell\n"
             "    with:\n"
             "      run: echo ${{ github.sha }}\n"
             "      q: \"x ${{ env. }}\"\n"
             "      b: |\n"
             "        line\n"
             "        ok ${{ 1 + }}\n");
    assert_int_equal(l.err, WFH_EINVAL);
    assert_true(l.d.errors >= 3);
    /* every diagnostic lands on the line of its scalar, inside the `${{ }}` */
    int seen[3] = {0, 0, 0};
    for (size_t i = 0; i < l.d.count; i++) {
        const wfh_diag *x = &l.d.items[i];
        if (x->line == 6) {
            assert_in_range(x->col, 17, 31);
            seen[0] = 1;
        } else if (x->line == 7) {
            assert_in_range(x->col, 13, 23);
            seen[1] = 1;
        } else if (x->line == 10) {
            assert_in_range(x->col, 12, 22);
            seen[2] = 1;
        } else {
            fail_msg("unexpected diagnostic %u:%u: %s", x->line, x->col, x->message);
        }
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    /* `github` is not a wfhost context: the caret is on its first letter */
    expect_at(&l, "github", 6, 21, NULL);
    unload(&l);
}

static void test_load_file_errors(void **state)
{
    (void)state;
    wfh_diags d;
    wfh_diags_init(&d, "x", NULL, 0);
    wfh_workflow *wf = NULL;
    assert_int_equal(wfh_workflow_load("/nonexistent/flow.yaml", &wf, &d), WFH_ENOTFOUND);
    assert_null(wf);
    assert_non_null(strstr(wfh_error_last(), "/nonexistent/flow.yaml"));
    assert_int_equal(wfh_workflow_load("/", &wf, &d), WFH_EINVAL);
    wfh_diags_free(&d);
    char path[256];
    snprintf(path, sizeof path, "%s/../examples/hello.yaml", WFH_TEST_DATA);
    wfh_diags_init(&d, "x", NULL, 0);
    assert_int_equal(wfh_workflow_load(path, &wf, &d), 0);
    assert_string_equal(wf->name, "hello");
    wfh_diags_free(&d);
    wfh_workflow_free(wf);
    wfh_workflow_free(NULL);
    wfh_value_free(NULL);
}

static void test_suggest(void **state)
{
    (void)state;
    const char *c[] = {"needs", "with", "env", "uses", "id"};
    assert_string_equal(wfh_workflow_suggest("need", c, 5), "needs");
    assert_string_equal(wfh_workflow_suggest("usse", c, 5), "uses");
    assert_null(wfh_workflow_suggest("timeout", c, 5));
    assert_null(wfh_workflow_suggest("x", c, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_loads),
        cmocka_unit_test(test_value_eval),
        cmocka_unit_test(test_unknown_keys_hint),
        cmocka_unit_test(test_step_shape_errors),
        cmocka_unit_test(test_top_level_shape),
        cmocka_unit_test(test_expression_errors_positioned),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_suggest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
