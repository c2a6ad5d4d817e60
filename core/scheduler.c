/*
 * core/scheduler.c - one run of a validated workflow: the event loop around wfh_sched.
 *
 * The loop starts queued steps while fewer than --concurrency attempts are running,
 * then sleeps in poll() on every running attempt's pipes and on a self-pipe that the
 * SIGCHLD, SIGINT and SIGTERM handlers write one byte to. A wake-up reads what arrived,
 * reaps exited runners with waitpid(-1, WNOHANG) and turns each into one state change.
 * Nothing here busy-waits, and the work per event does not grow with the number of
 * steps: the `steps` expression context is one JSON object updated as steps end,
 * running attempts live in a fixed table of slots whose pollfd entries are reused.
 *
 * Every state change goes through wfh_sched_transition(); run_on_event() below is the
 * hook that sees each one before it happens. The run store (issue #7) writes its event
 * there first (wfh_run_opts.on_event) and vetoes the change if it cannot; resume takes
 * recorded successes through wfh_run_restore().
 *
 * The workflow language (issue #3) lives in the same loop:
 *  - `if:` is evaluated once, just before a step's first attempt; false is
 *    QUEUED -> SKIPPED. Steps whose `if` uses a status function, and on_failure/finally
 *    steps, carry WFH_SCHED_RUN_AFTER_FAILURE so a failed need queues them instead of
 *    skipping them; continue_on_error is WFH_SCHED_TOLERATE_FAILURE.
 *  - timeouts and retry waits are deadlines: poll() sleeps until the nearest one
 *    (nearest_deadline); an expired attempt is wfh_attempt_kill(WFH_STEP_TIMEOUT) and
 *    ends TIMED_OUT when reaped; a failed attempt the retry policy allows goes
 *    RUNNING -> RETRYING and back to QUEUED when its wait is over (expire_deadlines).
 *  - for_each/matrix steps stay RUNNING while their items run in slots of their own
 *    (slot_item/slot_att); limits: holds queued steps of a busy type (next_startable);
 *    circuit breakers fail attempts fast without a process (circuit_blocks).
 *  - built-in `pass` steps (issue #8) carry WFH_SCHED_INSTANT: they wait in a queue of
 *    their own and are completed in the turn they become ready (run_pass), without a
 *    process or a slot: their evaluated `with` becomes their outputs. RUNNING and
 *    SUCCEEDED are both recorded, within the turn's one commit (on_flush), so a chain
 *    or fan-out of pass steps costs a commit per turn, not two per step.
 *  - secrets are masked where text leaves: reasons (transition), outputs (when an
 *    attempt ends), log lines for the run store, the display's flush, the --json
 *    document (wfh_run_to_json).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wfhost/plugin.h>

#include "attempt.h"
#include "display.h"
#include "error.h"
#include "lang.h"
#include "scheduler.h"
#include "secrets.h"

#define NO_SLOT ((size_t)-1)

/* A long run of pass steps in one turn commits every this many steps: one transaction
 * for 10 000 chained pass steps outgrew SQLite's page cache, which then spilled and
 * rewrote pages (strace -f -c: 190 546 pwrite64 calls; committing every 256 steps,
 * 7 550 and 55 fdatasync; every 1024, 6 328 and 22, the same peak RSS). A crash loses
 * at most this many pass steps' ends, never a started process's: every spawn and every
 * wait commits first. tests/integration/pass_step.sh kills a 2 600-step turn around
 * and between these commits. */
#define PASS_COMMIT_EVERY 1024

typedef struct run_step {
    wfh_run *run;            /* borrowed back-pointer, for the attempt hooks */
    size_t idx;
    wfh_attempt *att;        /* owned while running, else NULL */
    pid_t pid;
    size_t slot;             /* NO_SLOT unless running */
    int cancel_requested;
    size_t n_logs;           /* log lines streamed by the current attempt */
    int restored;            /* success taken from a run store (wfh_run_restore) */
    json_t *outputs;         /* owned reference, NULL until an attempt ends */
    json_t *sandbox;         /* owned reference: the policy's grant, or NULL */
    char *error;             /* owned, NULL unless it failed */
    int last_exit, last_signal, last_status; /* the latest attempt's end (wfh_run_attempt_get) */
    uint64_t start_ms, end_ms; /* monotonic; 0 = never started */
    char started_at[32];     /* ISO 8601 UTC, "" if never started */
    /* issue #3 */
    int cond_done;           /* `if:` evaluated (once, before the first attempt) */
    int timed_out;           /* this attempt was killed by its timeout */
    uint64_t deadline_ms;    /* monotonic end of the running attempt's timeout, 0: none */
    uint64_t retry_at_ms;    /* monotonic start of the next attempt while RETRYING */
    uint64_t start_unix_ms;  /* wall clock of the running attempt's start */
    char *note;              /* owned, may be NULL: why it was skipped */
    json_t *history;         /* owned array: one entry per ended attempt */
    json_t *att_sandbox;     /* borrowed from the ending attempt's result while it is
                                recorded: the runner's sandbox report, or NULL */
    long group;              /* index into wf->limit_types, or -1 */
    json_t *pend_inputs;     /* owned while the attempt waits for launch_pending: the */
    json_t *pend_env;        /* owned  evaluated `with` and environment, else NULL */
    long circuit;            /* index into wfh_run.circuits, or -1 */
    /* for_each / matrix: the step is RUNNING while its items run in slots of their own */
    json_t *fe_items;        /* owned array, NULL until the list is evaluated */
    json_t *fe_outputs;      /* owned array: each item's outputs, in item order */
    size_t fe_next, fe_running, fe_done;
    int fe_failed;           /* an item did not succeed: start no more */
    wfh_sstate fe_end;       /* how the first unsuccessful item ended */
    char *fe_error;          /* owned, may be NULL: the first failure, naming the item */
    unsigned *fe_attempts;   /* owned [items]: attempts each item has had */
    size_t *fe_retry;        /* owned [items]: items waiting to be tried again */
    uint64_t *fe_retry_at;   /* owned [items]: when each of those may start (monotonic) */
    size_t n_fe_retry;
} run_step;

enum { CIRCUIT_CLOSED = 0, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN };

/* A breaker per step type and target (circuit_for): after `failures` transient failures
 * in a row it opens; attempts then fail fast until `cooldown` has passed; the next one is
 * a probe whose end closes it or opens it again. */
struct circuit {
    char *key;               /* owned: "type" or "type host" */
    unsigned failures;       /* transient failures in a row */
    int state;
    int probing;
    uint64_t open_until;     /* monotonic ms */
};

struct wfh_run {
    const wfh_workflow *wf;  /* borrowed */
    const wfh_catalog *cat;  /* borrowed */
    char id[WFH_RUN_ID_LEN + 1];
    char *workspace;         /* owned */
    unsigned concurrency;
    FILE *human;             /* borrowed */
    int tty;
    wfh_display *disp;       /* owned */
    wfh_sched *sched;        /* owned */
    run_step *steps;         /* owned [n] */
    const char **ids;        /* owned array of borrowed strings [n] */
    json_t *ctx;             /* owned: expression contexts {env, steps, run} */
    json_t *ctx_steps;       /* borrowed from ctx */
    json_t *ctx_run;         /* borrowed from ctx */
    json_t *wf_env;          /* owned: the workflow's env, evaluated, strings only */
    size_t n_slots;
    size_t *slot_step;       /* owned [n_slots]: the step in each slot, or NO_SLOT */
    size_t *free_slots;      /* owned [n_slots]: stack of free slot numbers */
    size_t n_free;
    size_t *pending;         /* owned [n_slots]: steps started this turn, not spawned yet */
    size_t n_pending;
    struct pollfd *pfd;      /* owned [1 + 2 * n_slots]: self-pipe, then 2 per slot */
    int cancelled;
    int soft_cancel;         /* cancelled by a first signal: finally steps still run */
    int has_finally;
    int cancel_signal;
    int fatal;               /* a host error that stopped the run, or 0 */
    char fatal_msg[512];     /* its message, kept from being overwritten while we stop */
    char started_at[32];
    uint64_t start_ms, end_ms;
    int finished;
    wfh_sched_hook on_event; /* from the options, may be NULL */
    int (*on_flush)(void *ud); /* from the options, may be NULL */
    const wfh_secrets *secrets; /* borrowed, may be NULL */
    size_t *retrying;        /* owned [n]: steps waiting to be tried again (unordered) */
    size_t n_retrying;
    json_t *outputs;         /* owned: the workflow's outputs, evaluated at the end */
    unsigned *group_running; /* owned [wf->n_limits]: attempts running per limited type */
    size_t *deferred;        /* owned [n]: queued steps held back by their type's limit */
    struct circuit *circuits; /* owned [n_circuits] */
    size_t n_circuits;
    size_t *fanout;          /* owned [n]: for_each/matrix steps with items to run */
    size_t n_fanout;
    /* per slot, for item attempts of a for_each step (slot_item NO_SLOT otherwise) */
    size_t *slot_item;       /* owned [n_slots] */
    wfh_attempt **slot_att;  /* owned [n_slots], each owned while set */
    pid_t *slot_pid;         /* owned [n_slots] */
    uint64_t *slot_deadline; /* owned [n_slots] */
    unsigned char *slot_timed_out; /* owned [n_slots] */
    uint64_t *slot_started;  /* owned [n_slots]: when the item's attempt started */
    size_t n_deferred;
    char *outputs_error;     /* owned, may be NULL: why they could not be evaluated */
    json_t *pass_sandbox;    /* owned: what a pass attempt records as its sandbox */
    void (*on_log)(void *, size_t, unsigned, int, const char *, size_t); /* may be NULL */
    void *on_event_ud;       /* borrowed */
};

/* ---- time ----------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void iso_now(char buf[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char secs[24];
    if (strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        secs[0] = '\0';
    snprintf(buf, 32, "%.20s.%03dZ", secs, (int)(ts.tv_nsec / 1000000L));
}

/* ---- signals: a self-pipe, so poll() wakes for them -------------------------------- */

static int sig_write_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    ssize_t w = write(sig_write_fd, &c, 1); /* full pipe: a wake-up is already pending */
    (void)w;
    errno = saved;
}

/* ---- the hook every state change passes through ------------------------------------- */

#define CAPTURED_MAX_LINES 40

/* Steps that capture their output instead of streaming it (the shell step's `stdout`
 * and `stderr` outputs) would otherwise show nothing on the terminal: show the text
 * once, prefixed like a streamed log, cut at CAPTURED_MAX_LINES lines. */
static void show_captured_from(wfh_run *r, size_t step, json_t *outputs, const char *name)
{
    json_t *v = outputs ? json_object_get(outputs, name) : NULL;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return;
    const char *text = json_string_value(v);
    size_t len = json_string_length(v), off = 0, lines = 0;
    while (off < len && lines < CAPTURED_MAX_LINES) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - text) : len;
        wfh_display_log(r->disp, step, text + off, end - off);
        off = end + 1;
        lines++;
    }
    if (off < len) {
        size_t more = 0;
        for (size_t k = off; k < len; k++)
            more += text[k] == '\n';
        char note[128];
        snprintf(note, sizeof note, "... %zu more line(s) of %s: see --json", more + (text[len - 1] != '\n'), name);
        wfh_display_log(r->disp, step, note, strlen(note));
    }
}

