/*
 * core/sched_state.c - the state machine of a run's steps, free of processes and I/O.
 *
 * Each step has an explicit state (scheduler.h), a count of needs that have not yet
 * succeeded, and its dependents stored as one compressed adjacency array. Every change
 * goes through wfh_sched_transition(), which asks the hook first (the run store will
 * write the event there before anything acts on it), then applies it. Consequences are
 * queued on an explicit worklist rather than recursed into, so a 10 000-step chain that
 * fails at the top cannot overflow the stack, and each is a transition the hook sees.
 * Steps flagged WFH_SCHED_INSTANT (built-in `pass` steps, issue #8) wait in a ring of
 * their own, so the run can complete them while every runner slot is busy.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "scheduler.h"

/* A FIFO of step indexes; stale entries (no longer QUEUED) are skipped when popped. */
typedef struct ring {
    size_t *cell;          /* owned [n] */
    size_t head, len;
} ring;

typedef struct work_item {
    size_t step;
    long cause;       /* the need that did not succeed, or -1 */
    wfh_sstate to;
} work_item;

struct wfh_sched {
    size_t n;
    wfh_sstate *state;     /* owned [n] */
    unsigned *attempts;    /* owned [n] */
    size_t *remaining;     /* owned [n]: needs not yet succeeded (with repeats) */
    size_t *child_off;     /* owned [n + 1]: dependents of i are child[off[i]..off[i+1]) */
    size_t *child;         /* owned [edges] */
    ring queue;            /* queued steps that need a runner */
    ring instant;          /* queued steps flagged WFH_SCHED_INSTANT */
    size_t counts[WFH_S__COUNT];
    unsigned char *flags;  /* owned [n]: WFH_SCHED_* */
    size_t tolerated;
    work_item *work;       /* owned: pending consequences, FIFO from whead */
    size_t whead, nwork, capwork;
    wfh_sched_hook hook;
    void *hook_ud;         /* borrowed */
};

static const char *const state_names[WFH_S__COUNT] = {
    [WFH_S_PENDING] = "pending",     [WFH_S_QUEUED] = "queued",
    [WFH_S_RUNNING] = "running",     [WFH_S_RETRYING] = "retrying",
    [WFH_S_SUCCEEDED] = "succeeded", [WFH_S_FAILED] = "failed",
    [WFH_S_TIMED_OUT] = "timed_out", [WFH_S_SKIPPED] = "skipped",
    [WFH_S_CANCELLED] = "cancelled",
};

const char *wfh_sstate_name(wfh_sstate s)
{
    return (unsigned)s < WFH_S__COUNT ? state_names[s] : "unknown";
}

const char *wfh_sstate_expr_status(wfh_sstate s)
{
    switch (s) {
    case WFH_S_SUCCEEDED: return "success";
    case WFH_S_FAILED:
    case WFH_S_TIMED_OUT: return "failure";
    case WFH_S_SKIPPED: return "skipped";
    case WFH_S_CANCELLED: return "cancelled";
    default: return NULL;
    }
}

int wfh_sstate_terminal(wfh_sstate s)
{
    return s >= WFH_S_SUCCEEDED && s < WFH_S__COUNT;
}

static int legal(wfh_sstate from, wfh_sstate to)
{
    switch (from) {
    case WFH_S_PENDING:
        return to == WFH_S_QUEUED || to == WFH_S_SKIPPED || to == WFH_S_CANCELLED;
    case WFH_S_QUEUED:
        return to == WFH_S_RUNNING || to == WFH_S_FAILED || to == WFH_S_SKIPPED ||
               to == WFH_S_CANCELLED;
    case WFH_S_RUNNING:
        return to == WFH_S_SUCCEEDED || to == WFH_S_FAILED || to == WFH_S_TIMED_OUT ||
               to == WFH_S_CANCELLED || to == WFH_S_RETRYING;
    case WFH_S_RETRYING:
        return to == WFH_S_QUEUED || to == WFH_S_FAILED || to == WFH_S_CANCELLED;
    default:
        return 0;
    }
}

