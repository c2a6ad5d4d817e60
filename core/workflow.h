/*
 * core/workflow.h - the workflow model: what a workflow file says, with positions.
 *
 * Data flows one way: YAML text -> wfh_ynode tree (ydoc.h) -> wfh_workflow (this file,
 * wfh_workflow_load: shape, keys, ids) -> validated plan (wfh_workflow_validate: step
 * types resolved through the catalog, `with` checked against input schemas, needs
 * resolved, cycles refused, every expression parsed and its step references checked
 * against the step's ancestors). The scheduler reads only validated workflows.
 */
#ifndef WFH_WORKFLOW_H
#define WFH_WORKFLOW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "diag.h"
#include "expr.h"
#include "ydoc.h"

/* A YAML value with `${{ }}` templates compiled: evaluating it yields JSON. */
typedef enum { WFH_V_LITERAL, WFH_V_TMPL, WFH_V_ARRAY, WFH_V_OBJECT } wfh_value_kind;

typedef struct wfh_value {
    wfh_value_kind kind;
    unsigned line, col;
    json_t *literal;            /* LITERAL: owned reference */
    wfh_tmpl *tmpl;             /* TMPL: owned */
    size_t n;                   /* ARRAY/OBJECT: number of items */
    struct wfh_value **items;   /* owned */
    char **keys;                /* OBJECT: owned keys */
    /* TMPL: what is needed to turn an offset in the template back into a file position
     * (validation of step references). */
    char *text;                 /* TMPL: owned copy of the scalar's value */
    size_t text_len;
    wfh_ystyle style;
    unsigned indent;            /* block scalars: the content's indentation */
} wfh_value;

/* The contexts a workflow's `with`/`env` expressions may name. NULL-terminated. */
extern const char *const wfh_workflow_contexts[];

/* Compile YAML node @p n into a value: scalars holding `${{` become templates parsed
 * with @p scope, others JSON literals (core schema typing of plain scalars). When
 * @p as_strings is set, scalars stay strings (env values). Every problem is added to
 * @p diags (whose source is used for positions inside block scalars); returns 0 and
 * *out (owned), or a negative code (WFH_EPARSE if a template was bad). */
int wfh_value_compile(const wfh_ynode *n, const wfh_expr_scope *scope, int as_strings,
                      wfh_diags *diags, wfh_value **out);

/* File position of byte @p offset inside template value @p v. */
void wfh_value_pos(const wfh_value *v, size_t offset, unsigned *line, unsigned *col);

/* Calls @p fn for every template node in @p v (depth first, file order). */
void wfh_value_walk_tmpls(const wfh_value *v, void (*fn)(void *ud, const wfh_value *t),
                          void *ud);

/* Evaluate @p v (NULL evaluates to an empty object). Returns 0 and *out (new
 * reference), or a negative code with a message (naming the position) in @p err. */
int wfh_value_eval(const wfh_value *v, const wfh_expr_env *env, json_t **out,
                   char *err, size_t errlen);
void wfh_value_free(wfh_value *v);

/* A retry policy (issue #3, core/lang.c). */
typedef struct wfh_retry {
    unsigned max_attempts;       /* attempts in all, >= 1; 0: not set here (defaults apply) */
    int exponential;             /* backoff: 0 fixed, 1 exponential (initial * 2^(n-1)) */
    uint64_t initial_ms;         /* first wait */
    uint64_t max_ms;             /* cap on one wait; 0: none */
    int jitter_full;             /* jitter: full picks uniformly in [0, wait] */
    unsigned on_mask;            /* bit (1u << wfh_step_status) for each class retried */
} wfh_retry;

/* Workflow input types. */
typedef enum {
    WFH_IN_STRING, WFH_IN_NUMBER, WFH_IN_BOOLEAN, WFH_IN_LIST, WFH_IN_OBJECT
} wfh_input_type;

typedef struct wfh_input_decl {
    char *name;                  /* owned */
    wfh_input_type type;
    json_t *def;                 /* owned reference, NULL: no default */
    int required;
    char *description;           /* owned, may be NULL */
    unsigned line, col;
    char *env;                   /* owned: host variable that supplies the value when it is
                                    not given (`env:`), or NULL; read nowhere else */
    unsigned env_line, env_col;
} wfh_input_decl;

typedef struct wfh_step {
    char *id;                    /* owned */
    unsigned line, col;          /* position of the step's mapping */
    char *type;                  /* owned: `uses:` without @MAJOR */
    int major;                   /* @MAJOR, or -1 */
    unsigned uses_line, uses_col;
    char **need_ids;             /* owned, as written */
    unsigned *need_lines, *need_cols;
    size_t n_needs;
    size_t *needs;               /* resolved indexes into wfh_workflow.steps (validate) */
    wfh_value *with;             /* owned, may be NULL */
    wfh_value *env;              /* owned, may be NULL */
    const wfh_type_meta *meta;   /* borrowed from the catalog (validate) */
    unsigned with_line, with_col; /* position of `with:` (or of the step if absent) */
    /* issue #3 (core/lang.c) */
    wfh_expr *cond;              /* owned, may be NULL: `if:` */
    unsigned if_line, if_col;
    char *cond_text;             /* owned, may be NULL: the `if:` as written */
    int cond_status_fn;          /* `if` calls always()/failure()/...: runs whatever its
                                    needs ended as, and decides itself */
    int continue_on_error;       /* a failure does not fail the run or skip dependents */
    uint64_t timeout_ms;         /* per attempt; 0: none set here (defaults apply) */
    wfh_retry retry;             /* max_attempts 0: none set here (defaults apply) */
    wfh_expr *for_each;          /* owned, may be NULL: `for_each:` (yields a list) */
    char *for_each_text;         /* owned, may be NULL */
    unsigned fe_line, fe_col;
    json_t *matrix;              /* owned, may be NULL: `matrix:` expanded into its list
                                    of combinations (objects), include/exclude applied */
    unsigned max_parallel;       /* items at once; 0: no bound but --concurrency */
    int handler;                 /* 0: under steps; 1: under on_failure; 2: under finally
                                    (handlers follow the steps in the array and need every
                                    step before them) */
} wfh_step;

