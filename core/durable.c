/*
 * core/durable.c - durable runs: the scheduler's state changes written to the run
 * store before they happen, and the way back in (`wfhost resume`, `wfhost retry`).
 *
 * See core/durable.h for which changes are durable. This file keeps the store logic
 * out of the CLI and out of the scheduler: cmd_exec.c opens the store and installs
 * wfh_durable_on_event; cmd_resume.c/cmd_retry.c use the rest.
 *
 * Crash testing: $WFH_DURABLE_KILL_AT=N makes the host SIGKILL itself just before its
 * Nth store write, and N+ just after the Nth write committed, so the integration tests
 * can stop a run at every point of its life deterministically (tests/integration/
 * durable_*.sh). $WFH_DURABLE_FAIL_AT=N makes the Nth write fail instead, as a full
 * disk would, so every write's failure path is exercised (curl's torture tests, one
 * point at a time). Log lines are not counted. Nothing else reads these.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <wfhost/plugin.h>

#include "durable.h"
#include "error.h"
#include "home.h"

typedef struct plugin_hash {
    const wfh_plugin_meta *plugin; /* borrowed from the catalog */
    char *hash;                    /* owned: hex SHA-256 of the plugin file, or NULL */
} plugin_hash;

struct wfh_durable {
    wfh_store *st;              /* borrowed */
    const wfh_workflow *wf;     /* borrowed */
    wfh_run *run;               /* borrowed, NULL until attached */
    char *run_id;               /* owned */
    char (*def_hash)[65];       /* owned [n_steps] */
    plugin_hash *plugins;       /* owned [n_plugins] */
    size_t n_plugins;
    unsigned long writes;       /* store writes so far (for the kill points) */
    unsigned long kill_at;      /* $WFH_DURABLE_KILL_AT, 0 if unset */
    int kill_after;             /* "N+": after the write rather than before */
    unsigned long fail_at;      /* $WFH_DURABLE_FAIL_AT, 0 if unset */
    int log_failed;             /* a log append failed (reported once) */
    int restoring;              /* inside wfh_durable_restore: record nothing */
    char finish_error[512];     /* why the run's end was not recorded, or "" */
    wfh_store *log_st;          /* owned, may be NULL: log lines, synchronous=NORMAL */
    char *log_home;             /* owned: the --home for log_st, opened at its first use */
    int log_wanted;             /* wfh_durable_open_logs was called; log_st not tried yet */
    const json_t *inputs;       /* borrowed, may be NULL: recorded by wfh_durable_create */
    int grouped;                /* group commit on (wfh_durable_on_flush) */
    int group_open;             /* a state write is in the group, not committed yet: the
                                   state handle holds the store's write lock */
    int kill_pending;           /* the "N+" kill point waits for its write's commit */
    int create_open;            /* wfh_durable_create_grouped: the first on_flush call
                                   finds grouping on already and commits nothing */
    /* The last sandbox report written, as a copy and as its JSON text: every pass step
     * (and every attempt under one profile) reports the same one, and dumping it per
     * attempt was ~7 000 instructions of a pass step (callgrind). */
    json_t *sandbox_obj;        /* owned (a deep copy), or NULL */
    char *sandbox_text;         /* owned: json_dumps of sandbox_obj */
    char *wf_env_text;          /* owned: the workflow's env as the definition hashes
                                   write it (def_hash_step) */
};

int wfh_durable_open_logs(wfh_durable *d, const char *home_opt)
{
    wfh_store_free(d->log_st);
    d->log_st = NULL;
    free(d->log_home);
    d->log_home = NULL;
    d->log_wanted = 0;
    if (home_opt && !(d->log_home = strdup(home_opt)))
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    d->log_wanted = 1;
    return 0;
}

/* The log handle, opened at the first line that is not part of a group: under group
 * commit (exec) every line joins the group, and a second connection would cost each
 * start an open, its schema read and its WAL set-up for nothing. NULL: use d->st. */
