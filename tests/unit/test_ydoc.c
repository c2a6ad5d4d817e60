/*
 * tests/unit/test_ydoc.c - YAML to positioned nodes: positions, typing, and every kind
 * of hostile or broken input giving one positioned diagnostic instead of a crash.
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
#include "ydoc.h"

/* Parses @p text; returns the root (or NULL) and leaves diagnostics in @p d. */
static wfh_ynode *parse(const char *text, size_t len, wfh_diags *d)
{
    wfh_diags_init(d, "t.yaml", text, len);
    wfh_ynode *root = NULL;
    int err = wfh_ydoc_parse(text, len, &root, d);
    if (err < 0) {
        assert_null(root);
        assert_true(d->errors > 0);
    }
    return root;
}

/* Asserts that parsing fails with one error at @p line:@p col whose message holds
 * @p needle. */
static void expect_error(const char *text, size_t len, unsigned line, unsigned col,
                         const char *needle)
{
    wfh_diags d;
    wfh_ynode *root = parse(text, len, &d);
    if (root || d.count < 1) {
        wfh_ynode_free(root);
        wfh_diags_free(&d);
        fail_msg("expected an error containing '%s'", needle);
    }
    if (!strstr(d.items[0].message, needle) || d.items[0].line != line ||
        d.items[0].col != col) {
        fprintf(stderr, "got %u:%u: %s\n", d.items[0].line, d.items[0].col, d.items[0].message);
        wfh_diags_free(&d);
        fail_msg("expected %u:%u: ...%s...", line, col, needle);
    }
    /* the message is one line: scripts and editors split on newlines */
    assert_null(strchr(d.items[0].message, '\n'));
    wfh_diags_free(&d);
}

static void test_positions(void **state)
{
    (void)state;
    const char *y = "name: hello\n"
                    "steps:\n"
                    "  - id: who\n"
                    "    with:\n"
                    "      run: 'x'\n"
                    "      list: [a, \"b\"]\n";
    wfh_diags d;
    wfh_ynode *root = parse(y, strlen(y), &d);
    assert_non_null(root);
    assert_int_equal(root->kind, WFH_Y_MAP);
    const wfh_ynode *steps = wfh_ynode_get(root, "steps");
    assert_non_null(steps);
    assert_int_equal(steps->kind, WFH_Y_SEQ);
    assert_int_equal(steps->line, 3);
    assert_int_equal(steps->col, 3);
    const wfh_ynode *step = steps->items[0];
    assert_int_equal(step->line, 3);
    assert_int_equal(step->col, 5);
    const wfh_ynode *id = wfh_ynode_get(step, "id");
    assert_string_equal(id->str, "who");
    assert_int_equal(id->line, 3);
    assert_int_equal(id->col, 9);
    assert_true(id->plain);
    const wfh_ynode *with = wfh_ynode_get(step, "with");
    const wfh_ynode *run = wfh_ynode_get(with, "run");
    assert_int_equal(run->line, 5);
    assert_int_equal(run->col, 12);
    assert_false(run->plain);
    assert_int_equal(run->style, WFH_YS_SINGLE);
    const wfh_ynode *list = wfh_ynode_get(with, "list");
    assert_int_equal(list->n, 2);
    assert_int_equal(list->items[1]->line, 6);
    assert_int_equal(list->items[1]->col, 17);
    assert_null(wfh_ynode_get(with, "nope"));
    assert_null(wfh_ynode_get(list, "run"));
    wfh_ynode_free(root);
    wfh_diags_free(&d);
}

static void test_scalar_positions_inside(void **state)
{
    (void)state;
    const char *y = "a: x ${{ y }}\n"
                    "b: \"q ${{ z }}\"\n"
                    "c: |\n"
                    "    line one\n"
                    "    two ${{ w }}\n";
    wfh_diags d;
    wfh_ynode *root = parse(y, strlen(y), &d);
    assert_non_null(root);
    unsigned line, col;
    wfh_yscalar_pos(wfh_ynode_get(root, "a"), y, strlen(y), 2, &line, &col);
    assert_int_equal(line, 1);
    assert_int_equal(col, 6);
    wfh_yscalar_pos(wfh_ynode_get(root, "b"), y, strlen(y), 2, &line, &col);
    assert_int_equal(line, 2);
    assert_int_equal(col, 7); /* after the opening quote */
    const wfh_ynode *c = wfh_ynode_get(root, "c");
    assert_int_equal(c->style, WFH_YS_LITERAL);
    assert_string_equal(c->str, "line one\ntwo ${{ w }}\n");
    wfh_yscalar_pos(c, y, strlen(y), 13, &line, &col); /* the '$' on the second line */
    assert_int_equal(line, 5);
    assert_int_equal(col, 9);
    wfh_ynode_free(root);
    wfh_diags_free(&d);
}

