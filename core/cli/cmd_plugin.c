/* core/cli/cmd_plugin.c - `wfhost plugin` (being built; replaced by the real command). */
#include <stdio.h>

#include "cli.h"

int cmd_plugin(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("wfhost: 'plugin' is not built yet\n", stderr);
    return WFH_EXIT_INTERNAL;
}