static wfh_store *log_store(wfh_durable *d)
{
    if (d->log_wanted) {
        d->log_wanted = 0;
        if (wfh_durable_open_store(d->log_home, WFH_STORE_SYNC_NORMAL | WFH_STORE_NO_CREATE,
                                   &d->log_st) < 0)
            d->log_st = NULL; /* lines go through the state handle, as they did before */
    }
    return d->log_st;
}

int wfh_durable_open_store(const char *home_opt, unsigned flags, wfh_store **out)
{
    char *home = NULL; /* owned */
    *out = NULL;
    int err = wfh_home_path(home_opt, &home);
    if (err == 0)
        err = wfh_store_open(home, flags, out);
    free(home);
    return err;
}

int wfh_durable_lock_run(const char *home_opt, const char *run_id, int *fd_out)
{
    int err = 0, fd = -1;
    char *home = NULL, *dir = NULL, *path = NULL; /* owned */
    *fd_out = -1;
    if ((err = wfh_home_path(home_opt, &home)) < 0)
        goto done;
    size_t n = strlen(home) + strlen(run_id) + 16;
    if (!(dir = malloc(n)) || !(path = malloc(n))) {
        err = wfh_error_set(WFH_ENOMEM, "run %s: out of memory", run_id);
        goto done;
    }
    snprintf(dir, n, "%s/locks", home);
    snprintf(path, n, "%s/%s.lock", dir, run_id);
    if ((err = wfh_home_ensure(dir)) < 0)
        goto done;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        err = wfh_error_set(WFH_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    /* flock, not a pid check: the kernel drops it when the holder dies, SIGKILL included. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
        pid[got > 0 ? got : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            err = wfh_error_set(WFH_EINVAL, "run %s is being run by another wfhost process on "
                                "this machine%s%s%s: wait for it, or stop it first",
                                run_id, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        else
            err = wfh_error_set(WFH_EIO, "%s: %s", path, strerror(e));
        goto done;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        err = wfh_error_set(WFH_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    *fd_out = fd;
    fd = -1;
done:
    if (fd >= 0)
        close(fd);
    free(home);
    free(dir);
    free(path);
    return err;
}

void wfh_durable_unlock_run(int fd)
{
    if (fd >= 0)
        close(fd); /* the file stays: unlinking it would race a process about to lock it */
}

/* ---- definition hashes ------------------------------------------------------------ */

/* A value as JSON that tells literals from template text ("${{ x }}" vs the string it
 * evaluates to), so two definitions hash alike only if they read alike. */
static json_t *value_json(const wfh_value *v)
{
    if (!v)
        return json_null();
    switch (v->kind) {
    case WFH_V_LITERAL: return json_pack("{s:O}", "l", v->literal ? v->literal : json_null());
    case WFH_V_TMPL: return json_pack("{s:s%}", "t", v->text ? v->text : "", v->text_len);
    case WFH_V_ARRAY: {
        json_t *a = json_array(); /* owned */
        for (size_t i = 0; a && i < v->n; i++)
            if (json_array_append_new(a, value_json(v->items[i])) < 0) {
                json_decref(a);
                return NULL;
            }
        return a;
    }
    case WFH_V_OBJECT: {
        json_t *o = json_object(); /* owned */
        for (size_t i = 0; o && i < v->n; i++)
            if (json_object_set_new(o, v->keys[i], value_json(v->items[i])) < 0) {
                json_decref(o);
                return NULL;
            }
        return json_pack("{s:o}", "o", o);
    }
    }
    return NULL;
}

static int hash_cb(const char *buf, size_t size, void *data)
{
    crypto_hash_sha256_update(data, (const unsigned char *)buf, size);
    return 0;
}

static void hash_str(crypto_hash_sha256_state *h, const char *s)
{
    crypto_hash_sha256_update(h, (const unsigned char *)s, strlen(s));
}

/* Hash @p v (owned, taken; NULL after an allocation failed) written as json_dumps
 * writes it inside a document: compact, keys sorted. Returns 0 or -1. */
static int hash_json(crypto_hash_sha256_state *h, json_t *v)
{
    int rc = v ? json_dump_callback(v, hash_cb, h, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
               : -1;
    json_decref(v);
    return rc;
}

/* H(type, major, with, env, workflow env, needs' hashes): a step keeps its recorded
 * result across a changed file only if nothing it reads could have changed, which
 * includes every step upstream of it. Called in topological order.
 *
 * The hashed text is, byte for byte, what earlier versions hashed (the run store keeps
 * these hashes, and resume compares them): json_dumps(JSON_COMPACT | JSON_SORT_KEYS) of
 * {"env", "major", "needs", "type", "wf_env", "with"} (the keys in sorted order). It is
 * streamed into the hash instead of built as one document, and the workflow's env is
 * written once per run (d->wf_env_text), not once per step: the document and its
 * sorting were 16 % of a chain of pass steps (callgrind). tests/integration/
 * durable_def_hash.sh pins the hashes. */
static int def_hash_step(wfh_durable *d, size_t i)
{
    const wfh_step *st = &d->wf->steps[i];
    crypto_hash_sha256_state h;
    char num[64];
    crypto_hash_sha256_init(&h);
    hash_str(&h, "{\"env\":");
    if (hash_json(&h, value_json(st->env)) < 0)
        goto nomem;
    snprintf(num, sizeof num, ",\"major\":%d,\"needs\":[", st->major);
    hash_str(&h, num);
    for (size_t k = 0; k < st->n_needs; k++) {
        hash_str(&h, k ? ",\"" : "\""); /* hex digits: nothing to escape */
        hash_str(&h, d->def_hash[st->needs[k]]);
        hash_str(&h, "\"");
    }
    hash_str(&h, "],\"type\":");
    if (!st->type || hash_json(&h, json_string(st->type)) < 0)
        goto nomem;
    hash_str(&h, ",\"wf_env\":");
    hash_str(&h, d->wf_env_text);
    hash_str(&h, ",\"with\":");
    if (hash_json(&h, value_json(st->with)) < 0)
        goto nomem;
    hash_str(&h, "}");
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, digest);
    sodium_bin2hex(d->def_hash[i], sizeof d->def_hash[i], digest, sizeof digest);
    return 0;
nomem:
    return wfh_error_set(WFH_ENOMEM, "%s: step %s: out of memory", d->wf->path, st->id);
}

int wfh_durable_new(wfh_store *st, const wfh_workflow *wf, wfh_durable **out)
{
    int err = 0;
    size_t n = wf->n_steps;
    wfh_durable *d = calloc(1, sizeof *d); /* owned until handed out */
    *out = NULL;
    if (!d)
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", wf->path);
    d->st = st;
    d->wf = wf;
    d->def_hash = calloc(n ? n : 1, sizeof *d->def_hash);
    d->plugins = calloc(n ? n : 1, sizeof *d->plugins);
    json_t *wf_env = value_json(wf->env); /* owned */
    d->wf_env_text = wf_env ? json_dumps(wf_env, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                            : NULL;
    json_decref(wf_env);
    if (!d->def_hash || !d->plugins || !d->wf_env_text) {
        err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", wf->path);
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = wf->order ? wf->order[k] : k;
        if ((err = def_hash_step(d, i)) < 0)
            goto done;
    }
    const char *kill = getenv("WFH_DURABLE_KILL_AT");
    if (kill && *kill) {
        char *end = NULL;
        d->kill_at = strtoul(kill, &end, 10);
        d->kill_after = end && *end == '+';
    }
    const char *fail = getenv("WFH_DURABLE_FAIL_AT");
    if (fail && *fail)
        d->fail_at = strtoul(fail, NULL, 10);
done:
    if (err < 0) {
        wfh_durable_free(d);
        return err;
    }
    *out = d;
    return 0;
}

void wfh_durable_free(wfh_durable *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_plugins; i++)
        free(d->plugins[i].hash);
    free(d->plugins);
    free(d->def_hash);
    wfh_store_free(d->log_st);
    free(d->log_home);
    free(d->run_id);
    json_decref(d->sandbox_obj);
    free(d->sandbox_text);
    free(d->wf_env_text);
    free(d);
}

const char *wfh_durable_def_hash(const wfh_durable *d, size_t step)
{
    return d->def_hash[step];
}

/* ---- the write path ----------------------------------------------------------------- */

/* Every store write goes through here: the crash tests' kill points. */
static void kill_point(wfh_durable *d, int after)
{
    if (!d->kill_at || d->writes != d->kill_at || after != d->kill_after)
        return;
    fflush(NULL);
    raise(SIGKILL);
}

/* Before the Nth write: maybe die there, or fail it as a full disk would. */
static int write_begin(wfh_durable *d)
{
    d->writes++;
    d->group_open |= d->grouped;
    kill_point(d, 0);
    if (d->fail_at && d->writes == d->fail_at)
        return wfh_error_set(WFH_EIO, "run store: write %lu failed ($WFH_DURABLE_FAIL_AT)",
                             d->writes);
    return 0;
}

static int write_end(wfh_durable *d, int err)
{
    /* "just after the Nth write committed": in a group, that is at the group's commit */
    if (err == 0 && d->grouped && d->kill_at && d->writes == d->kill_at && d->kill_after)
        d->kill_pending = 1;
    else if (err == 0)
        kill_point(d, 1);
    return err;
}

/* A group commit of @p err: the deferred "N+" kill point fires once it succeeded. */
static int group_end(wfh_durable *d, int err)
{
    if (err == 0 && d->kill_pending) {
        fflush(NULL);
        raise(SIGKILL);
    }
    return err;
}

int wfh_durable_on_flush(void *ud)
{
    wfh_durable *d = ud;
    if (d->create_open) { /* grouping is on: the creation waits for the first turn */
        d->create_open = 0;
        return 0;
    }
    if (!d->grouped) {
        d->grouped = 1;
        return wfh_store_group(d->st, 1);
    }
    d->group_open = 0; /* committed, or rolled back by the failure */
    return group_end(d, wfh_store_group_commit(d->st));
}

static int set_run_id(wfh_durable *d, const char *run_id)
{
    free(d->run_id);
    d->run_id = strdup(run_id);
    return d->run_id ? 0 : wfh_error_set(WFH_ENOMEM, "run %s: out of memory", run_id);
}

void wfh_durable_set_inputs(wfh_durable *d, const json_t *inputs)
{
    d->inputs = inputs;
}

/* Record the run as created and running, in one group (nothing acts on either in
 * between); committed at once, or with @p leave_open left for the first turn. */
static int create_run(wfh_durable *d, const char *run_id, int leave_open)
{
    int err = 0;
    char *path = NULL, *hash = NULL, *id = NULL, *inputs = NULL; /* owned */
    if ((err = set_run_id(d, run_id)) < 0)
        goto done;
    /* The absolute path: resume may start from any directory. */
    path = realpath(d->wf->path, NULL);
    if (!path) {
        err = wfh_error_set(WFH_EIO, "%s: %s", d->wf->path, strerror(errno));
        goto done;
    }
    if ((err = wfh_store_hash_file(path, &hash)) < 0)
        goto done;
    if (d->inputs && !(inputs = json_dumps(d->inputs, JSON_COMPACT | JSON_SORT_KEYS))) {
        err = wfh_error_set(WFH_ENOMEM, "run %s: out of memory", run_id);
        goto done;
    }
    wfh_store_run_new rn = {.workflow = d->wf->name, .file_path = path, .file_hash = hash,
                            .id = run_id, .inputs_json = inputs};
    int was_grouped = d->grouped;
    d->grouped = 1;
    if ((err = wfh_store_group(d->st, 1)) == 0 &&
        (err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_run_create(d->st, &rn, &id))) == 0)
        err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_run_set_state(d->st, run_id, WFH_STATE_RUNNING, NULL));
    if (err == 0 && leave_open && !was_grouped) {
        d->create_open = 1;
    } else if (!was_grouped) {
        d->grouped = 0;
        d->group_open = 0;
        int cerr = group_end(d, wfh_store_group(d->st, 0));
        err = err < 0 ? err : cerr;
    }
