/*
 * core/store.h - the run store: every run, step and attempt state change, written
 * before the host acts on it, so a host killed at any moment can be resumed.
 *
 * One interface, several engines: wfh_store is a handle plus an ops table
 * (wfh_store_ops). The embedded default is SQLite in WAL mode in the wfhost home
 * (core/store_sqlite.c); PostgreSQL with the same tables (core/store_pg.c) lets
 * several hosts share one store ($WFH_STORE_URL). Engine-independent work (argument
 * checks, run ids, moving large outputs to files) lives in core/store.c.
 *
 * Backups: copy the home while no host runs, or use `sqlite3 runs.db ".backup F"`
 * (a plain copy of a live WAL database may miss the -wal file's commits).
 *
 * Durability: each state change is one transaction, committed with synchronous=FULL by
 * default, so a change that returned 0 survives power loss. WFH_STORE_SYNC_NORMAL trades
 * that for speed: in WAL mode the store stays consistent after power loss, but the last
 * few commits may be lost, so a step could run again on resume (an application crash
 * alone still loses nothing). Several processes may share one store: writers take the
 * write lock up front (BEGIN IMMEDIATE) and wait for it (busy timeout, then retries).
 *
 * How a run is recorded (one call per state change, each before the change is acted
 * on; a failing call vetoes the change, so a full disk stops the run rather than
 * letting it go on unrecorded):
 *   run starts      wfh_store_run_create (id, workflow, file, wfh_store_hash_file),
 *                   then wfh_store_run_set_state(RUNNING)
 *   step -> queued / skipped / cancelled / failed-before-starting
 *                   wfh_store_step_set_state(state, def_hash, NULL, reason)
 *   step -> running (attempt n)
 *                   wfh_store_attempt_start(n, "<run>/<step>" key, plugin) before the
 *                   runner is spawned
 *   attempt ends    wfh_store_step_attempt_end(n, {state, error, exit, signal,
 *                   plugin status}, the step's new state (succeeded, failed,
 *                   timed_out, cancelled or retrying), def_hash, outputs on success)
 *   retry wait over wfh_store_step_set_state(QUEUED)
 *   log line        wfh_store_log_append
 *   run ends        wfh_store_run_set_state(SUCCEEDED | FAILED | CANCELLED, reason)
 *   resume          wfh_store_run_reopen: succeeded steps keep their outputs; the
 *                   next attempt of an unfinished step is `attempts + 1`, same key
 *   retry           wfh_store_run_load, then step_set_state(QUEUED) for the failed,
 *                   skipped, cancelled and timed-out steps, then as resume
 *
 * Errors: every function returns 0 or a negative WFH_E* code with a one-line message
 * naming the store file. A corrupt, truncated or newer-schema store, and a full disk,
 * are errors (WFH_EIO / WFH_EINVAL), never crashes.
 */
#ifndef WFH_STORE_H
#define WFH_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/** States of runs, steps and attempts. Stored as their names (wfh_store_state_name). */
typedef enum wfh_state {
    WFH_STATE_QUEUED = 0,
    WFH_STATE_RUNNING = 1,
    WFH_STATE_SUCCEEDED = 2,
    WFH_STATE_FAILED = 3,
    WFH_STATE_RETRYING = 4, /* step: waiting to start its next attempt */
    WFH_STATE_SKIPPED = 5,
    WFH_STATE_CANCELLED = 6,
    WFH_STATE_TIMED_OUT = 7,
    WFH_STATE_PENDING = 8, /* step: waiting for its needs (the scheduler's first state) */
} wfh_state;

/** "queued", "running", ...; static string ("?" for an unknown value). */
const char *wfh_store_state_name(wfh_state s);
/** Parse a state name. @return 0 or WFH_EINVAL. */
int wfh_store_state_parse(const char *name, wfh_state *out);
/** True for states that end a run/step/attempt (succeeded, failed, skipped, ...). */
int wfh_store_state_is_final(wfh_state s);