void wfh_sched_free(wfh_sched *s)
{
    if (!s)
        return;
    free(s->state);
    free(s->attempts);
    free(s->flags);
    free(s->remaining);
    free(s->child_off);
    free(s->child);
    free(s->queue.cell);
    free(s->instant.cell);
    free(s->work);
    free(s);
}

static void ring_push(ring *q, size_t n, size_t step)
{
    /* A step sits in a ring at most once while QUEUED, and stale entries belong to
     * steps that reached a terminal state and are never queued again: n slots suffice. */
    if (q->len == n) {
        /* Only reachable if the invariants above are broken; drop the oldest stale. */
        q->head = (q->head + 1) % n;
        q->len--;
    }
    q->cell[(q->head + q->len) % n] = step;
    q->len++;
}

static void enqueue(wfh_sched *s, size_t step)
{
    ring_push(s->flags[step] & WFH_SCHED_INSTANT ? &s->instant : &s->queue, s->n, step);
}

/* The next entry of @p q whose step is still QUEUED (and, when @p skip_flag is set,
 * does not carry it: such steps wait in the other ring too), or -1. */
static long ring_pop(wfh_sched *s, ring *q, unsigned skip_flag)
{
    while (q->len > 0) {
        size_t step = q->cell[q->head];
        q->head = (q->head + 1) % s->n;
        q->len--;
        if (s->state[step] == WFH_S_QUEUED && !(s->flags[step] & skip_flag))
            return (long)step;
    }
    return -1;
}

int wfh_sched_new(size_t n, const size_t *n_needs, const size_t *const *needs,
                  wfh_sched_hook hook, void *hook_ud, wfh_sched **out)
{
    int err = 0;
    wfh_sched *s = calloc(1, sizeof *s); /* owned until handed out */
    *out = NULL;
    if (!s)
        return wfh_error_set(WFH_ENOMEM, "scheduler: out of memory");
    s->n = n;
    s->hook = hook;
    s->hook_ud = hook_ud;
    size_t edges = 0;
    for (size_t i = 0; i < n; i++)
        edges += n_needs[i];
    size_t cells = n ? n : 1;
    s->state = calloc(cells, sizeof *s->state);
    s->attempts = calloc(cells, sizeof *s->attempts);
    s->remaining = calloc(cells, sizeof *s->remaining);
    s->child_off = calloc(n + 1, sizeof *s->child_off);
    s->child = calloc(edges ? edges : 1, sizeof *s->child);
    s->queue.cell = calloc(cells, sizeof *s->queue.cell);
    s->instant.cell = calloc(cells, sizeof *s->instant.cell);
    s->flags = calloc(cells, 1);
    if (!s->flags || !s->state || !s->attempts || !s->remaining || !s->child_off || !s->child ||
        !s->queue.cell || !s->instant.cell) {
        err = wfh_error_set(WFH_ENOMEM, "scheduler: out of memory for %zu steps", n);
        goto done;
    }
    /* Counting sort of the edges by parent: first out-degrees, then prefix sums, then
     * fill. Children of a step end up in step order, which keeps queueing stable. */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n_needs[i]; k++) {
            size_t p = needs[i][k];
            if (p >= n || p == i) {
                err = wfh_error_set(WFH_EINVAL, "scheduler: step %zu needs invalid step %zu",
                                    i, p);
                goto done;
            }
            s->child_off[p + 1]++;
        }
        s->remaining[i] = n_needs[i];
    }
    for (size_t i = 0; i < n; i++)
        s->child_off[i + 1] += s->child_off[i];
    size_t *fill = calloc(cells, sizeof *fill); /* owned, freed below */
    if (!fill) {
        err = wfh_error_set(WFH_ENOMEM, "scheduler: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n_needs[i]; k++) {
            size_t p = needs[i][k];
            s->child[s->child_off[p] + fill[p]++] = i;
        }
    free(fill);
    for (size_t i = 0; i < n; i++) {
        if (s->remaining[i] == 0) {
            s->state[i] = WFH_S_QUEUED;
            enqueue(s, i);
        } else {
            s->state[i] = WFH_S_PENDING;
        }
        s->counts[s->state[i]]++;
    }
done:
    if (err < 0) {
        wfh_sched_free(s);
        return err;
    }
    *out = s;
    return 0;
}