done:
    free(path);
    free(hash);
    free(id);
    free(inputs);
    return err;
}

int wfh_durable_create(wfh_durable *d, const char *run_id)
{
    return create_run(d, run_id, 0);
}

int wfh_durable_create_grouped(wfh_durable *d, const char *run_id)
{
    return create_run(d, run_id, 1);
}

static wfh_state store_state(wfh_sstate s)
{
    switch (s) {
    case WFH_S_PENDING: return WFH_STATE_PENDING;
    case WFH_S_QUEUED: return WFH_STATE_QUEUED;
    case WFH_S_RUNNING: return WFH_STATE_RUNNING;
    case WFH_S_RETRYING: return WFH_STATE_RETRYING;
    case WFH_S_SUCCEEDED: return WFH_STATE_SUCCEEDED;
    case WFH_S_FAILED: return WFH_STATE_FAILED;
    case WFH_S_TIMED_OUT: return WFH_STATE_TIMED_OUT;
    case WFH_S_SKIPPED: return WFH_STATE_SKIPPED;
    case WFH_S_CANCELLED: return WFH_STATE_CANCELLED;
    case WFH_S__COUNT: break;
    }
    return WFH_STATE_FAILED;
}

/* The JSON text of sandbox report @p sb (NULL for none), borrowed from @p d until the
 * next call: dumped only when it differs from the last one (json_equal, on a copy, so
 * a report changed in place since is still seen as new). NULL also if out of memory,
 * which records the attempt without its report, as before. */