/** The newest schema this wfhost reads and writes (SQLite: PRAGMA user_version). */
/* 2: runs.inputs; 3: attempts.sandbox; 4: SQLite events.seq without AUTOINCREMENT
 * (older stores are upgraded when opened) */
#define WFH_STORE_SCHEMA_VERSION 4

/** Outputs whose JSON text is longer than this go to a file under the home. */
#define WFH_STORE_INLINE_MAX (64 * 1024)

typedef struct wfh_store wfh_store;

enum {
    WFH_STORE_SYNC_NORMAL = 1 << 0, /* see the durability note above */
    WFH_STORE_NO_CREATE = 1 << 1,   /* for list/show/logs/prune: never creates a store */
};

/**
 * Open (creating if needed, unless WFH_STORE_NO_CREATE) the store in wfhost home
 * @p home: the file @p home/runs.db, large outputs under @p home/outputs/ (unless
 * $WFH_STORE_URL names another store: see wfh_store_open_url).
 * @param home borrowed; must be a directory path (created if missing, unless read-only).
 * @param flags WFH_STORE_* bits.
 * @param out receives the handle (owned by the caller; wfh_store_free).
 * @return 0; WFH_EIO (cannot open, corrupt, truncated, not a wfhost store, disk full);
 *         WFH_EINVAL (written by a newer wfhost); WFH_ENOTFOUND (read-only and absent).
 */
int wfh_store_open(const char *home, unsigned flags, wfh_store **out);

/**
 * Open the store named by @p url: NULL, "" or "sqlite" for the SQLite file in @p home
 * (as wfh_store_open), or "postgresql://..." (a libpq URL) for a store shared by several
 * hosts. wfh_store_open(home, ...) is wfh_store_open_url($WFH_STORE_URL, home, ...).
 * Messages name a PostgreSQL store by host, port and database, never by its password.
 */
int wfh_store_open_url(const char *url, const char *home, unsigned flags, wfh_store **out);

/** Close. wfh_store_free(NULL) is a no-op. */
void wfh_store_free(wfh_store *s);

/** The store's file (or URL), for messages. Borrowed from @p s. */
const char *wfh_store_location(const wfh_store *s);

/** What a new run is. All strings borrowed for the call. */
typedef struct wfh_store_run_new {
    const char *workflow;  /* the workflow's name */
    const char *file_path; /* the workflow file as given */
    const char *file_hash; /* hex hash of the file's bytes (resume refuses a changed file) */
    const char *id;        /* NULL: the store makes one (sortable by time, random tail) */
    const char *inputs_json; /* the resolved inputs as one JSON object, or NULL (never
                              * secrets: resume and retry run with these again) */
} wfh_store_run_new;

/**
 * Record a new run in state queued.
 * @param id_out receives the run id (owned by the caller; free()).
 * @return 0, WFH_EINVAL (missing field, duplicate id), WFH_EIO.
 */
int wfh_store_run_create(wfh_store *s, const wfh_store_run_new *run, char **id_out);

/**
 * The run moved to @p state (running, succeeded, failed, cancelled). Sets started/
 * finished times. @p error is a one-line reason or NULL.
 * @return 0, WFH_ENOTFOUND (no such run), WFH_EIO.
 */
int wfh_store_run_set_state(wfh_store *s, const char *run_id, wfh_state state,
                            const char *error);

/**
 * Step @p step_id moved to @p state. @p def_hash (hash of the step's definition and
 * resolved inputs; may be NULL to keep the stored one) lets resume with a changed file
 * keep only unchanged steps. @p outputs (borrowed; NULL for none) is recorded on
 * success; outputs larger than WFH_STORE_INLINE_MAX go to a file referenced from the
 * store. @p error: one line or NULL.
 * @return 0, WFH_ENOTFOUND (no such run), WFH_EIO.
 */
