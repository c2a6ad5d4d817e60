/*
 * plugins/db/db.c - the `db` step type: SQL against SQLite files or PostgreSQL.
 *
 * This front end checks the inputs (a plugin must not trust that its schema was
 * applied), picks the engine from the URL scheme, and turns the engine's per-statement
 * results into outputs. Values only ever travel as bound parameters: there is no input
 * that is pasted into SQL text. Failure classes follow what a retry would do: a lost
 * connection is transient, a constraint violation permanent, bad SQL invalid input.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "wfhost/plugin.h"

static const char db_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"url\"],"
    "\"properties\":{"
    "\"url\":{\"type\":\"string\",\"minLength\":1,\"description\":\"sqlite:///abs.db, "
    "sqlite:relative.db (in the workspace), sqlite::memory:, or postgresql://...\"},"
    "\"sql\":{\"type\":\"string\",\"minLength\":1,\"description\":\"one statement\"},"
    "\"params\":{\"type\":[\"array\",\"object\"],\"description\":\"positional ($1, ?) or "
    "named (:name) parameters\"},"
    "\"statements\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"sql\"],\"properties\":{"
    "\"sql\":{\"type\":\"string\",\"minLength\":1},"
    "\"params\":{\"type\":[\"array\",\"object\"]}}}},"
    "\"transaction\":{\"type\":\"boolean\",\"description\":\"all statements or none\"},"
    "\"read_only\":{\"type\":\"boolean\"},"
    "\"max_rows\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000000},"
    "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1},"
    "\"numeric\":{\"type\":\"string\",\"enum\":[\"string\",\"number\"],\"description\":"
    "\"PostgreSQL numeric as an exact string (default) or a JSON number\"}"
    "}}";

static const char db_outputs[] =
    "{\"rows\":\"rows of the (last) statement: a list of objects keyed by column\","
    "\"columns\":\"column names of the (last) statement, in order\","
    "\"truncated\":\"true when rows were cut at max_rows\","
    "\"affected_rows\":\"rows changed (all statements together)\","
    "\"results\":\"one {columns, rows, truncated, affected_rows} per statement\"}";

static const char *const known_inputs[] = {"url",        "sql",       "params",   "statements",
                                           "transaction", "read_only", "max_rows", "timeout_ms",
                                           "numeric",    NULL};

int db_fail(db_outcome *o, int status, const char *fmt, ...)
{
    char raw[sizeof o->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* one line, whatever the server said: newlines and their indentation become "; " */
    size_t w = 0;
    for (const char *p = raw; *p && w + 3 < sizeof o->msg;) {
        if (*p == '\n' || *p == '\r') {
            while (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
                p++;
            if (*p && w > 0) {
                o->msg[w++] = ';';
                o->msg[w++] = ' ';
            }
            continue;
        }
        o->msg[w++] = *p++;
    }
    o->msg[w] = '\0';
    o->status = status;
    return status;
}

char *db_param_text(json_t *v, int *ok)
{
    char buf[64];
    *ok = 1;
    switch (json_typeof(v)) {
    case JSON_NULL: return NULL;
    case JSON_TRUE: return strdup("true");
    case JSON_FALSE: return strdup("false");
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: snprintf(buf, sizeof buf, "%.17g", json_real_value(v)); break;
    case JSON_STRING: {
        char *s = strndup(json_string_value(v), json_string_length(v));
        *ok = s != NULL;
        return s;
    }
    default: { /* arrays and objects go as JSON text (json/jsonb parameters) */
        char *s = json_dumps(v, JSON_COMPACT);
        *ok = s != NULL;
        return s;
    }
    }
    char *s = strdup(buf);
    *ok = s != NULL;
    return s;
}

static int check_params(json_t *p, const char *where, db_outcome *o)
{
    if (p && !json_is_array(p) && !json_is_object(p))
        return db_fail(o, WFH_STEP_INVALID_INPUT, "db: %s: params must be a list (positional) "
                       "or an object (named)", where);
    return 0;
}