static int run_on_event(void *ud, const wfh_sched_event *ev)
{
    wfh_run *r = ud;
    run_step *rs = &r->steps[ev->step];
    if (r->on_event) { /* the run store: the event is durable before it happens */
        int err = r->on_event(r->on_event_ud, ev);
        if (err < 0)
            return err;
    }
    if (ev->to == WFH_S_RUNNING) {
        rs->last_exit = -1;
        rs->last_signal = 0;
        rs->last_status = -1;
        rs->n_logs = 0;
        rs->start_ms = mono_ms();
        rs->end_ms = 0;
        iso_now(rs->started_at);
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        rs->start_unix_ms = (uint64_t)wall.tv_sec * 1000u + (uint64_t)wall.tv_nsec / 1000000u;
        wfh_display_step_start(r->disp, ev->step, ev->attempt, rs->start_ms);
        return 0;
    }
    if (!wfh_sstate_terminal(ev->to))
        return 0;
    rs->end_ms = rs->start_ms ? mono_ms() : 0;
    if (ev->to == WFH_S_SKIPPED && ev->reason && ev->cause < 0) {
        free(rs->note);
        rs->note = strdup(ev->reason); /* `if:` was false; NULL on ENOMEM only loses it */
    }
    if (ev->to != WFH_S_SUCCEEDED && ev->to != WFH_S_SKIPPED && ev->reason) {
        char *copy = strdup(ev->reason); /* the last attempt's reason is the step's */
        if (!copy)
            return wfh_error_set(WFH_ENOMEM, "step %s: out of memory", r->ids[ev->step]);
        free(rs->error);
        rs->error = copy;
    }
    json_t *outs = rs->outputs ? json_incref(rs->outputs) : json_object(); /* owned */
    /* `error` lets on_failure/finally steps say which step failed and why */
    json_t *entry = json_pack("{s:o,s:s,s:s?}", "outputs", outs, "status",
                              wfh_sstate_expr_status(ev->to), "error",
                              ev->to == WFH_S_SUCCEEDED || ev->to == WFH_S_SKIPPED
                                  ? NULL
                                  : rs->error); /* "o" took outs */
    if (!entry || json_object_set_new(r->ctx_steps, r->ids[ev->step], entry) < 0)
        return wfh_error_set(WFH_ENOMEM, "step %s: out of memory", r->ids[ev->step]);
    if (rs->n_logs == 0 && rs->start_ms) {
        show_captured_from(r, ev->step, rs->outputs, "stdout");
        if (ev->to != WFH_S_SUCCEEDED)
            show_captured_from(r, ev->step, rs->outputs, "stderr");
    }
    char why[600];
    const char *shown = ev->reason;
    if (ev->cause >= 0 && ev->to == WFH_S_SKIPPED) {
        snprintf(why, sizeof why, "needs '%s', which did not succeed", r->ids[ev->cause]);
        shown = why;
    } else if (ev->cause >= 0) {
        snprintf(why, sizeof why, "needs '%s', which was cancelled", r->ids[ev->cause]);
        shown = why;
    }
    wfh_display_step_end(r->disp, ev->step, ev->to,
                         rs->start_ms ? rs->end_ms - rs->start_ms : WFH_DISPLAY_NEVER_RAN,
                         shown);
    return 0;
}

/* A transition the loop cannot recover from (the hook refused, or out of memory):
 * remember the first such error and stop starting work. */
static void transition(wfh_run *r, size_t step, wfh_sstate to, const char *reason)
{
    /* Reasons reach the display, --json and the run store: mask them once, here. */
    char *masked = reason && wfh_secrets_count(r->secrets)
                       ? wfh_secrets_mask(r->secrets, reason, strlen(reason), NULL)
                       : NULL; /* owned */
    int err = wfh_sched_transition(r->sched, step, to, masked ? masked : reason);
    free(masked);
    if (err < 0 && !r->fatal) {
        r->fatal = err;
        snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", wfh_error_last());
    }
}

/* What on_event grouped must be durable before the run acts on it or waits: a failure
 * stops the run (like a vetoed change) and the caller does not act. The display's held
 * lines go out here too, after the commit: one write per turn, and what people see of
 * a step's end is (but for a failed commit) already in the store. */
static int flush(wfh_run *r)
{
    int err = r->on_flush ? r->on_flush(r->on_event_ud) : 0;
    if (err < 0 && !r->fatal) {
        r->fatal = err;
        snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", wfh_error_last());
    }
    wfh_display_flush(r->disp, mono_ms());
    return err;
}

/* ---- attempts ----------------------------------------------------------------------- */

static void on_log(void *ud, wfh_attempt *a, int level, const char *msg, size_t len)
{
    run_step *rs = ud;
    (void)a;
    rs->n_logs++;
    wfh_display_log(rs->run->disp, rs->idx, msg, len); /* masked by the display */
    if (!rs->run->on_log)
        return;
    /* The run store keeps log lines: they leave the process here, so mask them here. */
    char *masked = NULL; /* owned */
    if (wfh_secrets_count(rs->run->secrets)) {
        masked = wfh_secrets_mask(rs->run->secrets, msg, len, &len);
        if (!masked)
            return; /* better a lost line than a leaked secret */
        msg = masked;
    }
    rs->run->on_log(rs->run->on_event_ud, rs->idx, wfh_sched_attempts(rs->run->sched, rs->idx),
                    level, msg, len);
    free(masked);
}

static void on_progress(void *ud, wfh_attempt *a, double fraction, const char *msg)
{
    run_step *rs = ud;
    (void)a;
    /* The display keeps a cut of the message: mask it whole first, so no cut can split
     * a secret past recognition. */
    char *masked = msg && wfh_secrets_count(rs->run->secrets)
                       ? wfh_secrets_mask(rs->run->secrets, msg, strlen(msg), NULL)
                       : NULL; /* owned */
    if (msg && wfh_secrets_count(rs->run->secrets) && !masked)
        return;
    wfh_display_progress(rs->run->disp, rs->idx, fraction, masked ? masked : msg);
    free(masked);
}

/* The expression environment of a step's `if`/`with`/`env` now. */
static wfh_expr_env run_env(const wfh_run *r)
{
    wfh_expr_env ee = {
        .contexts = r->ctx,
        .run_failed = wfh_sched_count(r->sched, WFH_S_FAILED) +
                          wfh_sched_count(r->sched, WFH_S_TIMED_OUT) >
                      wfh_sched_tolerated(r->sched),
        .run_cancelled = r->cancelled,
        .strict_step_outputs = 1, /* a missing output is an error, not "" */
    };
    return ee;
}

/* "flow.yaml:12:7: message": evaluation errors carry line:col; the file is ours to add. */
static void eval_error(wfh_run *r, size_t i, const char *what, const char *msg, char *out,
                       size_t len)
{
    size_t plen = strlen(r->wf->path);
    if (!strncmp(msg, r->wf->path, plen) && msg[plen] == ':')
        snprintf(out, len, "%s (in %s of step %s)", msg, what, r->ids[i]);
    else
        snprintf(out, len, "%s%s%s (in %s of step %s)", r->wf->path,
                 (msg[0] >= '0' && msg[0] <= '9') ? ":" : ": ", msg, what, r->ids[i]);
}

/* Put @p v (any JSON) into @p env as a string, the only type an environment holds. */
static int env_set(json_t *env, const char *key, json_t *v)
{
    if (json_is_string(v))
        return json_object_set(env, key, v);
    char *s = wfh_expr_to_string(v); /* owned */
    if (!s)
        return -1;
    int rc = json_object_set_new(env, key, json_string(s));
    free(s);
    return rc;
}

/* The attempt running in @p slot: an item's, or the step's own. */
static wfh_attempt *slot_att(const wfh_run *r, size_t slot)
{
    if (r->slot_item[slot] != NO_SLOT)
        return r->slot_att[slot];
    return r->slot_step[slot] != NO_SLOT ? r->steps[r->slot_step[slot]].att : NULL;
}

static void slot_refresh(wfh_run *r, size_t slot)
{
    int fds[2] = {-1, -1};
    size_t step = r->slot_step[slot];
    if (step != NO_SLOT)
        wfh_attempt_fds(slot_att(r, slot), fds);
    for (int k = 0; k < 2; k++) {
        r->pfd[1 + 2 * slot + (size_t)k].fd = fds[k];
        r->pfd[1 + 2 * slot + (size_t)k].events = POLLIN;
        r->pfd[1 + 2 * slot + (size_t)k].revents = 0;
    }
}

static int getrandom_u64(uint64_t *out);
static long circuit_for(wfh_run *r, size_t i, json_t *inputs);
static int circuit_blocks(wfh_run *r, long k, uint64_t *wait_ms, char *why, size_t len);
static void end_attempt(wfh_run *r, size_t i, wfh_sstate to, int cls, const char *reason,
                        uint64_t hint_ms);

/* ---- for_each / matrix ------------------------------------------------------------- */

static void fanout_end(wfh_run *r, size_t i);
static void pass_items(wfh_run *r, size_t i);

/* Evaluate the list and move the step to RUNNING; its items start from feed_items. */
static void start_fanout(wfh_run *r, size_t i, const wfh_expr_env *ee)
{
    const wfh_step *st = &r->wf->steps[i];
    run_step *rs = &r->steps[i];
    char msg[1024];
    json_t *list = NULL; /* owned */
    if (st->matrix) {
        list = json_incref(st->matrix);
    } else {
        wfh_expr_error xe;
        memset(&xe, 0, sizeof xe);
        if (wfh_expr_eval(st->for_each, ee, &list, &xe) < 0) {
            snprintf(msg, sizeof msg, "%s:%u:%u: for_each of step %s: %s", r->wf->path,
                     st->fe_line, st->fe_col, r->ids[i],
                     xe.message[0] ? xe.message : wfh_error_last());
            transition(r, i, WFH_S_FAILED, msg);
            return;
        }
        if (!json_is_array(list)) {
            snprintf(msg, sizeof msg, "%s:%u:%u: for_each of step %s yields a %s, not a list",
                     r->wf->path, st->fe_line, st->fe_col, r->ids[i],
                     wfh_expr_kind_name(list));
            json_decref(list);
            transition(r, i, WFH_S_FAILED, msg);
            return;
        }
    }
    json_decref(rs->fe_items);
    json_decref(rs->fe_outputs);
    rs->fe_items = list;
    rs->fe_outputs = json_array();
    for (size_t k = 0; rs->fe_outputs && k < json_array_size(list); k++)
        if (json_array_append_new(rs->fe_outputs, json_null()) < 0)
            break;
    if (!rs->fe_outputs || json_array_size(rs->fe_outputs) != json_array_size(list)) {
        transition(r, i, WFH_S_FAILED, "out of memory");
        return;
    }
    rs->fe_next = rs->fe_running = rs->fe_done = 0;
    rs->fe_failed = 0;
    size_t cells = json_array_size(list) ? json_array_size(list) : 1;
    free(rs->fe_attempts);
    free(rs->fe_retry);
    free(rs->fe_retry_at);
    rs->fe_attempts = calloc(cells, sizeof *rs->fe_attempts);
    rs->fe_retry = calloc(cells, sizeof *rs->fe_retry);
    rs->fe_retry_at = calloc(cells, sizeof *rs->fe_retry_at);
    rs->n_fe_retry = 0;
    if (!rs->fe_attempts || !rs->fe_retry || !rs->fe_retry_at) {
        transition(r, i, WFH_S_FAILED, "out of memory");
        return;
    }
    transition(r, i, WFH_S_RUNNING, NULL);
    if (r->fatal || wfh_sched_state(r->sched, i) != WFH_S_RUNNING)
        return;
    if (wfh_step_is_pass(st)) {
        pass_items(r, i);
        return;
    }
    r->fanout[r->n_fanout++] = i;
    if (json_array_size(list) == 0)
        fanout_end(r, i); /* nothing to do is a success with an empty list of outputs */
}

