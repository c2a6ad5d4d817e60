/*
 * core/cli/cmd_plugin_registry.c - the `wfhost plugin` subcommands that change or read
 * the signed registry: install, list, remove, enable, disable, yank, verify.
 *
 * install is the one place a new plugin enters: the file is read once into memory, its
 * ELF image checked (registry/elfcheck.h) before any of its code can run, stored as a
 * content-addressed blob, and only then probed - in the step runner, a child process
 * with a deadline, so a plugin whose constructor crashes or hangs cannot take the
 * installer down. The descriptor it reports is recorded in the next index, which is
 * written atomically and signed.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wfhost/plugin.h>

#include "../catalog.h"
#include "../error.h"
#include "../workflow.h"
#include "cli.h"
#include "cli_registry.h"
#include "registry/elfcheck.h"
#include "registry/registry.h"

static const char usage_text[] =
    "usage: wfhost plugin install FILE.so [--key SECRET_KEY] [--expires DAYS]\n"
    "       wfhost plugin list [--json]\n"
    "       wfhost plugin remove NAME[@MAJOR] [--key SECRET_KEY]\n"
    "       wfhost plugin disable|enable|yank NAME[@MAJOR] [--key SECRET_KEY]\n"
    "       wfhost plugin verify\n"
    "\n"
    "Every change writes the next index and signs it (default key: HOME/keys/wfhost.key).\n"
    "options: --home DIR (the wfhost home), --key SECRET_KEY, --expires DAYS, --json\n"
    "exit status: 0 ok, 2 bad usage or input, 3 refused for a security reason.\n";

static int wants_help(int argc, char **argv)
{
    if (wfh_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 1;
    }
    return 0;
}

/* Read the descriptor in the step runner's probe mode (core/catalog.c: a child process
 * with a time limit, so a crashing or hanging plugin costs a refused install, never the
 * installer). Any reason the probe gives is a refusal. */
static int probe(const char *plugin_path, json_t **out)
{
    char *runner = wfh_default_runner_path(); /* owned */
    if (!runner)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    int err = wfh_plugin_probe_json(runner, plugin_path, out);
    free(runner);
    if (err == WFH_EABI) {
        char why[1024];
        snprintf(why, sizeof why, "%s", wfh_error_last());
        err = wfh_error_set(WFH_ESECURITY, "probe: %s", why);
    }
    return err;
}

/* The probe's JSON into an index entry; everything is checked again by the index
 * rules when the index is written and parsed. */
