/*
 * core/expr_parse.c - the parser: tokens to a tree, with every check that needs no data.
 *
 * Precedence, loosest first: `c ? a : b` (wfhost), `||`, `&&`, `== !=`, `< <= > >=`,
 * `!`, then `.name`, `[index]`, `.*`, `[*]`. `&&`/`||` chains become one n-ary node, as
 * in GitHub, which is what its depth limit of 50 counts. Unknown functions, wrong
 * argument counts and (when a scope is given) unknown contexts are parse errors, so a
 * workflow fails at validate time rather than halfway through a run.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "expr_internal.h"

typedef struct parser {
    const char *src;
    size_t len;
    const wfh_tok *t; /* borrowed */
    size_t n, i;
    const wfh_expr_scope *scope;
    wfh_expr_error *err;
    int depth; /* GitHub's depth counter */
    int uses_status;
    int rc;
} parser;

static const char *tok_text(const parser *p, const wfh_tok *t, int *len)
{
    *len = t->len > 60 ? 60 : (int)t->len;
    return p->src + t->off;
}

static void fail(parser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser *p, size_t off, const char *fmt, ...)
{
    if (p->rc)
        return;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int el = p->len > 100 ? 100 : (int)p->len;
    p->err->kind = WFH_EXPR_ERR_PARSING;
    p->err->offset = off;
    snprintf(p->err->message, sizeof p->err->message,
             "%s. Located at position %zu within expression: %.*s%s", msg, off + 1, el, p->src,
             p->len > 100 ? "..." : "");
    p->rc = wfh_error_set(WFH_EPARSE, "expression: %s", p->err->message);
}

static void fail_depth(parser *p, size_t off)
{
    if (p->rc)
        return;
    p->err->kind = WFH_EXPR_ERR_PARSING;
    p->err->offset = off;
    snprintf(p->err->message, sizeof p->err->message, "Exceeded max expression depth %d",
             WFH_EXPR_MAX_DEPTH);
    p->rc = wfh_error_set(WFH_EPARSE, "expression: %s", p->err->message);
}

/* One more level, as GitHub's parser counts them; 0, or -1 past the limit. */
static int depth_in(parser *p)
{
    if (++p->depth > WFH_EXPR_MAX_DEPTH) {
        fail_depth(p, p->t[p->i].off);
        return -1;
    }
    return 0;
}

static void fail_oom(parser *p)
{
    if (p->rc)
        return;
    p->err->kind = WFH_EXPR_ERR_PARSING;
    snprintf(p->err->message, sizeof p->err->message, "out of memory");
    p->rc = wfh_error_set(WFH_ENOMEM, "expression: out of memory");
}

static void unexpected(parser *p, const wfh_tok *t)
{
    int l;
    const char *s;
    if (t->kind == T_EOF) {
        const wfh_tok *last = p->i > 0 ? &p->t[t - p->t - 1] : t;
        s = tok_text(p, last, &l);
        fail(p, last->off, "Unexpected end of expression: '%.*s'", l, s);
        return;
    }
    s = tok_text(p, t, &l);
    fail(p, t->off, "Unexpected symbol: '%.*s'", l, s);
}

static const wfh_tok *peek(const parser *p)
{
    return &p->t[p->i];
}

static const wfh_tok *next(parser *p)
{
    const wfh_tok *t = &p->t[p->i];
    if (t->kind != T_EOF)
        p->i++;
    return t;
}

static void node_free(wfh_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->name);
    wfh_val_clear(&n->lit);
    free(n);
}

