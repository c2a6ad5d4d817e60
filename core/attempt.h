/*
 * core/attempt.h - one step attempt, run outside the host in the step runner.
 *
 * This is the single path every attempt takes: the host posix_spawn()s the step runner
 * (never a fork of itself), or from a host process's second attempt on has the runner's
 * zygote fork it as the host's child (core/runner/zygote.c: the same runner, without
 * the exec; WFH_RUNNER_ZYGOTE=0 turns that off, docs/operations.md), sends it one JSON
 * request, and reads back log lines, outputs, progress and one JSON result.
 * Verification (registry) and confinement (sandbox) hook into this path and nowhere
 * else.
 *
 * Wire protocol (host <-> runner), all JSON, one object per line:
 *  - host -> runner, on the runner's stdin, then EOF:
 *      {"plugin": PATH, "type": NAME, "inputs": {...}, "env": {...}, "run_id": ...,
 *       "step_id": ..., "attempt": N, "idempotency_key": ..., "workspace": DIR,
 *       "sandbox": {...}}   (optional: profile, grants, limits; core/runner/sandbox.h)
 *  - runner -> host, on the runner's stdout (the runner moves the plugin's own stdout
 *    to stderr so it cannot corrupt the channel):
 *      {"t":"plugin","name":"...","version":"..."}  (once loaded; names it in messages)
 *      {"t":"log","level":N,"msg":"..."}  {"t":"output","name":"...","value":JSON}
 *      {"t":"progress","fraction":F,"msg":"..."}
 *      {"t":"result","status":N,"error":"...","retry_after_ms":N,"sandbox":{...}}
 *  - the runner's stderr: free text from the plugin, logged line by line (as level
 *    WFH_LOG_INFO through the log hook).
 * The runner is started as `wfhost-runner --parent-pid PID` (forked: `--zygote
 * --parent-pid PID`) in its own process group, with the request on a sealed memfd as
 * stdin.
 *
 * Warm runners (WFH_RUNNER_WARM, docs/operations.md): when the caller hints that more
 * attempts like this one follow (wfh_attempt_spec.warm_hint), the host starts the next
 * attempt's runner in advance with only the part of the request confinement needs
 *      {"plugin", "type", "expect", "workspace", "sandbox" (without "env"), "go_fd": N}
 * The runner confines itself exactly as for an attempt, then, before it loads the plugin,
 * blocks on fd N (a SOCK_SEQPACKET socket). The next attempt whose part 1 is byte for
 * byte the same (same runner, plugin identity and environment too) takes it: the host
 * sends one message carrying a sealed memfd with the rest ("go")
 *      {"inputs", "env", "run_id", "step_id", "attempt", "idempotency_key",
 *       "sandbox_env": the sandbox member's "env"}
 * and the runner goes on as any runner does; its wall-time limit counts from the go.
 * Nothing of an attempt (inputs, variables, secrets) reaches a runner before the host
 * has recorded that attempt, and a warm runner still serves one attempt only. Closing
 * the socket instead makes it exit without running anything. Its sandbox report says
 * "warm": true.
 * A runner that dies without a result (signal, exit) fails the attempt with the signal
 * or exit status named.
 */
#ifndef WFH_ATTEMPT_H
#define WFH_ATTEMPT_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct wfh_attempt wfh_attempt;

typedef struct wfh_attempt_spec {
    const char *runner_path;      /* all borrowed for the duration of wfh_attempt_start */
    const char *plugin_path;
    const char *step_type;
    json_t *inputs;               /* object */
    json_t *env;                  /* object of strings */
    const char *run_id;
    const char *step_id;
    const char *idempotency_key;
    const char *workspace;
    unsigned attempt;             /* 1-based */
    json_t *sandbox;              /* borrowed, may be NULL: the request's "sandbox" member,
                                     from wfh_policy_grant_for (core/policy.h) */
    /* A plugin from the signed registry (all borrowed; NULL only from the development
     * commands' wfh_catalog_open_unsigned, core/catalog.h):
     * the host opens plugin_path once, copies it into a sealed memfd while hashing,
     * compares with these, and the runner loads that memfd (fd 3, "/proc/self/fd/3"),
     * so the bytes that run are the bytes that were signed. */
    const char *plugin_blake2b256;
    const char *plugin_sha256;
    unsigned long long plugin_size;
    const char *plugin_name;      /* must match what the runner reports after loading */
    const char *plugin_version;
    int warm_hint;                /* more attempts with this runner, plugin, type and sandbox
                                     may follow soon: start one warm runner for them (a
                                     hint; 0: none, and any idle one stays as it is) */
    unsigned busy;                /* attempts this host is running, this one included: with
                                     one per CPU or more, no warm runner is started (it would
                                     only do the same work earlier, on a busy machine), unless
                                     WFH_RUNNER_WARM=always; 0: not known, as 1 */
} wfh_attempt_spec;

