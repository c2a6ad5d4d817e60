/*
 * tests/security/hostile/bench_profiles.c - per-attempt cost of each sandbox profile:
 * posix_spawn the runner, send the request, read its stdout to EOF, reap it; median
 * and p90 of N runs, next to the fork+exec floor (/bin/true the same way), and the CPU
 * time (user + system) the runner and every process under it used, on average per
 * attempt (RUSAGE_CHILDREN: on a loaded machine wall time mostly measures the queue for
 * a CPU, CPU time much less so).
 *   bench_profiles RUNNER PLUGIN WORKSPACE [N [PROFILE...]]
 * PROFILE is any of floor, none, process, strict, strict+net (default: all).
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double once(const char *prog, const char *req)
{
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        exit(1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {(char *)prog, NULL};
    double t0 = now_us();
    pid_t pid;
    if (posix_spawn(&pid, prog, &fa, NULL, argv, environ) != 0)
        exit(1);
    close(in[0]);
    close(out[1]);
    if (req && write(in[1], req, strlen(req)) < 0)
        exit(1);
    close(in[1]);
    /* The whole output, searched at the end: the relay may split a line anywhere. */
    static char buf[1 << 16];
    size_t len = 0;
    ssize_t n;
    const size_t tail = 4096; /* more than a result line's worth */
    while ((n = read(out[0], buf + len, sizeof buf - 1 - len)) > 0)
        if ((len += (size_t)n) == sizeof buf - 1) { /* full: keep the tail only */
            memmove(buf, buf + len - tail, tail);
            len = tail;
        }
    int ok = !req || memmem(buf, len, "\"status\":0", 10) != NULL;
    close(out[0]);
    int st;
    waitpid(pid, &st, 0);
    double t = now_us() - t0;
    posix_spawn_file_actions_destroy(&fa);
    if (!ok) {
        fprintf(stderr, "attempt failed\n");
        exit(1);
    }
    return t;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_children_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void bench(const char *name, const char *prog, const char *req, int n)
{
    double *t = malloc(sizeof *t * (size_t)n);
    for (int i = 0; i < 10; i++)
        once(prog, req);
    double c0 = cpu_children_us();
    for (int i = 0; i < n; i++)
        t[i] = once(prog, req);
    double cpu = (cpu_children_us() - c0) / n;
    qsort(t, (size_t)n, sizeof *t, cmpd);
    printf("%-22s median %7.0f us   p90 %7.0f us   cpu %6.0f us   (n=%d)\n", name, t[n / 2],
           t[n * 9 / 10], cpu, n);
    free(t);
}

/* Whether PROFILE was asked for (no list: all of them). */
static int wanted(int argc, char **argv, const char *name)
{
    if (argc <= 5)
        return 1;
    for (int i = 5; i < argc; i++)
        if (!strcmp(argv[i], name))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_profiles RUNNER PLUGIN WORKSPACE [N [PROFILE...]]\n");
        return 2;
    }
    int n = argc > 4 ? atoi(argv[4]) : 200;
    static const char *const profiles[] = {"none", "process", "strict", "strict+net"};
    if (wanted(argc, argv, "floor"))
        bench("fork+exec /bin/true", "/bin/true", NULL, n);
    for (int i = 0; i < 4; i++) {
        if (!wanted(argc, argv, profiles[i]))
            continue;
        char req[2048];
        snprintf(req, sizeof req,
                 "{\"plugin\":\"%s\",\"type\":\"hostile\",\"inputs\":{\"case\":\"ok\"},"
                 "\"workspace\":\"%s\",\"sandbox\":{\"profile\":\"%s\"%s}}",
                 argv[2], argv[3], i == 3 ? "strict" : profiles[i],
                 i == 3 ? ",\"net\":[\"127.0.0.1:8080\"]" : "");
        bench(profiles[i], argv[1], req, n);
    }
    return 0;
}
