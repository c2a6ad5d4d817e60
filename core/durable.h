/*
 * core/durable.h - durable runs (issue #7): the bridge between the scheduler's state
 * changes and the run store (core/store.h).
 *
 * The scheduler knows nothing of the store; it hands every state change to a hook
 * before acting on it (wfh_run_opts.on_event). wfh_durable_on_event is that hook: it
 * writes the change to the store and vetoes it if the write fails, so a host that dies
 * at any moment leaves a store that says no more than what happened, and a full disk
 * stops the run instead of letting it go on unrecorded. The same object then drives
 * `wfhost resume` and `wfhost retry`: it checks the workflow file against the hash
 * recorded, decides which recorded successes may be kept, and restores them.
 *
 * Which changes are durable (one transaction each, fsync'ed with synchronous=FULL):
 * run created / running / ended; step -> queued (when its needs succeeded, or its
 * retry wait is over); step -> running (the attempt, before its runner is spawned);
 * attempt ended, with the step's new state and outputs, in one transaction; step ->
 * failed/skipped/cancelled without an attempt. With wfh_durable_on_flush installed
 * (exec, resume, retry), the changes of one scheduler turn are committed together
 * instead, before the turn acts on any of them; the run's creation joins its first
 * turn (wfh_durable_create_grouped) and its end joins its last, so a one-step run
 * commits twice: before its step starts, and when the run has ended. Steps with no
 * needs are queued when the run is created, which is recorded instead. Log lines are
 * appended too, through a second handle with synchronous=NORMAL (wfh_durable_open_logs),
 * or in the group when it holds state changes already (its handle has the write lock);
 * a failed append does not stop the run.
 */
#ifndef WFH_DURABLE_H
#define WFH_DURABLE_H

#include "scheduler.h"
#include "store.h"
#include "workflow.h"

typedef struct wfh_durable wfh_durable;

/**
 * Open the run store of the wfhost home (core/home.h's rule: @p home_opt, the CLI's
 * `--home`, may be NULL; then $WFH_HOME, ...); @p flags as wfh_store_open's.
 * @param out owned by the caller (wfh_store_free).
 * @return 0, WFH_EINVAL (no home), WFH_EIO (cannot open, corrupt, disk full).
 */
int wfh_durable_open_store(const char *home_opt, unsigned flags, wfh_store **out);

/**
 * Prepare to record runs of @p wf (validated) in @p st. Computes each step's
 * definition hash (its type, `with`, `env`, the workflow's env and its needs' hashes),
 * so a changed file keeps only the results of steps that did not change.
 * @param st, wf borrowed for the life of the object.
 * @param out owned by the caller (wfh_durable_free).
 * @return 0, WFH_ENOMEM.
 */
int wfh_durable_new(wfh_store *st, const wfh_workflow *wf, wfh_durable **out);
void wfh_durable_free(wfh_durable *d);

/**
 * Append log lines through a second handle on the same store, opened with
 * synchronous=NORMAL: a log line is not state, so it need not cost an fsync of its
 * own (it reaches the disk with the next state change's commit, or is lost with a
 * power cut, never with a crash of the host alone). Optional; without it, or if it
 * cannot be opened, lines go through the main handle. The handle is opened at the first
 * line that needs it: under group commit (wfh_durable_on_flush) a line joins the group
 * if the group holds state changes (the main handle has the write lock then), else it
 * uses this handle, so a turn with nothing but log lines commits without an fsync and
 * a run without log lines never opens it. @p home_opt is copied.
 * @return 0 or WFH_ENOMEM.
 */
int wfh_durable_open_logs(wfh_durable *d, const char *home_opt);

/**
 * Hold run @p run_id for this process (an flock on HOME/locks/<run>.lock), so a second
 * `wfhost resume` of a run that is still going on this machine is refused instead of
 * running its steps twice. The kernel releases it when the process dies, SIGKILL
 * included. Hosts sharing a PostgreSQL store from several machines are not covered.
 * @param fd_out receives the lock's descriptor (wfh_durable_unlock_run), -1 on error.
 * @return 0, WFH_EINVAL (held by another process; the message names its pid), WFH_EIO.
 */
int wfh_durable_lock_run(const char *home_opt, const char *run_id, int *fd_out);
void wfh_durable_unlock_run(int fd);

/** Step @p step's definition hash (64 hex digits). Borrowed from @p d. */
const char *wfh_durable_def_hash(const wfh_durable *d, size_t step);

