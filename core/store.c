/*
 * core/store.c - the engine-independent half of the run store (see store.h): argument
 * checks, run ids, idempotency keys, moving large step outputs to files under the
 * home, and turning a recorded run into the struct resume works from. The engine
 * (store_sqlite.c today, PostgreSQL later) only reads and writes rows.
 */
#include "store.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "home.h"

struct wfh_store {
    const wfh_store_ops *ops; /* static */
    void *impl;               /* owned, closed by ops->close */
    char *home;               /* owned: outputs/ lives under it */
    char *location;           /* owned: the store file, for messages */
};

static const char *const state_names[] = {
    "queued",  "running",   "succeeded", "failed",  "retrying",
    "skipped", "cancelled", "timed_out", "pending",
};

const char *wfh_store_state_name(wfh_state s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

int wfh_store_state_parse(const char *name, wfh_state *out)
{
    for (size_t i = 0; name && i < sizeof state_names / sizeof state_names[0]; i++) {
        if (!strcmp(name, state_names[i])) {
            *out = (wfh_state)i;
            return 0;
        }
    }
    return wfh_error_set(WFH_EINVAL, "unknown state '%s' (expected pending, queued, "
                         "running, succeeded, failed, retrying, skipped, cancelled or "
                         "timed_out)",
                         name ? name : "");
}

int wfh_store_state_is_final(wfh_state s)
{
    return s == WFH_STATE_SUCCEEDED || s == WFH_STATE_FAILED || s == WFH_STATE_SKIPPED ||
           s == WFH_STATE_CANCELLED || s == WFH_STATE_TIMED_OUT;
}

int wfh_store_attempt_sandbox_parse(json_t *a, const char *where)
{
    json_t *txt = json_object_get(a, "sandbox");
    if (!json_is_string(txt)) {
        json_object_set_new(a, "sandbox", json_null());
        return 0;
    }
    json_error_t je;
    json_t *v = json_loads(json_string_value(txt), 0, &je);
    if (!v)
        return wfh_error_set(WFH_EIO, "run store %s is corrupt (an attempt's sandbox report is "
                             "not JSON: %s)", where, je.text);
    json_object_set_new(a, "sandbox", v);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n); /* owned by the caller */
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Ids end up in file names (outputs/<run>/<step>.json), so keep them tame. */
static int id_check(const char *what, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 128 || id[0] == '.')
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            goto bad;
    }
    return 0;
bad:
    return wfh_error_set(WFH_EINVAL, "run store: invalid %s '%s' (1-128 of [A-Za-z0-9._-], "
                         "not starting with '.')", what, id ? id : "");
}

/* The PostgreSQL engine lives in wfhost-store-pg.so, beside the program (build tree,
 * relocatable install) or in ../libexec/wfhost (GNUInstallDirs), like the runner, and
 * is loaded on first use only, so runs on SQLite never pay for libpq's start-up. It is
 * never unloaded (docs: STYLE, Loading). */
static int pg_ops(const wfh_store_ops **out)
{
    static const wfh_store_ops *ops; /* static: the loaded module's table */
    if (ops) {
        *out = ops;
        return 0;
    }
    char exe[PATH_MAX], path[PATH_MAX + 64], first[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(first, sizeof first, "%s/wfhost-store-pg.so", exe);
    snprintf(path, sizeof path, "%s", first);
    if (access(path, R_OK) != 0)
        snprintf(path, sizeof path, "%s/../libexec/wfhost/wfhost-store-pg.so", exe);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const wfh_store_ops *o = h ? (const wfh_store_ops *)dlsym(h, "wfh_store_pg_ops") : NULL;
    if (!o && access(path, R_OK) == 0) /* there, but not loadable (libpq missing, ...) */
        return wfh_error_set(WFH_EIO, "run store: PostgreSQL support %s cannot be loaded: %s",
                             path, h ? "no wfh_store_pg_ops in it" : dlerror());
    if (!o)
        return wfh_error_set(WFH_EIO, "run store: PostgreSQL support is not installed (no %s "
                             "or %s)", first, path);
    *out = ops = o;
    return 0;
}

int wfh_store_open_url(const char *url, const char *home, unsigned flags, wfh_store **out)
{
    int err = 0;
    int pg = url && (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11));
    wfh_store *s = calloc(1, sizeof *s); /* owned until handed out */
    *out = NULL;
    if (!s)
        return wfh_error_set(WFH_ENOMEM, "run store: out of memory");
    if (url && *url && strcmp(url, "sqlite") && !pg) {
        /* do not echo it: a URL may carry a password */
        err = wfh_error_set(WFH_EINVAL, "run store: unknown store URL scheme (expected "
                            "\"sqlite\" or postgresql://...)");
        goto done;
    }
    if (!pg && (!home || !*home)) {
        err = wfh_error_set(WFH_EINVAL, "run store: no wfhost home given");
        goto done;
    }
    if (pg && (err = pg_ops(&s->ops)) < 0)
        goto done;
    if (!pg)
        s->ops = &wfh_store_sqlite_ops;
    if (!(s->home = strdup(home ? home : "")) ||
        !(s->location = pg ? strdup("postgresql") : path_join(home, "runs.db"))) {
        err = wfh_error_set(WFH_ENOMEM, "run store: out of memory");
        goto done;
    }
    if (!pg && !(flags & WFH_STORE_NO_CREATE) && (err = wfh_home_ensure(home)) < 0)
        goto done;
    if ((err = s->ops->open(pg ? url : s->location, flags, &s->impl)) < 0)
        goto done;
    *out = s;
    s = NULL;
done:
    wfh_store_free(s);
    return err;
}

