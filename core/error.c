/*
 * core/error.c - the thread-local last-error message behind core/error.h.
 */
#include "error.h"

#include <stdio.h>

static _Thread_local char last_msg[1024];

int wfh_error_setv(int code, const char *fmt, va_list ap)
{
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    return code;
}

int wfh_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wfh_error_setv(code, fmt, ap);
    va_end(ap);
    return code;
}

const char *wfh_error_last(void)
{
    return last_msg;
}

const char *wfh_error_name(int code)
{
    switch (code) {
    case WFH_OK: return "ok";
    case WFH_ENOMEM: return "out of memory";
    case WFH_EINVAL: return "invalid input";
    case WFH_EIO: return "I/O error";
    case WFH_ENOTFOUND: return "not found";
    case WFH_EPARSE: return "parse error";
    case WFH_EABI: return "ABI mismatch";
    case WFH_ESECURITY: return "refused for a security reason";
    case WFH_ECANCELLED: return "cancelled";
    case WFH_EFAILED: return "failed";
    case WFH_EUSAGE: return "usage error";
    case WFH_EEVAL: return "expression error";
    default: return "unknown error";
    }
}