/* sqlite:///abs, sqlite:rel (workspace), sqlite::memory:. Writes the file into @p out. */
static int sqlite_target(const char *url, const char *workspace, char *out, size_t n,
                         db_outcome *o)
{
    const char *rest = url + strlen("sqlite:");
    if (!strcmp(rest, ":memory:")) {
        snprintf(out, n, ":memory:");
        return 0;
    }
    if (!strncmp(rest, "//", 2)) {
        rest += 2;
        if (rest[0] != '/')
            return db_fail(o, WFH_STEP_INVALID_INPUT, "db: url '%s': sqlite:// needs an "
                           "absolute path (sqlite:///path/to.db)", url);
        if ((size_t)snprintf(out, n, "%s", rest) >= n)
            goto too_long;
        return 0;
    }
    if (!rest[0] || rest[0] == '/' || rest[0] == ':' || strchr(rest, '?'))
        return db_fail(o, WFH_STEP_INVALID_INPUT, "db: url '%s': expected sqlite:///abs.db, "
                       "sqlite:relative.db or sqlite::memory:", url);
    if (!workspace || workspace[0] != '/')
        return db_fail(o, WFH_STEP_INVALID_INPUT, "db: url '%s' is relative but the step has "
                       "no workspace", url);
    if ((size_t)snprintf(out, n, "%s/%s", workspace, rest) >= n)
        goto too_long;
    return 0;
too_long:
    return db_fail(o, WFH_STEP_INVALID_INPUT, "db: url '%s': path too long", url);
}

static int set_out(const db_req *r, const char *name, json_t *v, db_outcome *o)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = text ? r->host->set_output(r->call, name, text, strlen(text)) : -1;
    free(text);
    if (rc != 0)
        return db_fail(o, WFH_STEP_FAILED, "db: output '%s' was refused by the host (too "
                       "large? lower max_rows)", name);
    return 0;
}