static int descriptor_to_entry(json_t *d, wfh_reg_plugin *p, const char *file)
{
    const char *name = json_string_value(json_object_get(d, "name"));
    const char *version = json_string_value(json_object_get(d, "version"));
    const char *desc = json_string_value(json_object_get(d, "description"));
    json_t *types = json_object_get(d, "step_types");
    json_int_t amaj = json_integer_value(json_object_get(d, "abi_major"));
    json_int_t amin = json_integer_value(json_object_get(d, "abi_minor"));
    if (!name || !wfh_reg_name_ok(name))
        return wfh_error_set(WFH_EINVAL, "%s: plugin name is missing or not [a-z][a-z0-9_-]{0,63}", file);
    if (!version || !wfh_reg_version_ok(version, &p->version_major))
        return wfh_error_set(WFH_EINVAL, "plugin %s (%s): version must be MAJOR.MINOR.PATCH", name, file);
    if (amaj != WFH_ABI_MAJOR || amin < 0 || amin > WFH_ABI_MINOR)
        return wfh_error_set(WFH_ESECURITY, "plugin %s (%s): ABI %lld.%lld needs a wfhost that "
                             "speaks it (this one: %d.%d); refused", name, file, (long long)amaj,
                             (long long)amin, WFH_ABI_MAJOR, WFH_ABI_MINOR);
    if (!json_is_array(types) || json_array_size(types) == 0 || json_array_size(types) > 256)
        return wfh_error_set(WFH_EINVAL, "plugin %s (%s): no step types", name, file);
    p->name = strdup(name);
    p->version = strdup(version);
    p->description = desc ? strdup(desc) : NULL;
    p->abi_major = (unsigned)amaj;
    p->abi_minor = (unsigned)amin;
    p->state = WFH_PSTATE_ACTIVE;
    p->types = calloc(json_array_size(types), sizeof *p->types);
    if (!p->name || !p->version || (desc && !p->description) || !p->types)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(types); i++) {
        json_t *t = json_array_get(types, i);
        const char *tn = json_string_value(json_object_get(t, "name"));
        const char *td = json_string_value(json_object_get(t, "description"));
        json_t *schema = json_object_get(t, "input_schema");
        if (!tn || !wfh_reg_name_ok(tn) || !json_is_object(schema))
            return wfh_error_set(WFH_EINVAL, "plugin %s (%s): step type %zu has a bad name or "
                                 "input schema", name, file, i);
        if (wfh_builtin_type(tn)) /* issue #8: built-in step types own their names */
            return wfh_error_set(WFH_EINVAL, "plugin %s (%s): step type '%s' is built into "
                                 "wfhost (the name is reserved); rename the step type", name,
                                 file, tn);
        wfh_reg_type *rt = &p->types[i];
        p->n_types = i + 1;
        rt->name = strdup(tn);
        rt->description = td ? strdup(td) : NULL;
        rt->input_schema = json_deep_copy(schema);
        json_t *o = json_object_get(t, "outputs"), *c = json_object_get(t, "capabilities");
        rt->outputs = json_is_object(o) ? json_deep_copy(o) : json_object();
        rt->capabilities = json_is_object(c) ? json_deep_copy(c) : json_object();
        if (!rt->name || (td && !rt->description) || !rt->input_schema || !rt->outputs ||
            !rt->capabilities)
            return wfh_error_set(WFH_ENOMEM, "out of memory");
    }
    return 0;
}

static int read_plugin_file(const char *path, uint8_t **img, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int err = 0;
    *img = NULL;
    if (fd < 0)
        return wfh_error_set(errno == ENOENT ? WFH_ENOTFOUND : WFH_EIO, "%s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > WFH_BLOB_MAX_BYTES) {
        close(fd);
        return wfh_error_set(WFH_EINVAL, "%s: not a regular file of 1 byte to 256 MiB", path);
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1); /* owned until handed out */
    size_t got = 0;
    while (buf && got < (size_t)st.st_size + 1) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                err = wfh_error_set(WFH_EIO, "%s: read: %s", path, strerror(errno));
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (!buf)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    if (err == 0 && got != (size_t)st.st_size)
        err = wfh_error_set(WFH_EIO, "%s: changed while being read", path);
    if (err < 0) {
        free(buf);
        return err;
    }
    *img = buf;
    *len = got;
    return 0;
}

