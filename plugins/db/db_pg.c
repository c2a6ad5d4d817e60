/*
 * plugins/db/db_pg.c - the PostgreSQL engine of the db step type, through libpq.
 *
 * Values are sent as out-of-line parameters (PQsendQueryParams), never in the SQL
 * text. Named parameters (:name) are a convenience PostgreSQL lacks, so the SQL is
 * scanned once, skipping string literals, quoted identifiers, comments, dollar quotes
 * and :: casts, and each :name becomes $n: only placeholders are rewritten. Rows are
 * read in single-row mode so max_rows bounds memory however large the result is. The
 * statement timeout is the server's statement_timeout; errors are classified by
 * SQLSTATE, which every message carries.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"

/* Type OIDs from pg_type.h (stable since the catalogs began). */
enum {
    OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26,
    OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700, OID_JSONB = 3802,
};

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Names seen while rewriting, in $n order (borrowed from the SQL copy). */
typedef struct names {
    char **v; /* owned array of owned strings */
    size_t n;
} names;

static void names_free(names *nm)
{
    for (size_t i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
}

/*
 * Rewrite :name placeholders of @p sql into $1.. (same name, same number). *out is
 * malloc'd. Returns 0, or a step status with @p o set.
 */
static int rewrite_named(const char *sql, names *nm, char **out, const char *where,
                         db_outcome *o)
{
    size_t len = strlen(sql);
    /* "$NNNNN" is at most as long as ":x" plus 5 digits per placeholder */
    char *buf = malloc(len * 4 + 16); /* owned until handed out */
    size_t w = 0;
    if (!buf)
        return db_fail(o, WFH_STEP_FAILED, "db: out of memory");
    for (size_t i = 0; i < len;) {
        char c = sql[i];
        if (c == '\'' || c == '"') {
            /* E'..' strings honour backslash escapes; '' and "" are an escape and a
             * close+reopen at once, which this loop handles naturally */
            int esc = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                      (i < 2 || !ident_char(sql[i - 2]));
            buf[w++] = sql[i++];
            while (i < len && sql[i] != c) {
                if (esc && sql[i] == '\\' && i + 1 < len)
                    buf[w++] = sql[i++];
                buf[w++] = sql[i++];
            }
            if (i < len)
                buf[w++] = sql[i++];
        } else if (c == '-' && sql[i + 1] == '-') {
            while (i < len && sql[i] != '\n')
                buf[w++] = sql[i++];
        } else if (c == '/' && sql[i + 1] == '*') {
            int depth = 0;
            do {
                if (sql[i] == '/' && sql[i + 1] == '*') {
                    depth++;
                    buf[w++] = sql[i++];
                } else if (sql[i] == '*' && sql[i + 1] == '/') {
                    depth--;
                    buf[w++] = sql[i++];
                }
                buf[w++] = sql[i++];
            } while (i < len && depth > 0);
        } else if (c == '$' && (i == 0 || !ident_char(sql[i - 1]))) {
            size_t j = i + 1;
            if (isdigit((unsigned char)sql[j])) {
                free(buf);
                return db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: params is an object "
                               "(named) but the SQL uses positional $%c", where, sql[j]);
            }
            while (j < len && ident_char(sql[j]))
                j++;
            if (j < len && sql[j] == '$') { /* $tag$ ... $tag$ */
                size_t tl = j - i + 1;
                const char *end = NULL;
                for (size_t k = j + 1; k + tl <= len; k++)
                    if (!strncmp(sql + k, sql + i, tl)) {
                        end = sql + k + tl;
                        break;
                    }
                size_t stop = end ? (size_t)(end - sql) : len;
                while (i < stop)
                    buf[w++] = sql[i++];
            } else {
                buf[w++] = sql[i++];
            }
        } else if (c == ':' && sql[i + 1] == ':') {
            buf[w++] = sql[i++];
            buf[w++] = sql[i++];
        } else if (c == ':' && (isalpha((unsigned char)sql[i + 1]) || sql[i + 1] == '_')) {
            size_t j = i + 1;
            while (j < len && ident_char(sql[j]))
                j++;
            size_t idx = 0;
            while (idx < nm->n && (strlen(nm->v[idx]) != j - i - 1 ||
                                   strncmp(nm->v[idx], sql + i + 1, j - i - 1)))
                idx++;
            if (idx == nm->n) {
                char **nv = realloc(nm->v, (nm->n + 1) * sizeof *nv);
                if (!nv || !(nv[nm->n] = strndup(sql + i + 1, j - i - 1))) {
                    if (nv)
                        nm->v = nv;
                    free(buf);
                    return db_fail(o, WFH_STEP_FAILED, "db: out of memory");
                }
                nm->v = nv;
                nm->n++;
            }
            w += (size_t)sprintf(buf + w, "$%zu", idx + 1);
            i = j;
        } else {
            buf[w++] = sql[i++];
        }
    }
    buf[w] = '\0';
    *out = buf;
    return 0;
}

