/*
 * tests/unit/test_validate.c - the validator: needs, self-needs and cycles (printed),
 * a stable topological order, step types through a hand-built catalog, `with:` against
 * input schemas (pointing at the offending node), step references that must be
 * ancestors, and near-linear cost on a 100 000-step workflow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "workflow.h"

static const char shell_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    " \"properties\":{\"run\":{\"type\":\"string\"},"
    "  \"argv\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1},"
    "  \"cwd\":{\"type\":\"string\"},"
    "  \"env\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}},"
    " \"oneOf\":[{\"required\":[\"run\"]},{\"required\":[\"argv\"]}]}";

/* A catalog as the runner's probe would build it: shell@1 and http@2. */
typedef struct fake_catalog {
    wfh_catalog cat;
    wfh_plugin_meta plugins[2];
    wfh_type_meta types[2];
} fake_catalog;

static void fake_init(fake_catalog *f)
{
    memset(f, 0, sizeof *f);
    f->types[0].name = "shell";
    f->types[0].input_schema = json_loads(shell_schema, 0, NULL);
    assert_non_null(f->types[0].input_schema);
    f->types[0].plugin = &f->plugins[0];
    f->types[1].name = "http";
    f->types[1].input_schema = json_loads("{\"type\":\"object\",\"required\":[\"url\"]}", 0, NULL);
    f->types[1].plugin = &f->plugins[1];
    f->plugins[0] = (wfh_plugin_meta){.name = "shell", .version = "1.0.3", .version_major = 1,
                                      .abi_major = 1, .types = &f->types[0], .n_types = 1};
    f->plugins[1] = (wfh_plugin_meta){.name = "http", .version = "2.1.0", .version_major = 2,
                                      .abi_major = 1, .types = &f->types[1], .n_types = 1};
    f->cat.plugins = f->plugins;
    f->cat.n_plugins = 2;
}

static void fake_free(fake_catalog *f)
{
    json_decref(f->types[0].input_schema);
    json_decref(f->types[1].input_schema);
}

typedef struct checked {
    wfh_diags d;
    wfh_workflow *wf;
    int load_err, err;
} checked;

static void check(checked *c, const char *text, const wfh_catalog *cat)
{
    wfh_diags_init(&c->d, "t.yaml", NULL, 0);
    c->wf = NULL;
    c->load_err = wfh_workflow_parse("t.yaml", text, strlen(text), &c->wf, &c->d);
    assert_non_null(c->wf);
    c->err = wfh_workflow_validate(c->wf, cat, &c->d);
}

static void uncheck(checked *c)
{
    wfh_diags_free(&c->d);
    wfh_workflow_free(c->wf);
}

static const wfh_diag *find(const checked *c, const char *needle)
{
    for (size_t i = 0; i < c->d.count; i++)
        if (strstr(c->d.items[i].message, needle))
            return &c->d.items[i];
    for (size_t i = 0; i < c->d.count; i++)
        fprintf(stderr, "  have %u:%u: %s\n", c->d.items[i].line, c->d.items[i].col,
                c->d.items[i].message);
    fail_msg("no diagnostic contains '%s'", needle);
    return NULL;
}

static void expect_at(const checked *c, const char *needle, unsigned line, unsigned col,
                      const char *hint)
{
    const wfh_diag *x = find(c, needle);
    if (x->line != line || x->col != col)
        fail_msg("'%s' at %u:%u, expected %u:%u", x->message, x->line, x->col, line, col);
    if (hint) {
        if (!x->hint)
            fail_msg("'%s' has no hint, expected '%s'", x->message, hint);
        assert_string_equal(x->hint, hint);
    }
}