/* Evaluate item @p k's with/env (with `item`, `index` and, for a matrix, `matrix` in the
 * contexts) and start its attempt in a free slot. */
/* A plugin file that is no longer the one the registry signed (hash, size, symlink:
 * WFH_ESECURITY from wfh_attempt_start, before any of its code ran; or a plugin that
 * names itself differently once loaded, wfh_attempt_result.refused) stops the whole
 * run, which then ends with that refusal (exit status 3): nothing more should run from a
 * registry someone is tampering with. Other failures only fail their step. */
static void refused_stops_run(wfh_run *r, const char *step, int err, const char *msg)
{
    if (err != WFH_ESECURITY || r->fatal)
        return;
    r->fatal = WFH_ESECURITY;
    /* Cut to fit: the refusal's reason is at the front of msg. */
    int n = snprintf(r->fatal_msg, sizeof r->fatal_msg, "step '%.200s': ", step);
    if (n > 0 && (size_t)n < sizeof r->fatal_msg)
        snprintf(r->fatal_msg + n, sizeof r->fatal_msg - (size_t)n, "%.*s",
                 (int)(sizeof r->fatal_msg - (size_t)n - 1), msg);
}

/* Item @p k of step @p i in the contexts (`item`, `index`, `matrix`, run.attempt) while
 * its with/env are evaluated; item_ctx_clear takes them out again. */
static void item_ctx_set(wfh_run *r, size_t i, size_t k)
{
    json_t *item = json_array_get(r->steps[i].fe_items, k); /* borrowed */
    json_object_set(r->ctx, "item", item);
    json_object_set_new(r->ctx, "index", json_integer((json_int_t)k));
    if (r->wf->steps[i].matrix)
        json_object_set(r->ctx, "matrix", item);
    json_object_set_new(r->ctx_run, "attempt", json_integer(r->steps[i].fe_attempts[k] + 1));
}

static void item_ctx_clear(wfh_run *r)
{
    json_object_del(r->ctx, "item");
    json_object_del(r->ctx, "index");
    json_object_del(r->ctx, "matrix");
}

/* The first item of step @p rs that did not succeed decides how the step ends (@p end)
 * and its error (naming the item); later ones change neither. */
static void item_failed(run_step *rs, size_t k, wfh_sstate end, const char *why)
{
    if (rs->fe_failed)
        return;
    rs->fe_failed = 1;
    rs->fe_end = end;
    size_t need = strlen(why) + 64;
    free(rs->fe_error);
    if ((rs->fe_error = malloc(need)))
        snprintf(rs->fe_error, need, "item %zu: %s", k, why);
}

/* A hint for warm runners (core/attempt.h): another attempt like step @p i's may start
 * soon, because more of its items are to start or another step of its type with the
 * same grant is still waiting. Stops at the first; in a chain that is the next step. */
static int warm_hint(const wfh_run *r, size_t i)
{
    const run_step *rs = &r->steps[i];
    if (rs->fe_items && rs->fe_next < json_array_size(rs->fe_items))
        return 1;
    for (size_t d = 1; d < r->wf->n_steps; d++) {
        size_t j = (i + d) % r->wf->n_steps;
        wfh_sstate st = wfh_sched_state(r->sched, j);
        if (r->wf->steps[j].meta == r->wf->steps[i].meta && (st == WFH_S_PENDING || st == WFH_S_QUEUED) &&
            json_equal(r->steps[j].sandbox, rs->sandbox))
            return 1;
    }
    return 0;
}

static void start_item(wfh_run *r, size_t i, size_t k)
{
    const wfh_step *st = &r->wf->steps[i];
    run_step *rs = &r->steps[i];
    json_t *inputs = NULL, *env = NULL, *step_env = NULL; /* owned */
    char msg[1024], err[512] = "";
    item_ctx_set(r, i, k);
    wfh_expr_env ee = run_env(r);
    int bad = 0;
    if (wfh_value_eval(st->with, &ee, &inputs, err, sizeof err) < 0 || !json_is_object(inputs)) {
        eval_error(r, i, "with", err[0] ? err : "`with` is not a mapping", msg, sizeof msg);
        bad = 1;
    } else if (!(env = json_copy(r->wf_env))) {
        snprintf(msg, sizeof msg, "out of memory");
        bad = 1;
    } else if (st->env && wfh_value_eval(st->env, &ee, &step_env, err, sizeof err) < 0) {
        eval_error(r, i, "env", err[0] ? err : wfh_error_last(), msg, sizeof msg);
        bad = 1;
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(step_env, key, v) if (env_set(env, key, v) < 0) bad = 1;
        if (bad)
            snprintf(msg, sizeof msg, "out of memory");
    }
    item_ctx_clear(r);
    unsigned attempt = ++rs->fe_attempts[k];
    wfh_attempt *att = NULL;
    if (!bad) {
        char key[WFH_RUN_ID_LEN + 2 + 256 + 24], sid[256 + 24];
        snprintf(key, sizeof key, "%s/%s/%zu", r->id, r->ids[i], k);
        snprintf(sid, sizeof sid, "%s[%zu]", r->ids[i], k);
        const wfh_type_meta *meta = st->meta;
        wfh_attempt_spec spec = {
            .runner_path = r->cat->runner_path,
            .plugin_path = meta && meta->plugin ? meta->plugin->path : NULL,
            .step_type = meta ? meta->name : st->type,
            .inputs = inputs,
            .env = env,
            .run_id = r->id,
            .step_id = sid,
            .idempotency_key = key,
            .workspace = r->workspace,
            .attempt = attempt,
            .sandbox = rs->sandbox,
            .plugin_blake2b256 = meta && meta->plugin ? meta->plugin->blake2b256 : NULL,
            .plugin_sha256 = meta && meta->plugin ? meta->plugin->sha256 : NULL,
            .plugin_size = meta && meta->plugin ? meta->plugin->size : 0,
            .plugin_name = meta && meta->plugin ? meta->plugin->name : NULL,
            .plugin_version = meta && meta->plugin ? meta->plugin->version : NULL,
            .warm_hint = warm_hint(r, i),
            .busy = (unsigned)(r->n_slots - r->n_free + 1), /* its slot is taken below */
        };
        wfh_attempt_hooks hooks = {.log = on_log, .progress = on_progress, .ud = rs};
        int serr = 0;
        if (!spec.plugin_path || flush(r) < 0 || (serr = wfh_attempt_start(&spec, &hooks, &att)) < 0) {
            snprintf(msg, sizeof msg, "could not start: %s",
                     spec.plugin_path ? wfh_error_last() : "no plugin");
            refused_stops_run(r, sid, serr, msg);
            bad = 1;
        }
    }
    if (bad) {
        /* this item failed before it ran: the step fails once the running ones end */
        rs->fe_done++;
        item_failed(rs, k, WFH_S_FAILED, msg);
        goto done;
    }
    size_t s = r->free_slots[--r->n_free];
    r->slot_step[s] = i;
    r->slot_item[s] = k;
    r->slot_att[s] = att;
    r->slot_pid[s] = wfh_attempt_pid(att);
    r->slot_timed_out[s] = 0;
    uint64_t limit = wfh_timeout_for(r->wf, st);
    r->slot_deadline[s] = limit ? mono_ms() + limit : 0;
    r->slot_started[s] = mono_ms();
    rs->fe_running++;
    if (rs->group >= 0)
        r->group_running[rs->group]++;
    slot_refresh(r, s);
    if (r->cancelled)
        wfh_attempt_kill(att, WFH_STEP_CANCELLED, "cancelled");
done:
    json_decref(inputs);
    json_decref(env);
    json_decref(step_env);
}

/* Every item has ended (or no more will start): the step ends as its items did. */
static void fanout_end(wfh_run *r, size_t i)
{
    run_step *rs = &r->steps[i];
    for (size_t k = 0; k < r->n_fanout; k++)
        if (r->fanout[k] == i) {
            r->fanout[k] = r->fanout[--r->n_fanout];
            break;
        }
    json_decref(rs->outputs);
    rs->outputs = json_incref(rs->fe_outputs);
    wfh_sstate to = WFH_S_SUCCEEDED;
    if (rs->cancel_requested || (r->cancelled && rs->fe_done < json_array_size(rs->fe_items)))
        to = WFH_S_CANCELLED;
    else if (rs->fe_failed)
        to = rs->fe_end;
    transition(r, i, to, to == WFH_S_SUCCEEDED ? NULL
                         : to == WFH_S_CANCELLED ? "cancelled"
                                                 : rs->fe_error);
}

/* Start items of running fan-out steps while slots are free (and their max_parallel
 * and type limit allow); end the steps that have nothing left to wait for. */
static void feed_items(wfh_run *r)
{
    for (size_t k = 0; k < r->n_fanout;) {
        size_t i = r->fanout[k];
        run_step *rs = &r->steps[i];
        const wfh_step *st = &r->wf->steps[i];
        size_t total = json_array_size(rs->fe_items);
        int stop = r->cancelled || r->fatal || rs->fe_failed;
        uint64_t now = mono_ms();
#define ROOM                                                                                 \
    (r->n_free > 0 && (!st->max_parallel || rs->fe_running < st->max_parallel) &&           \
     (rs->group < 0 || r->group_running[rs->group] < r->wf->limit_values[rs->group]))
        for (size_t q = 0; !stop && q < rs->n_fe_retry && ROOM;) {
            if (rs->fe_retry_at[q] > now) {
                q++;
                continue;
            }
            size_t item = rs->fe_retry[q];
            rs->fe_retry[q] = rs->fe_retry[--rs->n_fe_retry];
            rs->fe_retry_at[q] = rs->fe_retry_at[rs->n_fe_retry];
            start_item(r, i, item);
            stop = rs->fe_failed;
        }
        while (!stop && rs->fe_next < total && ROOM) {
            start_item(r, i, rs->fe_next++);
            stop = rs->fe_failed;
        }
#undef ROOM
        if (rs->fe_running == 0 && (stop || rs->fe_done == total)) {
            fanout_end(r, i); /* removes it from r->fanout: look at slot k again */
            continue;
        }
        k++;
    }
}

/* An item's attempt in the step's attempt_history, with "item" naming it. */
static void record_item(wfh_run *r, size_t i, size_t k, size_t slot, wfh_sstate to,
                        const char *reason)
{
    run_step *rs = &r->steps[i];
    if (!rs->history && !(rs->history = json_array()))
        return;
    char *masked = reason && wfh_secrets_count(r->secrets)
                       ? wfh_secrets_mask(r->secrets, reason, strlen(reason), NULL)
                       : NULL; /* owned */
    uint64_t now = mono_ms();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t wall_ms = (uint64_t)wall.tv_sec * 1000u + (uint64_t)wall.tv_nsec / 1000000u;
    uint64_t dur = now - r->slot_started[slot];
    json_t *e = json_pack("{s:i,s:i,s:s,s:I,s:I,s:s?}", "item", (int)k, "attempt",
                          (int)rs->fe_attempts[k], "status", wfh_sstate_name(to),
                          "start_unix_ms", (json_int_t)(wall_ms - dur), "duration_ms",
                          (json_int_t)dur, "error",
                          to == WFH_S_SUCCEEDED ? NULL : masked ? masked : reason);
    free(masked);
    if (e && rs->att_sandbox)
        json_object_set(e, "sandbox", rs->att_sandbox);
    if (e)
        json_array_append_new(rs->history, e);
}

