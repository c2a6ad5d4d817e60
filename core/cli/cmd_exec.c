/* core/cli/cmd_exec.c - `wfhost exec` (being built; replaced by the real command). */
#include <stdio.h>

#include "cli.h"

int cmd_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("wfhost: 'exec' is not built yet\n", stderr);
    return WFH_EXIT_INTERNAL;
}