int wfh_store_open(const char *home, unsigned flags, wfh_store **out)
{
    return wfh_store_open_url(getenv("WFH_STORE_URL"), home, flags, out);
}

void wfh_store_free(wfh_store *s)
{
    if (!s)
        return;
    if (s->impl)
        s->ops->close(s->impl);
    free(s->home);
    free(s->location);
    free(s);
}

const char *wfh_store_location(const wfh_store *s)
{
    return s->location;
}

/* Time-sortable and unique across hosts: 20261122-063244-1a2b3c4d5e6f. */
static int run_id_make(char out[32])
{
    unsigned char rnd[6];
    struct tm tm;
    time_t t = time(NULL);
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return wfh_error_set(WFH_EIO, "run store: getrandom: %s", strerror(errno));
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y%m%d-%H%M%S-", &tm);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + n + 2 * i, 3, "%02x", rnd[i]);
    return 0;
}

int wfh_store_run_create(wfh_store *s, const wfh_store_run_new *run, char **id_out)
{
    char id[160]; /* ids are at most 128 bytes (id_check) */
    int err;
    *id_out = NULL;
    if (!run->workflow || !run->file_path || !run->file_hash)
        return wfh_error_set(WFH_EINVAL, "run store: a run needs a workflow name, file and hash");
    if (run->id) {
        if ((err = id_check("run id", run->id)) < 0)
            return err;
        snprintf(id, sizeof id, "%s", run->id);
    } else if ((err = run_id_make(id)) < 0) {
        return err;
    }
    if ((err = s->ops->run_create(s->impl, id, run, now_ms())) < 0)
        return err;
    if (!(*id_out = strdup(id)))
        return wfh_error_set(WFH_ENOMEM, "run store: out of memory");
    return 0;
}

int wfh_store_run_set_state(wfh_store *s, const char *run_id, wfh_state state,
                            const char *error)
{
    int err = id_check("run id", run_id);
    return err < 0 ? err : s->ops->run_set_state(s->impl, run_id, state, error, now_ms());
}

/* Write @p data to @p path so that a reader sees the old file or the whole new one,
 * and the new one is on disk before the store row that references it is committed. */