static const char *sandbox_text(wfh_durable *d, const json_t *sb)
{
    if (!sb)
        return NULL;
    if (d->sandbox_obj && json_equal(d->sandbox_obj, sb))
        return d->sandbox_text;
    json_decref(d->sandbox_obj);
    free(d->sandbox_text);
    d->sandbox_obj = json_deep_copy(sb);
    d->sandbox_text = json_dumps(sb, JSON_COMPACT | JSON_SORT_KEYS);
    if (!d->sandbox_obj || !d->sandbox_text) {
        json_decref(d->sandbox_obj);
        free(d->sandbox_text);
        d->sandbox_obj = NULL;
        d->sandbox_text = NULL;
    }
    return d->sandbox_text;
}

/* The plugin file's hash, once per plugin: `runs show` names exactly what ran. */
static const char *plugin_file_hash(wfh_durable *d, const wfh_plugin_meta *p)
{
    for (size_t i = 0; i < d->n_plugins; i++)
        if (d->plugins[i].plugin == p)
            return d->plugins[i].hash;
    if (d->n_plugins >= d->wf->n_steps) /* cannot happen: at most one per step */
        return NULL;
    plugin_hash *ph = &d->plugins[d->n_plugins++];
    ph->plugin = p;
    /* A registry plugin: the SHA-256 the index signed, which every attempt checks the
     * loaded bytes against - not a second read of a path that could change meanwhile. */
    if (p->sha256)
        ph->hash = strdup(p->sha256);
    else if (p->path && wfh_store_hash_file(p->path, &ph->hash) < 0)
        ph->hash = NULL; /* recorded as unknown; the attempt itself will say more */
    return ph->hash;
}

