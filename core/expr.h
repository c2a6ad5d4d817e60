/*
 * core/expr.h - the expression language of `${{ ... }}`.
 *
 * One place parses and evaluates expressions, with GitHub Actions semantics (loose
 * equality with number coercion, case-insensitive string comparison and property and
 * function names, && and || returning operands, `*` filters) plus wfhost's extensions
 * (ternary `c ? a : b`, split/lower/upper/trim/length/default). Values are jansson
 * json_t: null, boolean, number (integer or real), string, array, object.
 *
 * Parse once (validate time), evaluate many times (run time). Templates are strings
 * with embedded `${{ }}`: a template that is exactly one expression keeps its type,
 * otherwise the pieces are stringified and joined.
 */
#ifndef WFH_EXPR_H
#define WFH_EXPR_H

#include <jansson.h>
#include <stddef.h>

typedef enum {
    WFH_EXPR_ERR_NONE = 0,
    WFH_EXPR_ERR_LEXING = 1,
    WFH_EXPR_ERR_PARSING = 2,
    WFH_EXPR_ERR_EVALUATION = 3,
} wfh_expr_err_kind;

typedef struct wfh_expr_error {
    wfh_expr_err_kind kind;
    size_t offset;        /* byte offset into the parsed text where the problem is */
    char message[256];
} wfh_expr_error;

typedef struct wfh_expr wfh_expr;   /* a parsed expression (AST); opaque */
typedef struct wfh_tmpl wfh_tmpl;   /* a parsed template; opaque */

/* What a parse may refer to. NULL means "anything" (as in the conformance vectors). */
typedef struct wfh_expr_scope {
    const char *const *contexts;  /* NULL-terminated list of allowed context names */
} wfh_expr_scope;

/* A context reference found in an expression, e.g. steps.build.outputs.path: the
 * leading names of a chain of `.name` / `['literal']` accesses. */
typedef struct wfh_expr_ref {
    const char *parts[4];   /* borrowed from the expression; NULL past the end */
    size_t nparts;
    size_t offset;          /* where the reference starts in the source text */
} wfh_expr_ref;

/* Parse @p len bytes of @p src (the text between `${{` and `}}`, or a whole `if:`).
 * Returns 0 and *out (owned; wfh_expr_free), or a negative code and fills @p err. */
int wfh_expr_parse(const char *src, size_t len, const wfh_expr_scope *scope,
                   wfh_expr **out, wfh_expr_error *err);
void wfh_expr_free(wfh_expr *e);

/* Parse an `if:` condition, which GitHub accepts bare (`if: a == b`) or wrapped as one
 * template (`if: ${{ a == b }}`, surrounding whitespace allowed). Offsets in @p err are
 * relative to @p src either way. Same contract as wfh_expr_parse. */
int wfh_expr_parse_condition(const char *src, size_t len, const wfh_expr_scope *scope,
                             wfh_expr **out, wfh_expr_error *err);

/* Calls @p fn for every context reference in @p e (validation of step references). */
void wfh_expr_refs(const wfh_expr *e, void (*fn)(void *ud, const wfh_expr_ref *ref), void *ud);

/* True if @p e calls always(), failure(), cancelled() or success() at any depth. */
int wfh_expr_uses_status_fn(const wfh_expr *e);

/* Evaluation environment; everything borrowed for the call. */
typedef struct wfh_expr_env {
    json_t *contexts;       /* object: context name -> value */
    /* Status of the run so far, for success()/failure()/cancelled(); always() is 1. */
    int run_failed;
    int run_cancelled;
    /* wfhost strictness: reading steps.<id>.outputs.<name> that does not exist is an
     * evaluation error naming the step and output, unless read inside default(...). */
    int strict_step_outputs;
} wfh_expr_env;

/* Evaluate. Returns 0 and *out (a new reference), or a negative code and @p err. */
int wfh_expr_eval(const wfh_expr *e, const wfh_expr_env *env, json_t **out,
                  wfh_expr_error *err);

/* As wfh_expr_eval, and *kind is GitHub's name for the result's kind ("Null", "Boolean",
 * "Number", "String", "Array", "Object"; static). JSON has no NaN or Infinity: such a
 * number comes back as the string "NaN", "Infinity" or "-Infinity" with kind "Number"
 * (wfh_expr_eval refuses it with an evaluation error instead). */
int wfh_expr_eval_kind(const wfh_expr *e, const wfh_expr_env *env, json_t **out,
                       const char **kind, wfh_expr_error *err);

/* GitHub's kind name for a JSON value (static string). */
const char *wfh_expr_kind_name(const json_t *v);

/* A number as GitHub prints it (15 significant digits, "NaN", "Infinity", -0 as "0"). */
void wfh_expr_number_format(double d, char *buf, size_t size);

/* Truthiness as GitHub Actions defines it. */
int wfh_expr_truthy(const json_t *v);

/* Stringification as GitHub Actions defines it (numbers, booleans, null -> ""; arrays
 * and objects -> JSON). Returns a malloc'd string (caller frees) or NULL on ENOMEM. */
char *wfh_expr_to_string(const json_t *v);

/* Templates. Parse a string that may contain `${{ ... }}`; offsets in @p err are
 * relative to @p s. */
int wfh_tmpl_parse(const char *s, size_t len, const wfh_expr_scope *scope,
                   wfh_tmpl **out, wfh_expr_error *err);
void wfh_tmpl_free(wfh_tmpl *t);
int wfh_tmpl_is_literal(const wfh_tmpl *t);   /* no `${{` in it */
void wfh_tmpl_refs(const wfh_tmpl *t, void (*fn)(void *ud, const wfh_expr_ref *ref), void *ud);
int wfh_tmpl_eval(const wfh_tmpl *t, const wfh_expr_env *env, json_t **out,
                  wfh_expr_error *err);

/* True if @p a and @p b are the same value as GitHub Actions would show them: numbers
 * compared by their formatted text (3 and 3.0 agree), arrays and objects deeply. For
 * tests and tools that compare results (the conformance runner). */
int wfh_expr_same_value(const json_t *a, const json_t *b);

#endif