/* Called as lines arrive; @p ud is wfh_attempt_hooks.ud. Strings are borrowed. */
typedef struct wfh_attempt_hooks {
    void (*log)(void *ud, wfh_attempt *a, int level, const char *msg, size_t len);
    void (*progress)(void *ud, wfh_attempt *a, double fraction, const char *msg);
    void *ud;
} wfh_attempt_hooks;

typedef struct wfh_attempt_result {
    int status;               /* wfh_step_status */
    char *error;              /* owned, NULL on success: one line */
    json_t *outputs;          /* owned reference: object (never NULL after finish) */
    uint64_t retry_after_ms;
    int term_signal;          /* runner killed by this signal, or 0 */
    int exit_code;            /* runner exit code, or -1 */
    json_t *sandbox;          /* owned reference or NULL: the runner's "sandbox" report from
                                 its result line (profile and what was applied) */
    int refused;              /* the loaded plugin is not the one the registry signed
                                 (integrity failure): a security refusal, exit status 3 */
} wfh_attempt_result;

/* Start the runner (spawned, or forked by the zygote) with the request. Returns 0 and
 * *out (owned; wfh_attempt_free), or a negative code (WFH_EINVAL: WFH_RUNNER_ZYGOTE is
 * malformed). @p hooks is copied. The runner is a child of the calling process either way. */
int wfh_attempt_start(const wfh_attempt_spec *spec, const wfh_attempt_hooks *hooks,
                      wfh_attempt **out);

/* The runner's pid (its process group id too: the runner leads its own group). */
pid_t wfh_attempt_pid(const wfh_attempt *a);

/* File descriptors to poll for POLLIN; entries are -1 once closed. Returns count. */
int wfh_attempt_fds(const wfh_attempt *a, int fds[2]);

/* Read what is available on @p fd (non-blocking) and dispatch hooks. */
void wfh_attempt_read(wfh_attempt *a, int fd);

/* The runner exited with @p wait_status (from waitpid, done by the caller): drain the
 * pipes, kill what is left of its process tree, and fill @p res (caller owns it; free
 * with wfh_attempt_result_clear). If something that escaped the tree still holds the
 * pipes, the drain gives up after 200 ms. */
void wfh_attempt_finish(wfh_attempt *a, int wait_status, wfh_attempt_result *res);

/* Kill the attempt's whole process tree (cancel, timeout). @p why becomes the error
 * ("cancelled", "timed out after 30s") and @p status the result class. The caller still
 * reaps the runner and calls wfh_attempt_finish. Sends SIGTERM to the runner (which
 * kills its descendants, setsid'd ones included) and waits for it to exit, without
 * reaping it, for at most 200 ms before SIGKILLing its process group. Call it before
 * the runner is reaped. */
void wfh_attempt_kill(wfh_attempt *a, int status, const char *why);

/* Kill and reap every idle warm runner this process started (the end of a run; also
 * done at exit). The next attempt starts its runner the ordinary way. */
void wfh_attempt_warm_release(void);

/* How many warm runners this process holds idle now (tests). */
int wfh_attempt_warm_count(void);

/* The attempt's runner was a warm one (started before the attempt, see above). */
int wfh_attempt_was_warm(const wfh_attempt *a);

void wfh_attempt_free(wfh_attempt *a);
void wfh_attempt_result_clear(wfh_attempt_result *r);

#endif
