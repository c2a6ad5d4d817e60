/* core/cli/cmd_validate.c - `wfhost validate` (being built; replaced by the real command). */
#include <stdio.h>

#include "cli.h"

int cmd_validate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("wfhost: 'validate' is not built yet\n", stderr);
    return WFH_EXIT_INTERNAL;
}