int cmd_plugin_install(int argc, char **argv)
{
    static const char *const valued[] = {"--key", "--expires", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL, *blob = NULL; /* owned */
    uint8_t *img = NULL;              /* owned */
    size_t len = 0;
    wfh_registry *r = NULL;
    wfh_index *next = NULL;
    json_t *desc = NULL;
    wfh_reg_plugin entry;
    wfh_ms_seckey sk;
    int err, stored = 0, committed = 0;
    memset(&entry, 0, sizeof entry);
    memset(&sk, 0, sizeof sk);
    if (wants_help(argc, argv))
        return WFH_EXIT_OK;
    if ((err = wfh_cli_reg_opts_parse(argc, argv, &o, NULL, valued)) < 0)
        goto done;
    if (o.npos != 1) {
        err = wfh_error_set(WFH_EUSAGE, "usage: wfhost plugin install FILE.so [--key SECRET_KEY]");
        goto done;
    }
    const char *file = o.pos[0];
    if ((err = wfh_cli_reg_home(&o, &home)) < 0 || (err = wfh_cli_reg_load_key(&o, home, &sk)) < 0 ||
        (err = wfh_registry_open(home, WFH_REG_OPEN_LOCK, &r)) < 0 ||
        (err = wfh_registry_check_signer(r, &sk)) < 0)
        goto done;
    if ((err = read_plugin_file(file, &img, &len)) < 0 || (err = wfh_elf_check(img, len, file)) < 0)
        goto done;
    if ((err = wfh_registry_put_blob(r, img, len, entry.blake2b256, entry.sha256)) < 0)
        goto done;
    stored = 1;
    entry.size = len;
    if (!(blob = wfh_registry_blob_path(r, entry.blake2b256))) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = probe(blob, &desc)) < 0) {
        char why[1024]; /* copied: wfh_error_set must not read the buffer it writes */
        snprintf(why, sizeof why, "%s", wfh_error_last());
        err = wfh_error_set(err, "%s: refused at install: %s", file, why);
        goto done;
    }
    if ((err = descriptor_to_entry(desc, &entry, file)) < 0)
        goto done;
    /* Same name and major replaces; other majors stay side by side. */
    const wfh_index *cur = wfh_registry_index(r);
    if (!(next = wfh_index_new())) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    const char *replaced = NULL;
    for (size_t i = 0; i < cur->n_plugins; i++) {
        const wfh_reg_plugin *p = &cur->plugins[i];
        if (!strcmp(p->name, entry.name) && p->version_major == entry.version_major) {
            replaced = p->version;
            continue;
        }
        if ((err = wfh_index_add(next, p)) < 0)
            goto done;
    }
    if ((err = wfh_index_add(next, &entry)) < 0 || (err = wfh_registry_commit(r, next, &sk, o.expires)) < 0)
        goto done;
    committed = 1;
    wfh_registry_gc(r, next);
    printf("installed %s@%s (%zu step type(s), blake2b256 %.16s...)%s%s; index seq %llu\n",
           entry.name, entry.version, entry.n_types, entry.blake2b256,
           replaced ? ", replacing " : "", replaced ? replaced : "", (unsigned long long)next->seq);
done:
    if (err < 0 && stored && !committed && r)
        wfh_registry_drop_blob(r, entry.blake2b256);
    wfh_ms_seckey_wipe(&sk);
    wfh_reg_plugin_clear(&entry);
    json_decref(desc);
    wfh_index_free(next);
    wfh_registry_free(r);
    free(img);
    free(blob);
    free(home);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

