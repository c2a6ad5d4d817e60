/*
 * bench/floor.c - the fork+exec floor: run PROGRAM N times, one after another (chain)
 * or P at a time (fan-out), and print the wall time in milliseconds. This is the cost
 * below which no workflow host can go, so the harness prints it beside the peers.
 *
 * usage: floor N P PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: floor N P PROGRAM [ARGS...]\n");
        return 2;
    }
    long n = atol(argv[1]), p = atol(argv[2]), running = 0, started = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
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
        if (wait(&st) > 0)
            running--;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
    return 0;
}
