/*
 * core/cli/cmd_plugin.c - `wfhost plugin SUBCOMMAND`: inspect (and, with the registry,
 * manage) plugins.
 *
 * One table of subcommands, like the top-level command table in main.c, so the
 * registry's install/list/remove/... are one line each. `info` reads a plugin's
 * descriptor through the step runner's probe mode (never in this process) and prints
 * what a workflow author needs: step types, input schemas, outputs, capabilities.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wfhost/plugin.h>

#include "../catalog.h"
#include "../error.h"
#include "../workflow.h"
#include "cli.h"
#include "cli_registry.h"

typedef struct plugin_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} plugin_cmd;

static int plugin_info(int argc, char **argv);

static const plugin_cmd plugin_cmds[] = {
    {"info", plugin_info, "show a plugin's version, ABI, step types, schemas and capabilities"},
    {"install", cmd_plugin_install, "check, probe, record and sign a plugin into the registry"},
    {"list", cmd_plugin_list, "list the plugins in the verified registry index"},
    {"remove", cmd_plugin_remove, "remove NAME[@MAJOR] from the registry"},
    {"enable", cmd_plugin_enable, "make NAME[@MAJOR] loadable again"},
    {"disable", cmd_plugin_disable, "keep NAME[@MAJOR] installed but refuse to load it"},
    {"yank", cmd_plugin_yank, "mark NAME[@MAJOR] as withdrawn (refused, kept for the record)"},
    {"verify", cmd_plugin_verify, "verify the registry's signatures and every plugin file"},
    {"new", cmd_plugin_new, "start a plugin from the SDK template (C or Rust)"},
    {"check", cmd_plugin_check, "conformance-check a plugin file before installing it"},
    {"run", cmd_plugin_run, "run one step of an uninstalled plugin (development)"},
};

static void plugin_usage(FILE *out)
{
    fputs("usage: wfhost plugin SUBCOMMAND [ARGS]\n\nsubcommands:\n", out);
    for (size_t i = 0; i < sizeof plugin_cmds / sizeof plugin_cmds[0]; i++)
        fprintf(out, "  %-10s %s\n", plugin_cmds[i].name, plugin_cmds[i].help);
    fputs("\nRun 'wfhost plugin SUBCOMMAND --help' for its options.\n", out);
}

static void info_usage(FILE *out)
{
    fputs("usage: wfhost plugin info PATH_OR_NAME [--json] [--home DIR]\n\n"
          "PATH_OR_NAME is a plugin file (anything with a '/' or ending in .so: its\n"
          "descriptor is read in the step runner's probe mode, nothing is installed), or a\n"
          "plugin or step type name with an optional @MAJOR (e.g. shell, shell@1), looked up\n"
          "in the signed registry (active plugins first; a disabled or yanked one is shown\n"
          "with its state).\n\n"
          "  --json            print the descriptor as one JSON object\n"
          "  --home DIR        the wfhost home whose registry names are looked up in\n"
          "                    (default: $WFH_HOME, ...; the build tree's: build/dev-home)\n",
          out);
}

static json_t *meta_json(const wfh_plugin_meta *m)
{
    json_t *types = json_array();
    for (size_t i = 0; types && i < m->n_types; i++) {
        const wfh_type_meta *t = &m->types[i];
        json_array_append_new(types, json_pack("{s:s, s:s?, s:O, s:O, s:O}", "name", t->name, "description",
                                               t->description, "input_schema", t->input_schema, "outputs",
                                               t->outputs, "capabilities", t->capabilities));
    }
    char abi[32];
    snprintf(abi, sizeof abi, "%u.%u", m->abi_major, m->abi_minor);
    /* The registry state, for an installed plugin (a probed file has none). */
    const char *state = m->state ? m->state : m->blake2b256 ? "active" : NULL;
    return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s*, s:o}", "name", m->name, "version", m->version,
                     "abi", abi, "description", m->description, "path", m->path, "state", state,
                     "step_types", types);
}

/* Print @p j (owned, taken; NULL after an allocation failed) indented, in its order. */
static int print_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    puts(s);
    free(s);
    return 0;
}

static void print_indented(const char *text, const char *indent)
{
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        printf("%s%.*s\n", indent, (int)n, line);
        line += n + (nl ? 1 : 0);
    }
}

static void print_human(const wfh_plugin_meta *m)
{
    printf("plugin %s %s (plugin ABI %u.%u)%s%s\n", m->name, m->version, m->abi_major, m->abi_minor,
           m->state ? ": " : "", m->state ? m->state : "");
    if (m->description && *m->description)
        printf("  %s\n", m->description);
    printf("  file: %s\n", m->path);
    for (size_t i = 0; i < m->n_types; i++) {
        const wfh_type_meta *t = &m->types[i];
        printf("\nstep type %s (uses: %s or %s@%u)\n", t->name, t->name, t->name, m->version_major);
        if (t->description && *t->description)
            printf("  %s\n", t->description);
        char *schema = json_dumps(t->input_schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("  inputs (JSON Schema):\n");
        print_indented(schema ? schema : "?", "    ");
        free(schema);
        printf("  outputs:%s\n", json_object_size(t->outputs) ? "" : " (none declared)");
        const char *k;
        json_t *v;
        json_object_foreach(t->outputs, k, v) {
            printf("    %-18s %s\n", k, json_is_string(v) ? json_string_value(v) : "");
        }
        printf("  capabilities:%s\n", json_object_size(t->capabilities) ? "" : " none");
        json_object_foreach(t->capabilities, k, v) {
            char *val = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("    %-18s %s\n", k, val ? val : "?");
            free(val);
        }
    }
}

/* Split "name@3" into name and major (-1 when absent). Returns -1 on a bad major. */
static int split_major(char *spec, int *major)
{
    *major = -1;
    char *at = strchr(spec, '@');
    if (!at)
        return 0;
    *at = 0;
    char *end;
    long m = strtol(at + 1, &end, 10);
    if (at[1] == 0 || *end || m < 0 || m > 100000)
        return -1;
    *major = (int)m;
    return 0;
}

/* True if MAJOR.MINOR.PATCH @p a is newer than @p b (numerically, not as text). */
static int version_newer(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        char *ea, *eb;
        unsigned long x = strtoul(a, &ea, 10), y = strtoul(b, &eb, 10);
        if (x != y)
            return x > y;
        a = *ea == '.' ? ea + 1 : ea;
        b = *eb == '.' ? eb + 1 : eb;
    }
    return 0;
}

