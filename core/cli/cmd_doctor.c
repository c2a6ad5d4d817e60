/*
 * core/cli/cmd_doctor.c - `wfhost doctor`: what this machine offers the sandbox.
 *
 * The runner refuses a strict step when a mechanism it depends on is missing and
 * names it; doctor is where the operator sees the whole picture beforehand:
 * namespaces (probed in a throwaway child), the Landlock ABI, seccomp, cgroup v1/v2
 * controllers and cgroup.kill (probed by creating and removing a cgroup), and which
 * profiles can therefore run. It also checks that the policy file parses.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "error.h"
#include "policy.h"

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif

static const struct {
    const char *name;
    int flag;
} ns_kinds[] = {{"user", CLONE_NEWUSER}, {"pid", CLONE_NEWPID}, {"mount", CLONE_NEWNS},
                {"net", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
                {"cgroup", CLONE_NEWCGROUP}};
#define N_NS (sizeof ns_kinds / sizeof ns_kinds[0])

/* Each namespace alone, and (for non-root) together with a user namespace, as the
 * runner would use them; in a child so this process keeps its own. Bit i set = ok. */
static unsigned probe_namespaces(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        unsigned ok = 0;
        for (size_t i = 0; i < N_NS; i++) {
            pid_t c = fork();
            if (c == 0) {
                int flags = ns_kinds[i].flag;
                if (geteuid() != 0)
                    flags |= CLONE_NEWUSER;
                _exit(unshare(flags) == 0 ? 0 : 1);
            }
            int st = 0;
            if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                ok |= 1u << i;
        }
        _exit((int)ok);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return 0;
    return (unsigned)WEXITSTATUS(st);
}