int wfh_durable_on_event(void *ud, const wfh_sched_event *ev)
{
    wfh_durable *d = ud;
    int err = 0;
    char *key = NULL; /* owned */
    const wfh_step *st = &d->wf->steps[ev->step];
    const char *step_id = st->id;
    const char *hash = d->def_hash[ev->step];
    unsigned attempt = ev->attempt; /* counts on from the recorded ones after a resume */

    if (!d->run_id)
        return wfh_error_set(WFH_EINVAL, "step %s: run store not set up (no run)", step_id);
    /* Restoring replays recorded successes, whose consequences (dependents queued) are
     * recomputed, not news: writing them would mark a step that succeeded, and is
     * restored a moment later, as merely queued in the store. */
    if (d->restoring)
        return 0;
    /* pending -> queued is recorded too, though resume recomputes it from the needs'
     * recorded successes: leaving it out saved about a fifth of the store's cost on
     * 1000 fanned-out steps (not half), so the history stays complete instead. */
    if (ev->to == WFH_S_RUNNING) {
        const wfh_plugin_meta *p = st->meta ? st->meta->plugin : NULL;
        wfh_store_plugin_ref ref = {
            .name = p ? p->name : st->type,
            .version = p ? p->version : NULL,
            .file_hash = p ? plugin_file_hash(d, p) : NULL,
        };
        if ((err = wfh_store_idempotency_key(d->run_id, step_id, &key)) < 0)
            goto done;
                err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_attempt_start(d->st, d->run_id, step_id, attempt, key, &ref));
        goto done;
    }
    if (ev->from == WFH_S_RUNNING) {
        wfh_run_attempt_info info = {.outputs = NULL, .exit_code = -1, .term_signal = 0,
                                     .step_status = -1, .sandbox = NULL};
        if (d->run)
            wfh_run_attempt_get(d->run, ev->step, &info);
        wfh_state as = store_state(ev->to);
        if (ev->to == WFH_S_RETRYING) /* the attempt failed; its step will try again */
            as = info.step_status == WFH_STEP_TIMEOUT ? WFH_STATE_TIMED_OUT : WFH_STATE_FAILED;
        wfh_store_attempt_end end = {
            .state = as,
            .error = ev->to == WFH_S_SUCCEEDED ? NULL : ev->reason,
            .exit_code = info.exit_code,
            .term_signal = info.term_signal,
            .step_status = info.step_status,
        };
        /* which protections were actually applied, kept with the attempt */
        end.sandbox_json = sandbox_text(d, info.sandbox);
                err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_step_attempt_end(
                               d->st, d->run_id, step_id, attempt, &end, store_state(ev->to),
                               hash, ev->to == WFH_S_SUCCEEDED ? info.outputs : NULL));
        goto done;
    }
        err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_step_set_state(d->st, d->run_id, step_id, store_state(ev->to),
                                                hash, NULL, ev->reason));