static int push_work(wfh_sched *s, size_t step, wfh_sstate to, long cause)
{
    if (s->nwork == s->capwork) {
        size_t cap = s->capwork ? s->capwork * 2 : 64;
        work_item *w = realloc(s->work, cap * sizeof *w);
        if (!w)
            return wfh_error_set(WFH_ENOMEM, "scheduler: out of memory");
        s->work = w;
        s->capwork = cap;
    }
    s->work[s->nwork++] = (work_item){.step = step, .cause = cause, .to = to};
    return 0;
}

/* Ask the hook, apply one change, and queue its consequences on the worklist. */
static int apply(wfh_sched *s, size_t step, wfh_sstate to, const char *reason, long cause)
{
    wfh_sstate from = s->state[step];
    if (!legal(from, to))
        return wfh_error_set(WFH_EINVAL, "scheduler: step %zu cannot go from %s to %s", step,
                             wfh_sstate_name(from), wfh_sstate_name(to));
    unsigned attempt = s->attempts[step] + (to == WFH_S_RUNNING);
    if (s->hook) {
        wfh_sched_event ev = {.step = step, .from = from, .to = to, .attempt = attempt,
                              .cause = cause, .reason = reason};
        int err = s->hook(s->hook_ud, &ev);
        if (err < 0)
            return err;
    }
    s->counts[from]--;
    s->counts[to]++;
    s->state[step] = to;
    s->attempts[step] = attempt;
    if (to == WFH_S_QUEUED)
        enqueue(s, step);
    if (!wfh_sstate_terminal(to))
        return 0;
    int ok = to == WFH_S_SUCCEEDED;
    if ((to == WFH_S_FAILED || to == WFH_S_TIMED_OUT) &&
        (s->flags[step] & WFH_SCHED_TOLERATE_FAILURE)) {
        ok = 1;
        s->tolerated++;
    }
    for (size_t k = s->child_off[step]; k < s->child_off[step + 1]; k++) {
        size_t c = s->child[k];
        if (s->state[c] != WFH_S_PENDING)
            continue;
        int err = 0;
        /* A step whose `if` asks about failures waits for every need to end and then
         * decides for itself; a cancelled run still cancels it. */
        if (ok || (to != WFH_S_CANCELLED && (s->flags[c] & WFH_SCHED_RUN_AFTER_FAILURE)) ||
            (to == WFH_S_CANCELLED && (s->flags[c] & WFH_SCHED_RUN_AFTER_CANCEL))) {
            if (--s->remaining[c] == 0)
                err = push_work(s, c, WFH_S_QUEUED, -1);
        } else {
            /* A dependent of a cancelled step is cancelled too (a cancelled run reports
             * what it never got to); of a failed or skipped one, skipped. */
            err = push_work(s, c, to == WFH_S_CANCELLED ? WFH_S_CANCELLED : WFH_S_SKIPPED,
                            (long)step);
        }
        if (err < 0)
            return err;
    }
    return 0;
}

int wfh_sched_transition(wfh_sched *s, size_t step, wfh_sstate to, const char *reason)
{
    if (step >= s->n)
        return wfh_error_set(WFH_EINVAL, "scheduler: no step %zu", step);
    int err = apply(s, step, to, reason, -1);
    /* FIFO, so dependents are queued in step order, as at the start. */
    while (err == 0 && s->whead < s->nwork) {
        work_item w = s->work[s->whead++];
        /* Two failing needs may both have asked to skip the same dependent. */
        if (s->state[w.step] != WFH_S_PENDING)
            continue;
        err = apply(s, w.step, w.to, NULL, w.cause);
    }
    s->whead = s->nwork = 0;
    return err;
}