static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* Own path in hierarchy @p ctrl ("" = v2) into @p out. */
static int own_cgroup(const char *ctrl, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[4096];
    int found = -1;
    while (f && found < 0 && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = '\0';
        int match = !*ctrl ? !strcmp(line, "0") : 0;
        for (char *save = NULL, *t = *ctrl ? strtok_r(c1 + 1, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save))
            match |= !strcmp(t, ctrl);
        if (match) {
            c2[1 + strcspn(c2 + 1, "\n")] = '\0';
            snprintf(out, cap, "%s", strcmp(c2 + 1, "/") ? c2 + 1 : "");
            found = 0;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* Can this process create a step cgroup under @p mount + its own path? Also reports
 * whether cgroup.kill appears in it. */
static int probe_mkdir(const char *mount, const char *ctrl, int *has_kill)
{
    char own[2048], dir[4096], kill[4200];
    if (own_cgroup(ctrl, own, sizeof own) < 0)
        return 0;
    snprintf(dir, sizeof dir, "%s%s/wfdoctor-%ld", mount, own, (long)getpid());
    if (mkdir(dir, 0755) != 0)
        return 0;
    snprintf(kill, sizeof kill, "%s/cgroup.kill", dir);
    struct stat st;
    if (has_kill)
        *has_kill = stat(kill, &st) == 0;
    rmdir(dir);
    return 1;
}

int cmd_doctor(int argc, char **argv)
{
    int as_json = 0;
    const char *policy_path = NULL, *home = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: wfhost doctor [--json] [--policy FILE] [--home DIR]\n\n"
                 "Prints what this machine offers the step sandbox (namespaces, Landlock,\n"
                 "seccomp, cgroups), which sandbox profiles can run, and whether the policy\n"
                 "file parses: --policy FILE, else <home>/policy (--home DIR, $WFH_HOME or the\n"
                 "default home), which every run applies; without one, the built-in grants.\n"
                 "See docs/sandbox.md.");
            return WFH_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[i], "--policy") && i + 1 < argc) {
            policy_path = argv[++i];
        } else if (!strcmp(argv[i], "--home") && i + 1 < argc) {
            home = argv[++i];
        } else {
            wfh_error_set(WFH_EUSAGE, "doctor: unexpected argument '%s' (see --help)", argv[i]);
            return wfh_cli_fail(WFH_EUSAGE);
        }
    }

    struct utsname u;
    uname(&u);
    unsigned ns = probe_namespaces();
    long ll = syscall(__NR_landlock_create_ruleset, NULL, 0, 1u);
    int ll_errno = ll < 0 ? errno : 0;
    int seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
    char actions[256] = "";
    read_small("/proc/sys/kernel/seccomp/actions_avail", actions, sizeof actions);

    struct stat st;
    const char *v2mount = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0 ? "/sys/fs/cgroup"
                          : stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0
                              ? "/sys/fs/cgroup/unified"
                              : NULL;
    char v2ctl[512] = "";
    int v2_kill = 0, v2_ok = 0;
    if (v2mount) {
        char path[600];
        snprintf(path, sizeof path, "%s/cgroup.controllers", v2mount);
        read_small(path, v2ctl, sizeof v2ctl);
        v2_ok = probe_mkdir(v2mount, "", &v2_kill);
    }
    int v1_mem = probe_mkdir("/sys/fs/cgroup/memory", "memory", NULL);
    int v1_pids = probe_mkdir("/sys/fs/cgroup/pids", "pids", NULL);
    int v2_mem = v2_ok && strstr(v2ctl, "memory") != NULL;
    int v2_pids = v2_ok && strstr(v2ctl, "pids") != NULL;

    /* What the runner needs per profile (core/runner/sandbox.c). */
    int need_ns = (ns & 0x3f) == 0x3f || (geteuid() == 0 && (ns & 0x3e) == 0x3e);
    int pids_ok = v2_pids || v1_pids || geteuid() != 0;
    int kill_ok = (v2_ok && v2_kill) || v1_pids || v1_mem;
    char strict_why[256] = "", process_why[256] = "";
    if (ll < 1)
        snprintf(strict_why, sizeof strict_why, "no Landlock");
    else if (!seccomp)
        snprintf(strict_why, sizeof strict_why, "no seccomp filters");
    else if (!need_ns)
        snprintf(strict_why, sizeof strict_why, "namespaces refused");
    else if (!pids_ok)
        snprintf(strict_why, sizeof strict_why, "no pids cgroup (RLIMIT_NPROC does not bind root)");
    if (!kill_ok)
        snprintf(process_why, sizeof process_why, "no cgroup to kill the step's tree");
    else if (!pids_ok)
        snprintf(process_why, sizeof process_why, "no pids cgroup (RLIMIT_NPROC does not bind root)");

    wfh_policy *pol = NULL;
    int perr = wfh_policy_load_in(home, policy_path, &pol);
    /* The one thing strict leaves on the host between runs (docs/sandbox.md): the empty
     * network namespace shared by steps without network, kept by a bind mount. */
    struct statfs nsf;
    int netns_kept = statfs("/run/wfhost/netns-empty", &nsf) == 0 && nsf.f_type == 0x6e736673;
    /* A plain chroot: strict re-makes "/" as a private mount per step (root only). */
    int chrooted = 0;