/* Class of a failed result: what would retrying do? */
static int classify(PGconn *c, const char *state)
{
    if (!state)
        return PQstatus(c) == CONNECTION_BAD ? WFH_STEP_TRANSIENT : WFH_STEP_FAILED;
    if (!strcmp(state, "57014"))
        return WFH_STEP_TIMEOUT;
    if (!strcmp(state, "08P01")) /* protocol violation: e.g. wrong parameter count */
        return WFH_STEP_INVALID_INPUT;
    if (!strcmp(state, "25006")) /* read-only transaction */
        return WFH_STEP_PERMANENT;
    if (!strncmp(state, "08", 2) || !strcmp(state, "40001") || !strcmp(state, "40P01") ||
        !strncmp(state, "53", 2) || !strncmp(state, "57P", 3))
        return WFH_STEP_TRANSIENT;
    if (!strncmp(state, "23", 2) || !strncmp(state, "28", 2) || !strncmp(state, "42501", 5))
        return WFH_STEP_PERMANENT;
    if (!strncmp(state, "42", 2) || !strncmp(state, "22", 2) || !strncmp(state, "0A", 2) ||
        !strncmp(state, "21", 2))
        return WFH_STEP_INVALID_INPUT;
    return WFH_STEP_FAILED;
}

static int fail_res(PGconn *c, PGresult *res, const char *where, db_outcome *o)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c);
    if (!state && PQstatus(c) == CONNECTION_BAD)
        return db_fail(o, WFH_STEP_TRANSIENT, "db: %s: connection to the server lost: %s",
                       where, msg);
    return db_fail(o, classify(c, state), "db: %s: %s (SQLSTATE %s)", where, msg,
                   state ? state : "none");
}

static json_t *pg_value(const PGresult *res, int row, int col, int numeric_as_number)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    const char *t = PQgetvalue(res, row, col);
    size_t n = (size_t)PQgetlength(res, row, col);
    json_t *v = NULL;
    switch (PQftype(res, col)) {
    case OID_BOOL: return json_boolean(t[0] == 't');
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID: return json_integer((json_int_t)strtoll(t, NULL, 10));
    case OID_FLOAT4:
    case OID_FLOAT8:
        if (isdigit((unsigned char)t[0]) || t[0] == '-')
            if (strcmp(t, "-Infinity"))
                return json_real(strtod(t, NULL));
        break; /* NaN, Infinity: not JSON numbers, keep the text */
    case OID_NUMERIC:
        if (numeric_as_number && (isdigit((unsigned char)t[0]) || t[0] == '-'))
            v = json_loadb(t, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
        break;
    case OID_JSON:
    case OID_JSONB: v = json_loadb(t, n, JSON_DECODE_ANY, NULL); break;
    default: break;
    }
    return v ? v : json_stringn(t, n);
}

/* Run one statement; append its result to @p results. */
static int run_one(PGconn *c, const db_req *r, const db_stmt *d, const char *where,
                   json_t *results, db_outcome *o)
{
    names nm = {0};
    char *sql = NULL;                          /* owned when rewritten */
    char **vals = NULL;                        /* owned array of owned strings */
    size_t nvals = 0;
    json_t *rows = json_array(), *cols = NULL; /* owned */
    json_int_t affected = 0;
    int truncated = 0, failed = 0;
    PGresult *res;
    if (!rows) {
        db_fail(o, WFH_STEP_FAILED, "db: out of memory");
        goto done;
    }
    if (json_is_object(d->params)) {
        if (rewrite_named(d->sql, &nm, &sql, where, o))
            goto done;
        const char *key;
        json_t *v;
        json_object_foreach(d->params, key, v) {
            size_t k = 0;
            while (k < nm.n && strcmp(nm.v[k], key))
                k++;
            if (k == nm.n) {
                db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: params has '%s', which the SQL "
                        "does not use", where, key);
                goto done;
            }
        }
        nvals = nm.n;
    } else {
        nvals = d->params ? json_array_size(d->params) : 0;
    }
    if (nvals && !(vals = calloc(nvals, sizeof *vals))) {
        db_fail(o, WFH_STEP_FAILED, "db: out of memory");
        goto done;
    }
    for (size_t i = 0; i < nvals; i++) {
        json_t *v = json_is_object(d->params) ? json_object_get(d->params, nm.v[i])
                                              : json_array_get(d->params, i);
        int ok;
        if (!v && json_is_object(d->params) && !strcmp(nm.v[i], DB_KEY_PARAM) &&
            r->idempotency_key) {
            if (!(vals[i] = strdup(r->idempotency_key))) {
                db_fail(o, WFH_STEP_FAILED, "db: out of memory");
                goto done;
            }
            continue;
        }
        if (!v) {
            db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: no value for parameter :%s in params",
                    where, nm.v[i]);
            goto done;
        }
        vals[i] = db_param_text(v, &ok);
        if (!ok) {
            db_fail(o, WFH_STEP_FAILED, "db: out of memory");
            goto done;
        }
    }
    if (!PQsendQueryParams(c, sql ? sql : d->sql, (int)nvals, NULL, (const char *const *)vals,
                           NULL, NULL, 0)) {
        fail_res(c, NULL, where, o);
        goto done;
    }
    PQsetSingleRowMode(c);
    /* Read to the end even past max_rows or an error: the connection must be idle
     * before the next statement (or the rollback) can be sent. */
    while ((res = PQgetResult(c))) {
        ExecStatusType st = PQresultStatus(res);
        if (failed) {
            /* already failed: drain */
        } else if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            int nf = PQnfields(res);
            if (!cols) {
                cols = json_array();
                for (int i = 0; cols && i < nf; i++)
                    json_array_append_new(cols, json_string(PQfname(res, i)));
            }
            for (int row = 0; row < PQntuples(res); row++) {
                if (json_array_size(rows) >= r->max_rows) {
                    truncated = 1;
                    break;
                }
                json_t *obj = json_object();
                for (int i = 0; obj && i < nf; i++)
                    json_object_set_new(obj, PQfname(res, i),
                                        pg_value(res, row, i, r->numeric_as_number));
                if (!obj || json_array_append_new(rows, obj) < 0) {
                    failed = 1;
                    db_fail(o, WFH_STEP_FAILED, "db: out of memory");
                }
            }
            if (st == PGRES_TUPLES_OK && strncmp(PQcmdStatus(res), "SELECT", 6))
                affected = (json_int_t)strtoll(PQcmdTuples(res), NULL, 10);
        } else if (st == PGRES_COMMAND_OK) {
            affected = (json_int_t)strtoll(PQcmdTuples(res), NULL, 10);
        } else {
            failed = 1;
            fail_res(c, res, where, o);
        }
        PQclear(res);
    }
    if (failed)
        goto done;
    if (PQstatus(c) == CONNECTION_BAD) {
        fail_res(c, NULL, where, o);
        goto done;
    }
    json_t *out = json_pack("{s:o,s:O,s:b,s:I}", "columns", cols ? cols : json_array(), "rows",
                            rows, "truncated", truncated, "affected_rows", affected);
    cols = NULL; /* stolen by "o" */
    if (!out || json_array_append_new(results, out) < 0)
        db_fail(o, WFH_STEP_FAILED, "db: out of memory");
