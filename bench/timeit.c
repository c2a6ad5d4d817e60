/*
 * bench/timeit.c - run one command and print its wall time in milliseconds and the peak
 * RSS (KiB) of the largest process it waited for, as "MS KIB", into a file (so the
 * command's own stdout and stderr stay the caller's).
 *
 * The harness used to take the time with two `date` calls around a subshell running
 * /usr/bin/time: each of those is a fork+exec of its own, about 3 ms on this kind of
 * machine, which drowned a one-step start-up of a few ms. This takes the clock right
 * before posix_spawn and right after wait4, like hyperfine, so the figure is the
 * command's own; stdout and stderr of the command go where the caller points them.
 *
 * usage: timeit RESULT-FILE PROGRAM [ARGS...]
 * writes "MS KIB" to RESULT-FILE; exit status: the command's (128+N on signal N)
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: timeit RESULT-FILE PROGRAM [ARGS...]\n");
        return 2;
    }
    struct timespec a, b;
    pid_t pid;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ);
    if (rc != 0) {
        fprintf(stderr, "timeit: %s: cannot start\n", argv[2]);
        return 127;
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) {
        perror("timeit: wait4");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    /* ru_maxrss of wait4: the largest of the command and the descendants it waited
     * for, as GNU time's %M reports it. */
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%.3f %ld\n", ms, ru.ru_maxrss) < 0 || fclose(f) != 0) {
        perror(argv[1]);
        return 1;
    }
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}
