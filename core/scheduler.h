/*
 * core/scheduler.h - running a validated workflow: step states, ready queue, event loop.
 *
 * Two layers, so the scheduling logic can be tested without processes:
 *
 *  - wfh_sched (core/sched_state.c): the pure state machine of a run's steps. Each step
 *    has an explicit state; every change goes through wfh_sched_transition(), which
 *    first hands the event to a hook (the place the run store writes "the event before
 *    it is acted on"; a hook error vetoes the change) and then applies its consequences:
 *    a success decrements its dependents' remaining-needs counters and queues the ones
 *    that reach zero; any other terminal state skips the dependents transitively. Work
 *    per event is proportional to the step's out-degree; nothing is O(n) per event.
 *
 *  - wfh_run (core/scheduler.c): one run of a workflow. Evaluates each step's `with`
 *    and `env` just before it starts, starts attempts through core/attempt.h up to the
 *    concurrency limit, and waits in poll() on the attempts' pipes plus a self-pipe fed
 *    by SIGCHLD/SIGINT/SIGTERM. SIGINT/SIGTERM cancel the run.
 */
#ifndef WFH_SCHEDULER_H
#define WFH_SCHEDULER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "catalog.h"
#include "policy.h"
#include "workflow.h"

/* A step's state. A failed attempt whose retry policy allows another goes
 * RUNNING -> RETRYING -> QUEUED (attempt numbers keep counting). */
typedef enum wfh_sstate {
    WFH_S_PENDING = 0, /* waiting for its needs */
    WFH_S_QUEUED,      /* needs succeeded: in the ready queue */
    WFH_S_RUNNING,     /* an attempt is in flight */
    WFH_S_RETRYING,    /* waiting before the next attempt */
    WFH_S_SUCCEEDED,   /* terminal */
    WFH_S_FAILED,      /* terminal */
    WFH_S_TIMED_OUT,   /* terminal */
    WFH_S_SKIPPED,     /* terminal: a need did not succeed (or `if:` was false) */
    WFH_S_CANCELLED,   /* terminal: the run was cancelled */
    WFH_S__COUNT
} wfh_sstate;

/* "pending", "queued", "running", "retrying", "succeeded", "failed", "timed_out",
 * "skipped", "cancelled": the names --json and the run store use. Static strings. */
const char *wfh_sstate_name(wfh_sstate s);
/* The status string expressions see as steps.<id>.status: "success", "failure",
 * "skipped", "cancelled" (timed out counts as failure); NULL for non-terminal states. */
const char *wfh_sstate_expr_status(wfh_sstate s);
int wfh_sstate_terminal(wfh_sstate s);

/* One state change, as the hook sees it. */
typedef struct wfh_sched_event {
    size_t step;
    wfh_sstate from, to;
    unsigned attempt;   /* the step's attempt number after the change (1-based, 0 = none) */
    long cause;         /* set by propagation: the need whose end caused it; else -1 */
    const char *reason; /* borrowed, may be NULL: why (error text, "cancelled", ...) */
} wfh_sched_event;

/* Called before a change is applied. Return 0 to let it happen, or a negative WFH_E*
 * code (with wfh_error_set) to veto it: wfh_sched_transition then returns that code
 * and the state is left as it was. */
typedef int (*wfh_sched_hook)(void *ud, const wfh_sched_event *ev);

typedef struct wfh_sched wfh_sched;

/* Build the state machine for @p n steps; step i needs the @p n_needs[i] steps listed
 * in @p needs[i] (indexes < n; the graph must be acyclic, as validation ensures). The
 * arrays are read during the call only. Steps with no needs are queued at once, in
 * index order, without hook events (a run store records the run's creation instead).
 * Returns 0 and *out (owned; wfh_sched_free), WFH_ENOMEM, or WFH_EINVAL for an index out
 * of range. */
int wfh_sched_new(size_t n, const size_t *n_needs, const size_t *const *needs,
                  wfh_sched_hook hook, void *hook_ud, wfh_sched **out);
void wfh_sched_free(wfh_sched *s);

/* The single function every state change goes through. Legal changes:
 *   PENDING  -> QUEUED | SKIPPED | CANCELLED
 *   QUEUED   -> RUNNING (attempt + 1) | FAILED (inputs failed to evaluate) | SKIPPED |
 *               CANCELLED
 *   RUNNING  -> SUCCEEDED | FAILED | TIMED_OUT | CANCELLED | RETRYING
 *   RETRYING -> QUEUED | FAILED | CANCELLED
 * Anything else returns WFH_EINVAL (a programmer error, reported, not asserted). The
 * consequences (queueing or skipping dependents) are transitions too, so the hook sees
 * each of them. Returns 0 or a negative code (from the hook, or WFH_ENOMEM). */
