/*
 * core/tmpl.c - templates: strings with embedded `${{ expr }}`.
 *
 * A template is parsed once into literal pieces and parsed expressions. The end of an
 * expression is the first `}}` outside a string literal (so `${{ format('}}') }}` works).
 * A template that is exactly one `${{ x }}`, give or take surrounding whitespace, keeps
 * x's type (a list stays a list); otherwise every piece is stringified (objects and
 * arrays as compact JSON) and joined. Error offsets are relative to the template, so the
 * validator can put a caret under the exact byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "expr_internal.h"

typedef struct tmpl_piece {
    char *text;     /* owned literal text (NULL for an expression) */
    size_t len;
    wfh_expr *expr; /* owned */
    size_t off;     /* where the expression text starts in the template */
} tmpl_piece;

struct wfh_tmpl {
    tmpl_piece *pieces; /* owned */
    size_t n;
    int single;         /* exactly one expression, surrounding whitespace only */
};

void wfh_tmpl_free(wfh_tmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->pieces[i].text);
        wfh_expr_free(t->pieces[i].expr);
    }
    free(t->pieces);
    free(t);
}

static int add_piece(wfh_tmpl *t, size_t *cap, tmpl_piece p)
{
    if (t->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        tmpl_piece *np = realloc(t->pieces, nc * sizeof *np);
        if (!np)
            return WFH_ENOMEM;
        t->pieces = np;
        *cap = nc;
    }
    t->pieces[t->n++] = p;
    return 0;
}

static int add_text(wfh_tmpl *t, size_t *cap, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    tmpl_piece p = {0};
    p.text = malloc(len + 1);
    if (!p.text)
        return WFH_ENOMEM;
    memcpy(p.text, s, len);
    p.text[len] = '\0';
    p.len = len;
    if (add_piece(t, cap, p) < 0) {
        free(p.text);
        return WFH_ENOMEM;
    }
    return 0;
}

static int tmpl_oom(wfh_expr_error *err, wfh_expr_err_kind kind)
{
    err->kind = kind;
    snprintf(err->message, sizeof err->message, "out of memory");
    return wfh_error_set(WFH_ENOMEM, "template: out of memory");
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The offset of the `}}` closing an expression that starts at @p i, or len if none. */
static size_t find_close(const char *s, size_t len, size_t i)
{
    int in_str = 0;
    for (; i < len; i++) {
        if (s[i] == '\'')
            in_str = !in_str; /* '' inside a string toggles twice: still inside */
        else if (!in_str && s[i] == '}' && i + 1 < len && s[i + 1] == '}')
            return i;
    }
    return len;
}

int wfh_tmpl_parse(const char *s, size_t len, const wfh_expr_scope *scope, wfh_tmpl **out,
                   wfh_expr_error *err)
{
    wfh_expr_error scratch;
    wfh_tmpl *t = calloc(1, sizeof *t); /* owned until returned */
    size_t cap = 0, i = 0, nexpr = 0, lit_start = 0;
    int rc = 0, only_ws = 1;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    *out = NULL;
    if (!t)
        return tmpl_oom(err, WFH_EXPR_ERR_PARSING);
    while (i < len) {
        const char *open = memmem(s + i, len - i, "${{", 3);
        if (!open)
            break;
        size_t o = (size_t)(open - s);
        for (size_t k = lit_start; k < o; k++)
            if (!is_ws(s[k]))
                only_ws = 0;
        if ((rc = add_text(t, &cap, s + lit_start, o - lit_start)) < 0)
            goto oom;
        size_t start = o + 3;
        size_t close = find_close(s, len, start);
        if (close >= len) {
            err->kind = WFH_EXPR_ERR_PARSING;
            err->offset = o;
            snprintf(err->message, sizeof err->message,
                     "unterminated '${{' at offset %zu: no matching '}}'", o);
            rc = wfh_error_set(WFH_EPARSE, "template: %s", err->message);
            goto done;
        }
        tmpl_piece p = {0};
        p.off = start;
        if ((rc = wfh_expr_parse(s + start, close - start, scope, &p.expr, err)) < 0) {
            err->offset += start;
            goto done;
        }
        if (add_piece(t, &cap, p) < 0) {
            wfh_expr_free(p.expr);
            goto oom;
        }
        nexpr++;
        i = lit_start = close + 2;
    }
    for (size_t k = lit_start; k < len; k++)
        if (!is_ws(s[k]))
            only_ws = 0;
    if ((rc = add_text(t, &cap, s + lit_start, len - lit_start)) < 0)
        goto oom;
    t->single = nexpr == 1 && only_ws;
    *out = t;
    t = NULL;
    goto done;
oom:
    rc = tmpl_oom(err, WFH_EXPR_ERR_PARSING);
done:
    wfh_tmpl_free(t);
    return rc;
}

int wfh_expr_parse_condition(const char *src, size_t len, const wfh_expr_scope *scope,
                             wfh_expr **out, wfh_expr_error *err)
{
    wfh_expr_error scratch;
    size_t a = 0, b = len;
    if (!err)
        err = &scratch;
    while (a < b && is_ws(src[a]))
        a++;
    while (b > a && is_ws(src[b - 1]))
        b--;
    if (b - a >= 5 && memcmp(src + a, "${{", 3) == 0 && find_close(src, b, a + 3) == b - 2) {
        int rc = wfh_expr_parse(src + a + 3, b - a - 5, scope, out, err);
        if (rc < 0)
            err->offset += a + 3;
        return rc;
    }
    return wfh_expr_parse(src, len, scope, out, err);
}

int wfh_tmpl_is_literal(const wfh_tmpl *t)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (t->pieces[i].expr)
            return 0;
    return 1;
}

