/*
 * core/cli/exit_status.c - the one place that maps error codes to exit statuses, and
 * the argument helpers every command shares (-h/--help, "--name VALUE" options).
 */
#include <stdio.h>
#include <string.h>

#include "../diag.h"
#include "../error.h"
#include "cli.h"

int wfh_exit_status(int err)
{
    switch (err) {
    case WFH_OK: return WFH_EXIT_OK;
    case WFH_EFAILED: return WFH_EXIT_FAILED;
    case WFH_EINVAL:
    case WFH_EPARSE:
    case WFH_EUSAGE:
    case WFH_ENOTFOUND:
    case WFH_EEVAL:
    case WFH_EABI: return WFH_EXIT_INVALID;
    case WFH_ESECURITY: return WFH_EXIT_SECURITY;
    case WFH_ECANCELLED: return WFH_EXIT_CANCELLED;
    default: return WFH_EXIT_INTERNAL;
    }
}

int wfh_cli_invalid_status(const wfh_diags *d)
{
    return d->refusals ? WFH_EXIT_SECURITY : WFH_EXIT_INVALID;
}

int wfh_cli_fail(int err)
{
    const char *msg = wfh_error_last();
    fprintf(stderr, "wfhost: %s\n", *msg ? msg : wfh_error_name(err));
    return wfh_exit_status(err);
}

int wfh_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    }
    return 0;
}

const char *wfh_cli_opt_value(int argc, char **argv, int *i, const char *name, const char *cmd,
                              int *err)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (n == 2 && a[n] != '\0') /* a short option glued to its value: -j8 */
        return a + n;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *err = wfh_error_set(WFH_EUSAGE, "%s: %s needs a value", cmd, name);
        return NULL;
    }
    return argv[++*i];
}
