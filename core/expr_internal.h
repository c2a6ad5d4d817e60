/*
 * core/expr_internal.h - what the expression files (expr_*.c, tmpl.c) share and nobody
 * else sees: the token and AST shapes, the evaluation-time value, coercions, and the
 * function table. The public surface stays core/expr.h.
 */
#ifndef WFH_EXPR_INTERNAL_H
#define WFH_EXPR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "expr.h"

/* GitHub's limits: nesting depth as its parser counts it (each sub-expression, group,
 * `!`, `&&`/`||` chain and property access is a level) and the memory an evaluation may
 * allocate for strings (counted as UTF-16, as GitHub does). */
#define WFH_EXPR_MAX_DEPTH 50
#define WFH_EXPR_MAX_MEMORY (1024u * 1024u)
/* wfhost's own bound on the tree height: `a == b == c == ...` chains nest without
 * counting in GitHub's depth, and evaluation recurses over the tree. */
#define WFH_EXPR_MAX_HEIGHT 1000

typedef enum { WV_NULL, WV_BOOL, WV_NUM, WV_STR, WV_ARR, WV_OBJ } wfh_vkind;

/* A value during evaluation. JSON cannot hold NaN or Infinity, so numbers live in `n`. */
typedef struct wfh_val {
    wfh_vkind kind;
    int filtered; /* produced by a `*` filter: later accesses map over the items */
    int b;        /* WV_BOOL */
    double n;     /* WV_NUM */
    json_t *j;    /* owned reference: the string/array/object; for a number read from the
                     contexts the original (so big integers pass through unchanged) */
} wfh_val;

typedef enum {
    T_EOF, T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN, T_COMMA, T_DOT, T_STAR,
    T_NOT, T_NE, T_EQ, T_LT, T_LE, T_GT, T_GE, T_AND, T_OR, T_QUESTION, T_COLON,
    T_STRING, T_NUMBER, T_TRUE, T_FALSE, T_NULL, T_NAN, T_INF, T_PROP, T_FUNC, T_NAMED
} wfh_tok_kind;

typedef struct wfh_tok {
    wfh_tok_kind kind;
    size_t off, len; /* the token's bytes in the source */
    double num;      /* T_NUMBER */
} wfh_tok;

/* Tokenizes all of @p src. Returns 0 and *toks (owned, free()) or WFH_EPARSE/WFH_ENOMEM. */
int wfh_expr_lex(const char *src, size_t len, wfh_tok **toks, size_t *ntoks, wfh_expr_error *err);

typedef enum {
    N_LIT, N_CTX, N_PROP, N_INDEX, N_STAR, N_NOT, N_AND, N_OR, N_CMP, N_CALL, N_TERN
} wfh_node_kind;

typedef struct wfh_node {
    wfh_node_kind kind;
    int op;                 /* N_CMP: the operator token; N_CALL: the function id */
    size_t off;             /* where the node starts in the source */
    int height;             /* tree depth below and including this node */
    wfh_val lit;            /* N_LIT (owned) */
    char *name;             /* owned: N_CTX / N_PROP name, N_CALL name as written */
    struct wfh_node **kids; /* owned */
    size_t nkids;
    /* Set on the node reading steps.<id>.outputs.<name>: borrowed from nodes below. */
    const char *step_id, *output_name;
} wfh_node;

struct wfh_expr {
    wfh_node *root;   /* owned */
    int uses_status;
};

enum {
    F_CONTAINS, F_STARTSWITH, F_ENDSWITH, F_FORMAT, F_JOIN, F_TOJSON, F_FROMJSON,
    F_HASHFILES, F_CASE, F_SUCCESS, F_FAILURE, F_ALWAYS, F_CANCELLED,
    F_SPLIT, F_LOWER, F_UPPER, F_TRIM, F_LENGTH, F_DEFAULT
};