static void finish_item(wfh_run *r, size_t s, int wait_status)
{
    size_t i = r->slot_step[s], k = r->slot_item[s];
    run_step *rs = &r->steps[i];
    wfh_attempt_result res;
    memset(&res, 0, sizeof res);
    wfh_attempt_finish(r->slot_att[s], wait_status, &res);
    wfh_attempt_free(r->slot_att[s]);
    r->slot_att[s] = NULL;
    if (res.refused)
        refused_stops_run(r, r->ids[i], WFH_ESECURITY, res.error ? res.error : "refused");
    int timed_out = r->slot_timed_out[s];
    r->slot_step[s] = NO_SLOT;
    r->slot_item[s] = NO_SLOT;
    slot_refresh(r, s);
    r->free_slots[r->n_free++] = s;
    if (rs->group >= 0)
        r->group_running[rs->group]--;
    rs->fe_running--;
    json_t *outs = wfh_secrets_count(r->secrets) ? wfh_secrets_mask_json(r->secrets, res.outputs)
                                                 : json_incref(res.outputs);
    json_array_set_new(rs->fe_outputs, k, outs ? outs : json_null());
    /* an item's captured output is shown as it ends, as a plain step's is (masked) */
    json_t *item_outs = json_array_get(rs->fe_outputs, k); /* borrowed */
    show_captured_from(r, i, item_outs, "stdout");
    if (res.status != WFH_STEP_OK)
        show_captured_from(r, i, item_outs, "stderr");
    wfh_sstate to = res.status == WFH_STEP_OK ? WFH_S_SUCCEEDED
                    : timed_out || res.status == WFH_STEP_TIMEOUT ? WFH_S_TIMED_OUT
                    : res.status == WFH_STEP_CANCELLED || rs->cancel_requested || r->cancelled
                        ? WFH_S_CANCELLED
                        : WFH_S_FAILED;
    int cls = to == WFH_S_TIMED_OUT ? WFH_STEP_TIMEOUT : res.status > 0 ? res.status
                                                                        : WFH_STEP_FAILED;
    rs->att_sandbox = res.sandbox;
    record_item(r, i, k, s, to, res.error);
    rs->att_sandbox = NULL;
    const wfh_retry *pol = wfh_retry_for(r->wf, &r->wf->steps[i]);
    if ((to == WFH_S_FAILED || to == WFH_S_TIMED_OUT) && !r->cancelled && !r->fatal &&
        !rs->fe_failed && wfh_retry_should(pol, rs->fe_attempts[k], cls)) {
        /* the item goes again after its wait; the step waits for it */
        uint64_t rnd = 0;
        if (pol->jitter_full && getrandom_u64(&rnd) < 0)
            rnd = mono_ms() * 2654435761u;
        uint64_t wait = wfh_retry_delay(pol, rs->fe_attempts[k], res.retry_after_ms, rnd);
        rs->fe_retry[rs->n_fe_retry] = k;
        rs->fe_retry_at[rs->n_fe_retry++] = mono_ms() + wait;
        char note[700];
        snprintf(note, sizeof note, "item %zu attempt %u failed (%s)", k, rs->fe_attempts[k],
                 timed_out ? "timed out" : res.error ? res.error : "failed");
        char *masked = wfh_secrets_mask(r->secrets, note, strlen(note), NULL); /* owned */
        wfh_display_step_retry(r->disp, i, rs->fe_attempts[k], wait, masked ? masked : "");
        free(masked);
        wfh_attempt_result_clear(&res);
        return;
    }
    rs->fe_done++;
    if (to != WFH_S_SUCCEEDED && !rs->fe_failed) {
        char why[256];
        const char *reason = res.error;
        if (timed_out) {
            char d[32];
            wfh_duration_format(wfh_timeout_for(r->wf, &r->wf->steps[i]), d, sizeof d);
            snprintf(why, sizeof why, "timed out after %s", d);
            reason = why;
        } else if (!reason || !*reason) {
            if (res.term_signal)
                snprintf(why, sizeof why, "killed by signal %d", res.term_signal);
            else
                snprintf(why, sizeof why, "failed (exit status %d)", res.exit_code);
            reason = why;
        }
        item_failed(rs, k, to == WFH_S_CANCELLED ? WFH_S_FAILED : to, reason);
    }
    wfh_attempt_result_clear(&res);
    if (rs->fe_running == 0 &&
        (rs->fe_failed || r->cancelled || r->fatal || rs->fe_done == json_array_size(rs->fe_items)))
        fanout_end(r, i);
}

/* ---- built-in `pass` steps (issue #8) ------------------------------------------------- */

/* @p v (borrowed) as a step's outputs: masked like a plugin's before anything can print
 * or store them. New reference, or NULL on ENOMEM. */
static json_t *pass_outputs(const wfh_run *r, json_t *v)
{
    return wfh_secrets_count(r->secrets) ? wfh_secrets_mask_json(r->secrets, v) : json_incref(v);
}

/* Step @p i (QUEUED, its `with` evaluated into @p inputs, owned, taken): one attempt
 * that ends now, its outputs the inputs. No process, no slot, no sandbox: nothing but
 * the engine's own expression evaluation ran. Its RUNNING and SUCCEEDED records go into
 * the same commit (the turn's): after a crash the store has both or neither. */
static void run_pass(wfh_run *r, size_t i, json_t *inputs)
{
    run_step *rs = &r->steps[i];
    transition(r, i, WFH_S_RUNNING, NULL);
    if (r->fatal || wfh_sched_state(r->sched, i) != WFH_S_RUNNING) {
        json_decref(inputs);
        return;
    }
    json_decref(rs->outputs);
    rs->outputs = pass_outputs(r, inputs);
    json_decref(inputs);
    rs->last_status = WFH_STEP_OK;
    rs->att_sandbox = r->pass_sandbox; /* the run store keeps it with the attempt */
    end_attempt(r, i, WFH_S_SUCCEEDED, WFH_STEP_OK, NULL, 0);
    rs->att_sandbox = NULL;
}

/* A for_each/matrix `pass` step (RUNNING, its items listed): each item's `with` is its
 * outputs, all in this turn; the first that cannot be evaluated fails the step. */
static void pass_items(wfh_run *r, size_t i)
{
    const wfh_step *st = &r->wf->steps[i];
    run_step *rs = &r->steps[i];
    size_t total = json_array_size(rs->fe_items);
    for (size_t k = 0; k < total && !rs->fe_failed; k++) {
        char err[512] = "", msg[1024];
        json_t *inputs = NULL; /* owned */
        item_ctx_set(r, i, k);
        wfh_expr_env ee = run_env(r);
        int rc = wfh_value_eval(st->with, &ee, &inputs, err, sizeof err);
        item_ctx_clear(r);
        rs->fe_attempts[k] = 1;
        rs->fe_done++;
        if (rc < 0 || !json_is_object(inputs)) {
            eval_error(r, i, "with", err[0] ? err : "`with` is not a mapping", msg, sizeof msg);
            item_failed(rs, k, WFH_S_FAILED, msg);
        } else {
            json_t *outs = pass_outputs(r, inputs); /* owned, taken below */
            json_array_set_new(rs->fe_outputs, k, outs ? outs : json_null());
        }
        json_decref(inputs);
    }
    rs->att_sandbox = r->pass_sandbox;
    fanout_end(r, i);
    rs->att_sandbox = NULL;
}

static void start_step(wfh_run *r, size_t i)
{
    const wfh_step *st = &r->wf->steps[i];
    run_step *rs = &r->steps[i];
    json_t *inputs = NULL, *env = NULL, *step_env = NULL; /* owned */
    char msg[1024], err[512];
    err[0] = '\0';

    /* The inputs are evaluated just before the start, so they see every output of the
     * steps that ended before it. */
    json_object_set_new(r->ctx_run, "attempt",
                        json_integer(wfh_sched_attempts(r->sched, i) + 1));
    wfh_expr_env ee = run_env(r);
    if (st->handler == 1 && !rs->cond_done && !ee.run_failed) {
        rs->cond_done = 1;
        transition(r, i, WFH_S_SKIPPED, "on_failure: the run has not failed");
        goto done;
    }
    if (st->cond && !rs->cond_done) {
        /* Once, before the first attempt: a retry re-runs the step, not the decision. */
        rs->cond_done = 1;
        json_t *cv = NULL; /* owned */
        wfh_expr_error xe;
        memset(&xe, 0, sizeof xe);
        if (wfh_expr_eval(st->cond, &ee, &cv, &xe) < 0) {
            snprintf(msg, sizeof msg, "%s:%u:%u: if of step %s: %s", r->wf->path, st->if_line,
                     st->if_col, r->ids[i], xe.message[0] ? xe.message : wfh_error_last());
            transition(r, i, WFH_S_FAILED, msg);
            goto done;
        }
        int yes = wfh_expr_truthy(cv);
        json_decref(cv);
        if (!yes) {
            snprintf(msg, sizeof msg, "if: %.900s was false", st->cond_text);
            transition(r, i, WFH_S_SKIPPED, msg);
            goto done;
        }
    }
    if (st->for_each || st->matrix) {
        start_fanout(r, i, &ee);
        goto done;
    }
    if (wfh_value_eval(st->with, &ee, &inputs, err, sizeof err) < 0) {
        eval_error(r, i, "with", err[0] ? err : wfh_error_last(), msg, sizeof msg);
        transition(r, i, WFH_S_FAILED, msg);
        goto done;
    }
    if (!json_is_object(inputs)) {
        snprintf(msg, sizeof msg, "%s:%u:%u: `with` of step %s is not a mapping", r->wf->path,
                 st->line, st->col, r->ids[i]);
        transition(r, i, WFH_S_FAILED, msg);
        goto done;
    }
    if (wfh_step_is_pass(st)) {
        run_pass(r, i, inputs);
        inputs = NULL;
        goto done;
    }
    env = json_copy(r->wf_env);
    if (!env) {
        transition(r, i, WFH_S_FAILED, "out of memory");
        goto done;
    }
    if (st->env) {
        err[0] = '\0';
        if (wfh_value_eval(st->env, &ee, &step_env, err, sizeof err) < 0) {
            eval_error(r, i, "env", err[0] ? err : wfh_error_last(), msg, sizeof msg);
            transition(r, i, WFH_S_FAILED, msg);
            goto done;
        }
        const char *k;
        json_t *v;
        json_object_foreach(step_env, k, v) {
            if (env_set(env, k, v) < 0) {
                transition(r, i, WFH_S_FAILED, "out of memory");
                goto done;
            }
        }
    }

    rs->circuit = circuit_for(r, i, inputs);
    uint64_t cb_wait = 0;
    char cb_why[700];
    int fail_fast = circuit_blocks(r, rs->circuit, &cb_wait, cb_why, sizeof cb_why);
    transition(r, i, WFH_S_RUNNING, NULL);
    if (r->fatal)
        goto done;
    if (fail_fast) {
        /* a transient failure without a process; a retry waits for the probe */
        end_attempt(r, i, WFH_S_FAILED, WFH_STEP_TRANSIENT, cb_why, cb_wait);
        goto done;
    }
    if (!st->meta || !st->meta->plugin || !st->meta->plugin->path) {
        snprintf(msg, sizeof msg, "step %s: step type '%s' has no plugin (not validated?)",
                 r->ids[i], st->type);
        transition(r, i, WFH_S_FAILED, msg);
        goto done;
    }
    /* The runner is spawned at the end of this turn's starts (launch_pending), so the
     * records of every step started in one turn share one commit of the run store. The
     * slot and the type's limit are taken now, so the turn starts no more than fit. */
    rs->pend_inputs = inputs;
    rs->pend_env = env;
    inputs = env = NULL;
    if (rs->group >= 0)
        r->group_running[rs->group]++;
    rs->slot = r->free_slots[--r->n_free];
    r->slot_step[rs->slot] = i;
    r->pending[r->n_pending++] = i;
done:
    json_decref(inputs);
    json_decref(env);
    json_decref(step_env);
}

