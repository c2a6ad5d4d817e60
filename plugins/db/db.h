/*
 * plugins/db/db.h - what the db step type's front end (db.c) hands its two engines
 * (db_sqlite.c, db_pg.c), and what they hand back. Internal to the plugin.
 */
#ifndef WFH_DB_H
#define WFH_DB_H

#include <jansson.h>
#include <stddef.h>

#include "wfhost/plugin.h"

#define DB_DEFAULT_MAX_ROWS 1000
#define DB_DEFAULT_TIMEOUT_MS 30000

/* One SQL statement and its parameters (a JSON array, a JSON object, or NULL). */
typedef struct db_stmt {
    const char *sql;    /* borrowed from the inputs JSON */
    json_t *params;     /* borrowed, may be NULL */
} db_stmt;

/* One attempt's work, checked by db.c. Everything borrowed for the attempt. */
typedef struct db_req {
    const char *target;    /* sqlite: file path or ":memory:"; postgresql: the URL */
    int read_only;
    int transaction;       /* run all statements in one transaction */
    size_t max_rows;       /* per statement */
    long timeout_ms;       /* per statement */
    int numeric_as_number; /* PostgreSQL numeric -> JSON number (else string, exact) */
    const db_stmt *stmts;
    size_t n_stmts;
    const char *idempotency_key; /* bound to :wfh_idempotency_key unless params has it */
    const wfh_host_api *host;
    wfh_call *call;
} db_req;

/* How it went: status is a wfh_step_status; msg one line (empty on success). */
typedef struct db_outcome {
    int status;
    char msg[768];
} db_outcome;

/*
 * Run every statement of @p r, appending one result object per statement to
 * @p results: {"columns": [...], "rows": [...], "truncated": bool, "affected_rows": N}.
 * Stops at the first failure (rolled back when r->transaction). Returns out->status.
 */
int db_sqlite_run(const db_req *r, json_t *results, db_outcome *out);
int db_pg_run(const db_req *r, json_t *results, db_outcome *out);

/* The named parameter that carries the step's idempotency key. */
#define DB_KEY_PARAM "wfh_idempotency_key"

/* Set the outcome (printf-style); returns @p status. */
int db_fail(db_outcome *o, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The JSON value a bound parameter should carry, as text for engines that bind text
 * (PostgreSQL). NULL for JSON null. Caller frees. *ok = 0 on ENOMEM. */
char *db_param_text(json_t *v, int *ok);

#endif
