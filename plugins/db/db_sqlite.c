/*
 * plugins/db/db_sqlite.c - the SQLite engine of the db step type.
 *
 * Parameters are bound (sqlite3_bind_*), never formatted into SQL; a `sql` holding
 * more than one statement is refused, because only the first would run. The statement
 * timeout is a progress handler that interrupts once the deadline passes (and when the
 * host cancels); waiting for another writer's lock counts against the same deadline.
 * Column values map to JSON by their storage class, with the declared type breaking
 * ties: BOOLEAN columns give true/false, JSON columns give parsed JSON.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "db.h"

typedef struct sl {
    sqlite3 *db; /* owned */
    const db_req *r;
    struct timespec deadline;
    int timed_out;
} sl;

static int progress(void *ud)
{
    sl *s = ud;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > s->deadline.tv_sec ||
        (now.tv_sec == s->deadline.tv_sec && now.tv_nsec >= s->deadline.tv_nsec)) {
        s->timed_out = 1;
        return 1;
    }
    return s->r->host->is_cancelled(s->r->call) ? 1 : 0;
}

static void arm_deadline(sl *s)
{
    clock_gettime(CLOCK_MONOTONIC, &s->deadline);
    s->deadline.tv_sec += s->r->timeout_ms / 1000;
    s->deadline.tv_nsec += (s->r->timeout_ms % 1000) * 1000000L;
    if (s->deadline.tv_nsec >= 1000000000L) {
        s->deadline.tv_sec++;
        s->deadline.tv_nsec -= 1000000000L;
    }
    s->timed_out = 0;
}

/* Map a SQLite failure to the class a retry policy can act on. */
static int classify(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return WFH_STEP_PERMANENT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return WFH_STEP_TRANSIENT;
    case SQLITE_INTERRUPT: return WFH_STEP_CANCELLED; /* a deadline is told apart first */
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return WFH_STEP_PERMANENT;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG: return WFH_STEP_INVALID_INPUT;
    default: return WFH_STEP_FAILED;
    }
}

static int fail_rc(sl *s, db_outcome *o, int rc, const char *where)
{
    if ((rc & 0xff) == SQLITE_INTERRUPT && s->timed_out)
        return db_fail(o, WFH_STEP_TIMEOUT, "db: %s: timed out after %ld ms", where,
                       s->r->timeout_ms);
    return db_fail(o, classify(rc), "db: %s: %s (sqlite error %d)", where,
                   sqlite3_errmsg(s->db), sqlite3_extended_errcode(s->db));
}

static int bind_value(sqlite3_stmt *st, int idx, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return sqlite3_bind_null(st, idx);
    case JSON_TRUE: return sqlite3_bind_int(st, idx, 1);
    case JSON_FALSE: return sqlite3_bind_int(st, idx, 0);
    case JSON_INTEGER: return sqlite3_bind_int64(st, idx, json_integer_value(v));
    case JSON_REAL: return sqlite3_bind_double(st, idx, json_real_value(v));
    case JSON_STRING:
        return sqlite3_bind_text(st, idx, json_string_value(v), (int)json_string_length(v),
                                 SQLITE_TRANSIENT);
    default: {
        char *text = json_dumps(v, JSON_COMPACT); /* ownership passes to SQLite */
        if (!text)
            return SQLITE_NOMEM;
        return sqlite3_bind_text(st, idx, text, -1, free);
    }
    }
}