/* A node over @p nkids children (ownership moves in, also on failure). */
static wfh_node *mk(parser *p, wfh_node_kind kind, size_t off, wfh_node **kids, size_t nkids)
{
    wfh_node *n = calloc(1, sizeof *n);
    int h = 0;
    for (size_t i = 0; i < nkids; i++)
        if (kids[i]->height > h)
            h = kids[i]->height;
    if (n && nkids) {
        n->kids = malloc(nkids * sizeof *n->kids);
        if (!n->kids) {
            free(n);
            n = NULL;
        }
    }
    if (!n) {
        for (size_t i = 0; i < nkids; i++)
            node_free(kids[i]);
        fail_oom(p);
        return NULL;
    }
    n->kind = kind;
    n->off = off;
    n->height = h + 1;
    if (nkids)
        memcpy(n->kids, kids, nkids * sizeof *kids);
    n->nkids = nkids;
    if (n->height > WFH_EXPR_MAX_HEIGHT) {
        if (!p->rc) {
            p->err->kind = WFH_EXPR_ERR_PARSING;
            p->err->offset = off;
            snprintf(p->err->message, sizeof p->err->message,
                     "Expression nests more than %d levels deep", WFH_EXPR_MAX_HEIGHT);
            p->rc = wfh_error_set(WFH_EPARSE, "expression: %s", p->err->message);
        }
        node_free(n);
        return NULL;
    }
    return n;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static wfh_node *parse_expr(parser *p);

/* A string literal's value: the quotes removed and '' turned into '. */
static int decode_string(parser *p, const wfh_tok *t, wfh_val *out)
{
    const char *s = p->src + t->off + 1;
    size_t n = t->len - 2;
    char *buf = malloc(n + 1); /* owned */
    if (!buf)
        return WFH_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buf[o++] = s[i];
        if (s[i] == '\'')
            i++;
    }
    int rc = wfh_val_string(buf, o, out);
    free(buf);
    return rc;
}

static int scope_has(const wfh_expr_scope *scope, const char *name, size_t len)
{
    if (!scope || !scope->contexts)
        return 1;
    for (const char *const *c = scope->contexts; *c; c++)
        if (strlen(*c) == len && strncasecmp(*c, name, len) == 0)
            return 1;
    return 0;
}

static wfh_node *parse_call(parser *p, const wfh_tok *name)
{
    const wfh_expr_fn *fn = wfh_expr_fn_find(p->src + name->off, name->len);
    wfh_node **args = NULL; /* owned, with the nodes in it */
    size_t nargs = 0, cap = 0;
    wfh_node *n = NULL;
    int l;
    const char *s = tok_text(p, name, &l);
    const wfh_tok *t = next(p);
    if (t->kind != T_LPAREN) {
        unexpected(p, t);
        return NULL;
    }
    /* As GitHub: arguments separated by commas; a trailing comma is allowed. */
    while (peek(p)->kind != T_RPAREN) {
        wfh_node *a = parse_expr(p);
        if (!a)
            goto done;
        if (nargs == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            wfh_node **na = realloc(args, ncap * sizeof *na);
            if (!na) {
                node_free(a);
                fail_oom(p);
                goto done;
            }
            args = na;
            cap = ncap;
        }
        args[nargs++] = a;
        if (peek(p)->kind == T_RPAREN)
            break;
        t = next(p);
        if (t->kind != T_COMMA) {
            unexpected(p, t);
            goto done;
        }
    }
    next(p); /* ) */
    if (!fn) {
        const char *hint = wfh_expr_suggest(p->src + name->off, name->len, NULL);
        fail(p, name->off, "Unrecognized function: '%.*s'%s%s%s", l, s,
             hint ? " (did you mean " : "", hint ? hint : "", hint ? "?)" : "");
        goto done;
    }
    if (fn->id == F_SUCCESS || fn->id == F_FAILURE || fn->id == F_ALWAYS || fn->id == F_CANCELLED)
        p->uses_status = 1;
    if ((int)nargs < fn->min) {
        fail(p, name->off, "Too few parameters supplied: '%.*s'", l, s);
        goto done;
    }
    if (fn->max >= 0 && (int)nargs > fn->max) {
        fail(p, name->off, "Too many parameters supplied: '%.*s'", l, s);
        goto done;
    }
    if (fn->id == F_CASE && nargs % 2 == 0) {
        fail(p, name->off,
             "Even number of parameters supplied, requires an odd number of parameters: '%.*s'", l,
             s);
        goto done;
    }
    n = mk(p, N_CALL, name->off, args, nargs);
    nargs = 0;
    if (n) {
        n->op = fn->id;
        n->name = dup_n(p->src + name->off, name->len);
        if (!n->name) {
            node_free(n);
            n = NULL;
            fail_oom(p);
        }
    }
done:
    for (size_t i = 0; i < nargs; i++)
        node_free(args[i]);
    free(args);
    return n;
}