done:
    free(key);
    return err;
}

void wfh_durable_on_log(void *ud, size_t step, unsigned attempt, int level, const char *msg,
                        size_t len)
{
    wfh_durable *d = ud;
    if (!d->run_id)
        return;
    char *line = strndup(msg, len); /* owned: the store wants a C string */
    /* While a group holds state writes, the state handle holds the write lock until
     * the turn commits: the log handle would wait for it, so the line joins the group.
     * Otherwise (no group, or nothing in it yet: most lines arrive as the host reads
     * its pipes, before the turn's first change) the line goes through the log handle,
     * so a line alone never costs the next flush an fsync (issue #8: 1000 for-each
     * items that each logged a line cost 1000 fdatasync; the log handle's commit
     * reaches the disk with the next state commit's). */
    wfh_store *st = !d->group_open && log_store(d) ? d->log_st : d->st; /* borrowed */
    int err = line ? wfh_store_log_append(st, d->run_id, d->wf->steps[step].id,
                                          attempt, level, line)
                   : wfh_error_set(WFH_ENOMEM, "out of memory");
    free(line);
    if (err < 0 && !d->log_failed) {
        d->log_failed = 1;
        fprintf(stderr, "wfhost: warning: run %s: log lines are not being kept: %s\n",
                d->run_id, wfh_error_last());
    }
}

int wfh_durable_finish(wfh_durable *d, int run_err, const char *error)
{
    if (!d->run_id)
        return 0;
    wfh_state s = run_err == 0                ? WFH_STATE_SUCCEEDED
                  : run_err == WFH_ECANCELLED ? WFH_STATE_CANCELLED
                                              : WFH_STATE_FAILED;
    int err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_run_set_state(d->st, d->run_id, s,
                                                   run_err == 0 ? NULL : error));
    if (d->grouped) { /* the run's end with the last turn's changes: one commit; then one
                         transaction per call again */
        d->grouped = 0;
        d->group_open = 0;
        d->create_open = 0;
        int cerr = group_end(d, wfh_store_group(d->st, 0));
        err = err < 0 ? err : cerr;
    }
    if (err < 0)
        snprintf(d->finish_error, sizeof d->finish_error, "%s", wfh_error_last());
    return err;
}

