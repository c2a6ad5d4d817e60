/*
 * core/cli/cmd_retry.c - `wfhost retry RUN_ID`: run the failed, timed-out, skipped and
 * cancelled steps of a finished run again, keeping its successful steps and their
 * outputs. The same walk as `wfhost resume` (cmd_resume.c: wfh_cli_continue), except
 * that the run must have finished and its unsuccessful steps are first recorded as
 * queued again; attempt numbers count on from the recorded ones, so `wfhost runs show`
 * keeps the whole history of the run.
 */
#include "cli.h"

int cmd_retry(int argc, char **argv)
{
    return wfh_cli_continue(argc, argv, 1);
}
