/*
 * core/runner/sandbox_cgroup.c - the step's cgroups: limits on memory and tasks, and a
 * reliable kill of the whole tree (setsid and double forks escape process groups).
 *
 * Three layouts exist in the wild (research §2): unified v2 with controllers, hybrid
 * (v2 with cgroup.kill but memory/pids on v1, like the CI VMs), and v1 only. Each step
 * gets "wfstep-<supervisor pid>" under the runner's own cgroup in every hierarchy it
 * uses; the pid in the name lets a later runner sweep what a crashed one left.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../error.h"
#include "runner.h"
#include "sandbox.h"

#define CG_ROOT "/sys/fs/cgroup"

/* A small file of a cgroup, relative to an O_PATH fd of its directory (or AT_FDCWD):
 * the step's cgroups are 5-7 components deep, and each file opened by its full path
 * walks them all again (about 10 us of 33 for an open+write+close of a v1 memory file,
 * measured). */
static int write_at(int dfd, const char *name, const char *val)
{
    int fd = openat(dfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(val);
    ssize_t n = write(fd, val, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)len ? 0 : -1;
}

static ssize_t read_at(int dfd, const char *name, char *buf, size_t cap)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* By the cgroup directory's path, for the few files read or written before its O_PATH
 * fd exists (or of another cgroup). */
static int write_file(const char *dir, const char *name, const char *val)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return write_at(AT_FDCWD, path, val);
}

/* Reads a small file into @p buf; returns bytes read or -1. */
static ssize_t read_file(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return read_at(AT_FDCWD, path, buf, cap);
}

static int open_dir(const char *dir)
{
    return dir ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
}

/* The directory fd of hierarchy @p i (0 v2, 1 memory, 2 pids): with v2 limits, memory
 * and pids are the v2 directory. -1 if none. */
static int cg_fd(const wfh_sandbox_cgroup *cg, int i)
{
    return cg->v2_limits ? cg->dfd[0] : cg->dfd[i];
}

/* The directories under which this runner's step cgroups go: [0] v2, [1] memory v1,
 * [2] pids v1 (each malloc'd, NULL where that hierarchy is not mounted where we look).
 * One read of /proc/self/cgroup serves all three, and sweep and create share it: the
 * file formats every hierarchy's path on each read. */
typedef struct cg_parents {
    char *dir[3]; /* owned */
} cg_parents;

static const char *const cg_ctrl[3] = {"", "memory", "pids"};

/* Whether the comma list @p list names controller @p ctrl ("" = the v2 line, "0::"). */
static int line_matches(const char *hier, char *list, const char *ctrl)
{
    if (!*ctrl)
        return !strcmp(hier, "0") && !*list;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (!strcmp(tok, ctrl))
            return 1;
    return 0;
}

static void parents_free(cg_parents *p)
{
    for (int i = 0; i < 3; i++) {
        free(p->dir[i]);
        p->dir[i] = NULL;
    }
}

static void parents_resolve(cg_parents *p)
{
    memset(p, 0, sizeof *p);
    char mnt[3][256] = {"", "", ""};
    struct stat st;
    if (stat(CG_ROOT "/cgroup.controllers", &st) == 0)
        snprintf(mnt[0], sizeof mnt[0], "%s", CG_ROOT);
    else if (stat(CG_ROOT "/unified/cgroup.controllers", &st) == 0)
        snprintf(mnt[0], sizeof mnt[0], "%s/unified", CG_ROOT);
    for (int i = 1; i < 3; i++) {
        char procs[256];
        snprintf(procs, sizeof procs, "%s/%s/cgroup.procs", CG_ROOT, cg_ctrl[i]);
        if (stat(procs, &st) == 0)
            snprintf(mnt[i], sizeof mnt[i], "%s/%s", CG_ROOT, cg_ctrl[i]);
    }
    if (!*mnt[0] && !*mnt[1] && !*mnt[2])
        return;
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0';
        *c2 = '\0';
        char *own = c2 + 1;
        own[strcspn(own, "\n")] = '\0';
        for (int i = 0; i < 3; i++) {
            if (!*mnt[i] || p->dir[i])
                continue;
            char list[4096];
            snprintf(list, sizeof list, "%s", c1 + 1); /* strtok_r writes into it */
            if (!line_matches(line, list, cg_ctrl[i]))
                continue;
            size_t len = strlen(mnt[i]) + strlen(own) + 2;
            if ((p->dir[i] = malloc(len)))
                snprintf(p->dir[i], len, "%s%s", mnt[i], strcmp(own, "/") ? own : "");
        }
    }
    fclose(f);
}

static char *make_child(const char *parent)
{
    size_t len = strlen(parent) + 40;
    char *dir = malloc(len);
    if (!dir)
        return NULL;
    snprintf(dir, len, "%s/wfstep-%ld", parent, (long)getpid());
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        free(dir);
        return NULL;
    }
    return dir;
}

