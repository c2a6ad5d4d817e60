/*
 * core/policy.h - the operator's sandbox policy: what each step type is granted, under
 * which profile and limits. Host side; the runner enforces what comes out of here
 * (core/runner/sandbox.h describes the "sandbox" request member this produces).
 *
 * The policy file (default <wfhost home>/policy, see core/home.h) is line based, in the
 * spirit of Deno's permission flags; TYPE is a step type or * for every type:
 *
 *   # comments and blank lines are ignored
 *   allow   TYPE --allow-net=HOST:PORT,... --allow-read=PATH,... --allow-write=PATH,...
 *                --allow-run=PROGRAM,... --allow-env=NAME,...   (--allow-net alone: any)
 *   limit   TYPE memory=256M pids=64 cpu=30s wall=10m output=1M result=1M
 *   profile TYPE strict|process|none
 *
 * Every part of what a step type requests (catalog capabilities) must be covered by a
 * grant, else the step is refused before the run starts with the exact `allow` line to
 * add. The step then gets what it requested plus what the operator granted its type
 * (or every type, or this run on the command line: a shell script's paths cannot be
 * declared ahead), narrowed by the workflow if it says so. A narrowing never widens.
 */
#ifndef WFH_POLICY_H
#define WFH_POLICY_H

#include <jansson.h>

typedef struct wfh_policy wfh_policy;

/**
 * Read a policy file. @p path NULL means <home>/policy, where a missing file is an
 * empty policy (built-in defaults apply); an explicit @p path must exist.
 * @param out receives the policy (caller frees with wfh_policy_free).
 * @return 0, WFH_EPARSE ("FILE:LINE:COL: ..."), WFH_EIO, WFH_ENOMEM.
 */
int wfh_policy_load(const char *path, wfh_policy **out);

/** As wfh_policy_load, with <home> from @p home_dir (borrowed; NULL: $WFH_HOME or the
 * default home, see core/home.h). */
int wfh_policy_load_in(const char *home_dir, const char *path, wfh_policy **out);

/**
 * The policy a run is confined by, always: @p path (--policy, must exist) or else
 * <home>/policy if present, else the built-in grants; then the run's @p allows
 * (n_allows "--allow-*" flags, borrowed) on top, and the workspace @p workspace
 * (borrowed; NULL: the current directory), made absolute.
 * @return 0 and *out (caller frees), WFH_EPARSE/WFH_EIO for the file, WFH_EUSAGE for a
 *         bad flag or workspace, WFH_ENOMEM.
 */
int wfh_policy_for_run(const char *home_dir, const char *path, const char *const *allows,
                       size_t n_allows, const char *workspace, wfh_policy **out);

/** The workspace set on @p p (borrowed), or NULL. */
const char *wfh_policy_workspace(const wfh_policy *p);

/** An empty policy (built-in defaults only), for tests and `--policy none`. */
int wfh_policy_new(wfh_policy **out);

/**
 * Parse policy text as if read from @p name (used for messages). Lines add to @p p.
 * @return 0 or WFH_EPARSE / WFH_ENOMEM.
 */
int wfh_policy_parse(wfh_policy *p, const char *name, const char *text);

/**
 * Add one command-line grant for this run, for every step type:
 * "--allow-net=127.0.0.1:8080", "--allow-read=/data", "--allow-write=/out",
 * "--allow-run=/usr/bin/jq", "--allow-env=NAME".
 * @return 0, WFH_EUSAGE for an unknown flag, WFH_ENOMEM.
 */
int wfh_policy_allow_flag(wfh_policy *p, const char *flag);

/** The run's workspace (borrowed copy taken): readable and writable by every step. */
int wfh_policy_set_workspace(wfh_policy *p, const char *dir);

/**
 * The "sandbox" request member for one step.
 * @param step_id  the step's id, for messages (borrowed).
 * @param type     its step type (borrowed).
 * @param requested the type's capabilities object from the catalog, or NULL (borrowed):
 *                 {"network": true | ["host:port"], "run": [...], "read": [...],
 *                  "write": [...], "env": [...], "secrets": [...]}
 * @param narrow   the workflow's narrowing for this step, or NULL (borrowed): same keys
 *                 as @p requested plus "profile" and "limits" (which may only tighten).
 * @param out      receives the member (new reference, caller owns).
 * @return 0; WFH_ESECURITY if something requested is not granted (the message names the
 *         step, what is missing and the exact line to add to the policy); WFH_EINVAL for
 *         malformed capabilities or narrowing; WFH_ENOMEM.
 */
int wfh_policy_grant_for(const wfh_policy *p, const char *step_id, const char *type,
                         const json_t *requested, const json_t *narrow, json_t **out);

struct wfh_value;
/**
 * As wfh_policy_grant_for, for a workflow step whose inputs are @p with (borrowed, may
 * be NULL; core/workflow.h): for a type requesting "network": true, every literal URL
 * among its top-level inputs (http, https, ws, wss, postgres, mysql, redis) must be
 * covered by the network grant, else WFH_ESECURITY with the exact line naming its
 * HOST:PORT. Inputs computed by expressions are left to the runner and the plugin.
 */
int wfh_policy_grant_for_step(const wfh_policy *p, const char *step_id, const char *type,
                              const json_t *requested, const json_t *narrow,
                              const struct wfh_value *with, json_t **out);

/** The file the policy came from (borrowed), or "(built-in)". */
const char *wfh_policy_path(const wfh_policy *p);

void wfh_policy_free(wfh_policy *p);

#endif