static int file_write_durable(const char *path, const char *data, size_t len)
{
    int err = 0, fd = -1;
    char *tmp = NULL; /* owned */
    size_t n = strlen(path) + 8;
    if (!(tmp = malloc(n)))
        return wfh_error_set(WFH_ENOMEM, "run store: out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto io;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto io;
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        goto io;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto io;
    goto done;
io:
    err = wfh_error_set(WFH_EIO, "run store: cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
done:
    free(tmp);
    return err;
}

/* Serialise a success's outputs: *text for the row, or (when large) a durable file
 * under the home and *rel its path relative to the home. Both owned by the caller. */
static int outputs_prepare(wfh_store *s, const char *run_id, const char *step_id,
                           wfh_state state, json_t *outputs, char **text, char **rel)
{
    int err = 0;
    char *dir = NULL, *abs_path = NULL; /* owned */
    *text = *rel = NULL;
    if (!outputs || state != WFH_STATE_SUCCEEDED)
        return 0;
    if (!(*text = json_dumps(outputs, JSON_COMPACT | JSON_ENCODE_ANY)))
        return wfh_error_set(WFH_EINVAL, "run store: outputs of step '%s' are not "
                             "serialisable JSON", step_id);
    if (strlen(*text) <= WFH_STORE_INLINE_MAX || s->ops->inline_outputs)
        return 0;
    size_t n = strlen(run_id) + strlen(step_id) + 32;
    if (!(*rel = malloc(n)) || !(dir = malloc(n)))
        goto nomem;
    snprintf(dir, n, "outputs/%s", run_id);
    snprintf(*rel, n, "outputs/%s/%s.json", run_id, step_id);
    if (!(abs_path = path_join(s->home, dir)))
        goto nomem;
    if ((err = wfh_home_ensure(abs_path)) < 0)
        goto done;
    free(abs_path);
    if (!(abs_path = path_join(s->home, *rel)))
        goto nomem;
    if ((err = file_write_durable(abs_path, *text, strlen(*text))) < 0)
        goto done;
    free(*text);
    *text = NULL;
    goto done;
nomem:
    err = wfh_error_set(WFH_ENOMEM, "run store: out of memory");
done:
    if (err < 0) {
        free(*text);
        free(*rel);
        *text = *rel = NULL;
    }
    free(dir);
    free(abs_path);
    return err;
}

int wfh_store_step_set_state(wfh_store *s, const char *run_id, const char *step_id,
                             wfh_state state, const char *def_hash, json_t *outputs,
                             const char *error)
{
    int err;
    char *text = NULL, *rel = NULL; /* owned */
    if ((err = id_check("run id", run_id)) < 0 || (err = id_check("step id", step_id)) < 0)
        return err;
    if ((err = outputs_prepare(s, run_id, step_id, state, outputs, &text, &rel)) < 0)
        return err;
    err = s->ops->step_set_state(s->impl, run_id, step_id, state, def_hash, text, rel, error,
                                 now_ms());
    free(text);
    free(rel);
    return err;
}

int wfh_store_step_attempt_end(wfh_store *s, const char *run_id, const char *step_id,
                               unsigned attempt, const wfh_store_attempt_end *end,
                               wfh_state step_state, const char *def_hash, json_t *outputs)
{
    int err;
    char *text = NULL, *rel = NULL; /* owned */
    if ((err = id_check("run id", run_id)) < 0 || (err = id_check("step id", step_id)) < 0)
        return err;
    if ((err = outputs_prepare(s, run_id, step_id, step_state, outputs, &text, &rel)) < 0)
        return err;
    err = s->ops->attempt_end_step(s->impl, run_id, step_id, attempt, end, step_state,
                                   def_hash, text, rel, now_ms());
    free(text);
    free(rel);
    return err;
}

int wfh_store_attempt_start(wfh_store *s, const char *run_id, const char *step_id,
                            unsigned attempt, const char *idempotency_key,
                            const wfh_store_plugin_ref *plugin)
{
    int err;
    if ((err = id_check("run id", run_id)) < 0 || (err = id_check("step id", step_id)) < 0)
        return err;
    if (attempt == 0 || !idempotency_key)
        return wfh_error_set(WFH_EINVAL, "run store: attempt of step '%s' needs a number >= 1 "
                             "and an idempotency key", step_id);
    return s->ops->attempt_start(s->impl, run_id, step_id, attempt, idempotency_key, plugin,
                                 now_ms());
}

int wfh_store_attempt_finish(wfh_store *s, const char *run_id, const char *step_id,
                             unsigned attempt, const wfh_store_attempt_end *end)
{
    int err;
    if ((err = id_check("run id", run_id)) < 0 || (err = id_check("step id", step_id)) < 0)
        return err;
    return s->ops->attempt_finish(s->impl, run_id, step_id, attempt, end, now_ms());
}

int wfh_store_log_append(wfh_store *s, const char *run_id, const char *step_id,
                         unsigned attempt, int level, const char *msg)
{
    int err = id_check("run id", run_id);
    if (err < 0)
        return err;
    return s->ops->log_append(s->impl, run_id, step_id, attempt, level, msg ? msg : "",
                              now_ms());
}

int wfh_store_group(wfh_store *s, int on)
{
    return s->ops->group ? s->ops->group(s->impl, on) : 0;
}

int wfh_store_group_commit(wfh_store *s)
{
    return s->ops->group_commit ? s->ops->group_commit(s->impl) : 0;
}

int wfh_store_idempotency_key(const char *run_id, const char *step_id, char **out)
{
    size_t n = strlen(run_id) + strlen(step_id) + 2;
    if (!(*out = malloc(n)))
        return wfh_error_set(WFH_ENOMEM, "run store: out of memory");
    snprintf(*out, n, "%s/%s", run_id, step_id);
    return 0;
}

int wfh_store_runs_list(wfh_store *s, const wfh_store_filter *f, json_t **out)
{
    wfh_store_filter none = {0};
    *out = NULL;
    return s->ops->runs_list(s->impl, f ? f : &none, out);
}

/* Replace each step's "outputs_ref" with the outputs read back from that file. */
static int outputs_resolve(wfh_store *s, json_t *run)
{
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(run, "steps"), i, step) {
        const char *ref = json_string_value(json_object_get(step, "outputs_ref"));
        if (!ref)
            continue;
        char *p = path_join(s->home, ref); /* owned */
        json_error_t je;
        if (!p)
            return wfh_error_set(WFH_ENOMEM, "run store: out of memory");
        json_t *v = json_load_file(p, JSON_DECODE_ANY, &je);
        if (!v) {
            int err = wfh_error_set(WFH_EIO, "run store: outputs of step '%s' in %s: %s",
                                    json_string_value(json_object_get(step, "id")), p, je.text);
            free(p);
            return err;
        }
        free(p);
        json_object_set_new(step, "outputs", v);
    }
    return 0;
}

int wfh_store_run_show(wfh_store *s, const char *run_id, json_t **out)
{
    json_t *run = NULL; /* owned until handed out */
    int err;
    *out = NULL;
    if ((err = id_check("run id", run_id)) < 0)
        return err;
    if ((err = s->ops->run_show(s->impl, run_id, &run)) < 0)
        return err;
    if ((err = outputs_resolve(s, run)) < 0) {
        json_decref(run);
        return err;
    }
    *out = run;
    return 0;
}

int wfh_store_logs(wfh_store *s, const char *run_id, const char *step_id, json_t **out)
{
    int err = id_check("run id", run_id);
    *out = NULL;
    return err < 0 ? err : s->ops->logs(s->impl, run_id, step_id, out);
}

int wfh_store_events(wfh_store *s, const char *run_id, json_t **out)
{
    int err = id_check("run id", run_id);
    *out = NULL;
    return err < 0 ? err : s->ops->events(s->impl, run_id, out);
}

int wfh_store_prune(wfh_store *s, int64_t before_ms, unsigned *removed)
{
    json_t *refs = NULL; /* owned */
    unsigned n = 0;
    int err = s->ops->prune(s->impl, before_ms, &n, &refs);
    if (err < 0)
        return err;
    /* Files go after the rows: a crash here leaves orphan files, never a dangling ref. */
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) {
        char *p = path_join(s->home, json_string_value(json_object_get(r, "ref")));
        char *d = path_join(s->home, "outputs");
        char *rd = d ? path_join(d, json_string_value(json_object_get(r, "run"))) : NULL;
        if (p)
            unlink(p);
        if (rd)
            rmdir(rd); /* fails harmlessly while other files remain */
        free(p);
        free(d);
        free(rd);
    }
    json_decref(refs);
    if (removed)
        *removed = n;
    return 0;
}