static int sweep_in(const cg_parents *par);

int wfh_sandbox_cgroup_create(wfh_sandbox_cgroup *cg, const wfh_sandbox_limits *lim)
{
    memset(cg, 0, sizeof *cg);
    cg->dfd[0] = cg->dfd[1] = cg->dfd[2] = -1;
    cg_parents par; /* owned: parents_free */
    parents_resolve(&par);
    /* Step cgroups a crashed runner left behind go first (see wfh_sandbox_sweep). */
    sweep_in(&par);
    const char *v2parent = par.dir[0];
    char buf[64];
    if (v2parent) {
        cg->v2 = make_child(v2parent);
        cg->dfd[0] = open_dir(cg->v2);
        /* Unified with controllers: memory and pids go in v2 too, if our parent may
         * hand them down (the "no internal processes" rule can forbid it). */
        char ctl[512];
        if (cg->v2 && read_file(v2parent, "cgroup.controllers", ctl, sizeof ctl) > 0 &&
            strstr(ctl, "memory") && strstr(ctl, "pids")) {
            char sub[512] = "";
            read_file(v2parent, "cgroup.subtree_control", sub, sizeof sub);
            if ((strstr(sub, "memory") && strstr(sub, "pids")) ||
                write_file(v2parent, "cgroup.subtree_control", "+memory +pids") == 0)
                cg->v2_limits = 1;
        }
    }
    if (cg->v2 && cg->dfd[0] < 0)
        goto fail;
    if (cg->v2_limits) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)lim->memory);
        if (write_at(cg->dfd[0], "memory.max", buf) != 0)
            goto fail;
        write_at(cg->dfd[0], "memory.swap.max", "0");
        write_at(cg->dfd[0], "memory.oom.group", "1");
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)lim->pids);
        if (write_at(cg->dfd[0], "pids.max", buf) != 0)
            goto fail;
        cg->mem = strdup(cg->v2);
        cg->pids = strdup(cg->v2);
        parents_free(&par);
        return 0;
    }
    if (par.dir[1]) {
        cg->mem = make_child(par.dir[1]);
        if (cg->mem) {
            if ((cg->dfd[1] = open_dir(cg->mem)) < 0)
                goto fail;
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)lim->memory);
            if (write_at(cg->dfd[1], "memory.limit_in_bytes", buf) != 0)
                goto fail;
            /* Without swap accounting this file is absent; the limit still holds. */
            write_at(cg->dfd[1], "memory.memsw.limit_in_bytes", buf);
            write_at(cg->dfd[1], "memory.swappiness", "0");
        }
    }
    if (par.dir[2]) {
        cg->pids = make_child(par.dir[2]);
        if (cg->pids) {
            if ((cg->dfd[2] = open_dir(cg->pids)) < 0)
                goto fail;
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)lim->pids);
            if (write_at(cg->dfd[2], "pids.max", buf) != 0)
                goto fail;
        }
    }
    parents_free(&par);
    return 0;
fail:
    parents_free(&par);
    wfh_sandbox_fail(WFH_EIO, "sandbox: cannot set cgroup limits: %s", strerror(errno));
    wfh_sandbox_cgroup_destroy(cg);
    return WFH_EIO;
}

int wfh_sandbox_cgroup_join(const wfh_sandbox_cgroup *cg)
{
    for (int i = 0; i < 3; i++) {
        if (cg->dfd[i] < 0 || (i > 0 && cg->v2_limits))
            continue;
        if (write_at(cg->dfd[i], "cgroup.procs", "0") != 0)
            return -1;
    }
    return 0;
}

/* wfh_runner_each_pid's callback: SIGKILL @p pid unless it is us; @p ctx counts them. */
static void kill_one(long pid, void *ctx)
{
    if (pid > 0 && pid != (long)getpid()) {
        kill((pid_t)pid, SIGKILL);
        ++*(int *)ctx;
    }
}

/* SIGKILL every task listed in @p dfd's cgroup.procs (v1 has no cgroup.kill); returns
 * how many. */
static int kill_listed(int dfd)
{
    int fd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int n = 0;
    wfh_runner_each_pid(fd, kill_one, &n);
    close(fd);
    return n;
}

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Kills the tree and waits up to ~2 s for it to be gone; returns 1 once every listed
 * cgroup was seen empty, 0 if something was still there at the end. */
/* @p v2, @p v1a, @p v1b: O_PATH fds of the directories, -1 where there is none. */
static int kill_dir(int v2, int v1a, int v1b)
{
    if (v2 >= 0)
        write_at(v2, "cgroup.kill", "1");
    /* v1 fallback and belt-and-braces: a fork racing the listing is caught by the
     * next round. */
    for (int round = 0; round < 4000; round++) {
        int left = 0;
        if (v2 >= 0) {
            char ev[256];
            if (read_at(v2, "cgroup.events", ev, sizeof ev) > 0 && strstr(ev, "populated 1"))
                left = 1;
        }
        if (v1a >= 0)
            left += kill_listed(v1a);
        if (v1b >= 0)
            left += kill_listed(v1b);
        if (!left)
            return 1;
        if (v2 >= 0 && round % 100 == 99)
            write_at(v2, "cgroup.kill", "1");
        sleep_us(round < 40 ? 50 : 500);
    }
    return 0;
}