static int plugin_info(int argc, char **argv)
{
    const char *what = NULL, *home = NULL; /* borrowed from argv */
    int as_json = 0, hr;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            info_usage(stdout);
            return WFH_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if ((hr = wfh_cli_home_opt("plugin info", argc, argv, &i, &home)) != 0) {
            if (hr < 0)
                return wfh_cli_fail(hr);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "wfhost plugin info: unknown option '%s'\n", argv[i]);
            info_usage(stderr);
            return WFH_EXIT_INVALID;
        } else if (!what) {
            what = argv[i];
        } else {
            fprintf(stderr, "wfhost plugin info: one plugin at a time ('%s' is extra)\n", argv[i]);
            return WFH_EXIT_INVALID;
        }
    }
    if (!what) {
        info_usage(stderr);
        return WFH_EXIT_INVALID;
    }

    int err = 0;
    wfh_catalog *cat = NULL;     /* owned */
    wfh_plugin_meta probed;      /* owned when what is a path */
    memset(&probed, 0, sizeof probed);
    const wfh_plugin_meta *m = NULL; /* borrowed from probed or cat */
    char *name = NULL;           /* owned */
    size_t n = strlen(what);
    if (strchr(what, '/') || (n > 3 && !strcmp(what + n - 3, ".so"))) {
        char *runner = wfh_default_runner_path();
        err = runner ? wfh_plugin_probe(runner, what, &probed) : wfh_error_set(WFH_ENOMEM, "out of memory");
        free(runner);
        if (err < 0)
            goto done;
        m = &probed;
    } else {
        int major;
        name = strdup(what);
        if (!name) {
            err = wfh_error_set(WFH_ENOMEM, "out of memory");
            goto done;
        }
        if (split_major(name, &major) < 0) {
            err = wfh_error_set(WFH_EUSAGE, "'%s': want NAME or NAME@MAJOR", what);
            goto done;
        }
        if ((err = wfh_catalog_from_registry(home, &cat)) < 0)
            goto done;
        /* A plugin name first (newest, or the given major), then a step type name;
         * active plugins first, then the disabled and yanked ones (shown with their
         * state: what they are is still worth knowing). */
        for (int pass = 0; pass < 2 && !m; pass++) {
            size_t count = pass ? cat->n_inactive : cat->n_plugins;
            for (size_t i = 0; i < count; i++) {
                const wfh_plugin_meta *p = pass ? &cat->inactive[i] : &cat->plugins[i];
                if (strcmp(p->name, name) || (major >= 0 && p->version_major != (unsigned)major))
                    continue;
                if (!m || version_newer(p->version, m->version))
                    m = p;
            }
        }
        const wfh_type_meta *bi = m ? NULL : wfh_builtin_type(name);
        if (bi) { /* issue #8: a built-in step type, not a plugin */
            if (as_json)
                err = print_json(json_pack("{s:s, s:b, s:s}", "step_type", bi->name, "built_in", 1,
                                           "description", bi->description));
            else
                printf("%s: step type built into wfhost: %s\n", bi->name, bi->description);
            goto done;
        }
        if (!m) {
            const wfh_type_meta *t = wfh_catalog_find(cat, name, major);
            if (t)
                m = t->plugin;
            else if (!(m = wfh_catalog_find_inactive(cat, name, major))) {
                err = WFH_ENOTFOUND;
                goto done;
            }
        }
    }
    if (as_json)
        err = print_json(meta_json(m));
    else
        print_human(m);
done:
    wfh_plugin_meta_clear(&probed);
    wfh_catalog_free(cat);
    free(name);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

int wfh_cli_removed_plugin_dir(const char *cmd, const char *arg)
{
    if (strcmp(arg, "--plugin-dir") != 0 && strncmp(arg, "--plugin-dir=", 13) != 0)
        return 0;
    return wfh_error_set(WFH_EUSAGE, "%s: --plugin-dir was removed: plugins load only from the "
                                     "signed registry; install one with `wfhost plugin install "
                                     "FILE.so` (docs/registry.md)", cmd);
}

int wfh_cli_home_opt(const char *cmd, int argc, char **argv, int *i, const char **home)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--home") && *i + 1 < argc) {
        *home = argv[++*i];
        return 1;
    }
    if (!strncmp(a, "--home=", 7)) {
        *home = a + 7;
        return 1;
    }
    return wfh_cli_removed_plugin_dir(cmd, a);
}

int cmd_plugin(int argc, char **argv)
{
    if (argc < 2) {
        plugin_usage(stderr);
        return WFH_EXIT_INVALID;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        plugin_usage(stdout);
        return WFH_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof plugin_cmds / sizeof plugin_cmds[0]; i++)
        if (!strcmp(argv[1], plugin_cmds[i].name))
            return plugin_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "wfhost plugin: unknown subcommand '%s'\n", argv[1]);
    plugin_usage(stderr);
    return WFH_EXIT_INVALID;
}