static void test_order_is_topological_and_stable(void **state)
{
    (void)state;
    checked c;
    check(&c, "name: x\nsteps:\n"
              "  - {id: c, uses: shell, needs: [a, d]}\n"
              "  - {id: a, uses: shell}\n"
              "  - {id: b, uses: shell, needs: a}\n"
              "  - {id: d, uses: shell}\n"
              "  - {id: e, uses: shell, needs: [c, b]}\n",
          NULL);
    assert_int_equal(c.err, 0);
    assert_int_equal(c.d.errors, 0);
    assert_non_null(c.wf->order);
    /* ready steps run in file order: a (1); then c waits for d, so b (2), d (3), c, e */
    size_t want[] = {1, 2, 3, 0, 4};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(c.wf->order[i], want[i]);
    assert_int_equal(c.wf->steps[0].needs[0], 1);
    assert_int_equal(c.wf->steps[0].needs[1], 3);
    uncheck(&c);
}

static void test_needs_errors(void **state)
{
    (void)state;
    checked c;
    check(&c, "name: x\nsteps:\n"
              "  - id: build\n"
              "    uses: shell\n"
              "    needs: [biuld, build, nothing-like-it]\n",
          NULL);
    assert_int_equal(c.err, WFH_EINVAL);
    expect_at(&c, "step 'build' needs unknown step 'biuld'", 5, 13, "did you mean 'build'?");
    expect_at(&c, "step 'build' needs itself", 5, 20, NULL);
    const wfh_diag *x = find(&c, "unknown step 'nothing-like-it'");
    assert_null(x->hint);
    assert_null(c.wf->order == NULL ? NULL : NULL);
    uncheck(&c);
}

static void test_cycles_are_printed(void **state)
{
    (void)state;
    checked c;
    check(&c, "name: x\nsteps:\n"
              "  - {id: a, uses: shell, needs: [c]}\n"
              "  - {id: b, uses: shell, needs: [a]}\n"
              "  - {id: c, uses: shell, needs: [b]}\n"
              "  - {id: ok, uses: shell}\n"
              "  - {id: after, uses: shell, needs: [a]}\n"
              "  - {id: p, uses: shell, needs: [q]}\n"
              "  - {id: q, uses: shell, needs: [p]}\n",
          NULL);
    assert_int_equal(c.err, WFH_EINVAL);
    assert_null(c.wf->order);
    /* found from a: a needs c needs b needs a; printed in run order */
    expect_at(&c, "cycle: a -> b -> c -> a", 4, 34, NULL);
    find(&c, "cycle: p -> q -> p");
    assert_int_equal(c.d.errors, 2);
    uncheck(&c);
}

static void test_step_types(void **state)
{
    (void)state;
    fake_catalog f;
    fake_init(&f);
    checked c;
    check(&c, "name: x\nsteps:\n"
              "  - id: a\n"
              "    uses: shel\n"
              "  - id: b\n"
              "    uses: shell@3\n"
              "    with: {run: x}\n"
              "  - id: c\n"
              "    uses: http@2\n"
              "    with: {url: 'https://example.org'}\n"
              "  - id: d\n"
              "    uses: zzzzzz\n"
              "  - id: e\n"
              "    uses: shell@1\n"
              "    with: {run: x}\n",
          &f.cat);
    assert_int_equal(c.err, WFH_EINVAL);
    expect_at(&c, "unknown step type 'shel'", 4, 11, "did you mean 'shell'?");
    expect_at(&c, "step type 'shell@3' is not installed", 6, 11, "installed: shell@1");
    expect_at(&c, "unknown step type 'zzzzzz'", 12, 11, "installed step types: shell http");
    assert_int_equal(c.d.errors, 3);
    assert_ptr_equal(c.wf->steps[2].meta, &f.types[1]);
    assert_ptr_equal(c.wf->steps[4].meta, &f.types[0]);
    uncheck(&c);
    fake_free(&f);
}

