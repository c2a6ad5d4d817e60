/*
 * core/cli/cmd_registry.c - `wfhost registry init|keygen|sign|verify|trust|revoke`: the
 * chores of the signed local registry (registry/registry.h). Everything here can also be
 * done by hand with the stock `minisign` tool and an editor (docs/registry.md); these
 * commands only make the common paths short.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../error.h"
#include "../home.h"
#include "cli.h"
#include "cli_registry.h"
#include "registry/fsutil.h"
#include "registry/registry.h"

static const char usage_text[] =
    "usage: wfhost registry init [--new-key] [--trust PUBKEY]\n"
    "       wfhost registry keygen [--name NAME] [--out DIR] [--trust]\n"
    "       wfhost registry sign [--key SECRET_KEY] [--bump] [--expires DAYS]\n"
    "       wfhost registry verify [--reinit-state]\n"
    "       wfhost registry trust PUBKEY [--threshold N]\n"
    "       wfhost registry revoke PUBKEY\n"
    "\n"
    "The signed local registry in the wfhost home: which plugins may load.\n"
    "\n"
    "  init     create the layout; --new-key makes a first key pair (HOME/keys/wfhost.key)\n"
    "           and signs an empty index with it; --trust trusts an existing public key\n"
    "  keygen   make a minisign key pair (unencrypted secret key, mode 0600);\n"
    "           --trust also adds the public key to registry/keys.txt\n"
    "  sign     sign index.json: adds this key's signature if the index is current,\n"
    "           else (edited, expired, keys changed, or --bump) writes the next seq\n"
    "  verify   check signatures, rollback, expiry and every plugin file; list problems\n"
    "  trust    add a public key to keys.txt (bumps its version; re-sign afterwards)\n"
    "  revoke   revoke a public key in keys.txt (bumps its version; re-sign afterwards)\n"
    "\n"
    "options:\n"
    "  --home DIR          the wfhost home (default: $WFH_HOME, /var/lib/wfhost as root,\n"
    "                      else $XDG_DATA_HOME/wfhost or ~/.local/share/wfhost)\n"
    "  --key SECRET_KEY    signing key (default: HOME/keys/wfhost.key)\n"
    "  --expires DAYS      index lifetime (default 365)\n"
    "\n"
    "exit status: 0 ok, 2 bad usage or input, 3 refused for a security reason.\n";

int wfh_cli_reg_opts_parse(int argc, char **argv, wfh_cli_reg_opts *o, const char *const *flags,
                           const char *const *valued)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int matched = 0;
        if (!strcmp(a, "--home") || !strcmp(a, "--key") || !strcmp(a, "--expires") ||
            !strcmp(a, "--name") || !strcmp(a, "--out") || !strcmp(a, "--threshold") ||
            (!strcmp(a, "--trust") && valued)) {
            int allowed = !strcmp(a, "--home");
            for (size_t k = 0; valued && valued[k]; k++)
                allowed |= !strcmp(a, valued[k]);
            if (allowed) {
                if (i + 1 >= argc)
                    return wfh_error_set(WFH_EUSAGE, "%s needs a value", a);
                const char *v = argv[++i];
                if (!strcmp(a, "--home")) o->home = v;
                else if (!strcmp(a, "--key")) o->key = v;
                else if (!strcmp(a, "--name")) o->name = v;
                else if (!strcmp(a, "--out")) o->out = v;
                else if (!strcmp(a, "--trust")) o->trust_file = v;
                else {
                    char *end = NULL;
                    errno = 0;
                    unsigned long n = strtoul(v, &end, 10);
                    if (errno || !end || *end || n == 0 || n > 36500)
                        return wfh_error_set(WFH_EUSAGE, "%s: '%s' is not a positive number", a, v);
                    if (!strcmp(a, "--expires")) o->expires = (unsigned)n;
                    else o->threshold = (unsigned)n;
                }
                continue;
            }
        }
        for (size_t k = 0; flags && flags[k]; k++)
            if (!strcmp(a, flags[k])) {
                matched = 1;
                if (!strcmp(a, "--new-key")) o->new_key = 1;
                else if (!strcmp(a, "--bump")) o->bump = 1;
                else if (!strcmp(a, "--json")) o->json = 1;
                else if (!strcmp(a, "--reinit-state")) o->reinit_state = 1;
                else if (!strcmp(a, "--trust")) o->trust_flag = 1;
            }
        if (matched)
            continue;
        if (a[0] == '-' && a[1] != '\0')
            return wfh_error_set(WFH_EUSAGE, "unknown option '%s'", a);
        if (o->npos == 2)
            return wfh_error_set(WFH_EUSAGE, "too many arguments ('%s')", a);
        o->pos[o->npos++] = a;
    }
    return 0;
}

int wfh_cli_reg_home(const wfh_cli_reg_opts *o, char **home)
{
    return wfh_home_path(o->home, home);
}

int wfh_cli_reg_load_key(const wfh_cli_reg_opts *o, const char *home, wfh_ms_seckey *sk)
{
    if (o->key)
        return wfh_registry_read_seckey(o->key, sk);
    size_t n = strlen(home) + 32;
    char *path = malloc(n); /* owned */
    if (!path)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    snprintf(path, n, "%s/keys/wfhost.key", home);
    int err = wfh_registry_read_seckey(path, sk);
    if (err == WFH_ENOTFOUND)
        err = wfh_error_set(WFH_EUSAGE, "no signing key: pass --key SECRET_KEY (or create "
                            "%s with 'wfhost registry init --new-key')", path);
    free(path);
    return err;
}