int wfh_store_step_set_state(wfh_store *s, const char *run_id, const char *step_id,
                             wfh_state state, const char *def_hash, json_t *outputs,
                             const char *error);

/** Which plugin ran an attempt. Strings borrowed for the call; any may be NULL. */
typedef struct wfh_store_plugin_ref {
    const char *name;
    const char *version;
    const char *file_hash;
} wfh_store_plugin_ref;

/**
 * Attempt @p attempt (1-based) of a step is about to start: recorded as running with
 * its idempotency key and plugin, *before* the runner is spawned.
 * @return 0, WFH_EINVAL (attempt already recorded), WFH_ENOTFOUND, WFH_EIO.
 */
int wfh_store_attempt_start(wfh_store *s, const char *run_id, const char *step_id,
                            unsigned attempt, const char *idempotency_key,
                            const wfh_store_plugin_ref *plugin);

/** How an attempt ended. */
typedef struct wfh_store_attempt_end {
    wfh_state state;   /* succeeded, failed, timed_out, cancelled */
    const char *error; /* one line or NULL; borrowed */
    int exit_code;     /* the runner's exit code, or -1 */
    int term_signal;   /* the signal that killed the runner, or 0 */
    int step_status;   /* the plugin's wfh_step_status, or -1 if none was reported */
    const char *sandbox_json; /* what confined the attempt, as the runner reported it
                                 (docs/sandbox.md), or NULL; borrowed */
} wfh_store_attempt_end;

/* For the backends: an attempt row's "sandbox" text (@p a borrowed) becomes the JSON it
 * holds (null before schema 3). @return 0 or WFH_EIO naming @p where (corrupt store). */
int wfh_store_attempt_sandbox_parse(json_t *a, const char *where);

/** Attempt @p attempt ended. @return 0, WFH_ENOTFOUND (never started), WFH_EIO. */
int wfh_store_attempt_finish(wfh_store *s, const char *run_id, const char *step_id,
                             unsigned attempt, const wfh_store_attempt_end *end);

/**
 * An attempt ended and its step moved to @p step_state (succeeded, failed, retrying,
 * timed_out, cancelled), in ONE transaction: a crash cannot leave the attempt finished
 * but the step's outcome (or outputs) unrecorded. @p outputs as in
 * wfh_store_step_set_state (kept only when @p step_state is succeeded); the step's
 * error is end->error.
 * @return 0, WFH_ENOTFOUND (attempt never started), WFH_EIO.
 */
int wfh_store_step_attempt_end(wfh_store *s, const char *run_id, const char *step_id,
                               unsigned attempt, const wfh_store_attempt_end *end,
                               wfh_state step_state, const char *def_hash, json_t *outputs);

/**
 * Group commit. With @p on, the mutating calls that follow join one open transaction
 * (each in a savepoint of its own, so a failing call still leaves nothing behind) until
 * wfh_store_group_commit makes them durable together, at the store's synchronous
 * setting, with one fsync instead of one per call. The caller must commit before it
 * acts on any of them (the scheduler: before it spawns a runner and before it waits),
 * so "written before acted on" still holds; what a crash loses is only changes nothing
 * had acted on yet. Off commits what is open and goes back to one transaction per call.
 * Engines without it (PostgreSQL) keep committing each call; both return 0 then.
 * @return 0, or WFH_EIO (the commit failed: none of the grouped changes were kept).
 */
int wfh_store_group(wfh_store *s, int on);
int wfh_store_group_commit(wfh_store *s);

/** Append one log line of an attempt (@p step_id NULL for a run-level line). */
int wfh_store_log_append(wfh_store *s, const char *run_id, const char *step_id,
                         unsigned attempt, int level, const char *msg);

/**
 * The stable idempotency key of a step in a run: the same for every attempt and every
 * resume ("<run_id>/<step_id>"), so plugins can recognise a repeated side effect.
 * @param out receives a malloc'd string (caller frees). @return 0 or WFH_ENOMEM.
 */