int wfh_sched_transition(wfh_sched *s, size_t step, wfh_sstate to, const char *reason);

/* Resume (issue #7): mark a step that a run store recorded as succeeded, without
 * running it and without a hook event for it (the store has it already). Its needs
 * must have succeeded (restore in topological order); its dependents are queued
 * through ordinary transitions. @p attempts is the recorded attempt count. Returns 0
 * or WFH_EINVAL (the step is not pending/queued, or a need has not succeeded). */
int wfh_sched_restore(wfh_sched *s, size_t step, unsigned attempts);

/* Per-step flags (issue #3), set after wfh_sched_new and before the first transition. */
#define WFH_SCHED_RUN_AFTER_FAILURE 1u /* `if:` uses a status function: queued once every
                                          need is terminal, however it ended (not when
                                          cancelled), so its `if` decides */
#define WFH_SCHED_TOLERATE_FAILURE 2u  /* continue_on_error: its FAILED/TIMED_OUT counts as
                                          success for its dependents */
#define WFH_SCHED_RUN_AFTER_CANCEL 4u   /* finally: queued even when a need was cancelled,
                                          and left alone by wfh_sched_cancel_keep */
#define WFH_SCHED_INSTANT 8u            /* a built-in `pass` step (issue #8): queued in a
                                          FIFO of its own (wfh_sched_next_instant), never
                                          returned by wfh_sched_next, so it takes no slot */
/* Returns 0 or WFH_EINVAL (no such step). */
int wfh_sched_set_flags(wfh_sched *s, size_t step, unsigned flags);
/* wfh_sched_cancel, except steps with any of @p keep_flags (they stay as they are). */
int wfh_sched_cancel_keep(wfh_sched *s, const char *reason, unsigned keep_flags);
/* Steps that failed with WFH_SCHED_TOLERATE_FAILURE (counted in FAILED/TIMED_OUT too). */
size_t wfh_sched_tolerated(const wfh_sched *s);

/* Resume (issue #7): step @p step (not started in this process: pending or queued) had
 * @p attempts attempts recorded by an earlier host; its next one is attempts + 1, and
 * its retry policy counts the recorded ones. No hook event. Returns 0 or WFH_EINVAL. */
int wfh_sched_set_attempts(wfh_sched *s, size_t step, unsigned attempts);

/* Pop the next queued step (FIFO: readiness order), or -1 if none is queued. The step
 * stays QUEUED until the caller moves it on. Steps flagged WFH_SCHED_INSTANT are not
 * returned: wfh_sched_next_instant pops those, in their readiness order. */
long wfh_sched_next(wfh_sched *s);
long wfh_sched_next_instant(wfh_sched *s);

/* Cancel every step that has not started (PENDING, QUEUED, RETRYING -> CANCELLED).
 * Running steps are the caller's to kill; they end CANCELLED through a transition. */
int wfh_sched_cancel(wfh_sched *s, const char *reason);

wfh_sstate wfh_sched_state(const wfh_sched *s, size_t step);
unsigned wfh_sched_attempts(const wfh_sched *s, size_t step);
size_t wfh_sched_count(const wfh_sched *s, wfh_sstate st); /* steps now in @p st */
size_t wfh_sched_size(const wfh_sched *s);
int wfh_sched_finished(const wfh_sched *s);               /* every step is terminal */

/* ---- a run ------------------------------------------------------------------------ */

typedef struct wfh_run_opts {
    unsigned concurrency;   /* 0: the number of online CPUs */
    const char *workspace;  /* borrowed; NULL: the current directory */
    const char *run_id;     /* borrowed; NULL: a fresh id (wfh_run_id_new) */
    FILE *human;            /* borrowed; where people read progress; NULL: stderr */
    int tty;                /* -1: detect from @p human; 0: plain lines; 1: live status */
    /* Optional: sees every state change before it is applied (the run store's "write
     * the event first"); a negative return vetoes it and stops the run with that
     * error. ev->step indexes wf->steps. */
    wfh_sched_hook on_event;
    void *on_event_ud;      /* borrowed */
    /* The operator's sandbox policy (borrowed). Each step's grant is worked out in
     * wfh_run_new, before anything runs, and sent with every attempt; NULL sends none
     * (the runner then says the attempt ran unconfined). */
    const wfh_policy *policy;
    /* Optional (issue #7): every log line of an attempt, after it was shown (@p msg
     * borrowed, @p len bytes, not NUL-terminated); called with on_event_ud. The run
     * store keeps them for `wfhost runs logs`; a failure there does not stop the run. */
    void (*on_log)(void *ud, size_t step, unsigned attempt, int level, const char *msg,
                   size_t len);
    /* issue #3: the workflow's inputs as checked by wfh_inputs_resolve (core/lang.h;
     * borrowed; NULL: none), and the secrets (core/secrets.h; borrowed; NULL: none),
     * which the run masks in everything it shows, stores or reports. */
    json_t *inputs;
    const struct wfh_secrets *secrets;
    /* Optional (issue #8, group commit): called with on_event_ud once before the loop
     * starts, then before the run acts on the changes on_event saw (before it spawns a
     * step runner) and before it waits for anything, so a hook that groups its writes
     * commits them there (wfh_durable_on_flush). A negative return stops the run like a
     * vetoed change, and the runner about to be spawned is not. */
    int (*on_flush)(void *ud);
} wfh_run_opts;

