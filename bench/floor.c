/*
 * bench/floor.c - the fork+exec floor: run PROGRAM N times, one after another (chain)
 * or P at a time (fan-out). This is the cost below which no workflow host can go, so
 * the harness prints it beside the peers. It takes no time itself: bench/run.sh runs
 * it through bench/timeit.c like every other row, so all rows share one clock.
 *
 * usage: floor N P PROGRAM [ARGS...]
 * exit status: 0, or 1 if PROGRAM could not be started or any run of it failed
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: floor N P PROGRAM [ARGS...]\n");
        return 2;
    }
    long n = atol(argv[1]), p = atol(argv[2]), running = 0, started = 0;
    int failed = 0;
    while (started < n || running > 0) {
        while (started < n && running < p) {
            pid_t pid;
            if (posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ) != 0) {
                perror("posix_spawn");
                return 1;
            }
            started++;
            running++;
        }
        int st;
        if (wait(&st) < 0) {
            perror("floor: wait");
            return 1;
        }
        running--;
        failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    return failed;
}