int wfh_store_idempotency_key(const char *run_id, const char *step_id, char **out);

/* ---- reading ----------------------------------------------------------------- */

/** Filter for wfh_store_runs_list; zero/NULL fields do not filter. */
typedef struct wfh_store_filter {
    const char *status;   /* state name */
    const char *workflow; /* exact workflow name */
    int64_t since_ms;     /* created at or after (Unix ms) */
    unsigned limit;       /* 0: 100 */
} wfh_store_filter;

/**
 * Runs, newest first, as a JSON array of objects {id, workflow, file, file_hash,
 * status, error, created_ms, started_ms, finished_ms}. @p out owned by the caller.
 */
int wfh_store_runs_list(wfh_store *s, const wfh_store_filter *f, json_t **out);

/**
 * One run with its steps and attempts as a JSON object (what `wfhost runs show
 * --json` prints): the list fields plus "steps": [{id, status, def_hash, outputs,
 * error, started_ms, finished_ms, attempts: [{attempt, status, error, exit_code,
 * term_signal, step_status, idempotency_key, plugin: {name, version, file_hash},
 * started_ms, finished_ms, sandbox}]}]. Large outputs are read back from their files.
 * @return 0, WFH_ENOTFOUND, WFH_EIO.
 */
int wfh_store_run_show(wfh_store *s, const char *run_id, json_t **out);

/**
 * Log lines of a run (all steps, or @p step_id), oldest first, as a JSON array of
 * {step, attempt, level, msg, at_ms}. @return 0, WFH_ENOTFOUND, WFH_EIO.
 */
int wfh_store_logs(wfh_store *s, const char *run_id, const char *step_id, json_t **out);

/**
 * The run's append-only event log (every state change, oldest first), as a JSON array
 * of {seq, step, attempt, status, detail, at_ms}; step/attempt null for run events.
 * @return 0, WFH_ENOTFOUND, WFH_EIO.
 */
int wfh_store_events(wfh_store *s, const char *run_id, json_t **out);

/**
 * Delete finished runs created before @p before_ms (Unix ms), with their steps,
 * attempts, events, logs and output files. Running runs are never pruned.
 * @param removed number of runs deleted (may be NULL).
 */
int wfh_store_prune(wfh_store *s, int64_t before_ms, unsigned *removed);

/* ---- resume ------------------------------------------------------------------ */

/** One step as recorded, for resume. */
typedef struct wfh_store_step {
    char *id;              /* owned */
    wfh_state state;
    char *def_hash;        /* owned, may be NULL */
    json_t *outputs;       /* owned reference, NULL unless recorded (succeeded steps) */
    char *error;           /* owned, may be NULL */
    unsigned attempts;     /* highest attempt number recorded, 0 if none */
    unsigned in_flight;    /* attempt number started but never finished, or 0 */
    char *idempotency_key; /* owned: the key the attempts used, NULL if none */
} wfh_store_step;

/** A run as recorded, for resume and retry. */
typedef struct wfh_store_run {
    char *id, *workflow, *file_path, *file_hash; /* owned */
    wfh_state state;
    char *error; /* owned, may be NULL */
    int64_t created_ms, started_ms, finished_ms; /* 0 if unset */
    size_t step_count;
    wfh_store_step *steps; /* owned array of step_count */
    json_t *inputs; /* owned: the recorded inputs, NULL for a run from before schema 2 */
} wfh_store_run;

/**
 * Load a run for resume: every step recorded, whether it succeeded (and its outputs),
 * and which attempts were in flight when the host stopped.
 * @param out owned by the caller (wfh_store_run_free).
 * @return 0, WFH_ENOTFOUND, WFH_EIO.
 */
int wfh_store_run_load(wfh_store *s, const char *run_id, wfh_store_run **out);

