/*
 * wfhost/plugin.h - the wfhost plugin ABI, version 1.0.
 *
 * This is the ONE header a step-type plugin includes. It needs only <stddef.h> and
 * <stdint.h>, compiles as C99 -pedantic and as C++, defines no objects, and links
 * against nothing: the host reaches the plugin through one exported entry symbol, and
 * the plugin reaches the host through a function table handed to it at call time.
 *
 * Rules that make the ABI last (docs/abi.md has the long form):
 *  - The entry symbol's name carries the ABI major: wfh_plugin_entry_v1. A host that
 *    speaks major 1 looks for exactly that symbol.
 *  - Every struct that crosses the boundary starts with uint32_t struct_size. Members
 *    are only ever appended. A reader copies a struct "up to its size": a shorter struct
 *    (older peer) reads as zero in the members it lacks, and zero always means the old
 *    behaviour; a longer struct (newer peer) is accepted only if the tail it does not
 *    know is all zero bytes.
 *  - A plugin declares the minor it needs (abi_minor). The host loads it iff the majors
 *    are equal and abi_minor <= the host's minor.
 *  - Only plain C crosses: integers, UTF-8 strings (with lengths where they may be
 *    long), and JSON *text* for structured data. No library's pointers cross.
 *  - Ownership: everything the host hands in is borrowed and valid until the call it
 *    was handed to returns. Everything the plugin hands out (descriptor, strings) is
 *    either static for the life of the process (the descriptor) or copied by the host
 *    before the host service returns (outputs, errors, logs).
 *
 * Each member is tagged with the minor that added it: [1.0].
 */
#ifndef WFHOST_PLUGIN_H
#define WFHOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI this header describes. */
#define WFH_ABI_MAJOR 1
#define WFH_ABI_MINOR 1

/** Name of the entry symbol a major-1 host looks up with dlsym(). */
#define WFH_ENTRY_SYMBOL "wfh_plugin_entry_v1"

/** Marks the one symbol a plugin exports (build with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define WFH_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define WFH_PLUGIN_EXPORT
#endif

/**
 * How a step attempt ended. The host's retry policy acts on the class, so pick the
 * one that says what retrying would do. Values are never reused. [1.0]
 */
typedef enum wfh_step_status {
    WFH_STEP_OK = 0,            /**< succeeded */
    WFH_STEP_FAILED = 1,        /**< an ordinary failure (e.g. a non-zero exit); retry may help */
    WFH_STEP_TRANSIENT = 2,     /**< a passing condition (network, 503, 429); retry should help */
    WFH_STEP_PERMANENT = 3,     /**< retrying cannot help (404, auth refused) */
    WFH_STEP_TIMEOUT = 4,       /**< the work timed out */
    WFH_STEP_INVALID_INPUT = 5, /**< the inputs are wrong; nothing was done */
    WFH_STEP_CANCELLED = 6      /**< the step saw is_cancelled() and stopped */
} wfh_step_status;

/** Log levels for wfh_host_api.log. [1.0] */
typedef enum wfh_log_level {
    WFH_LOG_ERROR = 0,
    WFH_LOG_WARN = 1,
    WFH_LOG_INFO = 2,
    WFH_LOG_DEBUG = 3
} wfh_log_level;

/**
 * One step attempt as the host sees it. Opaque: the plugin only passes it back to host
 * services. Valid until the step function returns. [1.0]
 */
typedef struct wfh_call wfh_call;

/**
 * Host services, handed to the plugin with every call. Starts with its own size; new
 * services are only ever appended. A plugin built for a newer minor checks that a
 * service exists with WFH_HOST_HAS() before calling it. Every pointer argument is
 * borrowed for the duration of the service call; the host copies what it keeps.
 * Service functions may be called only from the thread that called the step function.
 */
typedef struct wfh_host_api {
    uint32_t struct_size; /**< sizeof(wfh_host_api) as the host was built [1.0] */
    uint32_t abi_major;   /**< the host's ABI major [1.0] */
    uint32_t abi_minor;   /**< the host's ABI minor [1.0] */

    /** Write one log line for this attempt (no trailing newline needed). [1.0] */
    void (*log)(wfh_call *call, int32_t level, const char *msg, size_t len);

    /**
     * Set output @p name (UTF-8, [A-Za-z_][A-Za-z0-9_-]*) to the JSON value in
     * @p json (any JSON text: "\"text\"", "42", "{...}"). A later call with the same
     * name replaces the value. @return 0, or -1 if the name or JSON is invalid or the
     * attempt's output budget is spent (the step should then fail). [1.0]
     */
    int32_t (*set_output)(wfh_call *call, const char *name, const char *json, size_t json_len);

    /** Set the one-line human message that explains a non-OK status. [1.0] */
    void (*set_error)(wfh_call *call, const char *msg, size_t len);

    /** Hint for the retry policy: wait at least @p ms before the next attempt. [1.0] */
    void (*set_retry_after)(wfh_call *call, uint64_t ms);

    /** Report progress; @p fraction in [0,1] or negative if unknown. [1.0] */
    void (*progress)(wfh_call *call, double fraction, const char *msg, size_t len);

    /** Non-zero once the attempt has been cancelled or timed out: stop soon. [1.0] */
    int32_t (*is_cancelled)(wfh_call *call);
} wfh_host_api;

