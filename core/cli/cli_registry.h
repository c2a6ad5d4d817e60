/*
 * core/cli/cli_registry.h - what cmd_registry.c and cmd_plugin_registry.c share: their
 * option parser, home and signing-key lookup, and the `plugin` subcommands the plugin
 * command table dispatches to.
 */
#ifndef WFH_CLI_REGISTRY_H
#define WFH_CLI_REGISTRY_H

#include "registry/minisign.h"

typedef struct wfh_cli_reg_opts {
    const char *home;       /* borrowed from argv */
    const char *key;        /* borrowed */
    const char *name;       /* borrowed */
    const char *out;        /* borrowed */
    const char *trust_file; /* borrowed */
    unsigned expires, threshold;
    int new_key, bump, json, reinit_state, trust_flag;
    const char *pos[2]; /* borrowed */
    int npos;
} wfh_cli_reg_opts;

/* argv[0] is the subcommand. --home is always accepted; @p flags (no value) and
 * @p valued (take a value) list the others. */
int wfh_cli_reg_opts_parse(int argc, char **argv, wfh_cli_reg_opts *o, const char *const *flags,
                           const char *const *valued);
int wfh_cli_reg_home(const wfh_cli_reg_opts *o, char **home);
/* --key, else HOME/keys/wfhost.key. */
int wfh_cli_reg_load_key(const wfh_cli_reg_opts *o, const char *home, wfh_ms_seckey *sk);

/* `wfhost plugin install|list|remove|enable|disable|yank|verify`: argv[0] is the
 * subcommand name. Each returns an exit status. */
int cmd_plugin_install(int argc, char **argv);
int cmd_plugin_list(int argc, char **argv);
int cmd_plugin_remove(int argc, char **argv);
int cmd_plugin_enable(int argc, char **argv);
int cmd_plugin_disable(int argc, char **argv);
int cmd_plugin_yank(int argc, char **argv);
int cmd_plugin_verify(int argc, char **argv);

/* `--plugin-dir` is gone (issue #4: no switch loads unsigned code). If @p arg is
 * `--plugin-dir` or `--plugin-dir=DIR`, set a usage error (WFH_EUSAGE) that says so and
 * how to install a plugin instead, and return it; else return 0. For exec, resume,
 * retry, validate, schema and plugin info (cmd_plugin.c). */
int wfh_cli_removed_plugin_dir(const char *cmd, const char *arg);

/* The plugin-reading commands' one shared option: if argv[*i] is `--home DIR` or
 * `--home=DIR`, set *home (borrowed from argv; *i moves past DIR) and return 1; if it is
 * the removed --plugin-dir, return its usage error (wfh_cli_removed_plugin_dir); else 0.
 * For validate, schema and plugin info. */
int wfh_cli_home_opt(const char *cmd, int argc, char **argv, int *i, const char **home);

#endif