/* Spawn the runner of step @p i, which start_step left pending with a slot; if
 * @p refused is set (the run store could not record the turn's starts), or the spawn
 * fails, give the slot back and fail the step with the reason. */
static void launch_step(wfh_run *r, size_t i, const char *refused)
{
    const wfh_step *st = &r->wf->steps[i];
    run_step *rs = &r->steps[i];
    char msg[1024];
    char key[WFH_RUN_ID_LEN + 2 + 256];
    /* Stable across attempts (and, with a run store, across resumes), so plugins that
     * do side effects can make them once. */
    snprintf(key, sizeof key, "%s/%s", r->id, r->ids[i]);
    const wfh_type_meta *meta = st->meta;
    wfh_attempt_spec spec = {
        .runner_path = r->cat->runner_path,
        .plugin_path = meta->plugin->path,
        .step_type = meta->name,
        .inputs = rs->pend_inputs,
        .env = rs->pend_env,
        .run_id = r->id,
        .step_id = r->ids[i],
        .idempotency_key = key,
        .workspace = r->workspace,
        .attempt = wfh_sched_attempts(r->sched, i),
        .sandbox = rs->sandbox,
        .plugin_blake2b256 = meta->plugin->blake2b256,
        .plugin_sha256 = meta->plugin->sha256,
        .plugin_size = meta->plugin->size,
        .plugin_name = meta->plugin->name,
        .plugin_version = meta->plugin->version,
        .warm_hint = warm_hint(r, i),
        .busy = (unsigned)(r->n_slots - r->n_free), /* this turn's starts hold their slots */
    };
    wfh_attempt_hooks hooks = {.log = on_log, .progress = on_progress, .ud = rs};
    int serr = 0;
    if (refused || (serr = wfh_attempt_start(&spec, &hooks, &rs->att)) < 0) {
        snprintf(msg, sizeof msg, "could not start: %s", refused ? refused : wfh_error_last());
        if (rs->group >= 0)
            r->group_running[rs->group]--;
        r->slot_step[rs->slot] = NO_SLOT;
        r->free_slots[r->n_free++] = rs->slot;
        rs->slot = NO_SLOT;
        refused_stops_run(r, r->ids[i], serr, msg);
        transition(r, i, WFH_S_FAILED, msg);
        goto done;
    }
    rs->pid = wfh_attempt_pid(rs->att);
    uint64_t limit = wfh_timeout_for(r->wf, st);
    rs->timed_out = 0;
    rs->deadline_ms = limit ? mono_ms() + limit : 0;
    slot_refresh(r, rs->slot);
    if (r->cancelled && !(r->soft_cancel && st->handler == 2)) { /* a signal landed */
        rs->cancel_requested = 1;
        wfh_attempt_kill(rs->att, WFH_STEP_CANCELLED, "cancelled");
    }
done:
    json_decref(rs->pend_inputs);
    json_decref(rs->pend_env);
    rs->pend_inputs = rs->pend_env = NULL;
}

/* One commit for what this turn's starts recorded, then their runners. */
static void launch_pending(wfh_run *r)
{
    if (r->n_pending == 0)
        return;
    char refused[600] = "";
    if (flush(r) < 0)
        snprintf(refused, sizeof refused, "%s", wfh_error_last());
    for (size_t k = 0; k < r->n_pending; k++)
        launch_step(r, r->pending[k], refused[0] ? refused : NULL);
    r->n_pending = 0;
}

static int getrandom_u64(uint64_t *out)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, out, sizeof *out);
    close(fd);
    return got == (ssize_t)sizeof *out ? 0 : -1;
}

/* One entry of the step's attempt history (--json "attempt_history"): when each attempt
 * started and how it ended, so retry spacing can be checked after the fact. */
static void record_attempt(wfh_run *r, size_t i, wfh_sstate to, const char *reason)
{
    run_step *rs = &r->steps[i];
    if (!rs->history && !(rs->history = json_array()))
        return;
    char *masked = reason && wfh_secrets_count(r->secrets)
                       ? wfh_secrets_mask(r->secrets, reason, strlen(reason), NULL)
                       : NULL; /* owned */
    json_t *e = json_pack("{s:i,s:s,s:s,s:I,s:I,s:s?}", "attempt",
                          (int)wfh_sched_attempts(r->sched, i), "status", wfh_sstate_name(to),
                          "started_at", rs->started_at, "start_unix_ms",
                          (json_int_t)rs->start_unix_ms, "duration_ms",
                          (json_int_t)(mono_ms() - rs->start_ms), "error",
                          masked ? masked : reason);
    free(masked);
    if (e && rs->att_sandbox)
        json_object_set(e, "sandbox", rs->att_sandbox);
    if (e)
        json_array_append_new(rs->history, e);
}

/* ---- circuit breakers ---------------------------------------------------------------- */

/* The breaker a step's attempt goes through: its type, plus the host of `with.url` when
 * it has one (a failing server should not stop requests to a healthy one). Returns the
 * index into r->circuits (added if new), or -1 without a breaker or on ENOMEM. */
static long circuit_for(wfh_run *r, size_t i, json_t *inputs)
{
    if (!r->wf->cb_failures)
        return -1;
    const wfh_step *st = &r->wf->steps[i];
    char key[512];
    const char *url = json_string_value(json_object_get(inputs, "url"));
    const char *host = url ? strstr(url, "://") : NULL;
    size_t hl = 0;
    if (host) {
        host += 3;
        hl = strcspn(host, "/?#");
        const char *at = memchr(host, '@', hl); /* never put credentials in a name */
        if (at) {
            hl -= (size_t)(at + 1 - host);
            host = at + 1;
        }
    }
    snprintf(key, sizeof key, "%s%s%.*s", st->type, host ? " " : "", (int)hl, host ? host : "");
    for (size_t k = 0; k < r->n_circuits; k++)
        if (!strcmp(r->circuits[k].key, key))
            return (long)k;
    struct circuit *nc = realloc(r->circuits, (r->n_circuits + 1) * sizeof *nc);
    if (!nc)
        return -1;
    r->circuits = nc;
    memset(&nc[r->n_circuits], 0, sizeof *nc);
    if (!(nc[r->n_circuits].key = strdup(key)))
        return -1;
    return (long)r->n_circuits++;
}

static void circuit_note(wfh_run *r, const struct circuit *c, const char *what)
{
    char note[700];
    snprintf(note, sizeof note, "circuit %s: %s", c->key, what);
    wfh_display_note(r->disp, note);
}

/* May an attempt through breaker @p k start now? 0: yes; else *wait_ms is how long until
 * a probe may go, and @p why says so. */
static int circuit_blocks(wfh_run *r, long k, uint64_t *wait_ms, char *why, size_t len)
{
    if (k < 0)
        return 0;
    struct circuit *c = &r->circuits[k];
    uint64_t now = mono_ms();
    if (c->state == CIRCUIT_OPEN && now >= c->open_until) {
        c->state = CIRCUIT_HALF_OPEN; /* this attempt is the probe that decides */
        c->probing = 1;
        circuit_note(r, c, "half-open: one probe attempt decides");
        return 0;
    }
    if (c->state == CIRCUIT_CLOSED)
        return 0;
    *wait_ms = c->state == CIRCUIT_OPEN ? c->open_until - now : r->wf->cb_cooldown_ms;
    char d[32];
    wfh_duration_format(*wait_ms ? *wait_ms : 1, d, sizeof d);
    snprintf(why, len, "circuit %s is open after %u transient failures in a row: failing fast "
             "(a probe may go in %s)", c->key, c->failures, d);
    return 1;
}

static void circuit_update(wfh_run *r, long k, int ok, int cls)
{
    if (k < 0)
        return;
    struct circuit *c = &r->circuits[k];
    char what[128];
    if (!(cls == WFH_STEP_TRANSIENT || cls == WFH_STEP_TIMEOUT) || ok) {
        /* the target answered: whatever the step made of it, the target is up */
        if (c->state != CIRCUIT_CLOSED)
            circuit_note(r, c, "closed: the probe got through");
        c->state = CIRCUIT_CLOSED;
        c->failures = 0;
        c->probing = 0;
        return;
    }
    c->failures++;
    char d[32];
    wfh_duration_format(r->wf->cb_cooldown_ms, d, sizeof d);
    if (c->state == CIRCUIT_HALF_OPEN) {
        c->state = CIRCUIT_OPEN;
        c->probing = 0;
        c->open_until = mono_ms() + r->wf->cb_cooldown_ms;
        snprintf(what, sizeof what, "open again for %s: the probe failed", d);
        circuit_note(r, c, what);
    } else if (c->state == CIRCUIT_CLOSED && c->failures >= r->wf->cb_failures) {
        c->state = CIRCUIT_OPEN;
        c->open_until = mono_ms() + r->wf->cb_cooldown_ms;
        snprintf(what, sizeof what, "open for %s after %u transient failures in a row", d,
                 c->failures);
        circuit_note(r, c, what);
    }
}

static void finish_step(wfh_run *r, size_t i, int wait_status)
{
    run_step *rs = &r->steps[i];
    wfh_attempt_result res;
    memset(&res, 0, sizeof res);
    wfh_attempt_finish(rs->att, wait_status, &res);
    wfh_attempt_free(rs->att);
    rs->att = NULL;
    if (res.refused)
        refused_stops_run(r, r->ids[i], WFH_ESECURITY, res.error ? res.error : "refused");
    if (rs->group >= 0)
        r->group_running[rs->group]--;
    r->slot_step[rs->slot] = NO_SLOT;
    slot_refresh(r, rs->slot);
    r->free_slots[r->n_free++] = rs->slot;
    rs->slot = NO_SLOT;

    json_decref(rs->outputs);
    /* failed attempts keep theirs too (exit_code, stderr); masked before anything can
     * print or store them */
    rs->outputs = wfh_secrets_count(r->secrets) ? wfh_secrets_mask_json(r->secrets, res.outputs)
                                                : json_incref(res.outputs);
    json_decref(res.outputs);
    res.outputs = NULL;
    rs->last_exit = res.exit_code; /* the run store's hook records them with the outcome */
    rs->last_signal = res.term_signal;
    rs->last_status = res.status;
    wfh_sstate to;
    switch (res.status) {
    case WFH_STEP_OK: to = WFH_S_SUCCEEDED; break;
    case WFH_STEP_TIMEOUT: to = WFH_S_TIMED_OUT; break;
    case WFH_STEP_CANCELLED: to = WFH_S_CANCELLED; break;
    default: to = WFH_S_FAILED; break;
    }
    if (rs->timed_out && to != WFH_S_SUCCEEDED)
        to = WFH_S_TIMED_OUT;
    if (rs->cancel_requested && to != WFH_S_SUCCEEDED)
        to = WFH_S_CANCELLED;
    char why[256];
    const char *reason = res.error;
    if (to == WFH_S_TIMED_OUT && rs->timed_out) {
        char d[32];
        wfh_duration_format(wfh_timeout_for(r->wf, &r->wf->steps[i]), d, sizeof d);
        snprintf(why, sizeof why, "timed out after %s (its process tree was killed)", d);
        reason = why;
    }
    if (to != WFH_S_SUCCEEDED && (!reason || !*reason)) {
        if (res.term_signal)
            snprintf(why, sizeof why, "step runner killed by signal %d (%s)", res.term_signal,
                     strsignal(res.term_signal));
        else
            snprintf(why, sizeof why, "failed (exit status %d)", res.exit_code);
        reason = why;
    }
    int cls = to == WFH_S_TIMED_OUT ? WFH_STEP_TIMEOUT
              : res.status > 0          ? res.status
                                        : WFH_STEP_FAILED;
    if (to != WFH_S_CANCELLED)
        circuit_update(r, rs->circuit, to == WFH_S_SUCCEEDED, cls);
    rs->att_sandbox = res.sandbox;
    end_attempt(r, i, to, cls, reason, res.retry_after_ms);
    rs->att_sandbox = NULL;
    wfh_attempt_result_clear(&res);
}

