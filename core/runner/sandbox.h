/*
 * core/runner/sandbox.h - the confinement the step runner applies to itself before it
 * dlopens a plugin.
 *
 * The host puts a "sandbox" member in the request it sends the runner (see
 * core/attempt.h and docs/sandbox.md):
 *   {"profile": "strict"|"process"|"none",
 *    "read": [PATH...], "write": [PATH...], "run": [PATH...],
 *    "net": false | true | ["HOST:PORT", ...],
 *    "env": {"NAME": "VALUE", ...},
 *    "workspace": DIR,
 *    "limits": {"memory": BYTES, "pids": N, "cpu_ms": N, "wall_ms": N,
 *               "output": BYTES, "result": BYTES, "nofile": N, "fsize": BYTES}}
 * The runner calls wfh_sandbox_enter() once, before dlopen. That call forks: the
 * runner's original process stays outside as the supervisor (it never returns from the
 * call: it relays output within the caps, enforces the wall time, kills the whole tree
 * through the cgroup / pid namespace, and exits like the step did), and the call
 * returns 0 in the confined step process, which then loads and runs the plugin.
 *
 * Order inside (research §0): cgroups + pid/mount/ipc/uts/net namespaces -> pid 1
 * reaper -> step: rlimits, empty environment, capabilities dropped, no_new_privs
 * (fatal), Landlock, seccomp last. Where strict needs a mechanism this machine lacks,
 * wfh_sandbox_enter refuses and names it; it never runs with less than promised.
 *
 * These files are compiled into wfhost-runner only (not the host library), so errors
 * are kept in a buffer of their own: wfh_sandbox_error().
 */
#ifndef WFH_SANDBOX_H
#define WFH_SANDBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../error.h" /* WFH_E* codes (the codes only: no error.c here) */

/* Sanitizer builds need two holes: LeakSanitizer ptrace()s its own threads at exit,
 * and ASan reserves terabytes of shadow (so no RLIMIT_AS). Tests say which build. */
#if defined(__SANITIZE_ADDRESS__)
#define WFH_SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WFH_SANDBOX_ASAN 1
#endif
#endif

typedef enum wfh_sandbox_profile {
    WFH_SANDBOX_STRICT = 0,
    WFH_SANDBOX_PROCESS = 1,
    WFH_SANDBOX_NONE = 2
} wfh_sandbox_profile;

/* Default limits when the request names none: a runaway step is contained on a
 * machine nobody configured. */
#define WFH_SANDBOX_DEF_MEMORY (512ull << 20)
#define WFH_SANDBOX_DEF_PIDS 256u
#define WFH_SANDBOX_DEF_CPU_MS (600u * 1000u)
#define WFH_SANDBOX_DEF_WALL_MS (3600u * 1000u)
#define WFH_SANDBOX_DEF_OUTPUT (16ull << 20)
#define WFH_SANDBOX_DEF_RESULT (16ull << 20)
#define WFH_SANDBOX_DEF_NOFILE 1024u
#define WFH_SANDBOX_DEF_FSIZE (1ull << 30)

typedef struct wfh_sandbox_limits {
    uint64_t memory;     /* bytes, cgroup memory limit */
    uint64_t pids;       /* tasks in the step's tree (cgroup pids) */
    uint64_t cpu_ms;     /* RLIMIT_CPU, rounded up to seconds */
    uint64_t wall_ms;    /* supervisor's wall clock limit */
    uint64_t output;     /* bytes the step may write to stderr (its logs) */
    uint64_t result;     /* bytes on the result channel (stdout: outputs + result) */
    uint64_t nofile;     /* RLIMIT_NOFILE */
    uint64_t fsize;      /* RLIMIT_FSIZE */
} wfh_sandbox_limits;

typedef struct wfh_sandbox_spec {
    wfh_sandbox_profile profile;
    char **read, **write, **run;     /* owned NULL-terminated arrays of owned paths */
    int net_all;                     /* network granted without restriction */
    uint16_t *ports;                 /* owned: TCP ports granted (host part is enforced
                                        by the host's policy, Landlock sees ports) */
    size_t n_ports;
    char **env;                      /* owned NULL-terminated "NAME=VALUE" strings */
    char *workspace;                 /* owned, may be NULL */
    char *plugin;                    /* owned, may be NULL: granted read so dlopen works */
    wfh_sandbox_limits limits;
    int warm;                        /* a warm runner (core/attempt.h): the step waits for
                                        its go after confinement, and the wall time limit
                                        counts from the go */
} wfh_sandbox_spec;

