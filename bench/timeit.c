/*
 * bench/timeit.c - run a command and print its wall time in milliseconds and the peak
 * RSS (KiB) of the largest process it waited for, as "MS KIB", into a file (so the
 * command's own stdout and stderr stay the caller's). With -n N -p P it runs the
 * command N times, P at a time, and times them all: that is the fork+exec floor the
 * harness prints beside the peers (the cost below which no workflow host can go), taken
 * with the same clock and no program of its own in between.
 *
 * The harness used to take the time with two `date` calls around a subshell running
 * /usr/bin/time: each of those is a fork+exec of its own, about 3 ms on this kind of
 * machine, which drowned a one-step start-up of a few ms. This takes the clock right
 * before the first posix_spawn and right after the last wait4, like hyperfine, so the
 * figure is the command's own; stdout and stderr of the command go where the caller
 * points them.
 *
 * usage: timeit RESULT-FILE [-n N -p P] PROGRAM [ARGS...]
 * writes "MS KIB" to RESULT-FILE; exit status: the command's (128+N on signal N; with
 * -n, that of the last run that failed, 0 if none did)
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int usage(void)
{
    fprintf(stderr, "usage: timeit RESULT-FILE [-n N -p P] PROGRAM [ARGS...]\n");
    return 2;
}

/* A count for -n or -p: a whole number of at least 1, or -1. */
static long count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= 1 ? v : -1;
}

int main(int argc, char **argv)
{
    long n = 1, p = 1;
    int at = 2;
    while (at + 1 < argc && (!strcmp(argv[at], "-n") || !strcmp(argv[at], "-p"))) {
        long v = count(argv[at + 1]);
        if (v < 0) {
            fprintf(stderr, "timeit: %s needs a whole number of at least 1, not '%s'\n",
                    argv[at], argv[at + 1]);
            return 2;
        }
        *(argv[at][1] == 'n' ? &n : &p) = v;
        at += 2;
    }
    if (argc < 3 || at >= argc)
        return usage();
    struct timespec a, b;
    long started = 0, running = 0, maxrss = 0;
    int status = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    while (started < n || running > 0) {
        while (started < n && running < p) {
            pid_t pid;
            if (posix_spawnp(&pid, argv[at], NULL, NULL, argv + at, environ) != 0) {
                fprintf(stderr, "timeit: %s: cannot start\n", argv[at]);
                return 127;
            }
            started++;
            running++;
        }
        int st;
        struct rusage ru;
        if (wait4(-1, &st, 0, &ru) < 0) {
            perror("timeit: wait4");
            return 1;
        }
        running--;
        /* ru_maxrss of wait4: the largest of the command and the descendants it waited
         * for, as GNU time's %M reports it. */
        if (ru.ru_maxrss > maxrss)
            maxrss = ru.ru_maxrss;
        if (WIFSIGNALED(st))
            status = 128 + WTERMSIG(st);
        else if (WEXITSTATUS(st))
            status = WEXITSTATUS(st);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%.3f %ld\n", ms, maxrss) < 0 || fclose(f) != 0) {
        perror(argv[1]);
        return 1;
    }
    return status;
}
