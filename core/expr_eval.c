/*
 * core/expr_eval.c - evaluating a parsed expression against the contexts.
 *
 * Property and index access follow GitHub: names are case-insensitive, a missing member
 * or an out-of-range index is null (never an error), and after a `*` filter every later
 * access maps over the items and drops the misses. The one wfhost strictness is opt-in
 * (env->strict_step_outputs): reading a step output that does not exist fails loudly,
 * naming the step and the output, unless it happens inside default(...).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "expr_internal.h"

int wfh_expr_eval_fail(wfh_eval_ctx *cx, size_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cx->err->message, sizeof cx->err->message, fmt, ap);
    va_end(ap);
    cx->err->kind = WFH_EXPR_ERR_EVALUATION;
    cx->err->offset = off;
    return wfh_error_set(WFH_EEVAL, "expression: %s", cx->err->message);
}

int wfh_expr_charge(wfh_eval_ctx *cx, size_t off, size_t nchars)
{
    /* GitHub counts string memory as UTF-16 plus a fixed overhead per string. */
    cx->mem += 2 * nchars + 32;
    if (cx->mem > WFH_EXPR_MAX_MEMORY)
        return wfh_expr_eval_fail(cx, off, "The maximum allowed memory size was exceeded");
    return 0;
}

static int oom(wfh_eval_ctx *cx, size_t off)
{
    wfh_expr_eval_fail(cx, off, "out of memory");
    return wfh_error_set(WFH_ENOMEM, "expression: out of memory");
}

/* One member of @p c by the index value @p idx (GitHub's rules); borrowed or NULL. */
static json_t *index_one(wfh_eval_ctx *cx, json_t *c, const wfh_val *idx, int *rc)
{
    *rc = 0;
    if (json_is_array(c)) {
        if (!wfh_val_primitive(idx))
            return NULL;
        double d = wfh_val_to_number(idx);
        if (isnan(d) || d < 0 || d >= (double)json_array_size(c))
            return NULL;
        return json_array_get(c, (size_t)d); /* d >= 0: truncation is floor */
    }
    if (json_is_object(c)) {
        if (!wfh_val_primitive(idx))
            return NULL;
        if (idx->kind == WV_STR)
            return wfh_expr_obj_get(c, json_string_value(idx->j), json_string_length(idx->j));
        size_t len;
        char *key = wfh_val_to_string(idx, &len); /* owned */
        if (!key) {
            *rc = oom(cx, 0);
            return NULL;
        }
        json_t *v = wfh_expr_obj_get(c, key, len);
        free(key);
        return v;
    }
    return NULL;
}

static int append_all(json_t *dst, json_t *src)
{
    if (json_is_array(src)) {
        for (size_t i = 0; i < json_array_size(src); i++)
            if (json_array_append(dst, json_array_get(src, i)) < 0)
                return -1;
    } else if (json_is_object(src)) {
        const char *k;
        json_t *v;
        json_object_foreach(src, k, v) {
            if (json_array_append(dst, v) < 0)
                return -1;
        }
    }
    return 0;
}

static int strict_missing(wfh_eval_ctx *cx, const wfh_node *n, const wfh_val *idx)
{
    if (n->output_name)
        return wfh_expr_eval_fail(cx, n->off, "step '%s' has no output '%s'", n->step_id,
                                  n->output_name);
    size_t len;
    char *name = idx ? wfh_val_to_string(idx, &len) : NULL; /* owned */
    int rc = wfh_expr_eval_fail(cx, n->off, "step '%s' has no output '%s'", n->step_id,
                                name ? name : "?");
    free(name);
    return rc;
}

/* base.name / base[idx] / base.* on an evaluated base. */
static int access(wfh_eval_ctx *cx, const wfh_node *n, const wfh_val *base, const wfh_val *idx,
                  wfh_val *out)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (base->filtered) {
        json_t *res = json_array(); /* owned until moved to out */
        if (!res)
            return oom(cx, n->off);
        for (size_t i = 0; i < json_array_size(base->j); i++) {
            json_t *item = json_array_get(base->j, i);
            json_t *v = NULL;
            if (n->kind == N_STAR) {
                if (append_all(res, item) < 0)
                    goto nomem;
                continue;
            }
            if (n->kind == N_PROP)
                v = wfh_expr_obj_get(item, n->name, strlen(n->name));
            else if ((v = index_one(cx, item, idx, &rc)) == NULL && rc < 0)
                goto fail;
            if (v && json_array_append(res, v) < 0)
                goto nomem;
        }
        out->kind = WV_ARR;
        out->filtered = 1;
        out->j = res;
        return 0;
    nomem:
        rc = oom(cx, n->off);
    fail:
        json_decref(res);
        return rc;
    }
    if (n->kind == N_STAR) {
        json_t *res = json_array();
        if (!res || append_all(res, base->j) < 0) {
            json_decref(res);
            return oom(cx, n->off);
        }
        out->kind = WV_ARR;
        out->filtered = 1;
        out->j = res;
        return 0;
    }
    json_t *v = NULL;
    if (base->kind == WV_OBJ || base->kind == WV_ARR) {
        if (n->kind == N_PROP)
            v = wfh_expr_obj_get(base->j, n->name, strlen(n->name));
        else if ((v = index_one(cx, base->j, idx, &rc)) == NULL && rc < 0)
            return rc;
    }
    if (!v) {
        if (n->step_id && cx->env && cx->env->strict_step_outputs && cx->in_default == 0)
            return strict_missing(cx, n, idx);
        out->kind = WV_NULL;
        return 0;
    }
    wfh_val_from_json(v, out);
    return 0;
}