/* An attempt ended as @p to (class @p cls): record it, then try again if the step's
 * retry policy says so, else make @p to the step's state. */
static void end_attempt(wfh_run *r, size_t i, wfh_sstate to, int cls, const char *reason,
                        uint64_t hint_ms)
{
    run_step *rs = &r->steps[i];
    record_attempt(r, i, to, to == WFH_S_SUCCEEDED ? NULL : reason);
    unsigned attempt = wfh_sched_attempts(r->sched, i);
    const wfh_retry *pol = wfh_retry_for(r->wf, &r->wf->steps[i]);
    if ((to == WFH_S_FAILED || to == WFH_S_TIMED_OUT) && !r->cancelled && !r->fatal &&
        wfh_retry_should(pol, attempt, cls)) {
        uint64_t rnd = 0;
        if (pol->jitter_full && getrandom_u64(&rnd) < 0)
            rnd = mono_ms() * 2654435761u; /* jitter spreads load; it need not be secret */
        uint64_t wait = wfh_retry_delay(pol, attempt, hint_ms, rnd);
        char *shown = reason && wfh_secrets_count(r->secrets)
                          ? wfh_secrets_mask(r->secrets, reason, strlen(reason), NULL)
                          : NULL; /* owned */
        wfh_display_step_retry(r->disp, i, attempt, wait, shown ? shown : reason);
        free(shown);
        transition(r, i, WFH_S_RETRYING, reason);
        if (wfh_sched_state(r->sched, i) == WFH_S_RETRYING) {
            rs->retry_at_ms = mono_ms() + wait;
            r->retrying[r->n_retrying++] = i;
        }
        return;
    }
    transition(r, i, to, to == WFH_S_SUCCEEDED ? NULL : reason);
}

static void cancel_run(wfh_run *r, int sig)
{
    char note[160];
    /* The first signal spares `finally:` steps (they still run: they are the cleanup);
     * a second one, or a host error, stops them too. */
    int spare = sig && !r->cancelled && !r->fatal && r->has_finally;
    if (!r->cancelled || r->soft_cancel) {
        int first = !r->cancelled;
        r->cancelled = 1;
        r->cancel_signal = sig;
        r->soft_cancel = spare;
        snprintf(note, sizeof note, "wfhost: %s: %s", sig ? strsignal(sig) : "stopping",
                 spare   ? "cancelling the run; finally steps still run (again to stop them)"
                 : first ? "cancelling the run"
                         : "stopping the finally steps too");
        wfh_display_note(r->disp, note);
        int err = wfh_sched_cancel_keep(r->sched, "cancelled",
                                        spare ? WFH_SCHED_RUN_AFTER_CANCEL : 0u);
        if (err < 0 && !r->fatal) {
            r->fatal = err;
            snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", wfh_error_last());
        }
    }
    /* Again on every signal: a second Ctrl-C must not be needed, but is harmless. */
    for (size_t s = 0; s < r->n_slots; s++) {
        size_t i = r->slot_step[s];
        if (i == NO_SLOT || (r->soft_cancel && r->wf->steps[i].handler == 2))
            continue;
        r->steps[i].cancel_requested = 1;
        wfh_attempt_kill(slot_att(r, s), WFH_STEP_CANCELLED, "cancelled");
    }
}

/* The next queued step that may start now: first those held back by a `limits:` entry
 * whose type has room again (in the order they were held), then the scheduler's queue,
 * holding back steps whose type is at its limit. */
static long next_startable(wfh_run *r)
{
    for (size_t k = 0; k < r->n_deferred;) {
        size_t i = r->deferred[k];
        if (wfh_sched_state(r->sched, i) != WFH_S_QUEUED) { /* cancelled meanwhile */
            memmove(&r->deferred[k], &r->deferred[k + 1], (r->n_deferred - k - 1) * sizeof(size_t));
            r->n_deferred--;
            continue;
        }
        long g = r->steps[i].group;
        if (r->group_running[g] < r->wf->limit_values[g]) {
            memmove(&r->deferred[k], &r->deferred[k + 1], (r->n_deferred - k - 1) * sizeof(size_t));
            r->n_deferred--;
            return (long)i;
        }
        k++;
    }
    long next;
    while ((next = wfh_sched_next(r->sched)) >= 0) {
        long g = r->steps[next].group;
        if (g < 0 || r->group_running[g] < r->wf->limit_values[g])
            return next;
        r->deferred[r->n_deferred++] = (size_t)next;
    }
    return -1;
}

/* The poll() timeout: @p timeout (-1: none) shortened to the nearest attempt deadline
 * or retry start. Scans running slots and waiting retries only. */
static int nearest_deadline(wfh_run *r, int timeout)
{
    uint64_t now = mono_ms(), best = UINT64_MAX;
    for (size_t s = 0; s < r->n_slots; s++) {
        size_t i = r->slot_step[s];
        if (i != NO_SLOT && r->slot_item[s] != NO_SLOT) {
            if (r->slot_deadline[s] && !r->slot_timed_out[s] && r->slot_deadline[s] < best)
                best = r->slot_deadline[s];
        } else if (i != NO_SLOT && r->steps[i].deadline_ms && !r->steps[i].timed_out &&
                   r->steps[i].deadline_ms < best) {
            best = r->steps[i].deadline_ms;
        }
    }
    for (size_t k = 0; k < r->n_retrying; k++)
        if (r->steps[r->retrying[k]].retry_at_ms < best)
            best = r->steps[r->retrying[k]].retry_at_ms;
    for (size_t k = 0; k < r->n_fanout; k++) {
        const run_step *rs = &r->steps[r->fanout[k]];
        for (size_t q = 0; q < rs->n_fe_retry; q++)
            if (rs->fe_retry_at[q] < best)
                best = rs->fe_retry_at[q];
    }
    if (best == UINT64_MAX)
        return timeout;
    uint64_t wait = best > now ? best - now : 0;
    if (wait > INT32_MAX)
        wait = INT32_MAX;
    return timeout >= 0 && (uint64_t)timeout < wait ? timeout : (int)wait;
}

/* Kill attempts past their timeout (reaped as TIMED_OUT later) and queue the retries
 * whose wait is over. */
static void expire_deadlines(wfh_run *r)
{
    uint64_t now = mono_ms();
    for (size_t s = 0; s < r->n_slots; s++) {
        size_t i = r->slot_step[s];
        if (i != NO_SLOT && r->slot_item[s] != NO_SLOT) {
            if (r->slot_deadline[s] && !r->slot_timed_out[s] && now >= r->slot_deadline[s] &&
                !r->steps[i].cancel_requested) {
                r->slot_timed_out[s] = 1;
                wfh_attempt_kill(r->slot_att[s], WFH_STEP_TIMEOUT, "timed out");
            }
            continue;
        }
        run_step *rs = i != NO_SLOT ? &r->steps[i] : NULL;
        if (!rs || !rs->deadline_ms || rs->timed_out || rs->cancel_requested ||
            now < rs->deadline_ms)
            continue;
        rs->timed_out = 1;
        wfh_attempt_kill(rs->att, WFH_STEP_TIMEOUT, "timed out");
    }
    for (size_t k = 0; k < r->n_retrying;) {
        size_t i = r->retrying[k];
        if (wfh_sched_state(r->sched, i) != WFH_S_RETRYING) { /* cancelled meanwhile */
            r->retrying[k] = r->retrying[--r->n_retrying];
            continue;
        }
        int may = !r->cancelled || (r->soft_cancel && r->wf->steps[i].handler == 2);
        if (may && !r->fatal && now >= r->steps[i].retry_at_ms) {
            r->retrying[k] = r->retrying[--r->n_retrying];
            transition(r, i, WFH_S_QUEUED, NULL);
            continue;
        }
        k++;
    }
}

static size_t slot_of_pid(const wfh_run *r, pid_t pid)
{
    for (size_t s = 0; s < r->n_slots; s++)
        if (r->slot_step[s] != NO_SLOT &&
            (r->slot_item[s] != NO_SLOT ? r->slot_pid[s] : r->steps[r->slot_step[s]].pid) == pid)
            return s;
    return NO_SLOT;
}

/* ---- set-up and tear-down ------------------------------------------------------------ */

static char *display_mask(const void *ud, const char *s, size_t len, size_t *outlen)
{
    return wfh_secrets_mask(ud, s, len, outlen);
}

void wfh_run_free(wfh_run *r)
{
    if (!r)
        return;
    wfh_attempt_warm_release(); /* no runner outlives its run, used or not */
    if (r->steps) {
        for (size_t i = 0; i < r->wf->n_steps; i++) {
            run_step *rs = &r->steps[i];
            if (rs->att) { /* only after a host error: do not leave its tree behind */
                wfh_attempt_kill(rs->att, WFH_STEP_CANCELLED, "cancelled");
                int ws = 0;
                if (waitpid(rs->pid, &ws, 0) == rs->pid) {
                    wfh_attempt_result res;
                    memset(&res, 0, sizeof res);
                    wfh_attempt_finish(rs->att, ws, &res);
                    wfh_attempt_result_clear(&res);
                }
                wfh_attempt_free(rs->att);
            }
            json_decref(rs->outputs);
            json_decref(rs->sandbox);
            json_decref(rs->pend_inputs);
            json_decref(rs->pend_env);
            free(rs->error);
            free(rs->note);
            json_decref(rs->history);
            json_decref(rs->fe_items);
            json_decref(rs->fe_outputs);
            free(rs->fe_error);
            free(rs->fe_attempts);
            free(rs->fe_retry);
            free(rs->fe_retry_at);
        }
    }
    free(r->steps);
    for (size_t s = 0; r->slot_item && s < r->n_slots; s++) {
        if (r->slot_item[s] == NO_SLOT || !r->slot_att[s])
            continue;
        /* only after a host error: do not leave an item's tree behind */
        wfh_attempt_kill(r->slot_att[s], WFH_STEP_CANCELLED, "cancelled");
        int ws = 0;
        if (waitpid(r->slot_pid[s], &ws, 0) == r->slot_pid[s]) {
            wfh_attempt_result res;
            memset(&res, 0, sizeof res);
            wfh_attempt_finish(r->slot_att[s], ws, &res);
            wfh_attempt_result_clear(&res);
        }
        wfh_attempt_free(r->slot_att[s]);
    }
    free(r->slot_item);
    free(r->slot_att);
    free(r->slot_pid);
    free(r->slot_deadline);
    free(r->slot_timed_out);
    free(r->slot_started);
    for (size_t k = 0; k < r->n_circuits; k++)
        free(r->circuits[k].key);
    free(r->circuits);
    free(r->fanout);
    free(r->retrying);
    free(r->group_running);
    free(r->deferred);
    json_decref(r->outputs);
    json_decref(r->pass_sandbox);
    free(r->outputs_error);
    free((void *)r->ids);
    wfh_sched_free(r->sched);
    wfh_display_free(r->disp);
    json_decref(r->ctx);
    json_decref(r->wf_env);
    free(r->slot_step);
    free(r->free_slots);
    free(r->pending);
    free(r->pfd);
    free(r->workspace);
    free(r);
}

