/*
 * tests/unit/test_expr_docs.c - every example in docs/expressions.md must be true.
 *
 * Reads the ```json contexts block and the ```text examples block of the document and
 * evaluates each `expression => result` line as a workflow run would (strict step
 * outputs on, the example contexts as the only known contexts), so the documentation
 * cannot drift from the implementation.
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

static char *read_doc(void)
{
    const char *path = WFH_TEST_DATA "/../docs/expressions.md";
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The body of the fenced block whose info string is @p info; NUL-terminated in place. */
static char *block(char *doc, const char *info)
{
    char fence[64];
    snprintf(fence, sizeof fence, "```%s\n", info);
    char *s = strstr(doc, fence);
    if (!s)
        return NULL;
    s += strlen(fence);
    char *e = strstr(s, "\n```");
    if (!e)
        return NULL;
    e[1] = '\0';
    return s;
}

static int same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

static void test_doc_examples(void **state)
{
    (void)state;
    char *doc = read_doc();
    assert_non_null(doc);
    char *ctx_text = block(doc, "json contexts");
    assert_non_null(ctx_text);
    char *examples = strstr(ctx_text + strlen(ctx_text) + 1, "```text examples\n");
    assert_non_null(examples);
    examples = block(examples, "text examples");
    assert_non_null(examples);
    json_t *contexts = json_loads(ctx_text, 0, NULL);
    assert_non_null(contexts);
    const char *names[16] = {0};
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(contexts, key, v) {
        (void)v;
        if (k < 15)
            names[k++] = key;
    }
    wfh_expr_scope scope = {.contexts = names};
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    env.strict_step_outputs = 1;
    size_t count = 0, failures = 0;
    for (char *line = strtok(examples, "\n"); line; line = strtok(NULL, "\n")) {
        char *arrow = strstr(line, " => ");
        assert_non_null(arrow);
        *arrow = '\0';
        const char *want = arrow + 4;
        wfh_expr *e = NULL;
        json_t *got = NULL;
        wfh_expr_error err;
        int rc = wfh_expr_parse(line, strlen(line), &scope, &e, &err);
        if (rc == 0)
            rc = wfh_expr_eval(e, &env, &got, &err);
        static const char *const kinds[] = {"none", "lexing", "parsing", "evaluation"};
        if (strncmp(want, "error: ", 7) == 0) {
            if (rc == 0 || strcmp(want + 7, kinds[err.kind & 3]) != 0) {
                print_message("FAIL %s: want %s, got rc=%d (%s)\n", line, want, rc, err.message);
                failures++;
            }
        } else {
            json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
            if (!w || rc != 0 || !same_value(w, got)) {
                char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
                print_message("FAIL %s: want %s, got %s (%s)\n", line, want, g ? g : "error",
                              rc ? err.message : "");
                free(g);
                failures++;
            }
            json_decref(w);
        }
        json_decref(got);
        wfh_expr_free(e);
        count++;
    }
    print_message("%zu documented examples checked\n", count);
    assert_true(count >= 20);
    assert_int_equal(failures, 0);
    json_decref(contexts);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
