/*
 * core/secrets.h - workflow secrets (issue #3): where their values come from, and the one
 * function that keeps them out of everything wfhost prints or stores.
 *
 * A workflow declares names (`secrets: [API_TOKEN]`); values come from the environment
 * (WFH_SECRET_API_TOKEN) or a --secrets-file (NAME=value lines, mode 0600 or stricter).
 * wfh_secrets_mask replaces every occurrence of each value - and of its base64 (at any
 * alignment), JSON-escaped and URL-encoded forms - by "***". The run applies it where
 * text leaves the process: the display's flush, the --json document, error messages,
 * and what the run store is handed (step outputs and reasons).
 */
#ifndef WFH_SECRETS_H
#define WFH_SECRETS_H

#include <jansson.h>
#include <stddef.h>

#include "workflow.h"

#define WFH_SECRET_MIN_LEN 4
#define WFH_SECRET_MASK "***"

typedef struct wfh_secrets wfh_secrets;

/* Read the values of @p wf's declared secrets: WFH_SECRET_<NAME> from the environment,
 * then @p file (may be NULL) whose values win. Refuses (WFH_ESECURITY) a file readable
 * or writable by group or others, and (WFH_EINVAL) a declared secret without a value or
 * a value shorter than WFH_SECRET_MIN_LEN. Returns 0 and *out (owned; wfh_secrets_free;
 * set even when nothing is declared). */
int wfh_secrets_load(const wfh_workflow *wf, const char *file, wfh_secrets **out);
void wfh_secrets_free(wfh_secrets *s);

/* Add one value to mask (tests, and values known otherwise). 0, WFH_EINVAL, WFH_ENOMEM. */
int wfh_secrets_add(wfh_secrets *s, const char *name, const char *value);

/* The `secrets` expression context: {NAME: value}. New reference, NULL on ENOMEM. */
json_t *wfh_secrets_context(const wfh_secrets *s);
size_t wfh_secrets_count(const wfh_secrets *s);

/* @p len bytes of @p text with every secret form replaced by "***": a new NUL-terminated
 * buffer (caller frees; its length in *outlen if not NULL), or NULL on ENOMEM. @p s may
 * be NULL or empty (a plain copy). */
char *wfh_secrets_mask(const wfh_secrets *s, const char *text, size_t len, size_t *outlen);
/* @p v with every string (and object key) masked: a new reference (@p v itself, with a
 * reference taken, when nothing needed masking), NULL on ENOMEM. */
json_t *wfh_secrets_mask_json(const wfh_secrets *s, json_t *v);

#endif
