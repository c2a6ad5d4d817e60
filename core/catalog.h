/*
 * core/catalog.h - which step types exist, and what each declares.
 *
 * The catalog is the host's view of installed plugins: for each plugin its name,
 * version, ABI and file, and for each step type its input schema, outputs and
 * capabilities. The validator and scheduler only ever read metadata from here; no
 * plugin code runs in the host process to build it.
 *
 * There is one way for exec, resume, retry, validate, schema and graph to get a
 * catalog: wfh_catalog_from_registry, the verified signed registry of the wfhost home.
 * No option or environment variable makes them load a plugin that is not in it.
 */
#ifndef WFH_CATALOG_H
#define WFH_CATALOG_H

#include <jansson.h>
#include <stddef.h>

typedef struct wfh_plugin_meta wfh_plugin_meta;

typedef struct wfh_type_meta {
    char *name;               /* owned */
    char *description;        /* owned, may be NULL */
    json_t *input_schema;     /* owned reference */
    json_t *outputs;          /* owned reference: object name -> description */
    json_t *capabilities;     /* owned reference: object */
    wfh_plugin_meta *plugin;  /* borrowed back-pointer */
} wfh_type_meta;

struct wfh_plugin_meta {
    char *name;               /* owned */
    char *version;            /* owned, "MAJOR.MINOR.PATCH" */
    unsigned version_major;   /* parsed from version: what `uses: x@MAJOR` pins */
    unsigned abi_major, abi_minor;
    char *description;        /* owned, may be NULL */
    char *path;               /* owned: absolute path of the plugin file */
    /* From the signed registry (NULL/0 only in a wfh_catalog_open_unsigned catalog):
     * what the attempt path checks the bytes against before the runner may load them. */
    char *blake2b256;         /* owned, lowercase hex, or NULL */
    char *sha256;             /* owned, lowercase hex, or NULL */
    unsigned long long size;
    const char *state;        /* static: NULL when active, else "disabled" or "yanked"
                                 (only in wfh_catalog.inactive) */
    wfh_type_meta *types;     /* owned array */
    size_t n_types;
};

typedef struct wfh_catalog {
    wfh_plugin_meta *plugins; /* owned array: what a workflow may use */
    size_t n_plugins;
    /* Owned array: the registry's disabled and yanked plugins. Never offered or loaded;
     * kept so that a workflow naming one is told why it is refused. */
    wfh_plugin_meta *inactive;
    size_t n_inactive;
    char *runner_path;        /* owned: the step runner executable */
} wfh_catalog;

/*
 * DEVELOPMENT COMMANDS ONLY: a catalog of the UNSIGNED plugin files @p so_paths
 * (@p n of them, borrowed), each probed in the step runner (a child process). For
 * `wfhost plugin run` / `wfhost plugin check` (issue #9: trying a plugin before it is
 * installed) and for tests of the probe itself. It must never be reachable from exec,
 * resume, retry, validate, schema or graph: those take wfh_catalog_from_registry and
 * nothing else. Its plugins have no signed hash (blake2b256 == NULL). Files that fail
 * to probe are reported on stderr and left out. Returns 0 and *out (owned;
 * wfh_catalog_free), or a negative WFH_E* code.
 */
int wfh_catalog_open_unsigned(const char *const *so_paths, size_t n, wfh_catalog **out);
void wfh_catalog_free(wfh_catalog *c);

/* The catalog from the verified signed registry of the wfhost home (@p home, NULL: the
 * default; registry/catalog_bridge.c): no plugin runs, the index's signatures are
 * checked, every active plugin's file is there with its signed size (its hash is
 * checked by wfh_catalog_verify_used), and any refusal is WFH_ESECURITY naming the file
 * and the reason. */
int wfh_catalog_from_registry(const char *home, wfh_catalog **out);

struct wfh_workflow;
/* Before a run starts: hash the file of every plugin that @p wf's validated steps use
 * (step->meta, borrowed from a registry catalog) and compare it with the signed index,
 * so a tampered plugin refuses the run (WFH_ESECURITY, the plugin and file named)
 * before any step runs. Each attempt checks the bytes it loads again. */
int wfh_catalog_verify_used(const struct wfh_workflow *wf);

/* Probe one plugin file: run the step runner in probe mode on it and parse the
 * descriptor it prints. Returns 0 and fills @p out (caller frees with
 * wfh_plugin_meta_clear), or a negative code with the reason in wfh_error_last(). */
int wfh_plugin_probe(const char *runner_path, const char *plugin_path, wfh_plugin_meta *out);
void wfh_plugin_meta_clear(wfh_plugin_meta *m);
/* The same probe, for the installer: the descriptor object exactly as the runner printed
 * it (*out owned), or a negative code with the reason (the runner's own, "crashed while
 * loading: SIGSEGV (...)", "did not finish loading within N ms"). */
int wfh_plugin_probe_json(const char *runner_path, const char *plugin_path, json_t **out);

/* Find step type @p type; @p major < 0 means the newest version. Returns NULL if not
 * found, with a reason (e.g. "installed: shell@1") in wfh_error_last(). Borrowed. */
const wfh_type_meta *wfh_catalog_find(const wfh_catalog *c, const char *type, int major);

/* The disabled or yanked plugin that provides step type @p type (@p major < 0: any
 * major), or NULL. Borrowed. For the validator's refusal message. */
const wfh_plugin_meta *wfh_catalog_find_inactive(const wfh_catalog *c, const char *type, int major);

/* The step runner next to the running wfhost binary (or $WFH_RUNNER). Owned string. */
char *wfh_default_runner_path(void);

#endif