/* What was actually applied; reported in the result line. */
typedef struct wfh_sandbox_report {
    wfh_sandbox_profile profile;
    int userns;                      /* own user namespace (not root) */
    int rerooted;                    /* root in a chroot: "/" re-made a private mount */
    int pidns, netns, mntns, landlock_abi, seccomp, nnp, caps_dropped, tmp_private;
    int memfd_noexec;                /* executable memfds refused (strict, kernel >= 6.3) */
    const char *cgroup;              /* static: "v2", "v1+v2kill", "v1", "none" */
    int rlimits;
    int warm;                        /* confined in advance, as a warm runner */
} wfh_sandbox_report;

/* Parse the request's "sandbox" member (@p j borrowed; NULL means the strict default
 * with default limits). @p plugin_path (borrowed, may be NULL) is granted read.
 * Returns 0 and *out (owned; wfh_sandbox_spec_free) or WFH_EINVAL. */
int wfh_sandbox_spec_parse(const json_t *j, const char *plugin_path, wfh_sandbox_spec **out);
void wfh_sandbox_spec_free(wfh_sandbox_spec *s);

/* Confine this process as @p spec says (see the top of this file). Returns 0 in the
 * confined step process with *rep filled; in the supervisor it does not return. Returns
 * WFH_ESECURITY if strict needs a mechanism that is missing (message names it) or
 * WFH_EIO if a setup call failed: the caller reports that and must not load the
 * plugin. Call it once, single-threaded. *chan is the protocol channel (the runner's
 * original stdout): in the step it is replaced, same number, by a pipe the supervisor
 * relays within the result cap; the step's fds 1 and 2 become the capped log pipe. */
int wfh_sandbox_enter(const wfh_sandbox_spec *spec, int *chan, wfh_sandbox_report *rep);

/* The runner's one call, before dlopen: parse @p req's "sandbox" member (borrowed;
 * "workspace" taken from the request when the member has none) and enter it. Returns
 * 0 in the step process, or a negative code with wfh_sandbox_error() set (the step
 * must then fail without loading the plugin).
 * A warm runner (@p go_fd >= 0, the go socket of core/attempt.h) then, still before
 * dlopen, waits for the host's go: 0 and *go (owned: the attempt's own members, whose
 * "sandbox_env" has been applied to the environment where the profile builds one), once
 * the supervisor has been told to start the wall clock; WFH_ECANCELLED if the host
 * closed the socket instead (exit without a result). */
int wfh_sandbox_apply_request(const json_t *req, const char *plugin_path, int *chan, int go_fd,
                              json_t **go);

/* What wfh_sandbox_apply_request applied, for the result line's "sandbox" member;
 * borrowed, NULL before the call. */
const json_t *wfh_sandbox_applied(void);

/* The report as a JSON object (new reference, caller owns). */
json_t *wfh_sandbox_report_json(const wfh_sandbox_report *rep);

/* Kill and remove step cgroups left by runners that died (host crash). Returns how
 * many were removed. */
int wfh_sandbox_sweep(void);

/* The last sandbox error message; never NULL. */
const char *wfh_sandbox_error(void);

/* Internal, across the sandbox_*.c files. */
int wfh_sandbox_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int wfh_sandbox_landlock_abi(void);
int wfh_sandbox_landlock_apply(const wfh_sandbox_spec *spec, int abi);
int wfh_sandbox_seccomp_apply(const wfh_sandbox_spec *spec);

typedef struct wfh_sandbox_cgroup {
    char *v2;       /* owned: unified dir for cgroup.kill, or NULL */
    char *mem;      /* owned: memory controller dir (v2 or v1), or NULL */
    char *pids;     /* owned: pids controller dir (v2 or v1), or NULL */
    int v2_limits;  /* memory/pids live in v2 */
    int empty;      /* every cgroup above was seen empty after a kill: nothing left to kill */
    int dfd[3];     /* owned O_PATH fds of the v2, memory and pids directories, -1 where
                       there is none (with v2_limits, [1] and [2] are -1: [0] serves) */
} wfh_sandbox_cgroup;

/* Sweeps what crashed runners left (wfh_sandbox_sweep), then makes this attempt's
 * cgroups with @p lim; one read of /proc/self/cgroup serves both. */
int wfh_sandbox_cgroup_create(wfh_sandbox_cgroup *cg, const wfh_sandbox_limits *lim);
int wfh_sandbox_cgroup_join(const wfh_sandbox_cgroup *cg);  /* the calling process */
void wfh_sandbox_cgroup_kill(wfh_sandbox_cgroup *cg);      /* sets cg->empty once it is */
int wfh_sandbox_cgroup_oom(const wfh_sandbox_cgroup *cg);   /* OOM kills seen */
int wfh_sandbox_cgroup_pids_hit(const wfh_sandbox_cgroup *cg);
void wfh_sandbox_cgroup_destroy(wfh_sandbox_cgroup *cg);
/* Frees @p cg's paths and closes its fds without touching the cgroups: what the step's
 * side does with its copy. */
void wfh_sandbox_cgroup_release(wfh_sandbox_cgroup *cg);

#endif