static void test_core_schema_typing(void **state)
{
    (void)state;
    const char *y = "[~, null, '', true, False, 'true', 12, -3, 0x1f, 0o17, 1.5, 1e3, .inf,"
                    " 9223372036854775808, 1_000, '12', !!str 7, 010]";
    wfh_diags d;
    wfh_ynode *root = parse(y, strlen(y), &d);
    assert_non_null(root);
    json_t *j = wfh_ynode_to_json(root);
    assert_non_null(j);
    char *txt = json_dumps(j, JSON_COMPACT);
    assert_string_equal(txt, "[null,null,\"\",true,false,\"true\",12,-3,31,15,1.5,1000.0,\".inf\","
                             "9.2233720368547758e18,\"1_000\",\"12\",\"7\",10]");
    free(txt);
    json_decref(j);
    wfh_ynode_free(root);
    wfh_diags_free(&d);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_error("a: 1\nb: 2\na: 3\n", 15, 3, 1, "duplicate key 'a' (first at line 1)");
    expect_error("a: &x 1\nb: *x\n", 14, 1, 4, "anchors (&x) are not supported");
    expect_error("a: [1]\n---\nb: 2\n", 15, 2, 1, "found a second");
    expect_error("? [a]\n: 1\n", 9, 1, 3, "mapping keys must be plain strings");
    expect_error("", 0, 1, 1, "the file is empty");
    /* many keys take the sorting path; the later duplicate is the one reported */
    char big[4096] = "";
    for (int i = 0; i < 40; i++)
        sprintf(big + strlen(big), "k%d: %d\n", i, i);
    strcat(big, "k7: again\n");
    expect_error(big, strlen(big), 41, 1, "duplicate key 'k7' (first at line 8)");
}

static void test_depth_cap(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        buf[n++] = '[';
    for (int i = 0; i < 200; i++)
        buf[n++] = ']';
    buf[n] = '\0';
    expect_error(buf, n, 1, 65, "nesting deeper than 64 levels");
}

static void test_malformed(void **state)
{
    (void)state;
    expect_error("steps:\n\t- id: a\n", 16, 2, 1, "invalid YAML");
    expect_error("name: [a, b\n", 12, 2, 1, "invalid YAML");
    expect_error("a:\n  b: 1\n c: 2\n", 16, 3, 2, "did not find expected key");
    expect_error("a: \"unterminated\n", 17, 2, 1, "invalid YAML");
    expect_error("a: 1\x01\n", 6, 1, 5, "control characters are not allowed");
    expect_error("a: \xff\xfe\n", 6, 1, 4, "invalid");
    const char nul[] = "a: b\0c\n";
    expect_error(nul, sizeof nul - 1, 1, 5, "invalid YAML");
}

static void test_garbage_never_crashes(void **state)
{
    (void)state;
    /* deterministic pseudo-random bytes and truncations of a real workflow */
    const char *wf = "name: hello\nenv:\n  G: hi\nsteps:\n  - id: a\n    uses: shell\n"
                     "    with: {run: \"echo ${{ env.G }}\"}\n  - id: b\n    needs: [a]\n";
    size_t wl = strlen(wf);
    for (size_t cut = 0; cut <= wl; cut++) {
        wfh_diags d;
        wfh_ynode *root = parse(wf, cut, &d);
        wfh_ynode_free(root);
        wfh_diags_free(&d);
    }
    unsigned x = 12345;
    char buf[256];
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(round % 255) + 1;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = round % 2 ? (char)(x >> 16) : ":-[]{}'\"#&*!|> \n\tab1"[(x >> 16) % 21];
        }
        wfh_diags d;
        wfh_ynode *root = parse(buf, len, &d);
        for (size_t i = 0; i < d.count; i++) {
            assert_true(d.items[i].line >= 1);
            assert_null(strchr(d.items[i].message, '\n'));
        }
        wfh_ynode_free(root);
        wfh_diags_free(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_scalar_positions_inside),
        cmocka_unit_test(test_core_schema_typing),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
