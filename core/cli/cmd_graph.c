/* core/cli/cmd_graph.c - `wfhost graph` (being built; replaced by the real command). */
#include <stdio.h>

#include "cli.h"

int cmd_graph(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("wfhost: 'graph' is not built yet\n", stderr);
    return WFH_EXIT_INTERNAL;
}
