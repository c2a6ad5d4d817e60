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

#include "catalog.h"
#include "diag.h"
#include "expr.h"

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
} wfh_value;

/* Evaluate @p v (NULL evaluates to an empty object). Returns 0 and *out (new
 * reference), or a negative code with a message (naming the position) in @p err. */
int wfh_value_eval(const wfh_value *v, const wfh_expr_env *env, json_t **out,
                   char *err, size_t errlen);
void wfh_value_free(wfh_value *v);

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
} wfh_workflow;

/* Read and parse @p path. Every problem goes to @p diags (which must have been
 * initialised by the caller; this sets its file and source). Returns 0 and *out, or a
 * negative code (*out may still be set for partial validation: free it). */
int wfh_workflow_load(const char *path, wfh_workflow **out, wfh_diags *diags);

/* Resolve and check everything against @p cat. Returns 0 if @p diags gained no error. */
int wfh_workflow_validate(wfh_workflow *wf, const wfh_catalog *cat, wfh_diags *diags);

void wfh_workflow_free(wfh_workflow *wf);

/* Index of step @p id, or -1. */
long wfh_workflow_step_index(const wfh_workflow *wf, const char *id);

#endif
