/*
 * core/value.c - `with:` and `env:` values: YAML compiled once into templates, evaluated
 * into JSON for every attempt.
 *
 * Compiling at load time means every `${{ }}` is parsed before anything runs, so a typo
 * is a validation error with a caret instead of literal text reaching a plugin. A scalar
 * that is exactly one expression keeps the expression's type (wfh_tmpl_eval does that);
 * everything else is a JSON literal decided once.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "workflow.h"

const char *const wfh_workflow_contexts[] = {"steps", "env",    "inputs", "matrix", "item",
                                             "index", "run",    "secrets", NULL};

void wfh_value_free(wfh_value *v)
{
    if (!v)
        return;
    json_decref(v->literal);
    wfh_tmpl_free(v->tmpl);
    for (size_t i = 0; i < v->n; i++) {
        wfh_value_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->text);
    free(v);
}

static unsigned block_indent(const wfh_ynode *n, const wfh_diags *d)
{
    unsigned line, col;
    wfh_yscalar_pos(n, d->source, d->source_len, 0, &line, &col);
    return col > 0 ? col - 1 : 0;
}

void wfh_value_pos(const wfh_value *v, size_t offset, unsigned *line, unsigned *col)
{
    *line = v->line;
    *col = v->col;
    if (v->kind != WFH_V_TMPL || !v->text)
        return;
    if (offset > v->text_len)
        offset = v->text_len;
    if (v->style == WFH_YS_LITERAL || v->style == WFH_YS_FOLDED) {
        unsigned nl = 0;
        size_t last = 0;
        for (size_t i = 0; i < offset; i++)
            if (v->text[i] == '\n') {
                nl++;
                last = i + 1;
            }
        *line = v->line + 1 + nl;
        *col = v->indent + 1 + (unsigned)(offset - last);
        return;
    }
    unsigned chars = 0;
    for (size_t i = 0; i < offset; i++)
        if (((unsigned char)v->text[i] & 0xC0) != 0x80)
            chars++;
    *col = v->col + (v->style == WFH_YS_PLAIN ? 0 : 1) + chars;
}

static int compile_scalar(const wfh_ynode *n, const wfh_expr_scope *scope, int as_strings,
                          wfh_diags *d, wfh_value *v)
{
    if (memmem(n->str, n->len, "${{", 3)) {
        wfh_expr_error e;
        memset(&e, 0, sizeof e);
        wfh_tmpl *t = NULL;
        int err = wfh_tmpl_parse(n->str, n->len, scope, &t, &e);
        v->style = n->style;
        v->text_len = n->len;
        v->text = malloc(n->len + 1);
        if (!v->text) {
            wfh_tmpl_free(t);
            return WFH_ENOMEM;
        }
        memcpy(v->text, n->str, n->len + 1);
        if (v->style == WFH_YS_LITERAL || v->style == WFH_YS_FOLDED)
            v->indent = block_indent(n, d);
        v->kind = WFH_V_TMPL;
        if (err < 0) {
            unsigned line, col;
            wfh_value_pos(v, e.offset, &line, &col);
            wfh_diag_add(d, WFH_DIAG_ERROR, line, col, NULL, "%s",
                         e.message[0] ? e.message : "invalid expression");
            return err == WFH_ENOMEM ? err : WFH_EPARSE;
        }
        if (!wfh_tmpl_is_literal(t)) {
            v->tmpl = t;
            return 0;
        }
        /* `${{` inside something the template parser treats as text: keep it literal */
        wfh_tmpl_free(t);
        free(v->text);
        v->text = NULL;
    }
    v->kind = WFH_V_LITERAL;
    if (as_strings)
        v->literal = json_stringn(n->str, n->len);
    else
        v->literal = wfh_yscalar_to_json(n);
    if (!v->literal) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL,
                     "value is not valid UTF-8 text");
        return WFH_EPARSE;
    }
    return 0;
}