int cmd_plugin_list(int argc, char **argv)
{
    static const char *const flags[] = {"--json", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL;
    wfh_registry *r = NULL;
    char *text = NULL;
    int err;
    if (wants_help(argc, argv))
        return WFH_EXIT_OK;
    if ((err = wfh_cli_reg_opts_parse(argc, argv, &o, flags, NULL)) < 0 ||
        (err = wfh_cli_reg_home(&o, &home)) < 0 || (err = wfh_registry_open(home, 0, &r)) < 0)
        goto done;
    const wfh_index *ix = wfh_registry_index(r);
    if (o.json) {
        size_t len;
        if ((err = wfh_index_serialize(ix, &text, &len)) < 0)
            goto done;
        fputs(text, stdout);
        goto done;
    }
    if (ix->n_plugins == 0)
        printf("no plugins installed (index seq %llu)\n", (unsigned long long)ix->seq);
    for (size_t i = 0; i < ix->n_plugins; i++) {
        const wfh_reg_plugin *p = &ix->plugins[i];
        printf("%-16s %-10s %-8s abi %u.%u  %.16s  ", p->name, p->version,
               wfh_reg_state_name(p->state), p->abi_major, p->abi_minor, p->blake2b256);
        for (size_t t = 0; t < p->n_types; t++)
            printf("%s%s", t ? "," : "", p->types[t].name);
        putchar('\n');
    }
done:
    free(text);
    wfh_registry_free(r);
    free(home);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

/* NAME or NAME@MAJOR. */
static int parse_ref(const char *s, char *name, size_t cap, int *major)
{
    const char *at = strchr(s, '@');
    size_t n = at ? (size_t)(at - s) : strlen(s);
    *major = -1;
    if (n == 0 || n >= cap)
        return wfh_error_set(WFH_EUSAGE, "'%s': expected NAME or NAME@MAJOR", s);
    memcpy(name, s, n);
    name[n] = '\0';
    if (!wfh_reg_name_ok(name))
        return wfh_error_set(WFH_EUSAGE, "'%s': not a plugin name", s);
    if (at) {
        char *end = NULL;
        errno = 0;
        long m = strtol(at + 1, &end, 10);
        if (errno || !end || *end || end == at + 1 || m < 0 || m > 999999)
            return wfh_error_set(WFH_EUSAGE, "'%s': MAJOR must be a number", s);
        *major = (int)m;
    }
    return 0;
}

/* remove / enable / disable / yank: all one shape - find entries, change, commit. */
static int change(int argc, char **argv, int new_state /* -1: remove */)
{
    static const char *const valued[] = {"--key", "--expires", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL;
    wfh_registry *r = NULL;
    wfh_index *next = NULL;
    wfh_ms_seckey sk;
    char name[80];
    int major, err, hits = 0;
    memset(&sk, 0, sizeof sk);
    if (wants_help(argc, argv))
        return WFH_EXIT_OK;
    if ((err = wfh_cli_reg_opts_parse(argc, argv, &o, NULL, valued)) < 0)
        goto done;
    if (o.npos != 1) {
        err = wfh_error_set(WFH_EUSAGE, "usage: wfhost plugin %s NAME[@MAJOR]", argv[0]);
        goto done;
    }
    if ((err = parse_ref(o.pos[0], name, sizeof name, &major)) < 0 ||
        (err = wfh_cli_reg_home(&o, &home)) < 0 || (err = wfh_cli_reg_load_key(&o, home, &sk)) < 0 ||
        (err = wfh_registry_open(home, WFH_REG_OPEN_LOCK, &r)) < 0)
        goto done;
    const wfh_index *cur = wfh_registry_index(r);
    if (!(next = wfh_index_new())) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < cur->n_plugins; i++) {
        const wfh_reg_plugin *p = &cur->plugins[i];
        int match = !strcmp(p->name, name) && (major < 0 || p->version_major == (unsigned)major);
        if (match && new_state < 0) {
            hits++;
            continue;
        }
        if ((err = wfh_index_add(next, p)) < 0)
            goto done;
        if (match) {
            hits++;
            next->plugins[next->n_plugins - 1].state = new_state;
        }
    }
    if (!hits) {
        err = major >= 0 ? wfh_error_set(WFH_ENOTFOUND, "plugin %s@%d is not installed", name, major)
                         : wfh_error_set(WFH_ENOTFOUND, "plugin %s is not installed", name);
        goto done;
    }
    if ((err = wfh_registry_commit(r, next, &sk, o.expires)) < 0)
        goto done;
    wfh_registry_gc(r, next);
    printf("%s %s: %d entr%s; index seq %llu\n",
           new_state < 0 ? "removed" : new_state == WFH_PSTATE_ACTIVE ? "enabled"
                                     : new_state == WFH_PSTATE_DISABLED ? "disabled" : "yanked",
           o.pos[0], hits, hits == 1 ? "y" : "ies", (unsigned long long)next->seq);
done:
    wfh_ms_seckey_wipe(&sk);
    wfh_index_free(next);
    wfh_registry_free(r);
    free(home);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

int cmd_plugin_remove(int argc, char **argv) { return change(argc, argv, -1); }
int cmd_plugin_enable(int argc, char **argv) { return change(argc, argv, WFH_PSTATE_ACTIVE); }
int cmd_plugin_disable(int argc, char **argv) { return change(argc, argv, WFH_PSTATE_DISABLED); }
int cmd_plugin_yank(int argc, char **argv) { return change(argc, argv, WFH_PSTATE_YANKED); }

int cmd_plugin_verify(int argc, char **argv)
{
    char *args[] = {(char *)"registry", (char *)"verify", NULL, NULL, NULL};
    int n = 2;
    if (wants_help(argc, argv))
        return WFH_EXIT_OK;
    for (int i = 1; i < argc && n < 4; i++)
        args[n++] = argv[i];
    if (argc > 3)
        return wfh_cli_fail(wfh_error_set(WFH_EUSAGE, "usage: wfhost plugin verify [--home DIR]"));
    return cmd_registry(n, args);
}
