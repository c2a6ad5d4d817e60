/*
 * tests/conformance/run_gha_expressions.c - runs GitHub's expression test vectors
 * (the JSON files in gha-expressions/, see the README there) through core/expr.h.
 *
 * Every case is parsed with the case's context names as the scope (an unknown name is a
 * parse error, as in GitHub) and evaluated against its contexts. A `result` case must
 * give the same kind and value, numbers compared as GitHub prints them (so 123 and 123.0
 * agree); an `err` case must fail with the same error kind. Prints one line per failure
 * and a pass count; exits 1 if anything failed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

static const char *const err_kinds[] = {"none", "lexing", "parsing", "evaluation"};

static void show(const char *file, const char *group, size_t idx, const char *expr, const char *what)
{
    printf("FAIL %s [%s #%zu] %s\n     %s\n", file, group, idx, expr, what);
}

static int run_case(const char *file, const char *group, size_t idx, const json_t *c)
{
    const char *expr = json_string_value(json_object_get(c, "expr"));
    json_t *contexts = json_object_get(c, "contexts");
    json_t *want = json_object_get(c, "result");
    json_t *want_err = json_object_get(c, "err");
    const char **names = NULL; /* owned; strings borrowed from contexts */
    wfh_expr *e = NULL;        /* owned */
    json_t *got = NULL;        /* owned */
    json_t *own_ctx = NULL;    /* owned */
    wfh_expr_error err;
    char msg[1024];
    int ok = 0;

    if (!expr || (!want && !want_err)) {
        show(file, group, idx, expr ? expr : "?", "malformed case");
        return 0;
    }
    if (!contexts)
        contexts = own_ctx = json_object();
    names = calloc(json_object_size(contexts) + 1, sizeof *names);
    if (!names || !contexts)
        goto done;
    {
        size_t k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(contexts, key, v) {
            (void)v;
            names[k++] = key;
        }
    }
    wfh_expr_scope scope = {.contexts = names};
    wfh_expr_env env;
    memset(&env, 0, sizeof env);
    env.contexts = contexts;
    const char *kind = NULL;
    int rc = wfh_expr_parse(expr, strlen(expr), &scope, &e, &err);
    if (rc == 0)
        rc = wfh_expr_eval_kind(e, &env, &got, &kind, &err);
    if (want_err) {
        const char *wk = json_string_value(json_object_get(want_err, "kind"));
        if (rc == 0) {
            char *s = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
            snprintf(msg, sizeof msg, "expected a %s error, got %s %s", wk, kind, s ? s : "?");
            free(s);
            show(file, group, idx, expr, msg);
        } else if (!wk || strcmp(wk, err_kinds[err.kind & 3]) != 0) {
            snprintf(msg, sizeof msg, "expected a %s error, got a %s error: %s", wk ? wk : "?",
                     err_kinds[err.kind & 3], err.message);
            show(file, group, idx, expr, msg);
        } else {
            ok = 1;
        }
        goto done;
    }
    const char *wkind = json_string_value(json_object_get(want, "kind"));
    json_t *wval = json_object_get(want, "value");
    if (rc < 0) {
        snprintf(msg, sizeof msg, "expected %s, got a %s error: %s", wkind ? wkind : "?",
                 err_kinds[err.kind & 3], err.message);
        show(file, group, idx, expr, msg);
    } else if (!wkind || strcmp(wkind, kind) != 0 || !wval || !wfh_expr_same_value(wval, got)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
        char *w = json_dumps(wval, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(msg, sizeof msg, "expected %s %s, got %s %s", wkind ? wkind : "?", w ? w : "?",
                 kind, g ? g : "?");
        free(g);
        free(w);
        show(file, group, idx, expr, msg);
    } else {
        ok = 1;
    }
done:
    json_decref(got);
    wfh_expr_free(e);
    free(names);
    json_decref(own_ctx);
    return ok;
}

int main(int argc, char **argv)
{
    size_t pass = 0, fail = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS.json...\n", argv[0]);
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        json_error_t jerr;
        json_t *doc = json_load_file(argv[a], 0, &jerr); /* owned */
        if (!json_is_object(doc)) {
            fprintf(stderr, "%s:%d:%d: %s\n", argv[a], jerr.line, jerr.column,
                    doc ? "not a JSON object" : jerr.text);
            json_decref(doc);
            return 2;
        }
        const char *base = strrchr(argv[a], '/');
        base = base ? base + 1 : argv[a];
        const char *group;
        json_t *cases;
        json_object_foreach(doc, group, cases) {
            for (size_t i = 0; i < json_array_size(cases); i++) {
                if (run_case(base, group, i, json_array_get(cases, i)))
                    pass++;
                else
                    fail++;
            }
        }
        json_decref(doc);
    }
    printf("%zu passed, %zu failed\n", pass, fail);
    return fail ? 1 : 0;
}