typedef struct wfh_run wfh_run;

/* Prepare a run of @p wf (validated; borrowed, and so is @p cat, for the run's life)
 * and announce it ("run <id> (<name>)") on the human stream. Returns 0 and *out
 * (owned; wfh_run_free) or a negative code with a message: WFH_ESECURITY when the
 * policy does not grant what a step's type requests (nothing has run then). */
int wfh_run_new(const wfh_workflow *wf, const wfh_catalog *cat, const wfh_run_opts *opts,
                wfh_run **out);
void wfh_run_free(wfh_run *r);

const char *wfh_run_id(const wfh_run *r); /* borrowed */

/* Resume (issue #7): before wfh_run_exec, take step @p step's recorded success and
 * outputs (@p outputs borrowed; a reference is taken) instead of running it again.
 * Call in topological order (wf->order). Returns 0 or WFH_EINVAL / WFH_ENOMEM. */
int wfh_run_restore(wfh_run *r, size_t step, json_t *outputs, unsigned attempts);

/* How step @p step's latest attempt ended, for the run store's hook on RUNNING -> *
 * (issue #7): set before that transition. */
typedef struct wfh_run_attempt_info {
    json_t *outputs;  /* borrowed from the run, may be NULL */
    int exit_code;    /* the runner's exit code, or -1 (it never started, or was killed) */
    int term_signal;  /* the signal that killed the runner, or 0 */
    int step_status;  /* the plugin's wfh_step_status, or -1 if none was reported */
    json_t *sandbox;  /* borrowed, may be NULL: the runner's report of what confined it */
} wfh_run_attempt_info;
void wfh_run_attempt_get(const wfh_run *r, size_t step, wfh_run_attempt_info *out);

/* The workflow's `outputs:`, evaluated at the end of wfh_run_exec (borrowed; NULL if
 * it has none, or before the end); masked. */
json_t *wfh_run_outputs(const wfh_run *r);

/* Resume (issue #7): before wfh_run_exec, number step @p step's next attempt after the
 * @p attempts an earlier host recorded (wfh_sched_set_attempts). */
int wfh_run_set_attempts(wfh_run *r, size_t step, unsigned attempts);

/* Run to the end. Installs SIGINT/SIGTERM/SIGCHLD handlers for the duration (and
 * restores the previous ones). Returns 0 (every step succeeded), WFH_EFAILED (some step
 * did not succeed), WFH_ECANCELLED (SIGINT/SIGTERM), or another negative code if the
 * host itself failed (the message says why). */
int wfh_run_exec(wfh_run *r);

/* The run as one JSON document: {"run_id", "workflow", "status", "started_at",
 * "duration_ms", "error" (a host error that stopped the run, else null), "outputs" (the
 * workflow's outputs, null if none), "steps": {"<id>": {"status", "attempts", "outputs",
 * "error", "started_at", "duration_ms", "reason" (why it was skipped, if by `if:`),
 * "continued" (failed under continue_on_error), "attempt_history": [{"attempt",
 * "status", "started_at", "start_unix_ms", "duration_ms", "error"}]}}}. Every string
 * has the secrets masked. New reference, or NULL on ENOMEM. */
json_t *wfh_run_to_json(const wfh_run *r);

/* ---- run ids (core/run_id.c) ------------------------------------------------------ */

#define WFH_RUN_ID_LEN 26
/* A fresh, unique, time-sortable id: 48 bits of milliseconds since the epoch and 80
 * random bits (getrandom), in Crockford base32, like a ULID. Writes 26 chars and a NUL.
 * Returns 0 or WFH_EIO. */
int wfh_run_id_new(char out[WFH_RUN_ID_LEN + 1]);

#endif