static int32_t db_run(const wfh_host_api *host, wfh_call *call, const wfh_step_request *req)
{
    db_outcome o = {WFH_STEP_OK, ""};
    json_error_t je;
    json_t *in = json_loadb(req->inputs_json, req->inputs_len, 0, &je); /* owned */
    json_t *results = json_array();                                      /* owned */
    db_stmt *stmts = NULL;                                               /* owned array */
    size_t n = 0;
    char target[4096];
    db_req r = {0};
    if (!in || !json_is_object(in) || !results) {
        db_fail(&o, WFH_STEP_INVALID_INPUT, "db: inputs are not a JSON object");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(in, key, val) {
        int known = 0;
        for (size_t i = 0; known_inputs[i]; i++)
            known |= !strcmp(key, known_inputs[i]);
        if (!known) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: unknown input '%s'", key);
            goto done;
        }
    }
    const char *url = json_string_value(json_object_get(in, "url"));
    json_t *sql = json_object_get(in, "sql"), *list = json_object_get(in, "statements");
    if (!url || !*url) {
        db_fail(&o, WFH_STEP_INVALID_INPUT, "db: 'url' (a string) is required");
        goto done;
    }
    if (!!sql == !!list) {
        db_fail(&o, WFH_STEP_INVALID_INPUT, "db: give exactly one of 'sql' or 'statements'");
        goto done;
    }
    if (sql) {
        if (!json_is_string(sql) || !json_string_length(sql)) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: 'sql' must be a non-empty string");
            goto done;
        }
        if (!(stmts = calloc(1, sizeof *stmts)))
            goto nomem;
        stmts[0].sql = json_string_value(sql);
        stmts[0].params = json_object_get(in, "params");
        if (check_params(stmts[0].params, "sql", &o))
            goto done;
        n = 1;
    } else {
        if (json_object_get(in, "params")) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: 'params' goes inside each of "
                    "'statements', not beside it");
            goto done;
        }
        if (!json_is_array(list) || json_array_size(list) == 0) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: 'statements' must be a non-empty list");
            goto done;
        }
        if (!(stmts = calloc(json_array_size(list), sizeof *stmts)))
            goto nomem;
        size_t i;
        json_t *st;
        json_array_foreach(list, i, st) {
            char where[48];
            snprintf(where, sizeof where, "statement %zu", i + 1);
            json_t *s = json_object_get(st, "sql");
            if (!json_is_object(st) || !json_is_string(s) || !json_string_length(s)) {
                db_fail(&o, WFH_STEP_INVALID_INPUT, "db: %s: needs 'sql' (a non-empty string)",
                        where);
                goto done;
            }
            stmts[i].sql = json_string_value(s);
            stmts[i].params = json_object_get(st, "params");
            if (check_params(stmts[i].params, where, &o))
                goto done;
            n++;
        }
    }
    json_t *v;
    r.max_rows = DB_DEFAULT_MAX_ROWS;
    r.timeout_ms = DB_DEFAULT_TIMEOUT_MS;
    if ((v = json_object_get(in, "max_rows"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: 'max_rows' must be an integer in 1..1000000");
            goto done;
        }
        r.max_rows = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(in, "timeout_ms"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 24LL * 3600 * 1000) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: 'timeout_ms' must be a positive integer "
                    "(at most a day)");
            goto done;
        }
        r.timeout_ms = (long)json_integer_value(v);
    }
    const char *bools[] = {"transaction", "read_only"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(in, bools[i]);
        if (v && !json_is_boolean(v)) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: '%s' must be true or false", bools[i]);
            goto done;
        }
    }
    r.transaction = json_is_true(json_object_get(in, "transaction"));
    r.read_only = json_is_true(json_object_get(in, "read_only"));
    if ((v = json_object_get(in, "numeric"))) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "string") && strcmp(s, "number"))) {
            db_fail(&o, WFH_STEP_INVALID_INPUT, "db: 'numeric' must be \"string\" or \"number\"");
            goto done;
        }
        r.numeric_as_number = !strcmp(s, "number");
    }
    r.stmts = stmts;
    r.n_stmts = n;
    r.idempotency_key = req->idempotency_key;
    r.host = host;
    r.call = call;
    if (!strncmp(url, "sqlite:", 7)) {
        if (sqlite_target(url, req->workspace, target, sizeof target, &o))
            goto done;
        r.target = target;
        db_sqlite_run(&r, results, &o);
    } else if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
        r.target = url;
        db_pg_run(&r, results, &o);
    } else {
        /* never echo the URL: it usually carries a password */
        db_fail(&o, WFH_STEP_INVALID_INPUT, "db: url: unknown scheme (expected sqlite: or "
                "postgresql://)");
        goto done;
    }
    if (o.status != WFH_STEP_OK)
        goto done;
    json_int_t affected = 0;
    size_t i;
    json_t *res;
    json_array_foreach(results, i, res)
        affected += json_integer_value(json_object_get(res, "affected_rows"));
    json_t *last = json_array_get(results, json_array_size(results) - 1);
    json_t *aff = json_integer(affected);
    if (set_out(&r, "rows", json_object_get(last, "rows"), &o) ||
        set_out(&r, "columns", json_object_get(last, "columns"), &o) ||
        set_out(&r, "truncated", json_object_get(last, "truncated"), &o) ||
        set_out(&r, "affected_rows", aff, &o) ||
        (list && set_out(&r, "results", results, &o))) {
        json_decref(aff);
        goto done;
    }
    json_decref(aff);
    goto done;
nomem:
    db_fail(&o, WFH_STEP_FAILED, "db: out of memory");
done:
    if (o.status != WFH_STEP_OK)
        host->set_error(call, o.msg, strlen(o.msg));
    free(stmts);
    json_decref(results);
    json_decref(in);
    return o.status;
}

static const wfh_step_type db_types[] = {{
    sizeof(wfh_step_type), "db",
    "run SQL with bound parameters against SQLite or PostgreSQL; rows come back as JSON",
    db_schema, db_outputs, "{\"network\":true}", db_run,
}};

static const wfh_plugin db_plugin = {
    WFH_PLUGIN_INIT,
    1,
    sizeof(wfh_step_type),
    "db",
    "0.1.0",
    "SQL step type: SQLite files and PostgreSQL through libpq",
    db_types,
    NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &db_plugin;
}