#ifdef STATX_ATTR_MOUNT_ROOT
    struct statx sx;
    chrooted = statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &sx) == 0 &&
               (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
               !(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
#endif
    if (chrooted && geteuid() != 0 && !*strict_why)
        snprintf(strict_why, sizeof strict_why, "in a chroot, only root can keep the step's mounts private");
    char perrmsg[512];
    snprintf(perrmsg, sizeof perrmsg, "%s", perr < 0 ? wfh_error_last() : "");

    if (as_json) {
        json_t *nsj = json_object();
        for (size_t i = 0; i < N_NS; i++)
            json_object_set_new(nsj, ns_kinds[i].name, json_boolean(ns & (1u << i)));
        json_t *j = json_pack(
            "{s:s, s:i, s:o, s:i, s:b, s:s, s:{s:b, s:b, s:b, s:b, s:b, s:b, s:s}, s:{s:b, s:s?}, "
            "s:{s:b, s:s?}, s:b, s:s?, s:s?, s:b, s:b}",
            "kernel", u.release, "uid", (int)geteuid(), "namespaces", nsj, "landlock_abi",
            ll < 0 ? 0 : (int)ll, "seccomp", seccomp, "seccomp_actions", actions, "cgroup", "v2",
            v2_ok, "v2_kill", v2_kill, "v2_memory", v2_mem, "v2_pids", v2_pids, "v1_memory",
            v1_mem, "v1_pids", v1_pids, "v2_controllers", v2ctl, "strict", "available",
            !*strict_why, "missing", *strict_why ? strict_why : NULL, "process", "available",
            !*process_why, "missing", *process_why ? process_why : NULL, "policy_ok", perr == 0,
            "policy", pol ? wfh_policy_path(pol) : NULL, "policy_error", perr < 0 ? perrmsg : NULL,
            "netns_empty_kept", netns_kept, "chroot", chrooted);
        char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        if (text)
            puts(text);
        free(text);
        json_decref(j);
    } else {
        printf("wfhost doctor: what this machine offers the step sandbox\n\n");
        printf("  %-14s %s (%s)\n", "kernel", u.release, u.machine);
        printf("  %-14s uid %d%s\n", "running as", (int)geteuid(),
               geteuid() == 0 ? " (root: namespaces without a user namespace)" : "");
        printf("  %-14s", "namespaces");
        for (size_t i = 0; i < N_NS; i++)
            printf(" %s %s%s", ns_kinds[i].name, ns & (1u << i) ? "ok" : "NO", i + 1 < N_NS ? "," : "\n");
        if (ll > 0)
            printf("  %-14s ABI %ld (%s)\n", "landlock", ll,
                   ll >= 6 ? "paths, TCP ports, signal/socket scoping"
                   : ll >= 4 ? "paths, TCP ports" : "paths only: host:port grants refused");
        else
            printf("  %-14s NO (%s)\n", "landlock",
                   ll_errno == ENOSYS ? "not built into this kernel"
                   : ll_errno == EOPNOTSUPP ? "disabled at boot" : strerror(ll_errno));
        printf("  %-14s %s%s%s\n", "seccomp", seccomp ? "filters ok" : "NO",
               *actions ? "; actions: " : "", actions);
        if (v2mount)
            printf("  %-14s %s: %s; controllers: %s; cgroup.kill: %s\n", "cgroup v2", v2mount,
                   v2_ok ? "step cgroups ok" : "cannot create step cgroups", *v2ctl ? v2ctl : "(none)",
                   v2_kill ? "yes" : "no");
        else
            printf("  %-14s not mounted\n", "cgroup v2");
        printf("  %-14s memory %s, pids %s\n", "cgroup v1", v1_mem ? "ok" : "no", v1_pids ? "ok" : "no");
        printf("  %-14s memory via %s, processes via %s, tree kill via %s\n", "step limits",
               v2_mem ? "v2" : v1_mem ? "v1" : "RLIMIT_AS (weak)",
               v2_pids ? "v2" : v1_pids ? "v1" : geteuid() ? "RLIMIT_NPROC (weak)" : "NOTHING",
               v2_kill && v2_ok ? "cgroup.kill" : kill_ok ? "v1 task list" : "NOTHING");
        if (chrooted)
            printf("  %-14s / is not a mount point: strict re-makes it as a private mount per step\n",
                   "chroot");
        printf("  %-14s %s\n", "empty netns",
               netns_kept ? "/run/wfhost/netns-empty: kept for steps without network "
                            "(`umount` it to remove; the next strict step makes it again)"
                          : "none kept (made by the first strict step without network, as root)");
        printf("\n  profile strict:  %s%s%s (the default for every step type)\n",
               *strict_why ? "UNAVAILABLE (" : "available", strict_why, *strict_why ? ")" : "");
        printf("  profile process: %s%s%s\n", *process_why ? "UNAVAILABLE (" : "available",
               process_why, *process_why ? ")" : "");
        printf("  profile none:    available (only for step types the policy marks `profile TYPE none`)\n");
        if (perr == 0)
            printf("\n  policy: %s%s\n", wfh_policy_path(pol),
                   stat(wfh_policy_path(pol), &st) == 0 ? " (applies to every run)"
                                                        : " (not present: every run gets the built-in grants)");
        else
            printf("\n  policy: ERROR: %s\n", perrmsg);
    }
    wfh_policy_free(pol);
    return perr < 0 ? wfh_exit_status(perr) : WFH_EXIT_OK;
}