int wfh_value_compile(const wfh_ynode *n, const wfh_expr_scope *scope, int as_strings,
                      wfh_diags *d, wfh_value **out)
{
    *out = NULL;
    int err = 0;
    wfh_value *v = calloc(1, sizeof *v); /* owned until *out */
    if (!v)
        return WFH_ENOMEM;
    v->line = n->line;
    v->col = n->col;
    if (n->kind == WFH_Y_SCALAR) {
        err = compile_scalar(n, scope, as_strings, d, v);
        goto done;
    }
    if (as_strings) {
        wfh_diag_add(d, WFH_DIAG_ERROR, n->line, n->col, NULL,
                     "expected a string, found a %s", n->kind == WFH_Y_SEQ ? "list" : "mapping");
        err = WFH_EPARSE;
        goto done;
    }
    v->kind = n->kind == WFH_Y_SEQ ? WFH_V_ARRAY : WFH_V_OBJECT;
    if (n->n) {
        v->items = calloc(n->n, sizeof *v->items);
        if (!v->items) {
            err = WFH_ENOMEM;
            goto done;
        }
        if (n->kind == WFH_Y_MAP) {
            v->keys = calloc(n->n, sizeof *v->keys);
            if (!v->keys) {
                err = WFH_ENOMEM;
                goto done;
            }
        }
    }
    /* Keep compiling after a bad item so every problem is reported in one pass. */
    for (size_t i = 0; i < n->n; i++) {
        v->n = i + 1;
        if (v->keys) {
            const wfh_ynode *k = n->keys[i];
            if (strlen(k->str) != k->len) {
                wfh_diag_add(d, WFH_DIAG_ERROR, k->line, k->col, NULL,
                             "key contains a NUL character");
                if (!err)
                    err = WFH_EPARSE;
            }
            v->keys[i] = strdup(k->str);
            if (!v->keys[i]) {
                err = WFH_ENOMEM;
                goto done;
            }
        }
        int e = wfh_value_compile(n->items[i], scope, 0, d, &v->items[i]);
        if (e == WFH_ENOMEM) {
            err = e;
            goto done;
        }
        if (e < 0 && !err)
            err = e;
    }
done:
    if (err < 0 && err != WFH_EPARSE) {
        wfh_value_free(v);
        return err;
    }
    /* A value with a bad template is still returned, so one pass reports the rest. */
    *out = v;
    return err;
}

void wfh_value_walk_tmpls(const wfh_value *v, void (*fn)(void *ud, const wfh_value *t),
                          void *ud)
{
    if (!v)
        return;
    if (v->kind == WFH_V_TMPL && v->tmpl)
        fn(ud, v);
    for (size_t i = 0; i < v->n; i++)
        wfh_value_walk_tmpls(v->items[i], fn, ud);
}

int wfh_value_eval(const wfh_value *v, const wfh_expr_env *env, json_t **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    if (!v) {
        *out = json_object();
        return *out ? 0 : WFH_ENOMEM;
    }
    switch (v->kind) {
    case WFH_V_LITERAL:
        *out = json_incref(v->literal);
        return 0;
    case WFH_V_TMPL: {
        if (!v->tmpl) {
            snprintf(err, errlen, "%u:%u: template was not compiled", v->line, v->col);
            return WFH_EEVAL;
        }
        wfh_expr_error e;
        memset(&e, 0, sizeof e);
        int rc = wfh_tmpl_eval(v->tmpl, env, out, &e);
        if (rc < 0) {
            unsigned line, col;
            wfh_value_pos(v, e.offset, &line, &col);
            snprintf(err, errlen, "%u:%u: %s", line, col,
                     e.message[0] ? e.message : "expression failed");
            *out = NULL;
            return rc == WFH_ENOMEM ? rc : WFH_EEVAL;
        }
        return 0;
    }
    case WFH_V_ARRAY:
    case WFH_V_OBJECT:
        break;
    }
    json_t *res = v->kind == WFH_V_ARRAY ? json_array() : json_object();
    if (!res)
        return WFH_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        json_t *item = NULL;
        int rc = wfh_value_eval(v->items[i], env, &item, err, errlen);
        if (rc < 0) {
            json_decref(res);
            return rc;
        }
        rc = v->kind == WFH_V_ARRAY ? json_array_append_new(res, item)
                                    : json_object_set_new(res, v->keys[i], item);
        if (rc < 0) {
            json_decref(res);
            snprintf(err, errlen, "%u:%u: out of memory", v->line, v->col);
            return WFH_ENOMEM;
        }
    }
    *out = res;
    return 0;
}
