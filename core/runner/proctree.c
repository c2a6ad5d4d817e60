/*
 * core/runner/proctree.c - nothing a plugin starts may outlive its attempt.
 *
 * A process group is escaped by setsid() and a double fork re-parents a grandchild to
 * init, so the runner makes itself a child subreaper (orphans of its tree come back to
 * it) and, before it exits or when it is told to stop, walks its descendants through
 * /proc/<pid>/task/<tid>/children, stops them (so they cannot fork while we look),
 * kills them and reaps them. Only async-signal-safe calls are used (open, read,
 * getdents64, kill, waitpid, nanosleep) because the SIGTERM handler calls this. Where
 * the kernel lacks the children files, every /proc/<pid>/stat is scanned instead.
 * The sandbox's pid namespace will make this airtight later; this is the floor.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Enough for a fork bomb the rlimits have not stopped yet; a bigger tree is handled
 * over several rounds because every round kills what it found. */
#define MAX_TREE 4096

static pid_t tree[MAX_TREE];

/* Use only the /proc/<pid>/stat scan (set by the tests, to exercise the fallback). */
static int force_scan;

void wfh_proctree_init(void)
{
    const char *e = getenv("WFH_PROCTREE_SCAN");
    force_scan = e && *e == '1';
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

static int fmt_path(char *buf, size_t cap, long pid, long tid, const char *leaf)
{
    /* snprintf is not async-signal-safe: build "/proc/<pid>/task[/<tid>/children]". */
    char num[2][24];
    long v[2] = {pid, tid};
    for (int k = 0; k < 2; k++) {
        char tmp[24];
        int n = 0;
        long x = v[k];
        do {
            tmp[n++] = (char)('0' + x % 10);
            x /= 10;
        } while (x > 0 && n < 20);
        for (int i = 0; i < n; i++)
            num[k][i] = tmp[n - 1 - i];
        num[k][n] = 0;
    }
    const char *parts[6] = {"/proc/", num[0], "/task", tid >= 0 ? "/" : "",
                            tid >= 0 ? num[1] : "", tid >= 0 ? leaf : ""};
    size_t o = 0;
    for (int p = 0; p < 6; p++)
        for (const char *s = parts[p]; *s; s++) {
            if (o + 1 >= cap)
                return -1;
            buf[o++] = *s;
        }
    buf[o] = 0;
    return 0;
}

void wfh_runner_each_pid(int fd, void (*fn)(long pid, void *ctx), void *ctx)
{
    char buf[4096];
    long cur = -1;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = (cur < 0 ? 0 : cur * 10) + (buf[i] - '0');
            } else if (cur >= 0) {
                fn(cur, ctx);
                cur = -1;
            }
        }
    }
    if (cur >= 0) /* a last pid without its newline */
        fn(cur, ctx);
}

/* wfh_runner_each_pid's callback: stop @p pid and append it to tree[] (@p ctx: its
 * length, a size_t). */
static void stop_child(long pid, void *ctx)
{
    size_t *n = ctx;
    if (*n < MAX_TREE) {
        (void)kill((pid_t)pid, SIGSTOP);
        tree[(*n)++] = (pid_t)pid;
    }
}

/* Append the children of every thread of @p pid to tree[], stopping each one. */
static void collect_children(pid_t pid, size_t *n)
{
    char path[96];
    if (fmt_path(path, sizeof path, pid, -1, NULL) < 0)
        return;
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    char dents[4096];
    for (;;) {
        long got = syscall(SYS_getdents64, dfd, dents, sizeof dents);
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name[] */
            unsigned short reclen;
            memcpy(&reclen, dents + off + 16, sizeof reclen);
            const char *name = dents + off + 19;
            off += reclen;
            if (name[0] < '0' || name[0] > '9')
                continue;
            long tid = 0;
            for (const char *c = name; *c >= '0' && *c <= '9'; c++)
                tid = tid * 10 + (*c - '0');
            char cpath[128];
            if (fmt_path(cpath, sizeof cpath, pid, tid, "/children") < 0)
                continue;
            int cfd = open(cpath, O_RDONLY | O_CLOEXEC);
            if (cfd < 0)
                continue;
            wfh_runner_each_pid(cfd, stop_child, n);
            close(cfd);
        }
    }
    close(dfd);
}

static int in_tree(pid_t pid, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tree[i] == pid)
            return 1;
    return 0;
}

/*
 * Fallback for kernels without /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN):
 * scan every /proc/<pid>/stat for a parent in our tree, until the tree stops growing.
 */
static void collect_by_ppid(size_t *n)
{
    pid_t self = getpid();
    for (int pass = 0; pass < 64; pass++) {
        size_t before = *n;
        int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return;
        char dents[4096];
        long got;
        while ((got = syscall(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
            for (long off = 0; off < got;) {
                unsigned short reclen;
                memcpy(&reclen, dents + off + 16, sizeof reclen);
                const char *name = dents + off + 19;
                off += reclen;
                if (name[0] < '0' || name[0] > '9')
                    continue;
                char path[64] = "/proc/";
                size_t o = 6;
                for (const char *c = name; *c && o < sizeof path - 6; c++)
                    path[o++] = *c;
                memcpy(path + o, "/stat", 6);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                    continue;
                char buf[512];
                ssize_t r = read(fd, buf, sizeof buf - 1);
                close(fd);
                if (r <= 0)
                    continue;
                buf[r] = 0;
                /* "pid (comm) S ppid ...": comm may contain anything, so use the last ')'. */
                char *rp = NULL;
                for (ssize_t i = 0; i < r; i++)
                    if (buf[i] == ')')
                        rp = buf + i;
                if (!rp || rp + 4 >= buf + r)
                    continue;
                long ppid = 0, pid = 0;
                for (const char *c = rp + 4; *c >= '0' && *c <= '9'; c++)
                    ppid = ppid * 10 + (*c - '0');
                for (const char *c = name; *c >= '0' && *c <= '9'; c++)
                    pid = pid * 10 + (*c - '0');
                if ((ppid == self || in_tree((pid_t)ppid, *n)) && !in_tree((pid_t)pid, *n) && *n < MAX_TREE) {
                    (void)kill((pid_t)pid, SIGSTOP);
                    tree[(*n)++] = (pid_t)pid;
                }
            }
        }
        close(dfd);
        if (*n == before)
            return;
    }
}

void wfh_proctree_kill_all(void)
{
    int saved_errno = errno;
    for (int round = 0; round < 500; round++) {
        size_t n = 0;
        if (!force_scan) {
            collect_children(getpid(), &n);
            /* Breadth first: tree[] grows while we walk it. */
            for (size_t i = 0; i < n; i++)
                collect_children(tree[i], &n);
        }
        /* Children exist (waitpid said so last round) but none are listed: this kernel
         * has no children files. */
        if (n == 0 && (round > 0 || force_scan))
            collect_by_ppid(&n);
        for (size_t i = 0; i < n; i++)
            (void)kill(tree[i], SIGKILL);
        int status;
        pid_t w;
        while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
        }
        if (w < 0 && errno == ECHILD)
            break; /* no children left, not even zombies */
        /* Children remain (killed but not yet dead, or just re-parented to us): look
         * again in a moment. */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    errno = saved_errno;
}