done:
    for (size_t i = 0; vals && i < nvals; i++)
        free(vals[i]);
    free(vals);
    free(sql);
    names_free(&nm);
    json_decref(rows);
    json_decref(cols);
    return o->status;
}

/* Run a fixed command (no user values in it); used for BEGIN/COMMIT/settings. */
static int command(PGconn *c, const char *sql, int n, const char *const *vals,
                   const char *where, db_outcome *o)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int bad = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
    if (bad)
        fail_res(c, res, where, o);
    PQclear(res);
    return bad ? o->status : 0;
}

int db_pg_run(const db_req *r, json_t *results, db_outcome *o)
{
    char connect_s[16], timeout_s[24];
    long ct = (r->timeout_ms + 999) / 1000;
    snprintf(connect_s, sizeof connect_s, "%ld", ct < 2 ? 2 : ct > 30 ? 30 : ct);
    snprintf(timeout_s, sizeof timeout_s, "%ld", r->timeout_ms);
    const char *const keys[] = {"dbname", "connect_timeout", "application_name",
                                "client_encoding", NULL};
    const char *const vals[] = {r->target, connect_s, "wfhost-db", "UTF8", NULL};
    /* expand_dbname=1: the URL is parsed by libpq, and never printed by us (password) */
    PGconn *c = PQconnectdbParams(keys, vals, 1); /* owned */
    int in_tx = 0;
    if (!c) {
        db_fail(o, WFH_STEP_FAILED, "db: out of memory");
        goto done;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(c);
        int perm = strstr(m, "authentication failed") || strstr(m, "does not exist") ||
                   strstr(m, "invalid ") || strstr(m, "no password supplied");
        db_fail(o, perm ? WFH_STEP_PERMANENT : WFH_STEP_TRANSIENT, "db: cannot connect to "
                "PostgreSQL: %s", m);
        goto done;
    }
    const char *const tv[] = {timeout_s};
    if (command(c, "SELECT set_config('statement_timeout', $1, false)", 1, tv,
                "setting statement_timeout", o))
        goto done;
    if (r->read_only && command(c, "SET default_transaction_read_only = on", 0, NULL,
                                "setting read_only", o))
        goto done;
    if (r->transaction) {
        if (command(c, "BEGIN", 0, NULL, "BEGIN", o))
            goto done;
        in_tx = 1;
    }
    for (size_t i = 0; i < r->n_stmts; i++) {
        char where[64];
        if (r->n_stmts == 1)
            snprintf(where, sizeof where, "sql");
        else
            snprintf(where, sizeof where, "statement %zu", i + 1);
        if (run_one(c, r, &r->stmts[i], where, results, o) != WFH_STEP_OK)
            goto done;
    }
    if (in_tx) {
        in_tx = 0;
        command(c, "COMMIT", 0, NULL, "COMMIT", o);
    }
done:
    if (in_tx && c && PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
    return o->status;
}