/* *postfix: whether `.x`/`[i]` may follow, which GitHub allows only after a context, a
 * function call or a parenthesized group (not after a literal). */
static wfh_node *parse_primary(parser *p, int *postfix)
{
    const wfh_tok *t = next(p);
    wfh_node *n = NULL;
    *postfix = 1;
    switch (t->kind) {
    case T_TRUE:
    case T_FALSE:
    case T_NULL:
    case T_NAN:
    case T_INF:
    case T_NUMBER:
    case T_STRING:
        *postfix = 0;
        n = mk(p, N_LIT, t->off, NULL, 0);
        if (!n)
            return NULL;
        if (t->kind == T_TRUE || t->kind == T_FALSE) {
            n->lit.kind = WV_BOOL;
            n->lit.b = t->kind == T_TRUE;
        } else if (t->kind == T_NULL) {
            n->lit.kind = WV_NULL;
        } else if (t->kind == T_STRING) {
            if (decode_string(p, t, &n->lit) < 0) {
                node_free(n);
                fail_oom(p);
                return NULL;
            }
        } else {
            n->lit.kind = WV_NUM;
            n->lit.n = t->kind == T_NAN ? NAN : t->kind == T_INF ? INFINITY : t->num;
        }
        return n;
    case T_NAMED: {
        if (!scope_has(p->scope, p->src + t->off, t->len)) {
            int l;
            const char *s = tok_text(p, t, &l);
            const char *hint = wfh_expr_suggest(p->src + t->off, t->len, p->scope->contexts);
            fail(p, t->off, "Unrecognized named-value: '%.*s'%s%s%s", l, s,
                 hint ? " (did you mean " : "", hint ? hint : "", hint ? "?)" : "");
            return NULL;
        }
        n = mk(p, N_CTX, t->off, NULL, 0);
        if (n && !(n->name = dup_n(p->src + t->off, t->len))) {
            node_free(n);
            fail_oom(p);
            return NULL;
        }
        return n;
    }
    case T_FUNC:
        return parse_call(p, t);
    case T_LPAREN:
        n = parse_expr(p);
        if (!n)
            return NULL;
        t = next(p);
        if (t->kind != T_RPAREN) {
            unexpected(p, t);
            node_free(n);
            return NULL;
        }
        return n;
    default:
        unexpected(p, t);
        return NULL;
    }
}

static int names_eq(const char *a, const char *b)
{
    return a && strcasecmp(a, b) == 0;
}

/* The literal name of an access step: `.name` or `['name']`, else NULL. */
static const char *access_name(const wfh_node *n)
{
    if (n->kind == N_PROP)
        return n->name;
    if (n->kind == N_INDEX && n->kids[1]->kind == N_LIT && n->kids[1]->lit.kind == WV_STR)
        return json_string_value(n->kids[1]->lit.j);
    return NULL;
}

/* Marks a node that reads steps.<id>.outputs.<name>, for strict step outputs. */
static void mark_step_output(wfh_node *n)
{
    /* The output name may be computed (outputs[inputs.which]); the step id may not. */
    const char *name = access_name(n);
    const wfh_node *outs = n->kids[0];
    if (!names_eq(access_name(outs), "outputs"))
        return;
    const wfh_node *step = outs->kids[0];
    const char *id = access_name(step);
    if (!id || step->kids[0]->kind != N_CTX || !names_eq(step->kids[0]->name, "steps"))
        return;
    n->step_id = id;
    n->output_name = name;
}