typedef struct wfh_expr_fn {
    const char *name;
    int id;
    int min, max; /* argument counts; max < 0: unbounded */
} wfh_expr_fn;

/* The function called @p name (case-insensitive), or NULL. */
const wfh_expr_fn *wfh_expr_fn_find(const char *name, size_t len);
/* The closest of @p candidates (NULL-terminated; NULL: the function names) to a
 * misspelled @p name, or NULL when none is close. */
const char *wfh_expr_suggest(const char *name, size_t len, const char *const *candidates);

typedef struct wfh_eval_ctx {
    const wfh_expr_env *env;
    wfh_expr_error *err;
    size_t mem;     /* bytes of strings made so far, counted as GitHub does */
    int in_default; /* > 0 inside default(...): missing step outputs are not errors */
} wfh_eval_ctx;

int wfh_expr_eval_node(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *out);
int wfh_expr_call(wfh_eval_ctx *cx, const wfh_node *n, wfh_val *out);
int wfh_expr_eval_fail(wfh_eval_ctx *cx, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Charges @p nchars characters of new string to the evaluation; an error past the limit. */
int wfh_expr_charge(wfh_eval_ctx *cx, size_t off, size_t nchars);

/* Values. */
void wfh_val_clear(wfh_val *v);
void wfh_val_from_json(json_t *j, wfh_val *out);          /* borrows j, takes a reference */
int wfh_val_string(const char *s, size_t len, wfh_val *out); /* copies s */
void wfh_val_copy(const wfh_val *in, wfh_val *out);
int wfh_val_truthy(const wfh_val *v);
int wfh_val_primitive(const wfh_val *v);
double wfh_val_to_number(const wfh_val *v);
/* GitHub's string coercion ("Array"/"Object" for containers). malloc'd, NUL-terminated. */
char *wfh_val_to_string(const wfh_val *v, size_t *len);
int wfh_val_equal(const wfh_val *a, const wfh_val *b);
/* -1, 0, 1, or 2 when the two cannot be ordered. */
int wfh_val_compare(const wfh_val *a, const wfh_val *b);
/* A new JSON value for @p v; NaN/Infinity give NULL with *nonfinite set. */
json_t *wfh_val_to_json(const wfh_val *v, int *nonfinite);

/* Strings. */
double wfh_expr_str_to_number(const char *s, size_t len); /* JavaScript Number(s) */
int wfh_expr_utf8_valid(const char *s, size_t len, size_t *bad);
uint32_t wfh_expr_utf8_next(const char *s, size_t len, size_t *i);
/* The upper- (JavaScript toUpperCase, but dotless i kept) or lower-case form of @p cp:
 * up to 3 code points in @p out; returns how many. */
size_t wfh_expr_cp_case(uint32_t cp, int upper, uint32_t out[3]);
/* Case-maps a whole string; malloc'd, NUL-terminated. */
char *wfh_expr_case_map(const char *s, size_t len, int upper, size_t *outlen);
/* Ordinal ignore-case comparison: <0, 0, >0. */
int wfh_expr_str_icmp(const char *a, size_t alen, const char *b, size_t blen);
/* Object member by case-insensitive name; borrowed or NULL. */
json_t *wfh_expr_obj_get(const json_t *obj, const char *name, size_t len);

/* A number as JSON.stringify writes it (shortest form; NaN and Infinity as null). */
void wfh_expr_json_number(double d, char *buf, size_t size);

/* A growable byte buffer. */
typedef struct wfh_buf {
    char *p; /* owned */
    size_t len, cap;
    int oom;
} wfh_buf;
void wfh_buf_add(wfh_buf *b, const char *s, size_t n);
void wfh_buf_addc(wfh_buf *b, char c);
void wfh_buf_addstr(wfh_buf *b, const char *s);
/* JSON text of @p j: pretty (GitHub's toJSON: 2-space indent) or compact. */
void wfh_expr_json_write(wfh_buf *b, const json_t *j, int pretty, int indent);

#endif