int wfh_run_new(const wfh_workflow *wf, const wfh_catalog *cat, const wfh_run_opts *opts,
                wfh_run **out)
{
    int err = 0;
    size_t n = wf->n_steps;
    size_t *n_needs = NULL;            /* owned, temporary */
    const size_t **needs = NULL;       /* owned array of borrowed arrays, temporary */
    wfh_run *r = calloc(1, sizeof *r); /* owned until handed out */
    *out = NULL;
    if (!r)
        return wfh_error_set(WFH_ENOMEM, "run: out of memory");
    r->wf = wf;
    r->cat = cat;
    r->human = opts && opts->human ? opts->human : stderr;
    r->tty = opts ? opts->tty : -1;
    r->on_event = opts ? opts->on_event : NULL;
    r->on_event_ud = opts ? opts->on_event_ud : NULL;
    r->on_flush = opts ? opts->on_flush : NULL;
    r->secrets = opts ? opts->secrets : NULL;
    r->on_log = opts ? opts->on_log : NULL;
    if (opts && opts->run_id) {
        snprintf(r->id, sizeof r->id, "%s", opts->run_id);
    } else if ((err = wfh_run_id_new(r->id)) < 0) {
        goto done;
    }
    unsigned conc = opts ? opts->concurrency : 0;
    if (conc == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        conc = cpus > 0 ? (unsigned)cpus : 1;
    }
    r->concurrency = conc;
    r->n_slots = conc < n ? conc : (n ? n : 1);
    if (opts && opts->workspace) {
        r->workspace = strdup(opts->workspace);
    } else {
        r->workspace = getcwd(NULL, 0);
    }
    r->steps = calloc(n ? n : 1, sizeof *r->steps);
    r->ids = calloc(n ? n : 1, sizeof *r->ids);
    n_needs = calloc(n ? n : 1, sizeof *n_needs);
    needs = calloc(n ? n : 1, sizeof *needs);
    r->slot_step = calloc(r->n_slots, sizeof *r->slot_step);
    r->slot_item = calloc(r->n_slots, sizeof *r->slot_item);
    r->slot_att = calloc(r->n_slots, sizeof *r->slot_att);
    r->slot_pid = calloc(r->n_slots, sizeof *r->slot_pid);
    r->slot_deadline = calloc(r->n_slots, sizeof *r->slot_deadline);
    r->slot_timed_out = calloc(r->n_slots, 1);
    r->slot_started = calloc(r->n_slots, sizeof *r->slot_started);
    if (!r->slot_item || !r->slot_att || !r->slot_pid || !r->slot_deadline ||
        !r->slot_timed_out || !r->slot_started) {
        err = wfh_error_set(WFH_ENOMEM, "run: out of memory");
        goto done;
    }
    r->free_slots = calloc(r->n_slots, sizeof *r->free_slots);
    r->pending = calloc(r->n_slots, sizeof *r->pending);
    r->pfd = calloc(1 + 2 * r->n_slots, sizeof *r->pfd);
    r->ctx = json_object();
    r->ctx_steps = json_object();
    r->ctx_run = json_pack("{s:s,s:i,s:s}", "id", r->id, "attempt", 1, "workflow", wf->name);
    r->retrying = calloc(n ? n : 1, sizeof *r->retrying);
    r->deferred = calloc(n ? n : 1, sizeof *r->deferred);
    r->fanout = calloc(n ? n : 1, sizeof *r->fanout);
    r->group_running = calloc(wf->n_limits ? wf->n_limits : 1, sizeof *r->group_running);
    r->pass_sandbox = json_pack("{s:s,s:s}", "profile", "built-in", "note", "no process");
    json_t *ctx_inputs = opts && opts->inputs ? json_incref(opts->inputs) : json_object();
    json_t *ctx_secrets = wfh_secrets_context(opts ? opts->secrets : NULL);
    int ctx_bad = !r->ctx || !ctx_inputs || !ctx_secrets ||
                  json_object_set_new(r->ctx, "inputs", ctx_inputs) < 0 ||
                  json_object_set_new(r->ctx, "secrets", ctx_secrets) < 0;
    if (ctx_bad || !r->pass_sandbox || !r->retrying || !r->deferred || !r->group_running || !r->fanout ||
        !r->workspace || !r->steps || !r->ids || !n_needs || !needs || !r->slot_step ||
        !r->free_slots || !r->pending || !r->pfd || !r->ctx || !r->ctx_steps || !r->ctx_run ||
        json_object_set(r->ctx, "steps", r->ctx_steps) < 0 ||
        json_object_set(r->ctx, "run", r->ctx_run) < 0) {
        err = wfh_error_set(WFH_ENOMEM, "run: out of memory for %zu steps", n);
        goto done;
    }
    /* ctx holds the references now; ctx_steps and ctx_run are borrowed from it. */
    json_decref(r->ctx_steps);
    json_decref(r->ctx_run);
    for (size_t i = 0; i < n; i++) {
        r->steps[i].run = r;
        r->steps[i].idx = i;
        r->steps[i].slot = NO_SLOT;
        r->steps[i].group = -1;
        r->steps[i].circuit = -1;
        r->has_finally |= wf->steps[i].handler == 2;
        /* limits: hold processes of a type; a pass step starts none */
        for (size_t g = 0; g < wf->n_limits && !wfh_step_is_pass(&wf->steps[i]); g++)
            if (wf->steps[i].type && !strcmp(wf->steps[i].type, wf->limit_types[g]))
                r->steps[i].group = (long)g;
        r->ids[i] = wf->steps[i].id;
        n_needs[i] = wf->steps[i].n_needs;
        needs[i] = wf->steps[i].needs;
        if (n_needs[i] && !needs[i]) {
            err = wfh_error_set(WFH_EINVAL, "%s: step %s: needs not resolved (not validated)",
                                wf->path, wf->steps[i].id);
            goto done;
        }
    }
    /* Grants first: a refusal must stop the run before any step has done anything. */
    for (size_t i = 0; opts && opts->policy && i < n; i++) {
        const wfh_type_meta *meta = wf->steps[i].meta;
        if (wfh_step_is_pass(&wf->steps[i]))
            continue; /* no process, nothing to confine or grant */
        err = wfh_policy_grant_for_step(opts->policy, wf->steps[i].id,
                                        meta ? meta->name : wf->steps[i].type,
                                        meta ? meta->capabilities : NULL, NULL,
                                        wf->steps[i].with, &r->steps[i].sandbox);
        if (err < 0)
            goto done;
    }
    for (size_t s = 0; s < r->n_slots; s++) {
        r->slot_step[s] = NO_SLOT;
        r->slot_item[s] = NO_SLOT;
        r->free_slots[s] = r->n_slots - 1 - s; /* hand out slot 0 first */
        r->pfd[1 + 2 * s].fd = r->pfd[2 + 2 * s].fd = -1;
    }
    r->n_free = r->n_slots;
    r->pfd[0].fd = -1;
    if ((err = wfh_sched_new(n, n_needs, needs, run_on_event, r, &r->sched)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        unsigned fl = ((wf->steps[i].cond && wf->steps[i].cond_status_fn) ||
                               wf->steps[i].handler
                           ? WFH_SCHED_RUN_AFTER_FAILURE : 0u) |
                      (wf->steps[i].continue_on_error ? WFH_SCHED_TOLERATE_FAILURE : 0u) |
                      (wf->steps[i].handler == 2 ? WFH_SCHED_RUN_AFTER_CANCEL : 0u) |
                      (wfh_step_is_pass(&wf->steps[i]) ? WFH_SCHED_INSTANT : 0u);
        if (fl && (err = wfh_sched_set_flags(r->sched, i, fl)) < 0)
            goto done;
    }
    r->disp = wfh_display_new(r->human, r->tty, n, r->ids);
    if (!r->disp) {
        err = wfh_error_set(WFH_ENOMEM, "run: out of memory");
        goto done;
    }
    if (wfh_secrets_count(r->secrets) &&
        (err = wfh_display_set_mask(r->disp, display_mask, r->secrets)) < 0)
        goto done;
    /* The run exists from here: its id is the first thing people and scripts see. */
    wfh_display_run_start(r->disp, r->id, wf->name);
done:
    free(n_needs);
    free((void *)needs);
    if (err < 0) {
        wfh_run_free(r);
        return err;
    }
    *out = r;
    return 0;
}

const char *wfh_run_id(const wfh_run *r)
{
    return r->id;
}

int wfh_run_restore(wfh_run *r, size_t step, json_t *outputs, unsigned attempts)
{
    if (r->finished || step >= r->wf->n_steps)
        return wfh_error_set(WFH_EINVAL, "run %s: cannot restore step %zu now", r->id, step);
    int err = wfh_sched_restore(r->sched, step, attempts);
    if (err < 0)
        return err;
    run_step *rs = &r->steps[step];
    json_decref(rs->outputs);
    rs->outputs = json_is_object(outputs) ? json_incref(outputs) : json_object();
    rs->restored = 1;
    json_t *entry = json_pack("{s:O,s:s}", "outputs", rs->outputs, "status", "success");
    if (!rs->outputs || !entry || json_object_set_new(r->ctx_steps, r->ids[step], entry) < 0)
        return wfh_error_set(WFH_ENOMEM, "run %s: out of memory", r->id);
    return 0;
}

void wfh_run_attempt_get(const wfh_run *r, size_t step, wfh_run_attempt_info *out)
{
    const run_step *rs = &r->steps[step];
    out->outputs = rs->outputs;
    out->exit_code = rs->last_exit;
    out->term_signal = rs->last_signal;
    out->step_status = rs->last_status;
    out->sandbox = rs->att_sandbox;
}

int wfh_run_set_attempts(wfh_run *r, size_t step, unsigned attempts)
{
    if (r->finished || step >= r->wf->n_steps)
        return wfh_error_set(WFH_EINVAL, "run %s: cannot set attempts of step %zu now", r->id,
                             step);
    return wfh_sched_set_attempts(r->sched, step, attempts);
}

/* The workflow's env, evaluated once (it sees `run`, not steps), as strings. */
static int eval_workflow_env(wfh_run *r)
{
    char err[512] = "";
    json_t *v = NULL; /* owned */
    r->wf_env = json_object();
    if (!r->wf_env)
        return wfh_error_set(WFH_ENOMEM, "run: out of memory");
    if (!r->wf->env)
        goto set_ctx;
    wfh_expr_env ee = {.contexts = r->ctx, .strict_step_outputs = 1};
    if (wfh_value_eval(r->wf->env, &ee, &v, err, sizeof err) < 0) {
        const char *m = err[0] ? err : wfh_error_last();
        return wfh_error_set(WFH_EEVAL, "%s%s%s (in the workflow's env)", r->wf->path,
                             (m[0] >= '0' && m[0] <= '9') ? ":" : ": ", m);
    }
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (env_set(r->wf_env, k, x) < 0) {
            json_decref(v);
            return wfh_error_set(WFH_ENOMEM, "run: out of memory");
        }
    }
    json_decref(v);
set_ctx:
    if (json_object_set(r->ctx, "env", r->wf_env) < 0)
        return wfh_error_set(WFH_ENOMEM, "run: out of memory");
    return 0;
}