void wfh_durable_report(const wfh_durable *d, json_t *doc)
{
    if (!d || !d->finish_error[0] || !json_is_object(doc))
        return;
    json_object_set_new(doc, "status", json_string("failed"));
    json_object_set_new(doc, "error", json_string(d->finish_error));
}

/* ---- the way back in ------------------------------------------------------------------ */

int wfh_durable_check_file(wfh_durable *d, const wfh_store_run *rec, int allow_changed,
                           int *changed)
{
    char *hash = NULL; /* owned */
    *changed = 0;
    int err = wfh_store_hash_file(d->wf->path, &hash);
    if (err < 0)
        return err;
    if (!rec->file_hash || strcmp(hash, rec->file_hash) != 0) {
        *changed = 1;
        if (!allow_changed)
            err = wfh_error_set(WFH_EINVAL,
                                "run %s: %s changed since the run started (hash %.12s..., "
                                "recorded %.12s...); pass --allow-changed to keep only the "
                                "results of unchanged steps",
                                rec->id, d->wf->path, hash,
                                rec->file_hash ? rec->file_hash : "none");
    }
    free(hash);
    return err;
}

int wfh_durable_reopen(wfh_durable *d, const char *run_id, int retry, wfh_store_run **out)
{
    int err = 0;
    wfh_store_run *rec = NULL; /* owned until handed out */
    *out = NULL;
    if ((err = set_run_id(d, run_id)) < 0)
        return err;
    if (!retry) {
                err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_run_reopen(d->st, run_id,
                                                "the host stopped during this attempt", &rec));
        goto done;
    }
    if ((err = wfh_store_run_load(d->st, run_id, &rec)) < 0)
        goto done;
    for (size_t i = 0; i < rec->step_count; i++) {
        wfh_store_step *s = &rec->steps[i];
        if (s->state == WFH_STATE_SUCCEEDED || s->state == WFH_STATE_QUEUED ||
            s->state == WFH_STATE_PENDING)
            continue;
                if ((err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_step_set_state(d->st, run_id, s->id, WFH_STATE_QUEUED,
                                                         NULL, NULL, NULL))) < 0)
            goto done;
        s->state = WFH_STATE_QUEUED;
    }
        err = write_begin(d) < 0 ? WFH_EIO : write_end(d, wfh_store_run_set_state(d->st, run_id, WFH_STATE_RUNNING, NULL));
done:
    if (err < 0) {
        wfh_store_run_free(rec);
        return err;
    }
    *out = rec;
    return 0;
}

void wfh_durable_attach(wfh_durable *d, wfh_run *run)
{
    d->run = run;
}

int wfh_durable_restore(wfh_durable *d, wfh_run *run, const wfh_store_run *rec, int changed,
                        size_t *kept)
{
    size_t n_kept = 0;
    int err = 0;
    d->run = run;
    d->restoring = 1;
    for (size_t k = 0; k < d->wf->n_steps; k++) {
        size_t i = d->wf->order ? d->wf->order[k] : k;
        const wfh_store_step *s = wfh_store_run_step(rec, d->wf->steps[i].id);
        if (!s)
            continue; /* never reached: runs as new */
        /* A need that was not kept (its definition changed) makes this step's hash
         * differ too, so restore only fails on a store edited by hand: run it then. */
        if (s->state == WFH_STATE_SUCCEEDED &&
            (!changed || (s->def_hash && !strcmp(s->def_hash, d->def_hash[i]))) &&
            wfh_run_restore(run, i, s->outputs, s->attempts) == 0) {
            n_kept++;
            continue;
        }
        /* Its next attempt is numbered after the recorded ones (the store refuses a
         * number twice) and its retry policy counts them. */
        if ((err = wfh_run_set_attempts(run, i, s->attempts)) < 0)
            break;
    }
    d->restoring = 0;
    if (kept)
        *kept = n_kept;
    return err;
}