/** True if host table @p api is long enough to hold @p member and the member is set. */
#define WFH_HOST_HAS(api, member)                                                          \
    ((api) != NULL &&                                                                      \
     offsetof(wfh_host_api, member) + sizeof((api)->member) <= (size_t)(api)->struct_size && \
     (api)->member != NULL)

/**
 * What one step attempt is asked to do. Built by the host, borrowed by the plugin for
 * the duration of the step function. [1.0]
 */
typedef struct wfh_step_request {
    uint32_t struct_size;      /**< sizeof(wfh_step_request) as the host was built [1.0] */
    uint32_t attempt;          /**< 1 for the first attempt of this step [1.0] */
    const char *step_type;     /**< which of the plugin's step types, NUL-terminated [1.0] */
    const char *inputs_json;   /**< the step's `with:` as a JSON object, already checked
                                    against the step type's input schema [1.0] */
    size_t inputs_len;         /**< length of inputs_json in bytes [1.0] */
    const char *env_json;      /**< environment the workflow sets for the step: a JSON
                                    object of string values [1.0] */
    size_t env_len;            /**< length of env_json in bytes [1.0] */
    const char *run_id;        /**< the run's id [1.0] */
    const char *step_id;       /**< the step's id in the workflow [1.0] */
    const char *idempotency_key; /**< stable across the attempts (and resumes) of this
                                      step in this run: use it to avoid doing a side
                                      effect twice [1.0] */
    const char *workspace;     /**< absolute path of the run's workspace directory [1.0] */
    /**
     * What the sandbox grants this attempt, as a JSON object: {"profile": "strict" |
     * "process" | "none", "net": false | true | ["host:port", ...], "read": [...],
     * "write": [...], "run": [...]} (paths absolute). A plugin that reaches out on
     * its own (HTTP, database) refuses a target the grant does not list, so the
     * refusal names the target instead of failing deep inside a connect(). Check
     * WFH_REQUEST_HAS(req, grant_json) first: a 1.0 host does not set it. [1.1]
     */
    const char *grant_json;
    size_t grant_len;          /**< length of grant_json in bytes [1.1] */
} wfh_step_request;

/** True if request @p req (built by the host) is long enough to hold @p member and the
 * member is set: a plugin built for a newer minor checks before reading. */
#define WFH_REQUEST_HAS(req, member)                                                         \
    ((req) != NULL &&                                                                      \
     offsetof(wfh_step_request, member) + sizeof((req)->member) <= (size_t)(req)->struct_size && \
     (req)->member != NULL)

/**
 * Runs one attempt of a step. Report outputs and messages through @p host, then
 * return a wfh_step_status. Must not throw (C++: catch everything at this boundary).
 */
typedef int32_t (*wfh_step_fn)(const wfh_host_api *host, wfh_call *call,
                               const wfh_step_request *req);

/**
 * One step type a plugin provides. Static data: must stay valid for the life of the
 * process. [1.0]
 */
typedef struct wfh_step_type {
    uint32_t struct_size;      /**< sizeof(wfh_step_type) as the plugin was built [1.0] */
    const char *name;          /**< required: [a-z][a-z0-9_-]*, unique in the plugin [1.0] */
    const char *description;   /**< one line for `wfhost plugin info` [1.0] */
    const char *input_schema;  /**< required: JSON Schema (object) for `with:` [1.0] */
    const char *outputs;       /**< JSON object: output name -> one-line description [1.0] */
    /**
     * JSON object of what the step needs from the sandbox, all members optional:
     * {"network": ["host:port", ...] or true, "run": ["/usr/bin/x", ...],
     *  "read": ["/path", ...], "write": ["/path", ...], "env": ["NAME", ...],
     *  "secrets": ["NAME", ...]}. NULL or "{}" means nothing. [1.0]
     */
    const char *capabilities;
    wfh_step_fn run;           /**< required [1.0] */
} wfh_step_type;

/**
 * The plugin descriptor the entry symbol returns. Static data: the host reads it and
 * never writes or frees it. [1.0]
 */
typedef struct wfh_plugin {
    uint32_t struct_size;      /**< sizeof(wfh_plugin) as the plugin was built [1.0] */
    uint32_t abi_major;        /**< WFH_ABI_MAJOR the plugin was built for [1.0] */
    uint32_t abi_minor;        /**< lowest host minor the plugin needs [1.0] */
    uint32_t step_type_count;  /**< number of entries in step_types, >= 1 [1.0] */
    uint32_t step_type_size;   /**< sizeof(wfh_step_type) as the plugin was built: the
                                    stride of the step_types array [1.0] */
    const char *name;          /**< required: [a-z][a-z0-9_-]* [1.0] */
    const char *version;       /**< required: semantic version "MAJOR.MINOR.PATCH" [1.0] */
    const char *description;   /**< one line [1.0] */
    const wfh_step_type *step_types; /**< array of step_type_count entries [1.0] */
    /**
     * Optional: called once in each process that loads the plugin, before the first
     * step function. Return 0, or non-zero to refuse (the attempt then fails with the
     * message set through host->set_error). [1.0]
     */
    int32_t (*init)(const wfh_host_api *host, wfh_call *call);
} wfh_plugin;

/** Fills the size and ABI fields of a wfh_plugin initialiser. */
#define WFH_PLUGIN_INIT sizeof(wfh_plugin), WFH_ABI_MAJOR, WFH_ABI_MINOR

/**
 * The entry point. Returns the plugin's static descriptor. Must have no side effects:
 * the host may call it to read metadata only. [1.0]
 */
WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* WFHOST_PLUGIN_H */