static void test_with_against_schema(void **state)
{
    (void)state;
    fake_catalog f;
    fake_init(&f);
    checked c;
    check(&c, "name: x\nsteps:\n"
              "  - id: a\n"                         /* 3 */
              "    uses: shell\n"
              "    with:\n"                         /* 5 */
              "      argv: [ls, -l, 3]\n"           /* 6 */
              "      rnu: x\n"                      /* 7 */
              "  - id: b\n"                         /* 8 */
              "    uses: shell\n"
              "  - id: c\n"                         /* 10 */
              "    uses: shell\n"
              "    with:\n"
              "      argv: ${{ env.ARGS }}\n"       /* 13: unknown type: accepted */
              "      env: {X: 'v ${{ env.Y }}'}\n"  /* 14: a string: accepted */
              "  - id: d\n"                         /* 15 */
              "    uses: shell\n"
              "    with:\n"
              "      argv: 'x ${{ env.ARGS }}'\n"   /* 18: always a string */
              "      env: {X: 2}\n",                /* 19 */
          &f.cat);
    assert_int_equal(c.err, WFH_EINVAL);
    expect_at(&c, "step 'a': with.argv[2]: expected string, got integer", 6, 22, NULL);
    expect_at(&c, "step 'a': with.rnu: unknown property", 7, 12, NULL);
    expect_at(&c, "step 'b': with: matches none of the allowed forms (oneOf)", 8, 5, NULL);
    expect_at(&c, "step 'd': with.argv: expected array, got string", 18, 13, NULL);
    expect_at(&c, "step 'd': with.env.X: expected string, got integer", 19, 16, NULL);
    assert_int_equal(c.d.errors, 5);
    uncheck(&c);
    fake_free(&f);
}

static void test_step_references(void **state)
{
    (void)state;
    checked c;
    check(&c, "name: x\n"
              "env:\n"
              "  W: ${{ steps.a.outputs.x }}\n"               /* 3 */
              "steps:\n"
              "  - id: a\n"
              "    uses: shell\n"
              "  - id: b\n"
              "    uses: shell\n"
              "    needs: [a]\n"
              "  - id: c\n"                                   /* 10 */
              "    uses: shell\n"
              "    needs: [b]\n"
              "    with:\n"
              "      ok: ${{ steps.a.outputs.x }}\n"          /* 14: transitive: fine */
              "      sib: x ${{ steps.d.outputs.y }}\n"       /* 15: not an ancestor */
              "      typo: ${{ steps.bb.outputs.y }}\n"       /* 16 */
              "      self: ${{ steps.c.outputs.y }}\n"        /* 17 */
              "  - id: d\n"
              "    uses: shell\n"
              "    env:\n"
              "      V: ${{ steps.c.outputs.z }}\n",          /* 21: not an ancestor */
          NULL);
    assert_int_equal(c.err, WFH_EINVAL);
    expect_at(&c, "the workflow's env cannot refer to step outputs", 3, 10, NULL);
    expect_at(&c, "step 'c' refers to step 'd', which does not run before it", 15, 18,
              "add 'd' to the needs of 'c'");
    expect_at(&c, "step 'c' refers to unknown step 'bb'", 16, 17, "did you mean 'b'?");
    expect_at(&c, "step 'c' refers to its own outputs", 17, 17, NULL);
    expect_at(&c, "step 'd' refers to step 'c'", 21, 14, NULL);
    assert_int_equal(c.d.errors, 5);
    uncheck(&c);
}

static void test_shell_splice_warning(void **state)
{
    (void)state;
    fake_catalog f;
    fake_init(&f);
    checked c;
    check(&c, "name: x\nsteps:\n"
              "  - {id: a, uses: shell, with: {run: 'echo ${{ env.A }}'}}\n"
              "  - id: b\n"
              "    uses: shell\n"
              "    needs: a\n"
              "    env: {V: '${{ steps.a.outputs.v }}'}\n"
              "    with:\n"
              "      run: echo $V ${{ steps.a.outputs.v }}\n",
          &f.cat);
    /* a warning only: the workflow is valid */
    assert_int_equal(c.err, 0);
    assert_int_equal(c.d.errors, 0);
    assert_int_equal(c.d.warnings, 1);
    expect_at(&c, "step 'b': 'v' is spliced into a shell script", 9, 24,
              "pass it through env (env: {VALUE: '${{ steps.a.outputs.v }}'}) and use "
              "\"$VALUE\" in the script");
    assert_int_equal(c.d.items[0].severity, WFH_DIAG_WARNING);
    uncheck(&c);
    fake_free(&f);
}

