/*
 * core/store_pg.c - the run store on PostgreSQL, for several hosts sharing one store.
 *
 * Same tables, columns and meaning as the SQLite engine (store_sqlite.c), so the two
 * can be read by the same tools; PostgreSQL types where SQLite has affinities (bigint
 * for times, bigserial for sequences). Each mutating call is one transaction; the
 * schema is created once under an advisory lock, and a schema_version row newer than
 * this wfhost refuses to open. Outputs are always kept in the row (no files), because
 * the hosts sharing a PostgreSQL store do not share a home directory.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

#define WFH_PG_LOCK_ID 0x57464831 /* advisory lock for schema creation: 'WFH1' */

typedef struct pg {
    PGconn *c;    /* owned */
    char *where;  /* owned: "postgresql://host:port/db" without user or password */
} pg;

static const char schema_sql[] =
    "CREATE TABLE wfh_meta(key text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE runs("
    " id text PRIMARY KEY, workflow text NOT NULL, file text NOT NULL,"
    " file_hash text NOT NULL, status text NOT NULL, error text,"
    " created_ms bigint NOT NULL, started_ms bigint, finished_ms bigint, inputs text);"
    "CREATE INDEX runs_created ON runs(created_ms);"
    "CREATE TABLE steps("
    " run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " step_id text NOT NULL, status text NOT NULL, def_hash text,"
    " outputs text, outputs_ref text, error text, started_ms bigint, finished_ms bigint,"
    " ord bigserial, PRIMARY KEY(run_id, step_id));"
    "CREATE TABLE attempts("
    " run_id text NOT NULL, step_id text NOT NULL, attempt integer NOT NULL,"
    " status text NOT NULL, error text, exit_code integer, term_signal integer,"
    " step_status integer, idempotency_key text NOT NULL, plugin_name text,"
    " plugin_version text, plugin_hash text, started_ms bigint NOT NULL,"
    " finished_ms bigint, sandbox text, PRIMARY KEY(run_id, step_id, attempt),"
    " FOREIGN KEY(run_id, step_id) REFERENCES steps(run_id, step_id) ON DELETE CASCADE);"
    "CREATE TABLE events("
    " seq bigserial PRIMARY KEY,"
    " run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " step_id text, attempt integer, status text NOT NULL, detail text,"
    " at_ms bigint NOT NULL);"
    "CREATE INDEX events_run ON events(run_id, seq);"
    "CREATE FUNCTION wfh_events_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION 'events are append-only'; END$$;"
    "CREATE TRIGGER events_append_only BEFORE UPDATE ON events"
    " FOR EACH ROW EXECUTE FUNCTION wfh_events_append_only();"
    "CREATE TABLE logs("
    " seq bigserial PRIMARY KEY,"
    " run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " step_id text, attempt integer, level integer NOT NULL, msg text NOT NULL,"
    " at_ms bigint NOT NULL);"
    "CREATE INDEX logs_run ON logs(run_id, seq);";

