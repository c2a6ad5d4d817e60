/*
 * core/runner/runner.h - pieces shared by the step runner's files.
 *
 * The runner (wfhost-runner) is the only process that ever executes plugin code. It is
 * kept small (jansson + libdl) because it starts once per attempt. main.c speaks the
 * wire protocol described in core/attempt.h; descriptor.c loads a plugin and checks
 * its descriptor against the ABI rules; proctree.c makes sure nothing the plugin
 * started outlives the attempt.
 */
#ifndef WFH_RUNNER_H
#define WFH_RUNNER_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include <wfhost/plugin.h>

/*
 * The ABI minor this runner speaks. The ABI tests build a second runner with
 * WFH_RUNNER_NEXT_MINOR defined, which pretends a minor was added (one more member in
 * each growing struct), so "an old plugin still loads in a newer host" is tested for
 * real rather than assumed.
 */
#ifdef WFH_RUNNER_NEXT_MINOR
#define WFH_RUNNER_ABI_MINOR (WFH_ABI_MINOR + 1)
#else
#define WFH_RUNNER_ABI_MINOR WFH_ABI_MINOR
#endif

/* Sizes of the structs as ABI 1.0 defined them: the smallest a plugin may hand us. */
#define WFH_PLUGIN_SIZE_V1_0 (offsetof(wfh_plugin, init) + sizeof(void (*)(void)))
#define WFH_STEP_TYPE_SIZE_V1_0 (offsetof(wfh_step_type, run) + sizeof(void (*)(void)))

/* The host's view of the descriptor: the plugin's struct copied "up to its size". */
typedef struct wfh_plugin_view {
    wfh_plugin d;
#ifdef WFH_RUNNER_NEXT_MINOR
    const char *simulated_next_member;
#endif
} wfh_plugin_view;

typedef struct wfh_step_type_view {
    wfh_step_type t;
#ifdef WFH_RUNNER_NEXT_MINOR
    const char *simulated_next_member;
#endif
} wfh_step_type_view;

/* A loaded, checked plugin. Never unloaded: dlclose is where destructors crash. */
typedef struct wfh_loaded_plugin {
    const char *path;            /* borrowed from the caller */
    wfh_plugin_view desc;        /* copy; its pointers point into the plugin (static) */
    wfh_step_type_view *types;   /* owned array of desc.d.step_type_count copies */
    uint32_t n_types;
} wfh_loaded_plugin;

/* dlopen @p path, find the entry symbol, and check the descriptor. Returns 0 and fills
 * @p out (free with wfh_loaded_plugin_clear), or -1 with a one-line reason naming the
 * plugin in @p err. */
int wfh_runner_load(const char *path, wfh_loaded_plugin *out, char *err, size_t errlen);
void wfh_loaded_plugin_clear(wfh_loaded_plugin *p);

/* Print the checked descriptor as one JSON object on @p fd. Returns 0, or -1 with the
 * reason (e.g. an input_schema that is not JSON) in @p err. */
int wfh_runner_probe_print(const wfh_loaded_plugin *p, int fd, char *err, size_t errlen);

/* The basename of a path, for messages. Borrowed from @p path. */
const char *wfh_runner_basename(const char *path);

/* Write all of @p len bytes to @p fd (retrying short writes). Returns 0 or -1. */
int wfh_runner_write_all(int fd, const char *buf, size_t len);

/* A request's size cap: inputs are JSON text; far beyond any sane workflow. */
#define WFH_RUNNER_REQUEST_MAX (64u << 20)

/* Read @p fd to its end into *@p out (owned by the caller, not NUL-terminated), at most
 * WFH_RUNNER_REQUEST_MAX bytes. Returns 0, or -1 with errno (EFBIG past the cap). */
int wfh_runner_read_all(int fd, char **out, size_t *out_len);

/* The signals whose dispositions a new runner starts with at their default, whatever the
 * host set for itself (core/attempt.c's posix_spawn attributes; zygote.c in a forked
 * runner). The signal mask starts empty. */
#define WFH_RUNNER_RESET_SIGNALS                                                              \
    {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM, SIGTTIN, \
     SIGTTOU, SIGTSTP, SIGXFSZ, SIGXCPU}

/* The zygote (zygote.c): the host's message per attempt, on a SOCK_SEQPACKET socket, with
 * the descriptors the runner gets as 0 (request), 1 (channel), 2 (stderr), then 3
 * (verified plugin, optional) and a warm runner's go socket (the request's "go_fd",
 * core/attempt.h) in one SCM_RIGHTS control message. The answer is one int32_t: the new
 * runner's pid (sent by that runner), or -errno (sent by the zygote). */
#define WFH_ZYGOTE_MAGIC 0x315a4657u /* "WFZ1" */
#define WFH_ZYGOTE_MAX_FDS 5
typedef struct wfh_zygote_msg {
    uint32_t magic;    /* WFH_ZYGOTE_MAGIC */
    int32_t host_pid;  /* must be the zygote's parent: the new runner's parent-to-be */
    uint32_t nfds;     /* 3 to 5, as many as the control message carries */
} wfh_zygote_msg;

/* Serve the host on @p sock until it closes it. Returns the zygote's exit code (0), or
 * -1 in a new attempt's process, whose descriptors, process group and signals are set up
 * as a spawned runner's; the caller then runs the attempt as if exec'd with
 * `--parent-pid @p host`. */
int wfh_zygote_serve(int sock, pid_t host);

/* Calls @p fn(pid, @p ctx) for every decimal number read from @p fd to its end (a
 * cgroup.procs or /proc/PID/task/TID/children list). Plain read()s into a stack buffer:
 * async-signal-safe, and no stdio for a list that is usually empty (proctree.c). */
void wfh_runner_each_pid(int fd, void (*fn)(long pid, void *ctx), void *ctx);

/* Become a child subreaper, so orphans of the plugin are re-parented to us. */
void wfh_proctree_init(void);
/* SIGKILL every descendant (including setsid'd and double-forked ones that were
 * re-parented to us) and reap them. Async-signal-safe: used from the SIGTERM handler. */
void wfh_proctree_kill_all(void);

#endif
