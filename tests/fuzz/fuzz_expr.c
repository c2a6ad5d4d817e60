/*
 * tests/fuzz/fuzz_expr.c - libFuzzer target for the expression language.
 *
 * The first byte picks what the rest is: an expression (parsed with and without a
 * scope, refs walked, evaluated with strict step outputs on or off and with the
 * non-finite-friendly entry) or a template (parsed, refs walked, evaluated). Nothing
 * may crash, leak or trip a sanitizer, and a parse error must point inside the input.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *contexts;

static void ignore_ref(void *ud, const wfh_expr_ref *ref)
{
    size_t *n = ud;
    for (size_t i = 0; i < ref->nparts; i++)
        *n += strlen(ref->parts[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const scope_names[] = {"inputs", "steps", "env", "matrix", "foo", NULL};
    wfh_expr_scope scope = {.contexts = scope_names};
    if (!contexts)
        contexts = json_loads("{\"inputs\":{\"a\":[1,\"x\",{\"b\":null}],\"n\":3,\"s\":\"Σx\"},"
                              "\"steps\":{\"s1\":{\"outputs\":{\"o\":\"v\"}}},"
                              "\"env\":{},\"matrix\":{\"m\":[true,false]},\"foo\":{\"*\":1}}",
                              0, NULL);
    if (size == 0)
        return 0;
    int mode = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    env.strict_step_outputs = mode & 2;
    env.run_failed = mode & 4;
    wfh_expr_error err;
    json_t *out = NULL;
    size_t n = 0;
    if (mode & 1) {
        wfh_tmpl *t = NULL;
        if (wfh_tmpl_parse(text, len, (mode & 8) ? &scope : NULL, &t, &err) == 0) {
            wfh_tmpl_refs(t, ignore_ref, &n);
            (void)wfh_tmpl_is_literal(t);
            if (wfh_tmpl_eval(t, &env, &out, &err) == 0)
                json_decref(out);
            wfh_tmpl_free(t);
        } else if (err.offset > len) {
            abort();
        }
        return 0;
    }
    wfh_expr *e = NULL;
    if (wfh_expr_parse(text, len, (mode & 8) ? &scope : NULL, &e, &err) < 0) {
        if (err.offset > len)
            abort();
        return 0;
    }
    wfh_expr_refs(e, ignore_ref, &n);
    (void)wfh_expr_uses_status_fn(e);
    if (wfh_expr_eval(e, &env, &out, &err) == 0) {
        char *s = wfh_expr_to_string(out);
        free(s);
        json_decref(out);
    }
    const char *kind;
    if (wfh_expr_eval_kind(e, &env, &out, &kind, &err) == 0)
        json_decref(out);
    wfh_expr_free(e);
    return 0;
}