static int bind_params(sl *s, sqlite3_stmt *st, json_t *params, const char *where,
                       db_outcome *o)
{
    int want = sqlite3_bind_parameter_count(st), rc;
    if (!params || json_is_array(params)) {
        int have = params ? (int)json_array_size(params) : 0;
        if (have != want)
            return db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: the SQL has %d parameter%s, "
                           "params gives %d", where, want, want == 1 ? "" : "s", have);
        for (int i = 0; i < want; i++) {
            const char *name = sqlite3_bind_parameter_name(st, i + 1);
            if (name && name[0] != '?')
                return db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: the SQL uses named "
                               "parameter %s: give params as an object", where, name);
            if ((rc = bind_value(st, i + 1, json_array_get(params, (size_t)i))) != SQLITE_OK)
                return fail_rc(s, o, rc, where);
        }
        return 0;
    }
    size_t used = 0;
    for (int i = 1; i <= want; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        if (!name || name[0] == '?')
            return db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: the SQL uses positional "
                           "parameters: give params as a list", where);
        json_t *v = json_object_get(params, name + 1); /* skip the : @ or $ */
        if (!v && !strcmp(name + 1, DB_KEY_PARAM) && s->r->idempotency_key) {
            rc = sqlite3_bind_text(st, i, s->r->idempotency_key, -1, SQLITE_TRANSIENT);
            if (rc != SQLITE_OK)
                return fail_rc(s, o, rc, where);
            continue;
        }
        if (!v)
            return db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: no value for parameter %s in "
                           "params", where, name);
        used++;
        if ((rc = bind_value(st, i, v)) != SQLITE_OK)
            return fail_rc(s, o, rc, where);
    }
    if (used != json_object_size(params)) {
        const char *key;
        json_t *v;
        json_object_foreach(params, key, v) {
            int found = 0;
            for (int i = 1; i <= want && !found; i++) {
                const char *name = sqlite3_bind_parameter_name(st, i);
                found = name && !strcmp(name + 1, key);
            }
            if (!found)
                return db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: params has '%s', which the "
                               "SQL does not use", where, key);
        }
    }
    return 0;
}

static int decl_is(sqlite3_stmt *st, int col, const char *what)
{
    const char *d = sqlite3_column_decltype(st, col);
    return d && !strcasecmp(d, what);
}

static json_t *column_json(sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        if (decl_is(st, col, "BOOLEAN") || decl_is(st, col, "BOOL"))
            return json_boolean(sqlite3_column_int64(st, col) != 0);
        return json_integer(sqlite3_column_int64(st, col));
    case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, col));
    case SQLITE_NULL: return json_null();
    case SQLITE_BLOB: {
        /* bytes as PostgreSQL prints bytea, so both engines agree */
        const unsigned char *b = sqlite3_column_blob(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        char *hex = malloc(2 * n + 3);
        if (!hex)
            return NULL;
        memcpy(hex, "\\x", 2);
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 2 + 2 * i, 3, "%02x", b[i]);
        hex[2 + 2 * n] = '\0';
        json_t *v = json_string(hex);
        free(hex);
        return v;
    }
    default: {
        const char *t = (const char *)sqlite3_column_text(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        if (decl_is(st, col, "JSON") || decl_is(st, col, "JSONB")) {
            json_t *v = json_loadb(t, n, JSON_DECODE_ANY, NULL);
            if (v)
                return v;
        }
        json_t *v = json_stringn(t, n);
        /* text that is not UTF-8 cannot be a JSON string: say so, do not fail */
        return v ? v : json_string("(invalid UTF-8)");
    }
    }
}

/* True if @p tail is only whitespace and comments. */
static int only_trivia(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ';')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p = strchr(p, '\n');
            if (!p)
                return 1;
        } else if (p[0] == '/' && p[1] == '*') {
            p = strstr(p + 2, "*/");
            if (!p)
                return 1;
            p += 2;
        } else {
            return *p == '\0';
        }
    }
}