static int do_init(int argc, char **argv)
{
    static const char *const flags[] = {"--new-key", NULL};
    static const char *const valued[] = {"--trust", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL, *keydir = NULL; /* owned */
    wfh_registry *r = NULL;
    wfh_index *ix = NULL;
    wfh_ms_pubkey pk;
    wfh_ms_seckey sk;
    int err = wfh_cli_reg_opts_parse(argc, argv, &o, flags, valued);
    memset(&sk, 0, sizeof sk);
    if (err < 0 || (err = wfh_cli_reg_home(&o, &home)) < 0 || (err = wfh_home_ensure(home)) < 0)
        goto done;
    if (o.npos) {
        err = wfh_error_set(WFH_EUSAGE, "registry init takes no arguments");
        goto done;
    }
    if (o.new_key && o.trust_file) {
        err = wfh_error_set(WFH_EUSAGE, "use either --new-key or --trust, not both");
        goto done;
    }
    const wfh_ms_pubkey *first = NULL;
    {
        /* Initialising twice must not mint a second, untrusted key. */
        size_t n = strlen(home) + 32;
        char *kt = malloc(n); /* owned */
        struct stat st;
        if (!kt) {
            err = wfh_error_set(WFH_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(kt, n, "%s/" WFH_REG_DIR "/" WFH_REG_KEYS_FILE, home);
        int exists = lstat(kt, &st) == 0;
        free(kt);
        if (exists && (o.new_key || o.trust_file)) {
            printf("registry already initialised in %s/registry (keys.txt exists); "
                   "use 'wfhost registry trust' to add keys\n", home);
            goto done;
        }
    }
    if (o.new_key) {
        size_t n = strlen(home) + 8;
        keydir = malloc(n);
        if (!keydir) {
            err = wfh_error_set(WFH_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(keydir, n, "%s/keys", home);
        if ((err = wfh_ms_keygen(&pk, &sk)) < 0 ||
            (err = wfh_registry_write_keypair(keydir, "wfhost", &pk, &sk)) < 0)
            goto done;
        first = &pk;
    } else if (o.trust_file) {
        if ((err = wfh_registry_read_pubkey(o.trust_file, &pk)) < 0)
            goto done;
        first = &pk;
    }
    if ((err = wfh_registry_init(home, first)) < 0)
        goto done;
    if (o.new_key) {
        /* A first, empty index so that `plugin list` and `exec` work at once. */
        if ((err = wfh_registry_open(home, WFH_REG_OPEN_UNVERIFIED | WFH_REG_OPEN_LOCK, &r)) < 0)
            goto done;
        if (wfh_registry_index(r)) {
            err = wfh_error_set(WFH_EINVAL, "%s/registry/index.json already exists; keeping it "
                                "(key pair written to %s)", home, keydir);
            goto done;
        }
        if (!(ix = wfh_index_new())) {
            err = wfh_error_set(WFH_ENOMEM, "out of memory");
            goto done;
        }
        if ((err = wfh_registry_commit(r, ix, &sk, 0)) < 0)
            goto done;
        char id[17];
        wfh_ms_keyid_hex(pk.keyid, id);
        printf("registry initialised in %s/registry\nsigning key %s: %s/wfhost.key (keep it "
               "secret), public key %s/wfhost.pub\n", home, id, keydir, keydir);
    } else {
        printf("registry initialised in %s/registry\n", home);
    }
done:
    wfh_ms_seckey_wipe(&sk);
    wfh_index_free(ix);
    wfh_registry_free(r);
    free(home);
    free(keydir);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

/* Load keys.txt, let @p edit change it, bump its version and write it back. */
static int edit_trust(const char *home, int (*edit)(wfh_trust *, const wfh_ms_pubkey *, unsigned),
                      const wfh_ms_pubkey *pk, unsigned threshold)
{
    wfh_registry *r = NULL;
    char *text = NULL; /* owned */
    int err = wfh_registry_open(home, WFH_REG_OPEN_UNVERIFIED | WFH_REG_OPEN_LOCK, &r);
    if (err < 0)
        return err;
    wfh_trust t = *wfh_registry_trust(r);
    if ((err = edit(&t, pk, threshold)) < 0)
        goto done;
    t.version++;
    if (!(text = wfh_trust_format(&t))) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    /* Re-parse what we are about to write: never leave an unusable trust file. */
    wfh_trust check;
    if ((err = wfh_trust_parse(text, strlen(text), "new registry/keys.txt", &check)) < 0)
        goto done;
    size_t n = strlen(home) + 16;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/" WFH_REG_DIR, home);
    (void)n;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        err = wfh_error_set(WFH_EIO, "%s: %s", dir, strerror(errno));
        goto done;
    }
    err = wfh_fs_write_atomic_at(dfd, WFH_REG_KEYS_FILE, text, strlen(text), 0644,
                                 "registry/keys.txt");
    close(dfd);
    if (err == 0)
        printf("registry/keys.txt is now version %llu; re-sign the index: wfhost registry sign\n",
               (unsigned long long)t.version);
done:
    free(text);
    wfh_registry_free(r);
    return err;
}

static int add_key(wfh_trust *t, const wfh_ms_pubkey *pk, unsigned threshold)
{
    if (wfh_trust_is_revoked(t, pk))
        return wfh_error_set(WFH_ESECURITY, "this key is revoked in registry/keys.txt; refusing "
                             "to trust it again");
    int present = 0;
    for (size_t i = 0; i < t->n_keys; i++)
        present |= !memcmp(t->keys[i].pk.pk, pk->pk, 32);
    if (!present) {
        if (t->n_keys == WFH_TRUST_MAX_KEYS)
            return wfh_error_set(WFH_EINVAL, "registry/keys.txt: too many keys");
        t->keys[t->n_keys].pk = *pk;
        wfh_ms_keyid_hex(pk->keyid, t->keys[t->n_keys].label);
        t->n_keys++;
    }
    if (threshold)
        t->threshold = threshold;
    return 0;
}

static int revoke_key(wfh_trust *t, const wfh_ms_pubkey *pk, unsigned threshold)
{
    (void)threshold;
    char label[65];
    wfh_ms_keyid_hex(pk->keyid, label);
    for (size_t i = 0; i < t->n_keys; i++)
        if (!memcmp(t->keys[i].pk.pk, pk->pk, 32)) {
            snprintf(label, sizeof label, "%s", t->keys[i].label);
            memmove(&t->keys[i], &t->keys[i + 1], (t->n_keys - i - 1) * sizeof t->keys[0]);
            t->n_keys--;
            break;
        }
    if (!wfh_trust_is_revoked(t, pk)) {
        if (t->n_revoked == WFH_TRUST_MAX_KEYS)
            return wfh_error_set(WFH_EINVAL, "registry/keys.txt: too many revoked keys");
        t->revoked[t->n_revoked].pk = *pk;
        snprintf(t->revoked[t->n_revoked].label, sizeof t->revoked[0].label, "%s", label);
        t->n_revoked++;
    }
    return 0;
}

static int do_trust_edit(int argc, char **argv, int revoke)
{
    static const char *const valued[] = {"--threshold", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL;
    wfh_ms_pubkey pk;
    int err = wfh_cli_reg_opts_parse(argc, argv, &o, NULL, revoke ? NULL : valued);
    if (err < 0 || (err = wfh_cli_reg_home(&o, &home)) < 0)
        goto done;
    if (o.npos != 1) {
        err = wfh_error_set(WFH_EUSAGE, "usage: wfhost registry %s PUBKEY_FILE", argv[0]);
        goto done;
    }
    if ((err = wfh_registry_read_pubkey(o.pos[0], &pk)) < 0)
        goto done;
    err = edit_trust(home, revoke ? revoke_key : add_key, &pk, o.threshold);
done:
    free(home);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

static int do_keygen(int argc, char **argv)
{
    static const char *const flags[] = {"--trust", NULL};
    static const char *const valued[] = {"--name", "--out", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL, *dir = NULL; /* owned */
    wfh_ms_pubkey pk;
    wfh_ms_seckey sk;
    int err = wfh_cli_reg_opts_parse(argc, argv, &o, flags, valued);
    memset(&sk, 0, sizeof sk);
    if (err < 0 || (err = wfh_cli_reg_home(&o, &home)) < 0)
        goto done;
    const char *name = o.name ? o.name : "wfhost";
    if (!wfh_reg_name_ok(name)) {
        err = wfh_error_set(WFH_EUSAGE, "--name must match [a-z][a-z0-9_-]{0,63}");
        goto done;
    }
    if (o.out) {
        dir = strdup(o.out);
    } else {
        size_t n = strlen(home) + 8;
        if ((dir = malloc(n)))
            snprintf(dir, n, "%s/keys", home);
    }
    if (!dir) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = wfh_ms_keygen(&pk, &sk)) < 0 ||
        (err = wfh_registry_write_keypair(dir, name, &pk, &sk)) < 0)
        goto done;
    char id[17];
    wfh_ms_keyid_hex(pk.keyid, id);
    printf("key %s: secret %s/%s.key, public %s/%s.pub\n", id, dir, name, dir, name);
    if (o.trust_flag)
        err = edit_trust(home, add_key, &pk, 0);
done:
    wfh_ms_seckey_wipe(&sk);
    free(home);
    free(dir);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

static int do_sign(int argc, char **argv)
{
    static const char *const flags[] = {"--bump", NULL};
    static const char *const valued[] = {"--key", "--expires", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL;
    wfh_registry *r = NULL;
    wfh_index *copy = NULL;
    wfh_ms_seckey sk;
    int err = wfh_cli_reg_opts_parse(argc, argv, &o, flags, valued);
    memset(&sk, 0, sizeof sk);
    if (err < 0 || (err = wfh_cli_reg_home(&o, &home)) < 0)
        goto done;
    if ((err = wfh_cli_reg_load_key(&o, home, &sk)) < 0 ||
        (err = wfh_registry_open(home, WFH_REG_OPEN_UNVERIFIED | WFH_REG_OPEN_LOCK, &r)) < 0)
        goto done;
    const wfh_index *ix = wfh_registry_index(r);
    char id[17];
    wfh_ms_keyid_hex(sk.keyid, id);
    if (ix && !o.bump && !o.expires && wfh_registry_index_is_current(r)) {
        if ((err = wfh_registry_cosign(r, &sk)) < 0)
            goto done;
        printf("added signature by key %s to index seq %llu\n", id, (unsigned long long)ix->seq);
        goto done;
    }
    /* Edited, expired, keys changed, or asked to: the signers vouch for a new seq. */
    if (!(copy = wfh_index_new())) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; ix && i < ix->n_plugins; i++)
        if ((err = wfh_index_add(copy, &ix->plugins[i])) < 0)
            goto done;
    if ((err = wfh_registry_commit(r, copy, &sk, o.expires)) < 0)
        goto done;
    char when[21];
    wfh_reg_time_format(copy->expires, when);
    printf("signed index seq %llu with key %s (expires %s)\n", (unsigned long long)copy->seq, id,
           when);
    /* Signing vouches for whatever index.json says: show it, so an edit nobody made
     * does not get signed unseen. */
    for (size_t i = 0; i < copy->n_plugins; i++)
        printf("  %s@%s %s blake2b256 %.16s...\n", copy->plugins[i].name, copy->plugins[i].version,
               wfh_reg_state_name(copy->plugins[i].state), copy->plugins[i].blake2b256);
    if (wfh_registry_trust(r)->threshold > 1)
        printf("keys.txt asks for %u signatures: run 'wfhost registry sign --key OTHER_KEY' "
               "with the other keys\n", wfh_registry_trust(r)->threshold);
done:
    wfh_ms_seckey_wipe(&sk);
    wfh_index_free(copy);
    wfh_registry_free(r);
    free(home);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

static int do_verify(int argc, char **argv)
{
    static const char *const flags[] = {"--reinit-state", NULL};
    wfh_cli_reg_opts o;
    char *home = NULL;
    wfh_registry *r = NULL;
    int err = wfh_cli_reg_opts_parse(argc, argv, &o, flags, NULL);
    if (err < 0 || (err = wfh_cli_reg_home(&o, &home)) < 0)
        goto done;
    if ((err = wfh_registry_open(home, o.reinit_state ? WFH_REG_OPEN_REINIT_STATE : 0, &r)) < 0) {
        goto done;
    }
    const wfh_index *ix = wfh_registry_index(r);
    char when[21];
    wfh_reg_time_format(ix->expires, when);
    printf("ok   registry/index.json: seq %llu, %zu plugin(s), %zu valid signature(s) (need %u), "
           "keys version %llu, expires %s\n", (unsigned long long)ix->seq, ix->n_plugins,
           wfh_registry_signers(r),
           ix->threshold > wfh_registry_trust(r)->threshold ? ix->threshold
                                                              : wfh_registry_trust(r)->threshold,
           (unsigned long long)ix->keys_version, when);
    err = wfh_registry_verify_all(r, stdout, stderr);
done:
    wfh_registry_free(r);
    free(home);
    return err < 0 ? wfh_cli_fail(err) : WFH_EXIT_OK;
}

int cmd_registry(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? WFH_EXIT_INVALID : WFH_EXIT_OK;
    }
    if (wfh_cli_wants_help(argc - 1, argv + 1)) {
        fputs(usage_text, stdout);
        return WFH_EXIT_OK;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "init"))
        return do_init(argc - 1, argv + 1);
    if (!strcmp(sub, "keygen"))
        return do_keygen(argc - 1, argv + 1);
    if (!strcmp(sub, "sign"))
        return do_sign(argc - 1, argv + 1);
    if (!strcmp(sub, "verify"))
        return do_verify(argc - 1, argv + 1);
    if (!strcmp(sub, "trust"))
        return do_trust_edit(argc - 1, argv + 1, 0);
    if (!strcmp(sub, "revoke"))
        return do_trust_edit(argc - 1, argv + 1, 1);
    fprintf(stderr, "wfhost registry: unknown subcommand '%s'\n%s", sub, usage_text);
    return WFH_EXIT_INVALID;
}