typedef struct wfh_workflow {
    char *path;                  /* owned: the file as named by the user */
    char *source;                /* owned: the file's text */
    size_t source_len;
    char *name;                  /* owned */
    char *description;           /* owned, may be NULL */
    wfh_value *env;              /* owned, may be NULL */
    wfh_step *steps;             /* owned array */
    size_t n_steps;
    size_t *order;               /* owned: a topological order of step indexes (validate) */
    struct wfh_id_index *ids;    /* owned: step id -> index (private to workflow.c) */
    /* issue #3 (core/lang.c) */
    uint64_t default_timeout_ms; /* `defaults: {timeout}`; 0: none */
    wfh_retry default_retry;     /* `defaults: {retry}`; max_attempts 0: none */
    wfh_input_decl *inputs;      /* owned [n_inputs] */
    size_t n_inputs;
    wfh_value *outputs;          /* owned, may be NULL: `outputs:` (an OBJECT value) */
    char **secrets;              /* owned [n_secrets]: declared secret names */
    size_t n_secrets;
    unsigned secrets_line, secrets_col;
    char **limit_types;          /* owned [n_limits]: `limits:` step type names */
    unsigned *limit_values;      /* owned [n_limits]: attempts of that type at once */
    size_t n_limits;
    unsigned cb_failures;        /* `circuit_breaker: {failures}`; 0: no breakers */
    uint64_t cb_cooldown_ms;     /* `circuit_breaker: {cooldown}` */
} wfh_workflow;

/* Read and parse @p path. Every problem goes to @p diags (which must have been
 * initialised by the caller; this points its file and source into *out, so print the
 * diagnostics before freeing the workflow). Returns 0 and *out, or a negative code
 * (*out may still be set for partial validation: free it). */
int wfh_workflow_load(const char *path, wfh_workflow **out, wfh_diags *diags);

/* Resolve and check everything against @p cat (NULL: step types and input schemas are
 * not checked, e.g. for `wfhost graph`). Fills steps[].needs, steps[].meta and, if the
 * graph has no cycle, wf->order (topological, ties broken by file order). Returns 0 if
 * @p diags gained no error, else WFH_EINVAL (or WFH_ENOMEM). */
int wfh_workflow_validate(wfh_workflow *wf, const wfh_catalog *cat, wfh_diags *diags);

void wfh_workflow_free(wfh_workflow *wf);

/* Parse an in-memory workflow (tests, fuzzing). @p path names it in messages. Same
 * contract as wfh_workflow_load. */
int wfh_workflow_parse(const char *path, const char *buf, size_t len, wfh_workflow **out,
                       wfh_diags *diags);

/* The candidate closest to @p word by edit distance, if close enough to be a likely
 * typo ("need" -> "needs"), else NULL. Borrowed from @p cands. */
const char *wfh_workflow_suggest(const char *word, const char *const *cands, size_t n);

/* ---- issue #3 keys (core/lang.c) ---- */

/* Load step key @p key (value @p v) into @p st if it is one of the language's keys (if,
 * timeout, retry, continue_on_error). Returns 1 if @p key is not one of them, else 0,
 * WFH_EINVAL (reported in @p d) or WFH_ENOMEM. */
int wfh_lang_step_key(wfh_diags *d, const char *key, const wfh_ynode *v, wfh_step *st);
/* The same for top-level keys (defaults, inputs, outputs, secrets). */
int wfh_lang_top_key(wfh_diags *d, const char *key, const wfh_ynode *v, wfh_workflow *wf);
void wfh_lang_step_clear(wfh_step *st);
void wfh_lang_workflow_clear(wfh_workflow *wf);
/* Checks that need the graph (validate): `if:` step references name ancestors, secrets
 * appear only in `with` and `env`, outputs name known steps. Adds to @p d; returns 0 or
 * WFH_ENOMEM. */
int wfh_lang_validate(wfh_workflow *wf, wfh_diags *d);

/* Index of step @p id, or -1. O(1). */
long wfh_workflow_step_index(const wfh_workflow *wf, const char *id);

/* ---- built-in step types (issue #8, core/validate.c) ---- */

/* `uses: pass`: built into the core, no plugin, no runner, no sandbox. Its `with`
 * values, evaluated like any step's, become its outputs as they are. The name is
 * reserved: a registry plugin may not declare it (installs are refused), and if one was
 * installed before, the built-in is used and validate warns. */
#define WFH_BUILTIN_PASS "pass"

/* The built-in step type named @p type, or NULL. Static: never freed; its plugin is
 * NULL, its input schema NULL (any `with` mapping). */
const wfh_type_meta *wfh_builtin_type(const char *type);

/* Is @p st a `pass` step (runs in the host, see WFH_BUILTIN_PASS)? */
int wfh_step_is_pass(const wfh_step *st);

#endif
