/*
 * core/home.h - where wfhost keeps its state (the "home"): the run store, large step
 * outputs, and the plugin registry all live under one directory so that one backup of
 * it is a backup of everything.
 *
 * The rule, first match wins:
 *   1. an explicit directory (the CLI's `--home DIR`),
 *   2. $WFH_HOME,
 *   3. the build tree's own wfhost (BUILD/bin/wfhost, not an installed copy): BUILD/dev-home,
 *      where the build signed its development registry - so a fresh clone's README
 *      commands load signed plugins and keep their run history in one place,
 *   4. /var/lib/wfhost when running as root (a system service),
 *   5. $XDG_DATA_HOME/wfhost,
 *   6. $HOME/.local/share/wfhost (the XDG default).
 * The run store, the registry and the sandbox policy all take their home from here.
 */
#ifndef WFH_HOME_H
#define WFH_HOME_H

/**
 * Resolve the home directory by the rule above. Does not touch the file system.
 * @param explicit_dir the `--home` argument or NULL (borrowed).
 * @param out receives a malloc'd absolute-or-as-given path (caller frees).
 * @return 0, WFH_EINVAL if no rule applies (no $HOME either), WFH_ENOMEM.
 */
int wfh_home_path(const char *explicit_dir, char **out);

/**
 * Create @p dir and its missing parents (mode 0700 for what is created: the home holds
 * step outputs, which may be sensitive). An existing directory is fine.
 * @return 0 or WFH_EIO with a message naming the directory.
 */
int wfh_home_ensure(const char *dir);

#endif