static char *jdup(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? strdup(v) : NULL;
}

static int64_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

int wfh_store_run_load(wfh_store *s, const char *run_id, wfh_store_run **out)
{
    json_t *j = NULL;       /* owned */
    wfh_store_run *r = NULL; /* owned until handed out */
    int err;
    *out = NULL;
    if ((err = wfh_store_run_show(s, run_id, &j)) < 0)
        return err;
    json_t *steps = json_object_get(j, "steps");
    if (!(r = calloc(1, sizeof *r)) ||
        !(r->steps = calloc(json_array_size(steps) + 1, sizeof *r->steps)))
        goto nomem;
    if (!(r->id = jdup(j, "id")) || !(r->workflow = jdup(j, "workflow")) ||
        !(r->file_path = jdup(j, "file")) || !(r->file_hash = jdup(j, "file_hash")))
        goto nomem;
    if ((err = wfh_store_state_parse(json_string_value(json_object_get(j, "status")), &r->state)) < 0)
        goto corrupt;
    r->error = jdup(j, "error");
    r->created_ms = jint(j, "created_ms");
    r->started_ms = jint(j, "started_ms");
    r->finished_ms = jint(j, "finished_ms");
    json_t *in = json_object_get(j, "inputs");
    if (json_is_object(in))
        r->inputs = json_incref(in);
    size_t i;
    json_t *js;
    json_array_foreach(steps, i, js) {
        wfh_store_step *st = &r->steps[r->step_count++];
        if (!(st->id = jdup(js, "id")))
            goto nomem;
        if ((err = wfh_store_state_parse(json_string_value(json_object_get(js, "status")),
                                   &st->state)) < 0)
            goto corrupt;
        st->def_hash = jdup(js, "def_hash");
        st->error = jdup(js, "error");
        json_t *o = json_object_get(js, "outputs");
        if (o && !json_is_null(o))
            st->outputs = json_incref(o);
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(js, "attempts"), k, a) {
            unsigned n = (unsigned)jint(a, "attempt");
            if (n > st->attempts)
                st->attempts = n;
            const char *ast = json_string_value(json_object_get(a, "status"));
            if (ast && !strcmp(ast, "running"))
                st->in_flight = n;
            free(st->idempotency_key);
            st->idempotency_key = jdup(a, "idempotency_key");
        }
    }
    *out = r;
    r = NULL;
    goto done;