static int eval_cmp(const wfh_node *n, const wfh_val *a, const wfh_val *b)
{
    switch ((wfh_tok_kind)n->op) {
    case T_EQ: return wfh_val_equal(a, b);
    case T_NE: return !wfh_val_equal(a, b);
    default: break;
    }
    /* As GitHub: a <= b is (a == b || a < b), so the same array is <= itself. */
    int c = wfh_val_compare(a, b);
    switch ((wfh_tok_kind)n->op) {
    case T_LT: return c == -1;
    case T_LE: return c == -1 || wfh_val_equal(a, b);
    case T_GT: return c == 1;
    default: return c == 1 || wfh_val_equal(a, b);
    }
}

int wfh_expr_eval_node(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *out)
{
    wfh_val a = {0}, b = {0};
    int rc = 0;
    memset(out, 0, sizeof *out);
    switch (n->kind) {
    case N_LIT:
        wfh_val_copy(&n->lit, out);
        return 0;
    case N_CTX: {
        json_t *v = NULL;
        if (cx->env && cx->env->contexts)
            v = wfh_expr_obj_get(cx->env->contexts, n->name, strlen(n->name));
        if (v)
            wfh_val_from_json(v, out);
        else
            out->kind = WV_NULL;
        return 0;
    }
    case N_PROP:
    case N_STAR:
        if ((rc = wfh_expr_eval_node(cx, n->kids[0], &a)) < 0)
            goto done;
        rc = access(cx, n, &a, NULL, out);
        goto done;
    case N_INDEX:
        /* The index first, as GitHub does, so the same error wins when both fail. */
        if ((rc = wfh_expr_eval_node(cx, n->kids[1], &b)) < 0)
            goto done;
        if ((rc = wfh_expr_eval_node(cx, n->kids[0], &a)) < 0)
            goto done;
        rc = access(cx, n, &a, &b, out);
        goto done;
    case N_NOT:
        if ((rc = wfh_expr_eval_node(cx, n->kids[0], &a)) < 0)
            goto done;
        out->kind = WV_BOOL;
        out->b = !wfh_val_truthy(&a);
        goto done;
    case N_AND:
    case N_OR:
        /* Short-circuit, returning the deciding operand itself (not a boolean). */
        for (size_t i = 0; i < n->nkids; i++) {
            wfh_val_clear(out);
            if ((rc = wfh_expr_eval_node(cx, n->kids[i], out)) < 0)
                goto done;
            int t = wfh_val_truthy(out);
            if ((n->kind == N_AND && !t) || (n->kind == N_OR && t))
                break;
        }
        goto done;
    case N_CMP:
        if ((rc = wfh_expr_eval_node(cx, n->kids[0], &a)) < 0)
            goto done;
        if ((rc = wfh_expr_eval_node(cx, n->kids[1], &b)) < 0)
            goto done;
        out->kind = WV_BOOL;
        out->b = eval_cmp(n, &a, &b);
        goto done;
    case N_TERN:
        if ((rc = wfh_expr_eval_node(cx, n->kids[0], &a)) < 0)
            goto done;
        rc = wfh_expr_eval_node(cx, n->kids[wfh_val_truthy(&a) ? 1 : 2], out);
        goto done;
    case N_CALL:
        rc = wfh_expr_call(cx, n, out);
        goto done;
    }
done:
    if (rc < 0)
        wfh_val_clear(out);
    wfh_val_clear(&a);
    wfh_val_clear(&b);
    return rc;
}

int wfh_expr_eval_kind(const wfh_expr *e, const wfh_expr_env *env, json_t **out,
                       const char **kind, wfh_expr_error *err)
{
    wfh_expr_error scratch;
    wfh_val v = {0};
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    *out = NULL;
    wfh_eval_ctx cx = {.env = env, .err = err};
    int rc = wfh_expr_eval_node(&cx, e->root, &v);
    if (rc < 0)
        return rc;
    int nonfinite = 0;
    json_t *j = wfh_val_to_json(&v, &nonfinite);
    if (nonfinite) {
        char buf[32];
        wfh_expr_number_format(v.n, buf, sizeof buf);
        j = json_string(buf);
        if (kind)
            *kind = "Number";
    } else if (kind && j) {
        *kind = wfh_expr_kind_name(j);
    }
    wfh_val_clear(&v);
    if (!j)
        return oom(&cx, 0);
    *out = j;
    return 0;
}

int wfh_expr_eval(const wfh_expr *e, const wfh_expr_env *env, json_t **out, wfh_expr_error *err)
{
    wfh_expr_error scratch;
    wfh_val v = {0};
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    *out = NULL;
    wfh_eval_ctx cx = {.env = env, .err = err};
    int rc = wfh_expr_eval_node(&cx, e->root, &v);
    if (rc < 0)
        return rc;
    int nonfinite = 0;
    json_t *j = wfh_val_to_json(&v, &nonfinite);
    if (nonfinite) {
        char buf[32];
        wfh_expr_number_format(v.n, buf, sizeof buf);
        wfh_val_clear(&v);
        return wfh_expr_eval_fail(&cx, 0,
                                  "the result is %s, a number JSON cannot hold; use format() for "
                                  "text",
                                  buf);
    }
    wfh_val_clear(&v);
    if (!j)
        return oom(&cx, 0);
    *out = j;
    return 0;
}