/* Many diagnostics print in position order, in time linear in their number (the
 * printer walks the source once), and the splice advice is given 10 times, then counted. */
static void test_many_diagnostics(void **state)
{
    (void)state;
    size_t n = 20000, cap = n * 120 + 64, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    len += (size_t)sprintf(buf + len, "name: many\nsteps:\n  - {id: s0, uses: shell, with: {run: x}}\n");
    for (size_t i = 1; i < n; i++)
        len += (size_t)sprintf(buf + len,
                               "  - {id: s%zu, uses: shell, needs: s%zu, with: {run: 'echo "
                               "${{ steps.s%zu.outputs.x }}', bogus: %zu}}\n",
                               i, i - 1, i - 1, i);
    fake_catalog f;
    fake_init(&f);
    checked c;
    check(&c, buf, &f.cat);
    assert_int_equal(c.d.errors, n - 1);          /* every `bogus` input */
    assert_int_equal(c.d.warnings, 10 + 1);       /* ten splices, then the count */
    find(&c, "19989 more step outputs or inputs are spliced");
    FILE *out = tmpfile();
    assert_non_null(out);
    wfh_diags_print(&c.d, out);
    /* sorted: the count (no position) first, then by line */
    assert_int_equal(c.d.items[0].line, 0);
    for (size_t i = 2; i < c.d.count; i++)
        assert_true(c.d.items[i - 1].line <= c.d.items[i].line);
    assert_true(ftell(out) > 0);
    fclose(out);
    uncheck(&c);
    fake_free(&f);
    free(buf);
}

/* 100 000 steps in a chain, each reading an output of the previous one and of the
 * first one (which forces the ancestry walk, not just the direct-needs check). */
static void test_large_workflow_is_fast(void **state)
{
    (void)state;
    size_t n = 100000;
    size_t cap = n * 160 + 64, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    len += (size_t)sprintf(buf + len, "name: big\nsteps:\n");
    for (size_t i = 0; i < n; i++) {
        if (i == 0)
            len += (size_t)sprintf(buf + len, "  - id: s0\n    uses: shell\n");
        else
            len += (size_t)sprintf(buf + len,
                                   "  - id: s%zu\n    uses: shell\n    needs: [s%zu]\n"
                                   "    with: {run: 'echo ${{ steps.s%zu.outputs.x }} "
                                   "${{ steps.s0.outputs.x }}'}\n",
                                   i, i - 1, i - 1);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    checked c;
    wfh_diags_init(&c.d, "big.yaml", NULL, 0);
    c.load_err = wfh_workflow_parse("big.yaml", buf, len, &c.wf, &c.d);
    assert_int_equal(c.load_err, 0);
    c.err = wfh_workflow_validate(c.wf, NULL, &c.d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(c.err, 0);
    assert_int_equal(c.wf->order[n - 1], n - 1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "100000-step chain: load + validate %.3f s (%zu bytes of YAML)\n", secs,
            len);
    /* Not a benchmark (bench/ is): this catches quadratic behaviour, which takes minutes
     * here, with room for a loaded CI machine and the sanitizers' ~5x slowdown. */
    const char *san = getenv("WFH_SANITIZE");
    double limit = san && !strcmp(san, "1") ? 240.0 : 20.0;
    assert_true(secs < limit);
    uncheck(&c);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_is_topological_and_stable),
        cmocka_unit_test(test_needs_errors),
        cmocka_unit_test(test_cycles_are_printed),
        cmocka_unit_test(test_step_types),
        cmocka_unit_test(test_with_against_schema),
        cmocka_unit_test(test_step_references),
        cmocka_unit_test(test_shell_splice_warning),
        cmocka_unit_test(test_many_diagnostics),
        cmocka_unit_test(test_large_workflow_is_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