/**
 * A new run (`wfhost exec`): record it under @p run_id with the workflow's name, the
 * file's absolute path and its hash, then as running.
 * @return 0, WFH_EIO (store or file), WFH_EINVAL, WFH_ENOMEM.
 */
int wfh_durable_create(wfh_durable *d, const char *run_id);

/**
 * As wfh_durable_create, but the two records are left in an open group for the run's
 * first turn to commit along with its own changes (one fsync where there were two).
 * Only for a run driven with wfh_durable_on_flush installed: its first call finds
 * grouping on already and commits nothing, and the scheduler commits before it starts
 * any step or waits; wfh_durable_finish commits whatever is left (a run that ends
 * before its first turn). A crash before that commit leaves no trace of the run, and
 * nothing of it has run; the run id printed before it cannot be resumed then.
 * @return as wfh_durable_create.
 */
int wfh_durable_create_grouped(wfh_durable *d, const char *run_id);

/**
 * The run's resolved inputs (a JSON object), recorded by wfh_durable_create so that
 * resume and retry run with the same ones. @p inputs is borrowed until then; NULL: none.
 */
void wfh_durable_set_inputs(wfh_durable *d, const json_t *inputs);

/**
 * Check a recorded run before continuing it: the workflow file must hash as recorded,
 * unless @p allow_changed, in which case *changed is set and only steps whose
 * definition hash is unchanged keep their results.
 * @return 0, or WFH_EINVAL (changed without @p allow_changed; the message says so).
 */
int wfh_durable_check_file(wfh_durable *d, const wfh_store_run *rec, int allow_changed,
                           int *changed);

/**
 * Start continuing run @p run_id. Resume (@p retry 0): attempts in flight when the host
 * stopped are recorded as failed and the run as running again. Retry (@p retry 1): the
 * failed, timed-out, skipped and cancelled steps are recorded as queued, then the run
 * as running. @p out receives the run as recorded (owned; wfh_store_run_free).
 * @return 0, WFH_ENOTFOUND, WFH_EIO.
 */
int wfh_durable_reopen(wfh_durable *d, const char *run_id, int retry, wfh_store_run **out);

/**
 * Hand @p run (borrowed; its id must be the recorded one) its recorded successes, in
 * topological order, and remember each step's recorded attempt count so new attempts
 * are numbered after it. With @p changed, only steps whose definition hash matches
 * are restored; the others' next attempt is numbered after the recorded ones.
 * @p kept receives the number of steps restored (may be NULL).
 * @return 0, WFH_ENOMEM, WFH_EINVAL (the run has started).
 */
int wfh_durable_restore(wfh_durable *d, wfh_run *run, const wfh_store_run *rec, int changed,
                        size_t *kept);

/** Let the hooks read the run's attempt results (call right after wfh_run_new). */
void wfh_durable_attach(wfh_durable *d, wfh_run *run);

/** The wfh_run_opts.on_event hook (@p ud: the wfh_durable). */
int wfh_durable_on_event(void *ud, const wfh_sched_event *ev);

/**
 * The wfh_run_opts.on_flush hook (@p ud: the wfh_durable): group commit. The first call
 * turns grouping on (wfh_store_group), so the state changes of one scheduler turn
 * share one transaction and one fsync; each later call commits them, and the scheduler
 * calls it before it acts (spawns a runner) or waits, so every change is still durable
 * before anything depends on it. Log lines then join the group instead of the second
 * handle while the group holds state changes. wfh_durable_finish commits and turns
 * grouping off.
 * @return 0, or the store's error (the grouped changes were not kept: stop the run).
 */
int wfh_durable_on_flush(void *ud);

/** The wfh_run_opts.on_log hook: appends the line; a failure is reported once on
 * stderr and does not stop the run (logs are not state). */
void wfh_durable_on_log(void *ud, size_t step, unsigned attempt, int level, const char *msg,
                        size_t len);

/**
 * Record the run's end from wfh_run_exec's result @p run_err (0 succeeded,
 * WFH_ECANCELLED cancelled, anything else failed, with @p error as the reason).
 * @return 0 or the store's error: the caller must not report success then.
 */
int wfh_durable_finish(wfh_durable *d, int run_err, const char *error);

/** If the run's end could not be recorded, make the --json document @p doc (borrowed,
 * modified) say so: "status" failed and "error" the store's message. */
void wfh_durable_report(const wfh_durable *d, json_t *doc);

#endif