/**
 * Start resuming a run: load it as wfh_store_run_load does (in_flight still names the
 * attempts that were running when the host stopped), then, in one transaction, record
 * those attempts as failed with @p why (e.g. "host stopped during the attempt") and the
 * run as running again. The scheduler then starts attempt `attempts + 1` of each
 * unfinished step under its retry policy, with the same idempotency key.
 * Does not guard against two hosts resuming the same run at once.
 * @return 0, WFH_ENOTFOUND, WFH_EIO.
 */
int wfh_store_run_reopen(wfh_store *s, const char *run_id, const char *why,
                         wfh_store_run **out);

/**
 * SHA-256 of a file's bytes as 64 hex digits, for wfh_store_run_new.file_hash (resume
 * refuses a changed file). @p out malloc'd (caller frees).
 * @return 0, WFH_EIO (with the file named), WFH_ENOMEM.
 */
int wfh_store_hash_file(const char *path, char **out);

/** The step named @p step_id in @p run, or NULL. Borrowed from @p run. */
const wfh_store_step *wfh_store_run_step(const wfh_store_run *run, const char *step_id);

void wfh_store_run_free(wfh_store_run *r);

/* ---- engines ------------------------------------------------------------------ */

/**
 * An engine. core/store.c checks arguments, makes ids and moves large outputs to
 * files before calling these; an engine only reads and writes rows, each mutating
 * call in one transaction that also appends to the events table. Return 0 or a
 * negative WFH_E* code with the message set.
 */
typedef struct wfh_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    int inline_outputs; /* keep every output in the row: hosts do not share a home */
    int (*open)(const char *location, unsigned flags, void **impl);
    void (*close)(void *impl);
    int (*run_create)(void *impl, const char *id, const wfh_store_run_new *run, int64_t now);
    int (*run_set_state)(void *impl, const char *id, wfh_state st, const char *error,
                         int64_t now);
    /* outputs_json / outputs_ref: at most one non-NULL */
    int (*step_set_state)(void *impl, const char *run_id, const char *step_id, wfh_state st,
                          const char *def_hash, const char *outputs_json,
                          const char *outputs_ref, const char *error, int64_t now);
    int (*attempt_start)(void *impl, const char *run_id, const char *step_id,
                         unsigned attempt, const char *key, const wfh_store_plugin_ref *p,
                         int64_t now);
    int (*attempt_finish)(void *impl, const char *run_id, const char *step_id,
                          unsigned attempt, const wfh_store_attempt_end *end, int64_t now);
    /* attempt_finish + step_set_state (error: end->error) in one transaction */
    int (*attempt_end_step)(void *impl, const char *run_id, const char *step_id,
                            unsigned attempt, const wfh_store_attempt_end *end,
                            wfh_state step_state, const char *def_hash,
                            const char *outputs_json, const char *outputs_ref, int64_t now);
    int (*log_append)(void *impl, const char *run_id, const char *step_id, unsigned attempt,
                      int level, const char *msg, int64_t now);
    int (*runs_list)(void *impl, const wfh_store_filter *f, json_t **out);
    /* show: steps' "outputs_ref" is returned as a string member; store.c reads it */
    int (*run_show)(void *impl, const char *id, json_t **out);
    int (*logs)(void *impl, const char *run_id, const char *step_id, json_t **out);
    /* prune: @p refs receives the output files of the deleted runs (JSON array) */
    int (*prune)(void *impl, int64_t before_ms, unsigned *removed, json_t **refs);
    int (*events)(void *impl, const char *run_id, json_t **out);
    /* running attempts -> failed (@p why), run -> running; one transaction */
    int (*run_reopen)(void *impl, const char *id, const char *why, int64_t now);
    /* optional (NULL: every call commits alone): see wfh_store_group */
    int (*group)(void *impl, int on);
    int (*group_commit)(void *impl);
} wfh_store_ops;

/** The SQLite engine (core/store_sqlite.c). */
extern const wfh_store_ops wfh_store_sqlite_ops;
/** The PostgreSQL engine (core/store_pg.c). */
extern const wfh_store_ops wfh_store_pg_ops;

#endif