void wfh_sandbox_cgroup_kill(wfh_sandbox_cgroup *cg)
{
    /* Once every cgroup of the step was seen empty nothing can enter it again (a task
     * joins a cgroup by fork from inside or by a write of a privileged process, and the
     * step's tasks are all gone), so later calls have nothing to do. */
    if (cg->empty)
        return;
    cg->empty = kill_dir(cg->dfd[0], cg->v2_limits ? -1 : cg->dfd[1], cg->v2_limits ? -1 : cg->dfd[2]);
}

/* Reads "KEY N" from a flat-keyed file; -1 if absent. */
static long long keyed(int dfd, const char *file, const char *key)
{
    char buf[4096];
    if (dfd < 0 || read_at(dfd, file, buf, sizeof buf) < 0)
        return -1;
    size_t klen = strlen(key);
    for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, klen) && p[klen] == ' ')
            return atoll(p + klen + 1);
    return -1;
}

int wfh_sandbox_cgroup_oom(const wfh_sandbox_cgroup *cg)
{
    long long n = cg->v2_limits ? keyed(cg_fd(cg, 1), "memory.events", "oom_kill")
                                : keyed(cg_fd(cg, 1), "memory.oom_control", "oom_kill");
    return n > 0 ? (int)n : 0;
}

int wfh_sandbox_cgroup_pids_hit(const wfh_sandbox_cgroup *cg)
{
    long long n = keyed(cg_fd(cg, 2), "pids.events", "max");
    return n > 0 ? (int)n : 0;
}

static void remove_dir(char **dir)
{
    if (!*dir)
        return;
    /* v1 keeps a cgroup busy for a moment after its last task is reaped. */
    for (int i = 0; i < 200 && rmdir(*dir) != 0 && errno == EBUSY; i++)
        sleep_us(500);
    free(*dir);
    *dir = NULL;
}

static void close_fds(wfh_sandbox_cgroup *cg)
{
    for (int i = 0; i < 3; i++) {
        if (cg->dfd[i] >= 0)
            close(cg->dfd[i]);
        cg->dfd[i] = -1;
    }
}

void wfh_sandbox_cgroup_destroy(wfh_sandbox_cgroup *cg)
{
    if (!cg)
        return;
    close_fds(cg);
    if (cg->v2_limits) {
        free(cg->mem);
        free(cg->pids);
        cg->mem = cg->pids = NULL;
    }
    remove_dir(&cg->v2);
    remove_dir(&cg->mem);
    remove_dir(&cg->pids);
}

void wfh_sandbox_cgroup_release(wfh_sandbox_cgroup *cg)
{
    close_fds(cg);
    free(cg->v2);
    free(cg->mem);
    free(cg->pids);
    cg->v2 = cg->mem = cg->pids = NULL;
}

/* Whether the runner that named a step cgroup "wfstep-<pid>" is gone. */
static int owner_dead(const char *name)
{
    long pid = atol(name + 7);
    if (pid <= 0 || pid == (long)getpid())
        return 0;
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1;
    int alive = fgets(comm, sizeof comm, f) && !strncmp(comm, "wfhost-runner", 13);
    fclose(f);
    /* A recycled pid that is not a runner does not own the cgroup. */
    return !alive;
}

/* Kill and remove the "wfstep-<pid>" cgroups of runners that are gone, under the
 * resolved parents; returns how many were removed. */
static int sweep_in(const cg_parents *par)
{
    int removed = 0;
    for (size_t i = 0; i < 3; i++) {
        const char *parent = par->dir[i];
        if (!parent)
            continue;
        DIR *d = opendir(parent);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strncmp(e->d_name, "wfstep-", 7) || !owner_dead(e->d_name))
                continue;
            size_t len = strlen(parent) + strlen(e->d_name) + 2;
            char *dir = malloc(len);
            if (!dir)
                break;
            snprintf(dir, len, "%s/%s", parent, e->d_name);
            int dfd = open_dir(dir);
            if (dfd >= 0) {
                if (i == 0)
                    kill_dir(dfd, -1, -1);
                else
                    kill_dir(-1, dfd, -1);
                close(dfd);
            }
            remove_dir(&dir);
            removed++;
        }
        if (d)
            closedir(d);
    }
    return removed;
}

int wfh_sandbox_sweep(void)
{
    cg_parents par; /* owned */
    parents_resolve(&par);
    int removed = sweep_in(&par);
    parents_free(&par);
    return removed;
}