int wfh_sched_restore(wfh_sched *s, size_t step, unsigned attempts)
{
    if (step >= s->n)
        return wfh_error_set(WFH_EINVAL, "scheduler: no step %zu", step);
    wfh_sstate from = s->state[step];
    if ((from != WFH_S_PENDING && from != WFH_S_QUEUED) || s->remaining[step] != 0)
        return wfh_error_set(WFH_EINVAL, "scheduler: step %zu cannot be restored while %s%s",
                             step, wfh_sstate_name(from),
                             s->remaining[step] ? " with needs not succeeded" : "");
    /* The step is recorded already: apply it without asking the hook, then let its
     * consequences (dependents becoming queued) flow through the ordinary path. */
    wfh_sched_hook hook = s->hook;
    s->hook = NULL;
    s->attempts[step] = attempts;
    s->counts[from]--;
    s->counts[WFH_S_RUNNING]++;
    s->state[step] = WFH_S_RUNNING;
    int err = apply(s, step, WFH_S_SUCCEEDED, NULL, -1);
    s->hook = hook;
    while (err == 0 && s->whead < s->nwork) {
        work_item w = s->work[s->whead++];
        if (s->state[w.step] != WFH_S_PENDING)
            continue;
        err = apply(s, w.step, w.to, NULL, w.cause);
    }
    s->whead = s->nwork = 0;
    return err;
}

int wfh_sched_set_attempts(wfh_sched *s, size_t step, unsigned attempts)
{
    if (step >= s->n || (s->state[step] != WFH_S_PENDING && s->state[step] != WFH_S_QUEUED))
        return wfh_error_set(WFH_EINVAL, "scheduler: step %zu has started: its attempts "
                                         "cannot be set", step);
    s->attempts[step] = attempts;
    return 0;
}

long wfh_sched_next(wfh_sched *s)
{
    return ring_pop(s, &s->queue, WFH_SCHED_INSTANT);
}

long wfh_sched_next_instant(wfh_sched *s)
{
    return ring_pop(s, &s->instant, 0);
}

int wfh_sched_cancel(wfh_sched *s, const char *reason)
{
    return wfh_sched_cancel_keep(s, reason, 0);
}

int wfh_sched_cancel_keep(wfh_sched *s, const char *reason, unsigned keep_flags)
{
    for (size_t i = 0; i < s->n; i++) {
        wfh_sstate st = s->state[i];
        if (s->flags[i] & keep_flags)
            continue;
        if (st == WFH_S_PENDING || st == WFH_S_QUEUED || st == WFH_S_RETRYING) {
            int err = wfh_sched_transition(s, i, WFH_S_CANCELLED, reason);
            if (err < 0)
                return err;
        }
    }
    return 0;
}

int wfh_sched_set_flags(wfh_sched *s, size_t step, unsigned flags)
{
    if (step >= s->n)
        return wfh_error_set(WFH_EINVAL, "scheduler: no step %zu", step);
    unsigned had = s->flags[step];
    s->flags[step] = (unsigned char)flags;
    /* queued at creation, before it was flagged: it waits in the instant ring too (the
     * entry left in the other ring is skipped) */
    if ((flags & WFH_SCHED_INSTANT) && !(had & WFH_SCHED_INSTANT) &&
        s->state[step] == WFH_S_QUEUED)
        ring_push(&s->instant, s->n, step);
    return 0;
}

size_t wfh_sched_tolerated(const wfh_sched *s)
{
    return s->tolerated;
}

wfh_sstate wfh_sched_state(const wfh_sched *s, size_t step)
{
    return s->state[step];
}

unsigned wfh_sched_attempts(const wfh_sched *s, size_t step)
{
    return s->attempts[step];
}

size_t wfh_sched_count(const wfh_sched *s, wfh_sstate st)
{
    return (unsigned)st < WFH_S__COUNT ? s->counts[st] : 0;
}

size_t wfh_sched_size(const wfh_sched *s)
{
    return s->n;
}

int wfh_sched_finished(const wfh_sched *s)
{
    size_t t = 0;
    for (int st = WFH_S_SUCCEEDED; st < WFH_S__COUNT; st++)
        t += s->counts[st];
    return t == s->n;
}
