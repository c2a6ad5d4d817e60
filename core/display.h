/*
 * core/display.h - what people see of a run, on stderr.
 *
 * On a terminal: a live, compact status like ninja's - one line per running step,
 * redrawn in place, with finished steps and log lines scrolling above it. Elsewhere
 * (a pipe, a file, TERM=dumb): plain lines, one per finished step, such as
 *   [1/3] ok   who (12 ms)
 * Log lines are prefixed with the step id either way. The display never writes to
 * stdout, which belongs to --json.
 *
 * Finished steps and log lines are held in memory until wfh_display_flush (the
 * scheduler calls it once per turn, before it waits), so a turn costs one write
 * whatever it shows; the other calls write at once, after what was held.
 */
#ifndef WFH_DISPLAY_H
#define WFH_DISPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scheduler.h"

typedef struct wfh_display wfh_display;

/* @p out is borrowed (usually stderr); @p tty < 0 detects (isatty and TERM != dumb).
 * @p ids are the step ids, borrowed for the display's life. Returns NULL on ENOMEM. */
wfh_display *wfh_display_new(FILE *out, int tty, size_t n_steps, const char *const *ids);
void wfh_display_free(wfh_display *d);

/* Everything the display writes passes through @p mask (secrets, core/secrets.h) at the
 * moment it is handed to the stream, whole lines at a time. @p mask returns a malloc'd
 * copy (and its length) or NULL (then nothing is written: better silent than leaking).
 * Returns 0. */
typedef char *(*wfh_display_mask_fn)(const void *ud, const char *s, size_t len, size_t *outlen);
int wfh_display_set_mask(wfh_display *d, wfh_display_mask_fn mask, const void *ud);

/* A failed attempt will be tried again after @p wait_ms: one line, with @p why. */
void wfh_display_step_retry(wfh_display *d, size_t step, unsigned attempt, uint64_t wait_ms,
                            const char *why);

/* True when the display redraws a live status (the caller then wakes it now and then
 * with wfh_display_tick so elapsed times move). */
int wfh_display_live(const wfh_display *d);

void wfh_display_run_start(wfh_display *d, const char *run_id, const char *workflow);
void wfh_display_step_start(wfh_display *d, size_t step, unsigned attempt, uint64_t now_ms);
/* A step reached a terminal state; @p why (may be NULL) is the error or the reason.
 * @p duration_ms is WFH_DISPLAY_NEVER_RAN for a step that never started. */
#define WFH_DISPLAY_NEVER_RAN UINT64_MAX
void wfh_display_step_end(wfh_display *d, size_t step, wfh_sstate st, uint64_t duration_ms,
                          const char *why);
void wfh_display_log(wfh_display *d, size_t step, const char *msg, size_t len);
void wfh_display_progress(wfh_display *d, size_t step, double fraction, const char *msg);
void wfh_display_tick(wfh_display *d, uint64_t now_ms);
/* Write what is held, in one write (live: with the status block redrawn as of
 * @p now_ms, monotonic). wfh_display_free does it too. */
void wfh_display_flush(wfh_display *d, uint64_t now_ms);
void wfh_display_note(wfh_display *d, const char *msg);
void wfh_display_run_end(wfh_display *d, const char *status, size_t succeeded, size_t failed,
                         size_t skipped, size_t cancelled, uint64_t duration_ms);

#endif
