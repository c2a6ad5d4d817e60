/*
 * core/error.h - error codes and the thread-local "last error" message.
 *
 * Every fallible internal function returns int: 0, or a negative WFH_E* code. The
 * one-line message naming the file/step/plugin involved is kept per thread and read
 * with wfh_error_last(). Codes are never reused once released. The CLI maps codes to
 * exit statuses in one place (core/cli/exit_status.c).
 */
#ifndef WFH_ERROR_H
#define WFH_ERROR_H

#include <stdarg.h>

enum {
    WFH_OK = 0,
    WFH_ENOMEM = -1,     /* out of memory */
    WFH_EINVAL = -2,     /* invalid input (workflow, arguments, JSON) */
    WFH_EIO = -3,        /* an OS call failed (message has errno text) */
    WFH_ENOTFOUND = -4,  /* a named thing does not exist */
    WFH_EPARSE = -5,     /* malformed text (YAML, JSON, expression) */
    WFH_EABI = -6,       /* plugin ABI mismatch or malformed descriptor */
    WFH_ESECURITY = -7,  /* refused for a security reason (signature, grant) */
    WFH_ECANCELLED = -8, /* the run was cancelled */
    WFH_EFAILED = -9,    /* the run finished with failed steps */
    WFH_EUSAGE = -10,    /* bad command-line usage */
    WFH_EEVAL = -11,     /* an expression failed at run time */
};

/* Sets the last-error message (printf-style) and returns @p code, so a caller can write
 * `return wfh_error_set(WFH_EINVAL, "%s: ...", path);`. */
int wfh_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int wfh_error_setv(int code, const char *fmt, va_list ap);

/* The last message set on this thread; never NULL (empty if none). Borrowed: valid
 * until the next wfh_error_set on this thread. */
const char *wfh_error_last(void);

/* A short name for a code ("invalid input", ...); static string. */
const char *wfh_error_name(int code);

#endif