static int pg_fail(pg *p, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char one[512];
    snprintf(one, sizeof one, "%s", msg ? msg : PQerrorMessage(p->c));
    for (char *c = one; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    int code = state && !strncmp(state, "23", 2) ? WFH_EINVAL : WFH_EIO;
    return wfh_error_set(code, "run store %s: %s while %s%s%s%s", p->where, one, what,
                         state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
}

/*
 * Run @p sql with parameters described by @p fmt ('t' text or NULL, 'i' int64_t,
 * 'u' unsigned, 'd' int). *out (if non-NULL) gets the result (caller PQclear()s).
 */
static int px(pg *p, PGresult **out, const char *what, const char *sql, const char *fmt, ...)
{
    enum { MAXP = 16 };
    char bufs[MAXP][32];
    const char *vals[MAXP];
    int n = (int)strlen(fmt);
    va_list ap;
    if (out)
        *out = NULL;
    va_start(ap, fmt);
    for (int i = 0; i < n && i < MAXP; i++) {
        switch (fmt[i]) {
        case 't': vals[i] = va_arg(ap, const char *); break;
        case 'i':
            snprintf(bufs[i], sizeof bufs[i], "%lld", (long long)va_arg(ap, int64_t));
            vals[i] = bufs[i];
            break;
        case 'u':
            snprintf(bufs[i], sizeof bufs[i], "%u", va_arg(ap, unsigned));
            vals[i] = bufs[i];
            break;
        default:
            snprintf(bufs[i], sizeof bufs[i], "%d", va_arg(ap, int));
            vals[i] = bufs[i];
            break;
        }
    }
    va_end(ap);
    PGresult *res = PQexecParams(p->c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int err = pg_fail(p, res, what);
        PQclear(res);
        return err;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int tx_begin(pg *p, const char *what)
{
    return px(p, NULL, what, "BEGIN", "");
}

static int tx_commit(pg *p, const char *what)
{
    return px(p, NULL, what, "COMMIT", "");
}

static void tx_rollback(pg *p)
{
    if (PQtransactionStatus(p->c) != PQTRANS_IDLE)
        PQclear(PQexec(p->c, "ROLLBACK"));
}

/* Result rows as JSON objects appended to @p arr: bigint/integer columns as numbers. */
static int rows_json(pg *p, PGresult *res, json_t *arr)
{
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *o = json_object();
        if (!o)
            return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", p->where);
        for (int c = 0; c < PQnfields(res); c++) {
            json_t *v;
            Oid t = PQftype(res, c);
            if (PQgetisnull(res, r, c))
                v = json_null();
            else if (t == 20 || t == 21 || t == 23) /* int8, int2, int4 */
                v = json_integer(strtoll(PQgetvalue(res, r, c), NULL, 10));
            else
                v = json_string(PQgetvalue(res, r, c));
            json_object_set_new(o, PQfname(res, c), v ? v : json_null());
        }
        json_array_append_new(arr, o);
    }
    return 0;
}

static int query_json(pg *p, const char *what, json_t *arr, PGresult *res)
{
    int err = rows_json(p, res, arr);
    PQclear(res);
    (void)what;
    return err;
}

static int event_add(pg *p, const char *run_id, const char *step_id, unsigned attempt,
                     wfh_state st, const char *detail, int64_t now)
{
    return px(p, NULL, "appending an event",
              "INSERT INTO events(run_id, step_id, attempt, status, detail, at_ms)"
              " VALUES($1,$2,NULLIF($3::int,0),$4,$5,$6)",
              "ttutti", run_id, step_id, attempt, wfh_store_state_name(st), detail, now);
}

static int run_exists(pg *p, const char *run_id, int lock)
{
    PGresult *res = NULL;
    int err = px(p, &res, "looking up a run",
                 lock ? "SELECT 1 FROM runs WHERE id=$1 FOR UPDATE"
                      : "SELECT 1 FROM runs WHERE id=$1",
                 "t", run_id);
    if (err < 0)
        return err;
    int found = PQntuples(res) > 0;
    PQclear(res);
    return found ? 0 : wfh_error_set(WFH_ENOTFOUND, "run store %s: no run '%s'", p->where, run_id);
}

static void pg_close(void *impl)
{
    pg *p = impl;
    if (!p)
        return;
    PQfinish(p->c);
    free(p->where);
    free(p);
}

static int schema_check(pg *p, unsigned flags)
{
    PGresult *res = NULL;
    int err, version = 0;
    if ((err = tx_begin(p, "checking the schema")) < 0)
        return err;
    if (!(flags & WFH_STORE_NO_CREATE) &&
        (err = px(p, NULL, "checking the schema", "SELECT pg_advisory_xact_lock($1)", "i",
                  (int64_t)WFH_PG_LOCK_ID)) < 0)
        goto fail;
    if ((err = px(p, &res, "checking the schema", "SELECT to_regclass('wfh_meta') IS NOT NULL",
                  "")) < 0)
        goto fail;
    int have = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!have) {
        if (flags & WFH_STORE_NO_CREATE) {
            err = wfh_error_set(WFH_ENOTFOUND, "run store %s has no wfhost schema yet", p->where);
            goto fail;
        }
        PGresult *r2 = PQexec(p->c, schema_sql);
        if (PQresultStatus(r2) != PGRES_COMMAND_OK) {
            err = pg_fail(p, r2, "creating the schema");
            PQclear(r2);
            goto fail;
        }
        PQclear(r2);
        if ((err = px(p, NULL, "creating the schema",
                      "INSERT INTO wfh_meta VALUES('schema_version', $1)", "d",
                      WFH_STORE_SCHEMA_VERSION)) < 0)
            goto fail;
        version = WFH_STORE_SCHEMA_VERSION;
    } else {
        if ((err = px(p, &res, "checking the schema",
                      "SELECT value FROM wfh_meta WHERE key='schema_version'", "")) < 0)
            goto fail;
        version = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
        PQclear(res);
    }
    if (version > WFH_STORE_SCHEMA_VERSION || version < 1) {
        err = wfh_error_set(version > 0 ? WFH_EINVAL : WFH_EIO,
                            "run store %s: schema version %d%s", p->where, version,
                            version > 0 ? " is from a newer wfhost: upgrade wfhost"
                                        : " is not a wfhost schema");
        goto fail;
    }
    if (version < WFH_STORE_SCHEMA_VERSION &&
        /* schema 2: runs.inputs, NULL for runs recorded before it; schema 3:
         * attempts.sandbox, what confined each attempt, NULL before it; schema 4 changed
         * only SQLite's events table (bigserial here was never AUTOINCREMENT-like) */
        ((err = px(p, NULL, "upgrading the schema",
                   "ALTER TABLE runs ADD COLUMN IF NOT EXISTS inputs text", "")) < 0 ||
         (err = px(p, NULL, "upgrading the schema",
                   "ALTER TABLE attempts ADD COLUMN IF NOT EXISTS sandbox text", "")) < 0 ||
         (err = px(p, NULL, "upgrading the schema",
                   "UPDATE wfh_meta SET value=$1 WHERE key='schema_version'", "d",
                   WFH_STORE_SCHEMA_VERSION)) < 0))
        goto fail;
    return tx_commit(p, "checking the schema");
fail:
    tx_rollback(p);
    return err;
}

static int pg_open(const char *url, unsigned flags, void **impl)
{
    int err = 0;
    pg *p = calloc(1, sizeof *p); /* owned until handed out */
    const char *const keys[] = {"dbname", "connect_timeout", "application_name",
                                "client_encoding", NULL};
    const char *const vals[] = {url, "10", "wfhost", "UTF8", NULL};
    if (!p)
        return wfh_error_set(WFH_ENOMEM, "run store: out of memory");
    p->c = PQconnectdbParams(keys, vals, 1);
    char where[512];
    /* name the server for messages, never the password */
    snprintf(where, sizeof where, "postgresql://%s:%s/%s", p->c ? PQhost(p->c) : "?",
             p->c ? PQport(p->c) : "?", p->c ? PQdb(p->c) : "?");
    if (!(p->where = strdup(where))) {
        err = wfh_error_set(WFH_ENOMEM, "run store: out of memory");
        goto done;
    }
    if (!p->c || PQstatus(p->c) != CONNECTION_OK) {
        err = pg_fail(p, NULL, "connecting");
        goto done;
    }
    if ((err = schema_check(p, flags)) < 0)
        goto done;
    *impl = p;
    p = NULL;
done:
    pg_close(p);
    return err;
}

static int pg_run_create(void *impl, const char *id, const wfh_store_run_new *r, int64_t now)
{
    pg *p = impl;
    int err = tx_begin(p, "creating a run");
    if (err < 0)
        return err;
    if ((err = px(p, NULL, "creating a run",
                  "INSERT INTO runs(id, workflow, file, file_hash, status, created_ms, inputs)"
                  " VALUES($1,$2,$3,$4,'queued',$5,$6)",
                  "ttttit", id, r->workflow, r->file_path, r->file_hash, now,
                  r->inputs_json)) < 0 ||
        (err = event_add(p, id, NULL, 0, WFH_STATE_QUEUED, r->file_path, now)) < 0) {
        tx_rollback(p);
        return err;
    }
    return tx_commit(p, "creating a run");
}

static int pg_run_set_state(void *impl, const char *id, wfh_state st, const char *error,
                            int64_t now)
{
    pg *p = impl;
    PGresult *res = NULL;
    int err = tx_begin(p, "recording a run state");
    if (err < 0)
        return err;
    if ((err = px(p, &res, "recording a run state",
                  "UPDATE runs SET status=$1, error=$2,"
                  " started_ms=CASE WHEN $1='running' THEN coalesce(started_ms, $3::bigint)"
                  "  ELSE started_ms END,"
                  " finished_ms=CASE WHEN $4::int<>0 THEN $3::bigint ELSE NULL END WHERE id=$5",
                  "ttidt", wfh_store_state_name(st), error, now, wfh_store_state_is_final(st),
                  id)) < 0)
        goto fail;
    int changed = atoi(PQcmdTuples(res));
    PQclear(res);
    if (!changed) {
        err = wfh_error_set(WFH_ENOTFOUND, "run store %s: no run '%s'", p->where, id);
        goto fail;
    }
    if ((err = event_add(p, id, NULL, 0, st, error, now)) < 0)
        goto fail;
    return tx_commit(p, "recording a run state");
fail:
    tx_rollback(p);
    return err;
}

static int step_set_body(pg *p, const char *run_id, const char *step_id, wfh_state st,
                         const char *def_hash, const char *outputs_json, const char *error,
                         int64_t now)
{
    int err;
    if ((err = run_exists(p, run_id, 0)) < 0)
        return err;
    if ((err = px(p, NULL, "recording a step state",
                  "INSERT INTO steps(run_id, step_id, status, def_hash, outputs, error,"
                  " started_ms, finished_ms)"
                  " VALUES($1, $2, $3, $4, $5, $6,"
                  "  CASE WHEN $3='running' THEN $7::bigint END,"
                  "  CASE WHEN $8::int<>0 THEN $7::bigint END)"
                  " ON CONFLICT(run_id, step_id) DO UPDATE SET status=$3,"
                  "  def_hash=coalesce($4, steps.def_hash), outputs=$5, outputs_ref=NULL,"
                  "  error=$6,"
                  "  started_ms=CASE WHEN $3='running' THEN coalesce(steps.started_ms, $7::bigint)"
                  "   WHEN $3 IN ('queued','pending') THEN NULL ELSE steps.started_ms END,"
                  "  finished_ms=CASE WHEN $8::int<>0 THEN $7::bigint END",
                  "ttttttid", run_id, step_id, wfh_store_state_name(st), def_hash,
                  st == WFH_STATE_SUCCEEDED ? outputs_json : NULL, error, now,
                  wfh_store_state_is_final(st))) < 0)
        return err;
    return event_add(p, run_id, step_id, 0, st, error, now);
}

static int pg_step_set_state(void *impl, const char *run_id, const char *step_id,
                             wfh_state st, const char *def_hash, const char *outputs_json,
                             const char *outputs_ref, const char *error, int64_t now)
{
    pg *p = impl;
    int err = tx_begin(p, "recording a step state");
    (void)outputs_ref; /* never set: this engine keeps outputs inline */
    if (err < 0)
        return err;
    if ((err = step_set_body(p, run_id, step_id, st, def_hash, outputs_json, error, now)) < 0) {
        tx_rollback(p);
        return err;
    }
    return tx_commit(p, "recording a step state");
}

static int pg_attempt_start(void *impl, const char *run_id, const char *step_id,
                            unsigned attempt, const char *key, const wfh_store_plugin_ref *pl,
                            int64_t now)
{
    pg *p = impl;
    int err = tx_begin(p, "recording an attempt start");
    if (err < 0)
        return err;
    if ((err = run_exists(p, run_id, 0)) < 0 ||
        (err = px(p, NULL, "recording an attempt start",
                  "INSERT INTO steps(run_id, step_id, status, started_ms)"
                  " VALUES($1,$2,'running',$3)"
                  " ON CONFLICT(run_id, step_id) DO UPDATE SET status='running',"
                  " started_ms=coalesce(steps.started_ms, excluded.started_ms),"
                  " finished_ms=NULL, outputs=NULL, outputs_ref=NULL, error=NULL",
                  "tti", run_id, step_id, now)) < 0 ||
        (err = px(p, NULL, "recording an attempt start",
                  "INSERT INTO attempts(run_id, step_id, attempt, status, idempotency_key,"
                  " plugin_name, plugin_version, plugin_hash, started_ms)"
                  " VALUES($1,$2,$3,'running',$4,$5,$6,$7,$8)",
                  "ttutttti", run_id, step_id, attempt, key, pl ? pl->name : NULL,
                  pl ? pl->version : NULL, pl ? pl->file_hash : NULL, now)) < 0 ||
        (err = event_add(p, run_id, step_id, attempt, WFH_STATE_RUNNING, NULL, now)) < 0) {
        tx_rollback(p);
        return err;
    }
    return tx_commit(p, "recording an attempt start");
}

static int attempt_finish_body(pg *p, const char *run_id, const char *step_id,
                               unsigned attempt, const wfh_store_attempt_end *e, int64_t now)
{
    PGresult *res = NULL;
    int err = px(p, &res, "recording an attempt end",
                 "UPDATE attempts SET status=$1, error=$2, exit_code=$3, term_signal=$4,"
                 " step_status=NULLIF($5::int,-1), finished_ms=$6, sandbox=$7 WHERE"
                 " run_id=$8 AND step_id=$9 AND attempt=$10",
                 "ttddditttu", wfh_store_state_name(e->state), e->error, e->exit_code,
                 e->term_signal, e->step_status, now, e->sandbox_json, run_id, step_id,
                 attempt);
    if (err < 0)
        return err;
    int changed = atoi(PQcmdTuples(res));
    PQclear(res);
    if (!changed)
        return wfh_error_set(WFH_ENOTFOUND, "run store %s: attempt %u of step '%s' in run '%s' "
                             "was never started", p->where, attempt, step_id, run_id);
    return event_add(p, run_id, step_id, attempt, e->state, e->error, now);
}

static int pg_attempt_finish(void *impl, const char *run_id, const char *step_id,
                             unsigned attempt, const wfh_store_attempt_end *e, int64_t now)
{
    pg *p = impl;
    int err = tx_begin(p, "recording an attempt end");
    if (err < 0)
        return err;
    if ((err = attempt_finish_body(p, run_id, step_id, attempt, e, now)) < 0) {
        tx_rollback(p);
        return err;
    }
    return tx_commit(p, "recording an attempt end");
}

static int pg_attempt_end_step(void *impl, const char *run_id, const char *step_id,
                               unsigned attempt, const wfh_store_attempt_end *e,
                               wfh_state step_state, const char *def_hash,
                               const char *outputs_json, const char *outputs_ref, int64_t now)
{
    pg *p = impl;
    int err = tx_begin(p, "recording an attempt end");
    (void)outputs_ref;
    if (err < 0)
        return err;
    if ((err = attempt_finish_body(p, run_id, step_id, attempt, e, now)) < 0 ||
        (err = step_set_body(p, run_id, step_id, step_state, def_hash, outputs_json, e->error,
                             now)) < 0) {
        tx_rollback(p);
        return err;
    }
    return tx_commit(p, "recording an attempt end");
}

static int pg_log_append(void *impl, const char *run_id, const char *step_id,
                         unsigned attempt, int level, const char *msg, int64_t now)
{
    pg *p = impl;
    int err = run_exists(p, run_id, 0);
    if (err < 0)
        return err;
    return px(p, NULL, "appending a log line",
              "INSERT INTO logs(run_id, step_id, attempt, level, msg, at_ms)"
              " VALUES($1,$2,NULLIF($3::int,0),$4,$5,$6)",
              "ttudti", run_id, step_id, attempt, level, msg, now);
}

static int pg_runs_list(void *impl, const wfh_store_filter *f, json_t **out)
{
    pg *p = impl;
    PGresult *res = NULL;
    json_t *arr = json_array(); /* owned until handed out */
    int err;
    if (!arr)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", p->where);
    if ((err = px(p, &res, "listing runs",
                  "SELECT id, workflow, file, file_hash, status, error, created_ms,"
                  " started_ms, finished_ms FROM runs WHERE ($1::text IS NULL OR status=$1)"
                  " AND ($2::text IS NULL OR workflow=$2) AND created_ms>=$3"
                  " ORDER BY created_ms DESC, id DESC LIMIT $4",
                  "ttiu", f->status, f->workflow, f->since_ms, f->limit ? f->limit : 100u)) < 0 ||
        (err = query_json(p, "listing runs", arr, res)) < 0) {
        json_decref(arr);
        return err;
    }
    *out = arr;
    return 0;
}

static int pg_run_show(void *impl, const char *id, json_t **out)
{
    pg *p = impl;
    PGresult *res = NULL;
    json_t *arr = json_array(), *steps = json_array(), *run = NULL; /* owned */
    int err;
    if (!arr || !steps) {
        err = wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", p->where);
        goto done;
    }
    /* one snapshot for the run, its steps and attempts */
    if ((err = px(p, NULL, "reading a run", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                  "")) < 0)
        goto done;
    if ((err = px(p, &res, "reading a run",
                  "SELECT id, workflow, file, file_hash, status, error, created_ms,"
                  " started_ms, finished_ms, inputs FROM runs WHERE id=$1", "t", id)) < 0 ||
        (err = query_json(p, "reading a run", arr, res)) < 0)
        goto done;
    if (!json_array_size(arr)) {
        err = wfh_error_set(WFH_ENOTFOUND, "run store %s: no run '%s'", p->where, id);
        goto done;
    }
    run = json_incref(json_array_get(arr, 0));
    const char *itext = json_string_value(json_object_get(run, "inputs"));
    if (itext) {
        json_t *v = json_loads(itext, 0, NULL); /* owned */
        if (!v) {
            err = wfh_error_set(WFH_EIO, "run store %s is corrupt (run inputs are not JSON)",
                                p->where);
            goto done;
        }
        json_object_set_new(run, "inputs", v);
    }
    if ((err = px(p, &res, "reading steps",
                  "SELECT step_id AS id, status, def_hash, outputs, error, started_ms,"
                  " finished_ms FROM steps WHERE run_id=$1 ORDER BY ord", "t", id)) < 0 ||
        (err = query_json(p, "reading steps", steps, res)) < 0)
        goto done;
    size_t i, j;
    json_t *st, *a;
    json_array_foreach(steps, i, st) {
        json_t *atts = json_array();
        const char *otext = json_string_value(json_object_get(st, "outputs"));
        if (otext) {
            json_t *v = json_loads(otext, JSON_DECODE_ANY, NULL);
            if (!v) {
                err = wfh_error_set(WFH_EIO, "run store %s is corrupt (step outputs are not "
                                    "JSON)", p->where);
                json_decref(atts);
                goto done;
            }
            json_object_set_new(st, "outputs", v);
        }
        json_object_set_new(st, "attempts", atts ? atts : json_array());
        if ((err = px(p, &res, "reading attempts",
                      "SELECT attempt, status, error, exit_code, term_signal, step_status,"
                      " idempotency_key, plugin_name, plugin_version, plugin_hash,"
                      " started_ms, finished_ms, sandbox FROM attempts WHERE run_id=$1 AND"
                      " step_id=$2"
                      " ORDER BY attempt",
                      "tt", id, json_string_value(json_object_get(st, "id")))) < 0 ||
            (err = query_json(p, "reading attempts", json_object_get(st, "attempts"), res)) < 0)
            goto done;
        json_array_foreach(json_object_get(st, "attempts"), j, a) {
            json_t *plugin = json_pack("{s:O,s:O,s:O}", "name", json_object_get(a, "plugin_name"),
                                       "version", json_object_get(a, "plugin_version"),
                                       "file_hash", json_object_get(a, "plugin_hash"));
            json_object_del(a, "plugin_name");
            json_object_del(a, "plugin_version");
            json_object_del(a, "plugin_hash");
            json_object_set_new(a, "plugin", plugin ? plugin : json_null());
            if ((err = wfh_store_attempt_sandbox_parse(a, p->where)) < 0)
                goto done;
        }
    }
    json_object_set(run, "steps", steps);
    *out = run;
    run = NULL;
done:
    tx_rollback(p);
    json_decref(arr);
    json_decref(steps);
    json_decref(run);
    return err;
}

static int pg_logs(void *impl, const char *run_id, const char *step_id, json_t **out)
{
    pg *p = impl;
    PGresult *res = NULL;
    json_t *arr = json_array(); /* owned until handed out */
    int err;
    if (!arr)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", p->where);
    if ((err = run_exists(p, run_id, 0)) < 0 ||
        (err = px(p, &res, "reading logs",
                  "SELECT step_id AS step, attempt, level, msg, at_ms FROM logs"
                  " WHERE run_id=$1 AND ($2::text IS NULL OR step_id=$2) ORDER BY seq",
                  "tt", run_id, step_id)) < 0 ||
        (err = query_json(p, "reading logs", arr, res)) < 0) {
        json_decref(arr);
        return err;
    }
    *out = arr;
    return 0;
}

static int pg_events(void *impl, const char *run_id, json_t **out)
{
    pg *p = impl;
    PGresult *res = NULL;
    json_t *arr = json_array(); /* owned until handed out */
    int err;
    if (!arr)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", p->where);
    if ((err = run_exists(p, run_id, 0)) < 0 ||
        (err = px(p, &res, "reading events",
                  "SELECT seq, step_id AS step, attempt, status, detail, at_ms FROM events"
                  " WHERE run_id=$1 ORDER BY seq",
                  "t", run_id)) < 0 ||
        (err = query_json(p, "reading events", arr, res)) < 0) {
        json_decref(arr);
        return err;
    }
    *out = arr;
    return 0;
}

static int pg_prune(void *impl, int64_t before_ms, unsigned *removed, json_t **refs)
{
    pg *p = impl;
    PGresult *res = NULL;
    int err = px(p, &res, "pruning runs",
                 "DELETE FROM runs WHERE created_ms<$1 AND status IN"
                 " ('succeeded','failed','cancelled','timed_out','skipped')",
                 "i", before_ms);
    if (err < 0)
        return err;
    if (removed)
        *removed = (unsigned)atoi(PQcmdTuples(res));
    PQclear(res);
    *refs = json_array(); /* no output files in this engine */
    return 0;
}

static int pg_run_reopen(void *impl, const char *id, const char *why, int64_t now)
{
    pg *p = impl;
    PGresult *res = NULL;
    json_t *lost = json_array(); /* owned */
    int err;
    if (!lost)
        return wfh_error_set(WFH_ENOMEM, "run store %s: out of memory", p->where);
    if ((err = tx_begin(p, "reopening a run")) < 0)
        goto done;
    if ((err = run_exists(p, id, 1)) < 0 ||
        (err = px(p, &res, "reopening a run",
                  "UPDATE attempts SET status='failed', error=$1, finished_ms=$2"
                  " WHERE run_id=$3 AND status='running' RETURNING step_id, attempt",
                  "tit", why, now, id)) < 0 ||
        (err = query_json(p, "reopening a run", lost, res)) < 0)
        goto fail;
    size_t i;
    json_t *a;
    json_array_foreach(lost, i, a) {
        if ((err = event_add(p, id, json_string_value(json_object_get(a, "step_id")),
                             (unsigned)json_integer_value(json_object_get(a, "attempt")),
                             WFH_STATE_FAILED, why, now)) < 0)
            goto fail;
    }
    if ((err = px(p, NULL, "reopening a run",
                  "UPDATE runs SET status='running', error=NULL, finished_ms=NULL,"
                  " started_ms=coalesce(started_ms, $1) WHERE id=$2",
                  "it", now, id)) < 0 ||
        (err = event_add(p, id, NULL, 0, WFH_STATE_RUNNING, "resumed", now)) < 0)
        goto fail;
    err = tx_commit(p, "reopening a run");
    goto done;
fail:
    tx_rollback(p);
done:
    json_decref(lost);
    return err;
}

__attribute__((visibility("default"))) const wfh_store_ops wfh_store_pg_ops = {
    .name = "postgresql",
    .inline_outputs = 1,
    .open = pg_open,
    .close = pg_close,
    .run_create = pg_run_create,
    .run_set_state = pg_run_set_state,
    .step_set_state = pg_step_set_state,
    .attempt_start = pg_attempt_start,
    .attempt_finish = pg_attempt_finish,
    .attempt_end_step = pg_attempt_end_step,
    .log_append = pg_log_append,
    .runs_list = pg_runs_list,
    .run_show = pg_run_show,
    .logs = pg_logs,
    .events = pg_events,
    .prune = pg_prune,
    .run_reopen = pg_run_reopen,
};