/* Each attempt holds two pipe ends in the host: let wide fan-outs use the hard limit. */
static void raise_nofile(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want + 64)
        return;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

/* Skipped steps (an `if:` said no) and failures under continue_on_error do not fail a
 * run; anything else that did not succeed does, and so do outputs that cannot be had. */
static int run_succeeded(const wfh_run *r)
{
    const wfh_sched *s = r->sched;
    size_t bad = wfh_sched_count(s, WFH_S_FAILED) + wfh_sched_count(s, WFH_S_TIMED_OUT);
    size_t done = wfh_sched_count(s, WFH_S_SUCCEEDED) + wfh_sched_count(s, WFH_S_SKIPPED) + bad;
    return !r->fatal && !r->outputs_error && bad == wfh_sched_tolerated(s) &&
           done == r->wf->n_steps;
}

static void eval_outputs(wfh_run *r)
{
    if (!r->wf->outputs)
        return;
    char msg[512] = "";
    json_t *v = NULL; /* owned */
    wfh_expr_env ee = {.contexts = r->ctx, .strict_step_outputs = 1,
                       .run_failed = !run_succeeded(r)};
    if (wfh_value_eval(r->wf->outputs, &ee, &v, msg, sizeof msg) < 0) {
        const char *m = msg[0] ? msg : wfh_error_last();
        char full[700];
        snprintf(full, sizeof full, "%s%s%s (in the workflow's outputs)", r->wf->path,
                 (m[0] >= '0' && m[0] <= '9') ? ":" : ": ", m);
        r->outputs_error = wfh_secrets_mask(r->secrets, full, strlen(full), NULL);
        wfh_display_note(r->disp, r->outputs_error ? r->outputs_error : "outputs failed");
        return;
    }
    r->outputs = wfh_secrets_mask_json(r->secrets, v);
    json_decref(v);
    const char *k;
    json_t *x;
    json_object_foreach(r->outputs, k, x) {
        char *text = json_is_string(x) ? strdup(json_string_value(x))
                                       : json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
        size_t need = strlen(k) + (text ? strlen(text) : 0) + 16;
        char *line = malloc(need); /* owned */
        if (line) {
            snprintf(line, need, "output %s = %s", k, text ? text : "?");
            wfh_display_note(r->disp, line);
        }
        free(line);
        free(text);
    }
}

json_t *wfh_run_outputs(const wfh_run *r)
{
    return r->outputs;
}

int wfh_run_exec(wfh_run *r)
{
    int err = 0;
    int pipefd[2] = {-1, -1};
    struct sigaction old_chld, old_int, old_term, old_pipe, sa, ign;
    int installed = 0;

    if (r->finished)
        return wfh_error_set(WFH_EINVAL, "run %s: already executed", r->id);
    r->finished = 1;
    r->start_ms = mono_ms();
    iso_now(r->started_at);
    for (size_t i = 0; i < r->wf->n_steps; i++)
        if (r->steps[i].restored)
            wfh_display_step_end(r->disp, i, WFH_S_SUCCEEDED, WFH_DISPLAY_NEVER_RAN,
                                 "succeeded earlier in this run, not run again");
    if ((err = eval_workflow_env(r)) < 0) {
        r->fatal = err; /* nothing can start without it: the run's own error */
        snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", wfh_error_last());
        (void)wfh_sched_cancel(r->sched, "not started: the workflow's env failed to evaluate");
        err = wfh_error_set(r->fatal, "%s", r->fatal_msg);
        goto done;
    }
    raise_nofile(2 * r->n_slots);

    if (pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        err = wfh_error_set(WFH_EIO, "run: pipe: %s", strerror(errno));
        goto done;
    }
    sig_write_fd = pipefd[1];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &old_chld);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* A closed stderr or a runner gone before its request was written must cost an
     * error, not the host: dying here would leave running steps' trees behind. */
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    installed = 1;
    r->pfd[0].fd = pipefd[0];
    r->pfd[0].events = POLLIN;
    if ((err = flush(r)) < 0) /* turns grouping on */
        goto done;

    size_t instant_run = 0; /* pass steps run so far */
    for (;;) {
        long next;
        int started = 1;
        /* after a first signal only finally steps can be queued: let them start */
#define MAY_START ((!r->cancelled || r->soft_cancel) && !r->fatal)
        while (started) {
            started = 0;
            feed_items(r);
            /* pass steps end as they start, taking no slot; what they queue, the same
             * turn starts */
            while (MAY_START && (next = wfh_sched_next_instant(r->sched)) >= 0) {
                start_step(r, (size_t)next);
                started = 1;
                if (++instant_run % PASS_COMMIT_EVERY == 0)
                    (void)flush(r); /* a failure is r->fatal, which stops the loop */
            }
            while (MAY_START && r->n_free > 0 && (next = next_startable(r)) >= 0) {
                start_step(r, (size_t)next);
                feed_items(r); /* a fan-out step that just started takes free slots first */
                started = 1;
            }
        }
#undef MAY_START
        launch_pending(r);
        if (r->fatal && r->n_free == r->n_slots)
            break;
        if (r->fatal && (!r->cancelled || r->soft_cancel))
            cancel_run(r, 0);
        if (wfh_sched_finished(r->sched))
            break;
        if (r->n_free == r->n_slots && r->n_retrying == 0 && r->n_fanout == 0) {
            /* Nothing running, nothing startable, yet not finished: the graph state is
             * inconsistent. Say so rather than sleep forever. */
            err = wfh_error_set(WFH_EINVAL, "run %s: no step can start (scheduler bug)", r->id);
            goto done;
        }
        (void)flush(r); /* nothing waits with changes unrecorded; a failure is r->fatal */
        int timeout = wfh_display_live(r->disp) ? 100 : -1;
        timeout = nearest_deadline(r, timeout);
        int nready = poll(r->pfd, 1 + 2 * r->n_slots, timeout);
        if (nready < 0 && errno != EINTR) {
            err = wfh_error_set(WFH_EIO, "run: poll: %s", strerror(errno));
            r->fatal = err;
            snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", wfh_error_last());
            cancel_run(r, 0);
        }
        if (nready > 0 && (r->pfd[0].revents & POLLIN)) {
            unsigned char buf[64];
            ssize_t got;
            while ((got = read(pipefd[0], buf, sizeof buf)) > 0)
                for (ssize_t k = 0; k < got; k++)
                    if (buf[k] == SIGINT || buf[k] == SIGTERM)
                        cancel_run(r, buf[k]);
        }
        if (nready > 0) {
            for (size_t s = 0; s < r->n_slots; s++) {
                size_t i = r->slot_step[s];
                if (i == NO_SLOT)
                    continue;
                int touched = 0;
                for (size_t k = 0; k < 2; k++) {
                    struct pollfd *p = &r->pfd[1 + 2 * s + k];
                    if (p->fd >= 0 && (p->revents & (POLLIN | POLLHUP | POLLERR))) {
                        wfh_attempt_read(slot_att(r, s), p->fd);
                        touched = 1;
                    }
                }
                if (touched)
                    slot_refresh(r, s);
            }
        }
        /* Reap whatever exited, whether or not its SIGCHLD byte has been read yet. */
        int ws;
        pid_t pid;
        while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
            size_t s = slot_of_pid(r, pid);
            if (s != NO_SLOT && r->slot_item[s] != NO_SLOT)
                finish_item(r, s, ws);
            else if (s != NO_SLOT)
                finish_step(r, r->slot_step[s], ws);
        }
        expire_deadlines(r);
        /* the display is redrawn and written by the flush before the next wait */
    }
    if (r->fatal)
        err = wfh_error_set(r->fatal, "%s", r->fatal_msg);
done:
    r->end_ms = mono_ms();
    if (installed) {
        sigaction(SIGCHLD, &old_chld, NULL);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGPIPE, &old_pipe, NULL);
        sig_write_fd = -1;
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (err == 0 && !r->cancelled)
        eval_outputs(r);
    if (err == 0) {
        if (r->cancelled)
            err = wfh_error_set(WFH_ECANCELLED, "run %s cancelled", r->id);
        else if (!run_succeeded(r))
            err = wfh_error_set(WFH_EFAILED, "run %s failed", r->id);
    }
    const char *status = err == 0 ? "succeeded" : err == WFH_ECANCELLED ? "cancelled" : "failed";
    wfh_display_run_end(r->disp, status, wfh_sched_count(r->sched, WFH_S_SUCCEEDED),
                        wfh_sched_count(r->sched, WFH_S_FAILED) +
                            wfh_sched_count(r->sched, WFH_S_TIMED_OUT),
                        wfh_sched_count(r->sched, WFH_S_SKIPPED),
                        wfh_sched_count(r->sched, WFH_S_CANCELLED), r->end_ms - r->start_ms);
    return err;
}

json_t *wfh_run_to_json(const wfh_run *r)
{
    const char *status;
    if (!r->finished)
        status = "pending";
    else if (r->fatal) /* the host failed; the cancel that followed is not the story */
        status = "failed";
    else if (r->cancelled)
        status = "cancelled";
    else if (run_succeeded(r))
        status = "succeeded";
    else
        status = "failed";
    json_t *steps = json_object(); /* owned until packed */
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s?,s:o,s:O?}", "run_id", r->id, "workflow",
                            r->wf->name, "status", status, "started_at", r->started_at,
                            "duration_ms", (json_int_t)(r->end_ms - r->start_ms), "error",
                            r->fatal ? r->fatal_msg : r->outputs_error, "steps", steps,
                            "outputs", r->outputs);
    if (!doc)
        return NULL;
    for (size_t i = 0; i < r->wf->n_steps; i++) {
        const run_step *rs = &r->steps[i];
        json_t *outs = rs->outputs ? json_incref(rs->outputs) : json_object(); /* owned */
        json_t *dur = rs->start_ms && rs->end_ms
                          ? json_integer((json_int_t)(rs->end_ms - rs->start_ms))
                          : json_null(); /* owned */
        /* "o" steals outs and dur, even when packing fails. */
        json_t *o = json_pack("{s:s,s:i,s:o,s:s?,s:s?,s:o}", "status",
                              wfh_sstate_name(wfh_sched_state(r->sched, i)), "attempts",
                              (int)wfh_sched_attempts(r->sched, i), "outputs", outs, "error",
                              rs->error, "started_at",
                              rs->started_at[0] ? rs->started_at : NULL, "duration_ms", dur);
        if (!o || json_object_set_new(steps, r->ids[i], o) < 0) {
            json_decref(doc);
            return NULL;
        }
        wfh_sstate st = wfh_sched_state(r->sched, i);
        if ((rs->note && json_object_set_new(o, "reason", json_string(rs->note)) < 0) ||
            (r->wf->steps[i].continue_on_error &&
             (st == WFH_S_FAILED || st == WFH_S_TIMED_OUT) &&
             json_object_set_new(o, "continued", json_true()) < 0) ||
            json_object_set_new(o, "attempt_history",
                                rs->history ? json_incref(rs->history) : json_array()) < 0) {
            json_decref(doc);
            return NULL;
        }
    }
    if (!doc || !wfh_secrets_count(r->secrets))
        return doc;
    /* The one place the document is made: mask it here, whoever prints or stores it. */
    json_t *masked = wfh_secrets_mask_json(r->secrets, doc);
    json_decref(doc);
    return masked;
}
