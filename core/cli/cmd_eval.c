/* core/cli/cmd_eval.c - `wfhost eval` (being built; replaced by the real command). */
#include <stdio.h>

#include "cli.h"

int cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("wfhost: 'eval' is not built yet\n", stderr);
    return WFH_EXIT_INTERNAL;
}