static int run_one(sl *s, const db_stmt *d, const char *where, json_t *results, db_outcome *o)
{
    sqlite3_stmt *st = NULL; /* owned */
    const char *tail = NULL;
    json_t *rows = json_array(), *cols = json_array(); /* owned until stored */
    int rc, truncated = 0;
    if (!rows || !cols) {
        db_fail(o, WFH_STEP_FAILED, "db: out of memory");
        goto done;
    }
    arm_deadline(s);
    rc = sqlite3_prepare_v2(s->db, d->sql, -1, &st, &tail);
    if (rc != SQLITE_OK) {
        int c = (rc & 0xff) == SQLITE_ERROR ? WFH_STEP_INVALID_INPUT : -1;
        if (c < 0)
            fail_rc(s, o, rc, where);
        else
            db_fail(o, c, "db: %s: %s (sqlite error %d)", where, sqlite3_errmsg(s->db),
                    sqlite3_extended_errcode(s->db));
        goto done;
    }
    if (!st) {
        db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: the SQL holds no statement", where);
        goto done;
    }
    if (tail && !only_trivia(tail)) {
        db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: the SQL holds more than one statement: use "
                "'statements' for several", where);
        goto done;
    }
    if (bind_params(s, st, d->params, where, o))
        goto done;
    /* sqlite3_changes() keeps the last INSERT/UPDATE/DELETE's count through DDL and
     * queries, so only trust it when this statement changed something */
    sqlite3_int64 before = sqlite3_total_changes64(s->db);
    int ncol = sqlite3_column_count(st);
    for (int i = 0; i < ncol; i++)
        json_array_append_new(cols, json_string(sqlite3_column_name(st, i)));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_size(rows) >= s->r->max_rows) {
            truncated = 1;
            break;
        }
        json_t *row = json_object();
        if (!row) {
            db_fail(o, WFH_STEP_FAILED, "db: out of memory");
            goto done;
        }
        for (int i = 0; i < ncol; i++) {
            json_t *v = column_json(st, i);
            if (!v) {
                json_decref(row);
                db_fail(o, WFH_STEP_FAILED, "db: out of memory");
                goto done;
            }
            json_object_set_new(row, sqlite3_column_name(st, i), v);
        }
        json_array_append_new(rows, row);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fail_rc(s, o, rc, where);
        goto done;
    }
    /* A data-changing statement cut short would leave its work half done: finish it. */
    if (truncated && !sqlite3_stmt_readonly(st)) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (rc != SQLITE_DONE) {
            fail_rc(s, o, rc, where);
            goto done;
        }
    }
    json_t *res = json_pack("{s:O,s:O,s:b,s:I}", "columns", cols, "rows", rows, "truncated",
                            truncated, "affected_rows",
                            (json_int_t)(sqlite3_total_changes64(s->db) == before
                                             ? 0 : sqlite3_changes64(s->db)));
    if (!res || json_array_append_new(results, res) < 0) {
        db_fail(o, WFH_STEP_FAILED, "db: out of memory");
        goto done;
    }
done:
    sqlite3_finalize(st);
    json_decref(rows);
    json_decref(cols);
    return o->status;
}

int db_sqlite_run(const db_req *r, json_t *results, db_outcome *o)
{
    sl s = {.r = r};
    int flags = (r->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    const char *name = !strcmp(r->target, ":memory:") ? "sqlite::memory:" : r->target;
    int rc = sqlite3_open_v2(r->target, &s.db, flags, NULL);
    if (rc != SQLITE_OK) {
        db_fail(o, WFH_STEP_PERMANENT, "db: cannot open %s: %s", name,
                s.db ? sqlite3_errmsg(s.db) : sqlite3_errstr(rc));
        goto done;
    }
    sqlite3_extended_result_codes(s.db, 1);
    sqlite3_busy_timeout(s.db, (int)r->timeout_ms);
    sqlite3_progress_handler(s.db, 1000, progress, &s);
    /* foreign keys are off by default in SQLite; a workflow expects them enforced */
    sqlite3_exec(s.db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    if (r->transaction) {
        arm_deadline(&s);
        rc = sqlite3_exec(s.db, r->read_only ? "BEGIN" : "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            fail_rc(&s, o, rc, "BEGIN");
            goto done;
        }
    }
    for (size_t i = 0; i < r->n_stmts; i++) {
        char where[64];
        if (r->n_stmts == 1)
            snprintf(where, sizeof where, "sql");
        else
            snprintf(where, sizeof where, "statement %zu", i + 1);
        if (run_one(&s, &r->stmts[i], where, results, o) != WFH_STEP_OK)
            goto done;
    }
    if (r->transaction) {
        arm_deadline(&s);
        rc = sqlite3_exec(s.db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            fail_rc(&s, o, rc, "COMMIT");
    }
done:
    if (s.db && !sqlite3_get_autocommit(s.db))
        sqlite3_exec(s.db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(s.db);
    return o->status;
}
