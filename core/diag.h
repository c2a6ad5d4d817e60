/*
 * core/diag.h - diagnostics: the list of problems `wfhost validate` prints at once.
 *
 * Each diagnostic is `file:line:col: error|warning: message`, optionally followed by the
 * source line with a caret under the column and a `hint: ...` line. Loader, validator
 * and expression parser all report here, so a user sees every problem in one pass.
 */
#ifndef WFH_DIAG_H
#define WFH_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { WFH_DIAG_ERROR = 0, WFH_DIAG_WARNING = 1 } wfh_diag_severity;

typedef struct wfh_diag {
    wfh_diag_severity severity;
    unsigned line, col;   /* 1-based; 0 = unknown */
    char *message;        /* owned */
    char *hint;           /* owned, may be NULL */
} wfh_diag;

typedef struct wfh_diags {
    const char *file;     /* borrowed: the file name used in every line */
    const char *source;   /* borrowed, may be NULL: text for the caret lines */
    size_t source_len;
    wfh_diag *items;      /* owned array */
    size_t count, cap;
    size_t errors, warnings;
    size_t refusals; /* of the errors, security refusals (a disabled plugin...): exit 3 */
} wfh_diags;

/* Initialise an empty list for @p file. @p source (may be NULL) is borrowed and must
 * outlive the list. */
void wfh_diags_init(wfh_diags *d, const char *file, const char *source, size_t source_len);
void wfh_diags_free(wfh_diags *d);

/* Add one diagnostic. @p hint may be NULL. Out of memory drops the diagnostic but still
 * counts it, so the caller's error count stays right. */
void wfh_diag_add(wfh_diags *d, wfh_diag_severity sev, unsigned line, unsigned col,
                  const char *hint, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Sort by position (stable) and print every diagnostic to @p out. */
void wfh_diags_print(wfh_diags *d, FILE *out);

/* The first error as one line ("file:line:col: message"), in @p buf. */
void wfh_diags_first(const wfh_diags *d, char *buf, size_t len);

#endif