nomem:
    err = wfh_error_set(WFH_ENOMEM, "run store: out of memory");
    goto done;
corrupt: {
    char why[256]; /* the message buffer is about to be rewritten: copy it first */
    snprintf(why, sizeof why, "%s", wfh_error_last());
    err = wfh_error_set(WFH_EIO, "run store %s is corrupt: run '%s' has %s", s->location,
                        run_id, why);
}
done:
    wfh_store_run_free(r);
    json_decref(j);
    return err;
}

int wfh_store_run_reopen(wfh_store *s, const char *run_id, const char *why,
                         wfh_store_run **out)
{
    wfh_store_run *r = NULL; /* owned until handed out */
    int err = wfh_store_run_load(s, run_id, &r);
    if (err < 0)
        return err;
    err = s->ops->run_reopen(s->impl, run_id, why ? why : "host stopped during the attempt",
                             now_ms());
    if (err < 0) {
        wfh_store_run_free(r);
        return err;
    }
    *out = r;
    return 0;
}

int wfh_store_hash_file(const char *path, char **out)
{
    unsigned char buf[65536], digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    int err = 0;
    FILE *f = fopen(path, "rb"); /* owned */
    *out = NULL;
    if (!f)
        return wfh_error_set(WFH_EIO, "%s: cannot read: %s", path, strerror(errno));
    crypto_hash_sha256_init(&st);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&st, buf, n);
    if (ferror(f)) {
        err = wfh_error_set(WFH_EIO, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    crypto_hash_sha256_final(&st, digest);
    if (!(*out = malloc(2 * sizeof digest + 1))) {
        err = wfh_error_set(WFH_ENOMEM, "run store: out of memory");
        goto done;
    }
    sodium_bin2hex(*out, 2 * sizeof digest + 1, digest, sizeof digest);
done:
    fclose(f);
    return err;
}

const wfh_store_step *wfh_store_run_step(const wfh_store_run *run, const char *step_id)
{
    for (size_t i = 0; run && i < run->step_count; i++)
        if (!strcmp(run->steps[i].id, step_id))
            return &run->steps[i];
    return NULL;
}

void wfh_store_run_free(wfh_store_run *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->steps && i < r->step_count; i++) {
        free(r->steps[i].id);
        free(r->steps[i].def_hash);
        free(r->steps[i].error);
        free(r->steps[i].idempotency_key);
        json_decref(r->steps[i].outputs);
    }
    free(r->steps);
    free(r->id);
    free(r->workflow);
    free(r->file_path);
    free(r->file_hash);
    free(r->error);
    json_decref(r->inputs);
    free(r);
}