static wfh_node *parse_postfix(parser *p)
{
    int postfix;
    wfh_node *x = parse_primary(p, &postfix);
    int levels = 0;
    while (x && postfix) {
        const wfh_tok *t = peek(p);
        if (t->kind == T_DOT) {
            next(p);
            if (depth_in(p) < 0) {
                node_free(x);
                x = NULL;
                levels++;
                break;
            }
            levels++;
            const wfh_tok *m = next(p);
            if (m->kind == T_PROP) {
                x = mk(p, N_PROP, m->off, &x, 1);
                if (x && !(x->name = dup_n(p->src + m->off, m->len))) {
                    node_free(x);
                    x = NULL;
                    fail_oom(p);
                }
                if (x)
                    mark_step_output(x);
            } else if (m->kind == T_STAR) {
                x = mk(p, N_STAR, m->off, &x, 1);
            } else {
                unexpected(p, m);
                node_free(x);
                x = NULL;
            }
        } else if (t->kind == T_LBRACK) {
            next(p);
            if (peek(p)->kind == T_STAR) {
                size_t off = next(p)->off;
                const wfh_tok *c = next(p);
                if (c->kind != T_RBRACK) {
                    unexpected(p, c);
                    node_free(x);
                    x = NULL;
                    break;
                }
                if (depth_in(p) < 0) {
                    node_free(x);
                    x = NULL;
                    levels++;
                    break;
                }
                levels++;
                x = mk(p, N_STAR, off, &x, 1);
                continue;
            }
            wfh_node *idx = parse_expr(p);
            if (!idx) {
                node_free(x);
                x = NULL;
                break;
            }
            const wfh_tok *c = next(p);
            if (c->kind != T_RBRACK) {
                unexpected(p, c);
                node_free(x);
                node_free(idx);
                x = NULL;
                break;
            }
            if (depth_in(p) < 0) {
                node_free(x);
                node_free(idx);
                x = NULL;
                levels++;
                break;
            }
            levels++;
            wfh_node *kids[2] = {x, idx};
            x = mk(p, N_INDEX, t->off, kids, 2);
            if (x)
                mark_step_output(x);
        } else {
            break;
        }
    }
    p->depth -= levels;
    return x;
}

static wfh_node *parse_unary(parser *p)
{
    if (peek(p)->kind != T_NOT)
        return parse_postfix(p);
    const wfh_tok *t = next(p);
    if (depth_in(p) < 0)
        return NULL;
    wfh_node *x = parse_unary(p);
    p->depth--;
    if (!x)
        return NULL;
    return mk(p, N_NOT, t->off, &x, 1);
}

static wfh_node *parse_binary(parser *p, int level);

/* level 0: ==/!=, level 1: < <= > >= */
static wfh_node *parse_binary(parser *p, int level)
{
    wfh_node *l = level == 0 ? parse_binary(p, 1) : parse_unary(p);
    while (l) {
        wfh_tok_kind k = peek(p)->kind;
        int match = level == 0 ? (k == T_EQ || k == T_NE)
                               : (k == T_LT || k == T_LE || k == T_GT || k == T_GE);
        if (!match)
            break;
        next(p);
        wfh_node *r = level == 0 ? parse_binary(p, 1) : parse_unary(p);
        if (!r) {
            node_free(l);
            return NULL;
        }
        wfh_node *kids[2] = {l, r};
        size_t off = l->off;
        l = mk(p, N_CMP, off, kids, 2);
        if (l)
            l->op = (int)k;
    }
    return l;
}

/* `a && b && c` (and_level 1) or `a || b || c` (0) as one n-ary node. */
static wfh_node *parse_chain(parser *p, int and_level)
{
    wfh_tok_kind op = and_level ? T_AND : T_OR;
    wfh_node *first = and_level ? parse_binary(p, 0) : parse_chain(p, 1);
    if (!first || peek(p)->kind != op)
        return first;
    if (depth_in(p) < 0) {
        p->depth--;
        node_free(first);
        return NULL;
    }
    wfh_node **kids = NULL; /* owned, with the nodes */
    size_t nk = 0, cap = 0;
    wfh_node *x = first, *res = NULL;
    for (;;) {
        if (nk == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            wfh_node **nkd = realloc(kids, ncap * sizeof *nkd);
            if (!nkd) {
                node_free(x);
                fail_oom(p);
                goto done;
            }
            kids = nkd;
            cap = ncap;
        }
        kids[nk++] = x;
        if (peek(p)->kind != op)
            break;
        next(p);
        x = and_level ? parse_binary(p, 0) : parse_chain(p, 1);
        if (!x)
            goto done;
    }
    res = mk(p, and_level ? N_AND : N_OR, first->off, kids, nk);
    nk = 0;
done:
    p->depth--;
    for (size_t i = 0; i < nk; i++)
        node_free(kids[i]);
    free(kids);
    return res;
}

