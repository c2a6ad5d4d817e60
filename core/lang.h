/*
 * core/lang.h - run-time helpers of the workflow language (issue #3): durations, retry
 * waits, workflow inputs. Loading the keys is declared in workflow.h (wfh_lang_*_key).
 */
#ifndef WFH_LANG_H
#define WFH_LANG_H

#include <jansson.h>
#include <stdint.h>

#include "workflow.h"

/* Parse a duration: "500ms", "30s", "5m", "1h30m", or a bare number of seconds. Returns
 * 0 and *ms (> 0), or WFH_EINVAL. */
int wfh_duration_parse(const char *s, uint64_t *ms);
/* "1h30m", "2.5s", "300ms" into @p buf. */
void wfh_duration_format(uint64_t ms, char *buf, size_t len);

/* The policy step @p st runs under: its own, else the workflow's default, else one
 * attempt. Never NULL. */
const wfh_retry *wfh_retry_for(const wfh_workflow *wf, const wfh_step *st);
/* Per-attempt timeout of @p st in ms (its own, else the default), 0: none. */
uint64_t wfh_timeout_for(const wfh_workflow *wf, const wfh_step *st);

/* Should attempt @p attempt (1-based), which ended with wfh_step_status @p status, be
 * followed by another? */
int wfh_retry_should(const wfh_retry *p, unsigned attempt, int status);
/* The wait before attempt @p attempt + 1: initial (fixed) or initial * 2^(attempt-1)
 * (exponential), capped at max, then with full jitter a uniform pick in [0, wait]
 * using @p rnd (any 64 random bits); never less than the plugin's @p hint_ms. */
uint64_t wfh_retry_delay(const wfh_retry *p, unsigned attempt, uint64_t hint_ms, uint64_t rnd);

/* Check @p given (object name -> JSON value, borrowed; NULL = none) against the
 * workflow's declared inputs: unknown names, wrong types and missing required ones
 * are errors (WFH_EINVAL, message names the input and its declaration's position);
 * an input not given takes its `env:` variable's value when that is set and not empty
 * (parsed as -i parses text), then its default. Returns 0 and *out (new object).
 * Resume passes the recorded inputs, all present, so the environment is not read again. */
int wfh_inputs_resolve(const wfh_workflow *wf, json_t *given, json_t **out);
/* Turn the text of `-i name=value` into JSON for input @p name: a string input takes
 * the text as is; others parse it as JSON (an undeclared name is left to
 * wfh_inputs_resolve, as a string). Returns 0 and *out (new reference) or WFH_EUSAGE. */
int wfh_inputs_parse_arg(const wfh_workflow *wf, const char *name, const char *text,
                         json_t **out);

#endif