typedef struct refs_shift {
    void (*fn)(void *, const wfh_expr_ref *);
    void *ud;
    size_t off;
} refs_shift;

static void shift_ref(void *ud, const wfh_expr_ref *ref)
{
    refs_shift *rs = ud;
    wfh_expr_ref r = *ref;
    r.offset += rs->off;
    rs->fn(rs->ud, &r);
}

void wfh_tmpl_refs(const wfh_tmpl *t, void (*fn)(void *ud, const wfh_expr_ref *ref), void *ud)
{
    for (size_t i = 0; t && fn && i < t->n; i++) {
        if (!t->pieces[i].expr)
            continue;
        refs_shift rs = {fn, ud, t->pieces[i].off};
        wfh_expr_refs(t->pieces[i].expr, shift_ref, &rs);
    }
}

int wfh_tmpl_eval(const wfh_tmpl *t, const wfh_expr_env *env, json_t **out, wfh_expr_error *err)
{
    wfh_expr_error scratch;
    wfh_buf b = {0};
    int rc = 0;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    *out = NULL;
    if (t->single) {
        for (size_t i = 0; i < t->n; i++) {
            if (!t->pieces[i].expr)
                continue;
            rc = wfh_expr_eval(t->pieces[i].expr, env, out, err);
            if (rc < 0)
                err->offset += t->pieces[i].off;
            return rc;
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        const tmpl_piece *p = &t->pieces[i];
        if (!p->expr) {
            wfh_buf_add(&b, p->text, p->len);
            continue;
        }
        json_t *v = NULL; /* owned */
        const char *kind = NULL;
        /* eval_kind, so NaN/Infinity embed as text instead of failing. */
        rc = wfh_expr_eval_kind(p->expr, env, &v, &kind, err);
        if (rc < 0) {
            err->offset += p->off;
            goto done;
        }
        char *s = wfh_expr_to_string(v); /* owned */
        json_decref(v);
        if (!s) {
            rc = tmpl_oom(err, WFH_EXPR_ERR_EVALUATION);
            goto done;
        }
        wfh_buf_addstr(&b, s);
        free(s);
    }
    if (b.oom) {
        rc = tmpl_oom(err, WFH_EXPR_ERR_EVALUATION);
        goto done;
    }
    *out = json_stringn_nocheck(b.p ? b.p : "", b.len);
    if (!*out)
        rc = tmpl_oom(err, WFH_EXPR_ERR_EVALUATION);
done:
    free(b.p);
    return rc;
}