static wfh_node *parse_expr(parser *p)
{
    if (depth_in(p) < 0) {
        p->depth--;
        return NULL;
    }
    wfh_node *c = parse_chain(p, 0);
    if (c && peek(p)->kind == T_QUESTION) {
        next(p);
        wfh_node *a = parse_expr(p);
        wfh_node *b = NULL;
        if (a) {
            const wfh_tok *t = next(p);
            if (t->kind != T_COLON)
                unexpected(p, t);
            else
                b = parse_expr(p);
        }
        if (!a || !b) {
            node_free(c);
            node_free(a);
            c = NULL;
        } else {
            wfh_node *kids[3] = {c, a, b};
            c = mk(p, N_TERN, c->off, kids, 3);
        }
    }
    p->depth--;
    return c;
}

int wfh_expr_parse(const char *src, size_t len, const wfh_expr_scope *scope, wfh_expr **out,
                   wfh_expr_error *err)
{
    wfh_tok *toks = NULL; /* owned */
    size_t ntoks = 0;
    wfh_expr *e = NULL;   /* owned until returned */
    wfh_expr_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    *out = NULL;
    int rc = wfh_expr_lex(src, len, &toks, &ntoks, err);
    if (rc < 0)
        goto done;
    parser p = {.src = src, .len = len, .t = toks, .n = ntoks, .scope = scope, .err = err};
    wfh_node *root;
    if (toks[0].kind == T_EOF) {
        root = mk(&p, N_LIT, 0, NULL, 0); /* "" evaluates to null, as in GitHub */
    } else {
        root = parse_expr(&p);
        if (root && peek(&p)->kind != T_EOF) {
            unexpected(&p, peek(&p));
            node_free(root);
            root = NULL;
        }
    }
    if (!root) {
        rc = p.rc ? p.rc : wfh_error_set(WFH_EPARSE, "expression: parse failed");
        goto done;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        node_free(root);
        fail_oom(&p);
        rc = p.rc;
        goto done;
    }
    e->root = root;
    e->uses_status = p.uses_status;
    *out = e;
done:
    free(toks);
    return rc;
}

void wfh_expr_free(wfh_expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    free(e);
}

int wfh_expr_uses_status_fn(const wfh_expr *e)
{
    return e ? e->uses_status : 0;
}

static void report_chain(const wfh_node *top, void (*fn)(void *, const wfh_expr_ref *), void *ud)
{
    const wfh_node *path[WFH_EXPR_MAX_HEIGHT + 2];
    size_t np = 0;
    const wfh_node *n = top;
    while (np < sizeof path / sizeof path[0]) {
        path[np++] = n;
        if (n->kind == N_CTX)
            break;
        if (n->kind != N_PROP && n->kind != N_INDEX && n->kind != N_STAR)
            return;
        n = n->kids[0];
    }
    if (path[np - 1]->kind != N_CTX)
        return;
    wfh_expr_ref ref;
    memset(&ref, 0, sizeof ref);
    ref.offset = path[np - 1]->off;
    ref.parts[ref.nparts++] = path[np - 1]->name;
    for (size_t i = np - 1; i-- > 0 && ref.nparts < 4;) {
        const char *name = access_name(path[i]);
        if (!name)
            break;
        ref.parts[ref.nparts++] = name;
    }
    fn(ud, &ref);
}

static void walk_refs(const wfh_node *n, int top, void (*fn)(void *, const wfh_expr_ref *),
                      void *ud)
{
    switch (n->kind) {
    case N_CTX:
        if (top)
            report_chain(n, fn, ud);
        return;
    case N_PROP:
    case N_STAR:
    case N_INDEX:
        if (top)
            report_chain(n, fn, ud);
        walk_refs(n->kids[0], 0, fn, ud);
        if (n->kind == N_INDEX)
            walk_refs(n->kids[1], 1, fn, ud);
        return;
    default:
        for (size_t i = 0; i < n->nkids; i++)
            walk_refs(n->kids[i], 1, fn, ud);
    }
}

void wfh_expr_refs(const wfh_expr *e, void (*fn)(void *ud, const wfh_expr_ref *ref), void *ud)
{
    if (e && fn)
        walk_refs(e->root, 1, fn, ud);
}
