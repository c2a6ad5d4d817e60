/*
 * registry/registry.c - open, verify and change the signed local registry (see
 * registry.h for the layout and the order of checks).
 *
 * Every file is opened through directory fds with O_NOFOLLOW and read once into memory;
 * the verified bytes are the parsed bytes. Blob names are only ever the lowercase hex
 * digest from a verified index, never a plugin's name.
 */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/error.h"
#include "elfcheck.h"
#include "fsutil.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define SIG_MAX_BYTES 4096
#define SIG_MAX_FILES 32
#define KEYS_MAX_BYTES (64u << 10)
#define STATE_MAX_BYTES 4096

struct wfh_registry {
    char *home;         /* owned */
    int reg_fd;         /* HOME/registry */
    int blobs_fd;       /* HOME/registry/blobs */
    wfh_trust trust;
    wfh_reg_state state;
    int have_state;     /* state.txt existed */
    wfh_index *index;   /* owned; NULL only when unverified and absent */
    char *index_text;   /* owned: the bytes that were verified */
    size_t index_len;
    char index_sha256[65];
    size_t signers;
    unsigned flags;
};

static void sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    crypto_hash_sha256(d, data, len);
    wfh_hex(d, 32, out);
}

/* A registry directory must be a real directory that only root or we can write. */
static int check_dir(int fd, const char *what)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return wfh_error_set(WFH_EIO, "%s: %s", what, strerror(errno));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return wfh_error_set(WFH_ESECURITY, "%s: writable by group or others (mode %03o); "
                             "refused (chmod go-w)", what, (unsigned)(st.st_mode & 0777));
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return wfh_error_set(WFH_ESECURITY, "%s: owned by uid %u, not by root or you; refused",
                             what, (unsigned)st.st_uid);
    return 0;
}

void wfh_registry_free(wfh_registry *r)
{
    if (!r)
        return;
    if (r->reg_fd >= 0)
        close(r->reg_fd);
    if (r->blobs_fd >= 0)
        close(r->blobs_fd);
    wfh_index_free(r->index);
    free(r->index_text);
    free(r->home);
    free(r);
}

const wfh_index *wfh_registry_index(const wfh_registry *r) { return r->index; }
const wfh_trust *wfh_registry_trust(const wfh_registry *r) { return &r->trust; }
const wfh_reg_state *wfh_registry_state(const wfh_registry *r) { return &r->state; }
size_t wfh_registry_signers(const wfh_registry *r) { return r->signers; }

static int write_state(wfh_registry *r)
{
    char *text = wfh_state_format(&r->state); /* owned */
    if (!text)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    int err = wfh_fs_write_atomic_at(r->reg_fd, WFH_REG_STATE_FILE, text, strlen(text), 0644,
                                     "registry/" WFH_REG_STATE_FILE);
    free(text);
    if (err == 0)
        r->have_state = 1;
    return err;
}

int wfh_registry_init(const char *home, const wfh_ms_pubkey *first_key)
{
    int err = 0, home_fd = -1;
    wfh_registry r = {.reg_fd = -1, .blobs_fd = -1};
    char *path = NULL; /* owned */
    size_t n = strlen(home) + 32;
    path = malloc(n);
    if (!path)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    snprintf(path, n, "%s/" WFH_REG_DIR "/blobs", home);
    if ((err = wfh_fs_mkdirs(path, 0)) < 0)
        goto done;
    home_fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home_fd < 0) {
        err = wfh_error_set(WFH_EIO, "%s: %s", home, strerror(errno));
        goto done;
    }
    if ((r.reg_fd = wfh_fs_opendir_at(home_fd, WFH_REG_DIR, "registry")) < 0) {
        err = r.reg_fd;
        goto done;
    }
    if ((err = check_dir(r.reg_fd, "registry/")) < 0)
        goto done;
    char *existing = NULL;
    size_t elen = 0;
    err = wfh_fs_read_at(r.reg_fd, WFH_REG_KEYS_FILE, KEYS_MAX_BYTES, 1, "registry/keys.txt",
                         &existing, &elen);
    free(existing);
    if (err == WFH_ENOTFOUND) {
        if (!first_key) {
            err = wfh_error_set(WFH_EINVAL, "registry/keys.txt: no trusted key yet; run "
                                "'wfhost registry init --new-key' or pass --trust PUBKEY");
            goto done;
        }
        wfh_trust t;
        memset(&t, 0, sizeof t);
        t.version = 1;
        t.threshold = 1;
        t.keys[0].pk = *first_key;
        wfh_ms_keyid_hex(first_key->keyid, t.keys[0].label);
        t.n_keys = 1;
        char *text = wfh_trust_format(&t); /* owned */
        if (!text) {
            err = wfh_error_set(WFH_ENOMEM, "out of memory");
            goto done;
        }
        err = wfh_fs_write_atomic_at(r.reg_fd, WFH_REG_KEYS_FILE, text, strlen(text), 0644,
                                     "registry/keys.txt");
        free(text);
        if (err < 0)
            goto done;
    } else if (err < 0) {
        goto done;
    }
    char *st = NULL;
    size_t stlen = 0;
    err = wfh_fs_read_at(r.reg_fd, WFH_REG_STATE_FILE, STATE_MAX_BYTES, 1, "registry/state.txt",
                         &st, &stlen);
    free(st);
    if (err == WFH_ENOTFOUND)
        err = write_state(&r);
done:
    if (r.reg_fd >= 0)
        close(r.reg_fd);
    if (home_fd >= 0)
        close(home_fd);
    free(path);
    return err;
}

/* Is this directory entry one of the index's signature files? */
static int is_sig_name(const char *n)
{
    size_t len = strlen(n), pre = strlen(WFH_REG_INDEX_FILE ".");
    if (!strcmp(n, WFH_REG_INDEX_FILE ".minisig"))
        return 1;
    return len > pre + strlen(".minisig") && !strncmp(n, WFH_REG_INDEX_FILE ".", pre) &&
           !strcmp(n + len - strlen(".minisig"), ".minisig");
}

typedef struct {
    wfh_ms_pubkey pk;
    char comment[WFH_MS_TRUSTED_COMMENT_MAX];
} signer;

/* Check every signature file; collect distinct valid signers. The first problem is
 * kept in @p why for the refusal message. */
static int collect_signers(wfh_registry *r, signer *out, size_t *n_out, char *why, size_t whylen)
{
    int err = 0;
    size_t n = 0, files = 0;
    int dfd = dup(r->reg_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    *n_out = 0;
    why[0] = '\0';
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return wfh_error_set(WFH_EIO, "registry/: %s", strerror(errno));
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_sig_name(de->d_name))
            continue;
        if (++files > SIG_MAX_FILES) {
            err = wfh_error_set(WFH_ESECURITY, "registry/: more than %d signature files; "
                                "refused", SIG_MAX_FILES);
            goto done;
        }
        char what[300];
        snprintf(what, sizeof what, "registry/%.200s", de->d_name);
        char *text = NULL;
        size_t len = 0;
        wfh_ms_sig sig;
        memset(&sig, 0, sizeof sig);
        int e = wfh_fs_read_at(r->reg_fd, de->d_name, SIG_MAX_BYTES, 0, what, &text, &len);
        if (e == 0)
            e = wfh_ms_sig_parse(text, len, what, &sig);
        free(text);
        if (e == 0) {
            const wfh_trust_key *k = wfh_trust_find(&r->trust, sig.keyid);
            char id[17];
            wfh_ms_keyid_hex(sig.keyid, id);
            if (!k) {
                /* A revoked key is usually no longer listed as key=: say so. */
                int rev = 0;
                for (size_t i = 0; i < r->trust.n_revoked; i++)
                    rev |= !memcmp(r->trust.revoked[i].pk.keyid, sig.keyid, 8);
                e = wfh_error_set(WFH_ESECURITY, "%s: signed by %s key %s", what,
                                  rev ? "revoked" : "unknown (not in keys.txt)", id);
            } else if (wfh_trust_is_revoked(&r->trust, &k->pk)) {
                e = wfh_error_set(WFH_ESECURITY, "%s: signed by revoked key %s (%s)", what, id,
                                  k->label);
            } else {
                e = wfh_ms_verify(&sig, &k->pk, r->index_text, r->index_len, what);
            }
            if (e == 0) {
                int dup_key = 0;
                for (size_t i = 0; i < n; i++)
                    dup_key |= !memcmp(out[i].pk.pk, k->pk.pk, 32);
                if (!dup_key && n < SIG_MAX_FILES) {
                    out[n].pk = k->pk;
                    snprintf(out[n].comment, sizeof out[n].comment, "%s", sig.trusted_comment);
                    n++;
                }
            }
        }
        if (e == WFH_ENOMEM) {
            wfh_ms_sig_clear(&sig);
            err = e;
            goto done;
        }
        if (e < 0 && !why[0])
            snprintf(why, whylen, "%s", wfh_error_last());
        wfh_ms_sig_clear(&sig);
    }
    if (files == 0)
        snprintf(why, whylen, "registry/index.json: no signature file (index.json.minisig)");
    *n_out = n;
done:
    closedir(d);
    return err;
}

static int verify_index(wfh_registry *r)
{
    int err = 0;
    signer *signers = calloc(SIG_MAX_FILES, sizeof *signers); /* owned */
    char why[1200];
    size_t n = 0;
    if (!signers)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    if ((err = collect_signers(r, signers, &n, why, sizeof why)) < 0)
        goto done;
    unsigned need = r->trust.threshold;
    if (n == 0) {
        err = wfh_error_set(WFH_ESECURITY, "%s", why);
        goto done;
    }
    /* Only now parse: the bytes are signed by at least one trusted key. */
    if ((err = wfh_index_parse(r->index_text, r->index_len, "registry/index.json", &r->index)) < 0)
        goto done;
    if (r->index->threshold > need)
        need = r->index->threshold;
    char expect[64];
    snprintf(expect, sizeof expect, "wfhost-index seq=%llu", (unsigned long long)r->index->seq);
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(signers[i].comment, expect)) {
            good++;
        } else if (!why[0]) {
            char id[17];
            wfh_ms_keyid_hex(signers[i].pk.keyid, id);
            snprintf(why, sizeof why, "signature by key %s has trusted comment '%.80s', "
                     "expected '%s'", id, signers[i].comment, expect);
        }
    }
    if (good < need) {
        err = wfh_error_set(WFH_ESECURITY, "registry/index.json: %zu of %u required signatures "
                            "by distinct trusted keys are valid%s%s", good, need,
                            why[0] ? ": " : "", why);
        goto done;
    }
    r->signers = good;
done:
    free(signers);
    return err;
}

int wfh_registry_open(const char *home, unsigned flags, wfh_registry **out)
{
    int err = 0, home_fd = -1;
    wfh_registry *r = calloc(1, sizeof *r); /* owned until handed to *out */
    char *text = NULL;                       /* owned */
    size_t len = 0;
    *out = NULL;
    if (!r || !(r->home = strdup(home))) {
        free(r);
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    }
    r->reg_fd = r->blobs_fd = -1;
    r->flags = flags;
    home_fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home_fd < 0) {
        err = errno == ENOENT
                  ? wfh_error_set(WFH_ENOTFOUND, "%s: no wfhost home here; run 'wfhost registry "
                                  "init --new-key'", home)
                  : wfh_error_set(WFH_EIO, "%s: %s", home, strerror(errno));
        goto done;
    }
    r->reg_fd = wfh_fs_opendir_at(home_fd, WFH_REG_DIR, "registry/");
    if (r->reg_fd == WFH_ENOTFOUND) {
        err = wfh_error_set(WFH_ENOTFOUND, "%s/registry: no registry; run 'wfhost registry init "
                            "--new-key'", home);
        goto done;
    }
    if (r->reg_fd < 0 || (err = check_dir(r->reg_fd, "registry/")) < 0) {
        err = err < 0 ? err : r->reg_fd;
        goto done;
    }
    if ((flags & WFH_REG_OPEN_LOCK) && flock(r->reg_fd, LOCK_EX) < 0) {
        err = wfh_error_set(WFH_EIO, "registry/: cannot lock: %s", strerror(errno));
        goto done;
    }
    r->blobs_fd = wfh_fs_opendir_at(r->reg_fd, "blobs", "registry/blobs/");
    if (r->blobs_fd < 0 || (err = check_dir(r->blobs_fd, "registry/blobs/")) < 0) {
        err = err < 0 ? err : r->blobs_fd;
        goto done;
    }

    if ((err = wfh_fs_read_at(r->reg_fd, WFH_REG_KEYS_FILE, KEYS_MAX_BYTES, 1,
                              "registry/keys.txt", &text, &len)) < 0 ||
        (err = wfh_trust_parse(text, len, "registry/keys.txt", &r->trust)) < 0)
        goto done;
    free(text);
    text = NULL;

    err = wfh_fs_read_at(r->reg_fd, WFH_REG_STATE_FILE, STATE_MAX_BYTES, 1,
                         "registry/state.txt", &text, &len);
    if (err == 0) {
        r->have_state = 1;
        if ((err = wfh_state_parse(text, len, "registry/state.txt", &r->state)) < 0)
            goto done;
    } else if (err == WFH_ENOTFOUND && (flags & (WFH_REG_OPEN_REINIT_STATE | WFH_REG_OPEN_UNVERIFIED))) {
        err = 0;
    } else if (err == WFH_ENOTFOUND) {
        err = wfh_error_set(WFH_ESECURITY, "registry/state.txt: missing, so an older index could "
                            "be replayed; refused (after checking why, run 'wfhost registry "
                            "verify --reinit-state')");
        goto done;
    } else {
        goto done;
    }
    free(text);
    text = NULL;

    if (r->trust.version < r->state.keys_version) {
        err = wfh_error_set(WFH_ESECURITY, "registry/keys.txt: version %llu is older than "
                            "version %llu already seen (rollback); refused",
                            (unsigned long long)r->trust.version,
                            (unsigned long long)r->state.keys_version);
        if (!(flags & WFH_REG_OPEN_UNVERIFIED))
            goto done;
        err = 0;
    }

    err = wfh_fs_read_at(r->reg_fd, WFH_REG_INDEX_FILE, WFH_INDEX_MAX_BYTES, 0,
                         "registry/index.json", &r->index_text, &r->index_len);
    if (err == WFH_ENOTFOUND && (flags & WFH_REG_OPEN_UNVERIFIED)) {
        err = 0;
        goto ok;
    }
    if (err == WFH_ENOTFOUND) {
        err = wfh_error_set(WFH_ESECURITY, "registry/index.json: missing; no plugin can be "
                            "loaded (sign one with 'wfhost registry sign')");
        goto done;
    }
    if (err < 0)
        goto done;
    sha256_hex(r->index_text, r->index_len, r->index_sha256);

    if (flags & WFH_REG_OPEN_UNVERIFIED) {
        err = wfh_index_parse(r->index_text, r->index_len, "registry/index.json", &r->index);
        goto ok_or_done;
    }
    if ((err = verify_index(r)) < 0)
        goto done;

    const wfh_index *ix = r->index;
    if (ix->keys_version != r->trust.version) {
        err = wfh_error_set(WFH_ESECURITY, "registry/index.json: belongs to keys version %llu "
                            "but keys.txt is version %llu (mix-and-match); refused - re-sign "
                            "with 'wfhost registry sign'",
                            (unsigned long long)ix->keys_version,
                            (unsigned long long)r->trust.version);
        goto done;
    }
    /* A newer keys.txt may lower the floor once (recovery after a stolen key signed a
     * huge seq); otherwise the floor is the newest seq seen. */
    uint64_t floor = r->state.index_seq;
    int reset = r->trust.version > r->state.keys_version && r->trust.reset_index_seq;
    if (reset)
        floor = r->trust.reset_index_seq;
    if (ix->seq < floor) {
        err = wfh_error_set(WFH_ESECURITY, "registry/index.json: index sequence %llu older than "
                            "%llu already seen (rollback); refused",
                            (unsigned long long)ix->seq, (unsigned long long)floor);
        goto done;
    }
    if (!reset && ix->seq == r->state.index_seq && r->state.index_sha256[0] &&
        strcmp(r->state.index_sha256, r->index_sha256) != 0) {
        err = wfh_error_set(WFH_ESECURITY, "registry/index.json: index sequence %llu was already "
                            "seen with different content; refused",
                            (unsigned long long)ix->seq);
        goto done;
    }
    time_t now = time(NULL);
    if (now >= ix->expires) {
        char when[21];
        wfh_reg_time_format(ix->expires, when);
        err = wfh_error_set(WFH_ESECURITY, "registry/index.json: expired on %s; refused - "
                            "re-sign it with 'wfhost registry sign --bump'", when);
        goto done;
    }
    if (ix->seq != r->state.index_seq || r->trust.version != r->state.keys_version ||
        !r->have_state || strcmp(r->state.index_sha256, r->index_sha256) != 0) {
        r->state.index_seq = ix->seq;
        memcpy(r->state.index_sha256, r->index_sha256, 65);
        r->state.keys_version = r->trust.version;
        /* A read-only caller (or one without write access) still refuses anything
         * below the floor it read; recording the floor is best effort for them. */
        if (!(flags & WFH_REG_OPEN_READONLY))
            (void)write_state(r);
    }
ok_or_done:
    if (err < 0)
        goto done;
ok:
    *out = r;
    r = NULL;
done:
    /* A malformed trust file, state or (signed) index is a refusal like any other. */
    if (err == WFH_EPARSE)
        err = WFH_ESECURITY;
    free(text);
    if (home_fd >= 0)
        close(home_fd);
    wfh_registry_free(r);
    return err;
}

int wfh_registry_index_is_current(const wfh_registry *r)
{
    return r->index && r->have_state && !strcmp(r->index_sha256, r->state.index_sha256) &&
           r->index->keys_version == r->trust.version && time(NULL) < r->index->expires &&
           r->index->seq == r->state.index_seq;
}

int wfh_registry_check_signer(const wfh_registry *r, const wfh_ms_seckey *sk)
{
    wfh_ms_pubkey pk;
    char id[17];
    wfh_ms_seckey_public(sk, &pk);
    wfh_ms_keyid_hex(pk.keyid, id);
    const wfh_trust_key *k = wfh_trust_find(&r->trust, pk.keyid);
    if (!k || memcmp(k->pk.pk, pk.pk, 32) != 0)
        return wfh_error_set(WFH_ESECURITY, "signing key %s is not listed in registry/keys.txt; "
                             "refused", id);
    if (wfh_trust_is_revoked(&r->trust, &pk))
        return wfh_error_set(WFH_ESECURITY, "signing key %s is revoked in registry/keys.txt; "
                             "refused", id);
    return 0;
}

static int write_signature(wfh_registry *r, const wfh_ms_seckey *sk, const char *text,
                           size_t len, uint64_t seq, int only)
{
    char comment[64], name[64], id[17];
    char *sig = NULL; /* owned */
    snprintf(comment, sizeof comment, "wfhost-index seq=%llu", (unsigned long long)seq);
    wfh_ms_keyid_hex(sk->keyid, id);
    snprintf(name, sizeof name, WFH_REG_INDEX_FILE ".%s.minisig", id);
    int err = wfh_ms_sign(sk, text, len, comment, &sig);
    if (err < 0)
        return err;
    err = wfh_fs_write_atomic_at(r->reg_fd, name, sig, strlen(sig), 0644, "registry/signature");
    free(sig);
    if (err < 0 || !only)
        return err;
    /* Signatures over the previous index can never verify again: remove them so a
     * threshold count only ever sees signatures over the current bytes. */
    int dfd = dup(r->reg_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (is_sig_name(de->d_name) && strcmp(de->d_name, name) != 0)
            unlinkat(r->reg_fd, de->d_name, 0);
    closedir(d);
    fsync(r->reg_fd);
    return 0;
}

int wfh_registry_commit(wfh_registry *r, wfh_index *next, const wfh_ms_seckey *sk,
                        unsigned expire_days)
{
    int err = wfh_registry_check_signer(r, sk);
    char *text = NULL; /* owned */
    size_t len = 0;
    if (err < 0)
        return err;
    uint64_t base = r->state.index_seq;
    if (r->index && r->index->seq > base)
        base = r->index->seq;
    /* Recovery: a newer keys.txt with reset_index_seq replaces the floor (which a stolen
     * key may have pushed to the top) once. */
    if (r->trust.version > r->state.keys_version && r->trust.reset_index_seq)
        base = r->trust.reset_index_seq;
    next->seq = base + 1;
    next->issued = time(NULL);
    next->expires = next->issued + (time_t)(expire_days ? expire_days : WFH_REG_DEFAULT_EXPIRE_DAYS) * 86400;
    next->keys_version = r->trust.version;
    next->threshold = r->trust.threshold;
    if ((err = wfh_index_serialize(next, &text, &len)) < 0)
        goto done;
    /* Write the signature first: a crash in between leaves an index that fails
     * verification (closed), never an unsigned one that passes. */
    if ((err = write_signature(r, sk, text, len, next->seq, 0)) < 0)
        goto done;
    if ((err = wfh_fs_write_atomic_at(r->reg_fd, WFH_REG_INDEX_FILE, text, len, 0644,
                                      "registry/index.json")) < 0)
        goto done;
    if ((err = write_signature(r, sk, text, len, next->seq, 1)) < 0)
        goto done;
    r->state.index_seq = next->seq;
    sha256_hex(text, len, r->state.index_sha256);
    r->state.keys_version = r->trust.version;
    err = write_state(r);
done:
    free(text);
    return err;
}

int wfh_registry_cosign(wfh_registry *r, const wfh_ms_seckey *sk)
{
    int err = wfh_registry_check_signer(r, sk);
    if (err < 0)
        return err;
    if (!r->index)
        return wfh_error_set(WFH_ENOTFOUND, "registry/index.json: missing");
    return write_signature(r, sk, r->index_text, r->index_len, r->index->seq, 0);
}

int wfh_registry_put_blob(wfh_registry *r, const uint8_t *img, size_t len, char b2[65],
                          char sha[65])
{
    uint8_t d[32];
    crypto_generichash(d, 32, img, len, NULL, 0);
    wfh_hex(d, 32, b2);
    sha256_hex(img, len, sha);
    char name[80];
    snprintf(name, sizeof name, "%s.so", b2);
    struct stat st;
    if (fstatat(r->blobs_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size == len)
        return 0; /* content-addressed: same name, same bytes (checked again at load) */
    return wfh_fs_write_atomic_at(r->blobs_fd, name, img, len, 0444, "registry/blobs/");
}

void wfh_registry_drop_blob(wfh_registry *r, const char *b2)
{
    if (r->index)
        for (size_t i = 0; i < r->index->n_plugins; i++)
            if (!strcmp(r->index->plugins[i].blake2b256, b2))
                return;
    char name[80];
    snprintf(name, sizeof name, "%.64s.so", b2);
    unlinkat(r->blobs_fd, name, 0);
}

void wfh_registry_gc(wfh_registry *r, const wfh_index *now)
{
    int dfd = dup(r->blobs_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        /* Only our own names: 64 hex digits and ".so". */
        if (strlen(n) != 67 || strspn(n, "0123456789abcdef") != 64 || strcmp(n + 64, ".so") != 0)
            continue;
        int used = 0;
        for (size_t i = 0; now && i < now->n_plugins; i++)
            used |= !strncmp(now->plugins[i].blake2b256, n, 64);
        if (!used)
            unlinkat(r->blobs_fd, n, 0);
    }
    closedir(d);
}

char *wfh_registry_blob_path(const wfh_registry *r, const char *b2)
{
    size_t n = strlen(r->home) + 100;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/" WFH_REG_DIR "/blobs/%.64s.so", r->home, b2);
    return p;
}

int wfh_registry_find(const wfh_registry *r, const char *name, int major, int any_state,
                      const wfh_reg_plugin **out)
{
    const wfh_reg_plugin *best = NULL, *inactive = NULL;
    *out = NULL;
    if (!r->index)
        return wfh_error_set(WFH_ENOTFOUND, "plugin %s: the registry has no index", name);
    for (size_t i = 0; i < r->index->n_plugins; i++) {
        const wfh_reg_plugin *p = &r->index->plugins[i];
        if (strcmp(p->name, name) != 0 || (major >= 0 && p->version_major != (unsigned)major))
            continue;
        if (p->state != WFH_PSTATE_ACTIVE && !any_state) {
            if (!inactive)
                inactive = p;
            continue;
        }
        if (!best || p->version_major > best->version_major)
            best = p;
    }
    if (best) {
        *out = best;
        return 0;
    }
    if (inactive)
        return wfh_error_set(WFH_ESECURITY, "plugin %s@%s (registry/index.json): %s by the "
                             "operator; refused", inactive->name, inactive->version,
                             inactive->state == WFH_PSTATE_YANKED ? "yanked" : "disabled");
    if (major >= 0)
        return wfh_error_set(WFH_ENOTFOUND, "plugin %s@%d is not installed", name, major);
    return wfh_error_set(WFH_ENOTFOUND, "plugin %s is not installed", name);
}

/* What can be told without reading the bytes: a regular file nobody else may write,
 * of the signed size. @p stp (may be NULL) receives what fstat said. */
static int blob_shape(int fd, uint64_t size, const char *what, struct stat *stp)
{
    struct stat st;
    if (!stp)
        stp = &st;
    if (fstat(fd, stp) < 0 || !S_ISREG(stp->st_mode))
        return wfh_error_set(WFH_ESECURITY, "%s: the blob is not a regular file; refused", what);
    if (stp->st_mode & (S_IWGRP | S_IWOTH))
        return wfh_error_set(WFH_ESECURITY, "%s: the blob is writable by group or others; refused",
                             what);
    if ((uint64_t)stp->st_size != size)
        return wfh_error_set(WFH_ESECURITY, "%s: size mismatch: %lld bytes, the index says %llu; "
                             "refused", what, (long long)stp->st_size, (unsigned long long)size);
    return 0;
}

/* ---- verified bytes, kept for the life of the process ------------------------------- */

/*
 * Every attempt used to open its plugin's blob, hash it (BLAKE2b-256 and SHA-256) and
 * copy it into a new sealed memfd: for a chain of N steps of one plugin, N hashes of the
 * same file. The sealed memfd that comes out of a successful check cannot change (no
 * write, grow, shrink or new seal), so it is kept here and each later attempt gets a new
 * read-only descriptor of it. Before each reuse the blob file is looked at again
 * (lstat): if its device, inode, mode, owner, size, mtime or ctime differ from what
 * fstat said when it was hashed, the entry is dropped and the file is hashed again,
 * and refused on a mismatch exactly as the first time. Writing, truncating, replacing
 * (rename) or chmod'ing the file, or setting its mtime back, all change its ctime,
 * which only setting the system clock back could set back. One race is closed by not
 * keeping a file whose ctime was less than BLOB_RACY_MS old when it was hashed: a
 * change just after the check could carry the same coarse-grained timestamp (git's
 * "racily clean" entries).
 * At most WFH_REG_BLOB_CACHE_MAX blobs are kept; a new one takes the place of the one
 * least recently used (handed out or kept), so a process that loads more plugins than
 * that still reuses the ones it loads most, instead of hashing every plugin past the
 * first 32 at every attempt as a cache that only ever filled up did.
 * docs/registry.md, "How a plugin is loaded", states the rule.
 */
#define BLOB_RACY_MS 100
#define BLOB_CACHE_MAX WFH_REG_BLOB_CACHE_MAX

typedef struct blob_entry {
    char *path;        /* owned; NULL: free slot */
    char b2[65];       /* the digests and size it was checked against */
    char sha[65];      /* "" if the caller did not ask for SHA-256 */
    uint64_t size;
    struct stat st;    /* the file when it was hashed */
    int mfd;           /* owned: the sealed memfd */
    uint64_t used;     /* blob_tick when last kept or handed out: the LRU order */
} blob_entry;

static blob_entry blob_cache[BLOB_CACHE_MAX];
static pthread_mutex_t blob_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long blob_hashes; /* files hashed so far (wfh_registry_blob_hash_count) */
static uint64_t blob_tick;        /* a clock of uses, under blob_lock */

unsigned long wfh_registry_blob_hash_count(void)
{
    pthread_mutex_lock(&blob_lock);
    unsigned long n = blob_hashes;
    pthread_mutex_unlock(&blob_lock);
    return n;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_mode == b->st_mode &&
           a->st_uid == b->st_uid && a->st_gid == b->st_gid && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* A file may be kept if its last change is older than the racy window at @p now (the
 * time taken before it was fstat'ed and hashed). */
static int blob_settled(const struct stat *st, const struct timespec *now)
{
    int64_t changed = (int64_t)st->st_ctim.tv_sec * 1000 + st->st_ctim.tv_nsec / 1000000;
    int64_t at = (int64_t)now->tv_sec * 1000 + now->tv_nsec / 1000000;
    return changed + BLOB_RACY_MS < at;
}

/* A new descriptor of the kept memfd @p mfd for one runner: its own read-only open file,
 * so no attempt shares a file offset with another; a dup where /proc is missing. */
static int blob_reopen(int mfd)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", mfd);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : fcntl(mfd, F_DUPFD_CLOEXEC, 0);
}

static void blob_entry_clear(blob_entry *e)
{
    free(e->path);
    if (e->mfd >= 0)
        close(e->mfd);
    memset(e, 0, sizeof *e);
    e->mfd = -1;
}

static int blob_entry_is(const blob_entry *e, const char *path, const char *b2hex,
                         const char *shahex, uint64_t size)
{
    return e->path && !strcmp(e->path, path) && !strcmp(e->b2, b2hex) &&
           !strcmp(e->sha, shahex ? shahex : "") && e->size == size;
}

/* A descriptor of the kept bytes for @p path if the file is unchanged since it was
 * hashed (an entry whose file changed is dropped); -1 otherwise. */
static int blob_cache_get(const char *path, const char *b2hex, const char *shahex,
                          uint64_t size)
{
    int fd = -1;
    pthread_mutex_lock(&blob_lock);
    for (size_t i = 0; i < BLOB_CACHE_MAX; i++) {
        blob_entry *e = &blob_cache[i];
        if (!blob_entry_is(e, path, b2hex, shahex, size))
            continue;
        struct stat now;
        if (lstat(path, &now) == 0 && same_file(&now, &e->st)) {
            fd = blob_reopen(e->mfd);
            e->used = ++blob_tick;
        } else {
            blob_entry_clear(e);
        }
        break;
    }
    pthread_mutex_unlock(&blob_lock);
    return fd;
}

/* Keep sealed memfd @p mfd (ownership passes here, even on failure) as the bytes of
 * @p path as it was (@p st). When every slot is taken, the least recently used entry
 * is dropped for it (its memfd closed: descriptors already handed out stay valid). */
static void blob_cache_put(const char *path, const char *b2hex, const char *shahex,
                           uint64_t size, const struct stat *st, int mfd)
{
    pthread_mutex_lock(&blob_lock);
    blob_entry *slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < BLOB_CACHE_MAX; i++) {
        blob_entry *e = &blob_cache[i];
        if (blob_entry_is(e, path, b2hex, shahex, size))
            blob_entry_clear(e); /* replaced by the newer check */
        if (!e->path && !slot)
            slot = e;
        if (e->path && (!oldest || e->used < oldest->used))
            oldest = e;
    }
    if (!slot && oldest) {
        blob_entry_clear(oldest);
        slot = oldest;
    }
    if (slot && (slot->path = strdup(path))) {
        snprintf(slot->b2, sizeof slot->b2, "%s", b2hex);
        snprintf(slot->sha, sizeof slot->sha, "%s", shahex ? shahex : "");
        slot->size = size;
        slot->st = *st;
        slot->mfd = mfd;
        slot->used = ++blob_tick;
        mfd = -1;
    }
    pthread_mutex_unlock(&blob_lock);
    if (mfd >= 0)
        close(mfd);
}

/*
 * Check the blob open at @p fd (blob_shape), hash it and compare size, BLAKE2b-256 and
 * SHA-256 (unless @p shahex is NULL) with the signed ones. With @p copy the bytes go
 * into a new memfd as they are hashed, sealed and handed out in *out; without, they are
 * only hashed (checking that a file is still the signed one costs no memory, and no
 * file-size allowance: RLIMIT_FSIZE applies to memfd writes too). If the process's
 * file-size limit is below the plugin's size (EFBIG: no memfd can hold it), *out is
 * instead a duplicate of @p fd itself, the descriptor that was hashed: the loader reads
 * that inode, whatever the path names by then, and only the blob's owner could write it
 * (0444, in directories no one else may write - checked on open). @p st (may be NULL)
 * receives the file's fstat from before the read.
 */
static int blob_to_memfd(int fd, const char *b2hex, const char *shahex, uint64_t size,
                         const char *what, int copy, int *out, struct stat *st)
{
    int err = 0, mfd = -1;
    if (out)
        *out = -1;
    if ((err = blob_shape(fd, size, what, st)) < 0)
        return err;
    pthread_mutex_lock(&blob_lock);
    blob_hashes++;
    pthread_mutex_unlock(&blob_lock);
    if (copy) {
        mfd = memfd_create("wfh-plugin", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (mfd < 0 && errno == EINVAL)
            mfd = memfd_create("wfh-plugin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
            return wfh_error_set(WFH_EIO, "%s: memfd_create: %s", what, strerror(errno));
    }
    crypto_generichash_state b2;
    crypto_hash_sha256_state s2;
    crypto_generichash_init(&b2, NULL, 0, 32);
    crypto_hash_sha256_init(&s2);
    uint8_t buf[65536];
    uint64_t total = 0;
    /* Hash the bytes as they go into the memfd, and read at most size+1 so a file that
     * grows under us is caught rather than read forever. */
    for (;;) {
        uint64_t want = size + 1 - total;
        ssize_t n = read(fd, buf, want < sizeof buf ? (size_t)want : sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = wfh_error_set(WFH_EIO, "%s: read: %s", what, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        if (total > size) {
            err = wfh_error_set(WFH_ESECURITY, "%s: size mismatch: the blob grew while being "
                                "read; refused", what);
            goto done;
        }
        crypto_generichash_update(&b2, buf, (size_t)n);
        crypto_hash_sha256_update(&s2, buf, (size_t)n);
        for (ssize_t off = 0; mfd >= 0 && off < n;) {
            ssize_t w = write(mfd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EFBIG) {
                close(mfd); /* go on hashing; the hashed descriptor is handed over */
                mfd = -1;
                break;
            }
            if (w < 0) {
                err = wfh_error_set(WFH_EIO, "%s: memfd write: %s", what, strerror(errno));
                goto done;
            }
            off += w;
        }
    }
    uint8_t d1[32], d2[32];
    char h1[65], h2[65];
    crypto_generichash_final(&b2, d1, 32);
    crypto_hash_sha256_final(&s2, d2);
    wfh_hex(d1, 32, h1);
    wfh_hex(d2, 32, h2);
    if (total != size) {
        err = wfh_error_set(WFH_ESECURITY, "%s: size mismatch: read %llu bytes, the index says "
                            "%llu; refused", what, (unsigned long long)total,
                            (unsigned long long)size);
        goto done;
    }
    if (strcmp(h1, b2hex) != 0 || (shahex && strcmp(h2, shahex) != 0)) {
        err = wfh_error_set(WFH_ESECURITY, "%s: hash mismatch: the file is not the one the index "
                            "signed (blake2b256 %.16s..., expected %.16s...); refused", what, h1,
                            b2hex);
        goto done;
    }
    if (!out || !copy)
        goto done;
    if (mfd < 0) { /* EFBIG above */
        if ((*out = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
            err = wfh_error_set(WFH_EIO, "%s: dup: %s", what, strerror(errno));
        goto done;
    }
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        err = wfh_error_set(WFH_EIO, "%s: sealing the memfd: %s", what, strerror(errno));
        goto done;
    }
    *out = mfd;
    mfd = -1;
done:
    if (mfd >= 0)
        close(mfd);
    return err;
}

static int open_blob_error(const char *what)
{
    if (errno == ELOOP)
        return wfh_error_set(WFH_ESECURITY, "%s: the blob is a symlink; refused", what);
    if (errno == ENOENT)
        return wfh_error_set(WFH_ESECURITY, "%s: the blob is missing; refused", what);
    return wfh_error_set(WFH_EIO, "%s: %s", what, strerror(errno));
}

/* How a blob is named in messages: "plugin NAME@VERSION (registry/blobs/0123456789ab...)". */
static void blob_what(char *what, size_t len, const char *name, const char *version, const char *b2hex)
{
    snprintf(what, len, "plugin %s@%s (registry/blobs/%.12s...)", name, version, b2hex);
}

/* Open @p p's blob in registry/blobs/ (never through a symlink) into *fd (owned by the
 * caller); @p what (WHAT_LEN bytes) receives its name for messages. 0 or an error. */
#define WHAT_LEN 200
static int reg_blob_open(const wfh_registry *r, const wfh_reg_plugin *p, char *what, int *fd)
{
    char name[80];
    snprintf(name, sizeof name, "%.64s.so", p->blake2b256);
    blob_what(what, WHAT_LEN, p->name, p->version, p->blake2b256);
    *fd = openat(r->blobs_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    return *fd < 0 ? open_blob_error(what) : 0;
}

int wfh_registry_open_blob(const wfh_registry *r, const wfh_reg_plugin *p, int *out)
{
    char what[WHAT_LEN];
    int fd, err;
    if (out)
        *out = -1;
    if ((err = reg_blob_open(r, p, what, &fd)) < 0)
        return err;
    err = blob_to_memfd(fd, p->blake2b256, p->sha256, p->size, what, out != NULL, out, NULL);
    close(fd);
    return err;
}

/*
 * blob_to_memfd for the blob at @p path, open at @p fd, whose verified bytes are kept
 * (blob_cache_put) when the file has settled (blob_settled), for the attempts to come.
 * @p out NULL: check only (a copy is made only to be kept); else *out receives a
 * descriptor of the verified bytes, as from blob_to_memfd.
 */
static int blob_check(int fd, const char *path, const char *b2hex, const char *shahex,
                      uint64_t size, const char *what, int *out)
{
    struct stat pre, st;
    struct timespec now;
    int mfd = -1; /* owned */
    if (out)
        *out = -1;
    clock_gettime(CLOCK_REALTIME, &now); /* before the fstat: see blob_settled */
    int settled = fstat(fd, &pre) == 0 && blob_settled(&pre, &now);
    int err = blob_to_memfd(fd, b2hex, shahex, size, what, out || settled, &mfd, &st);
    if (err < 0)
        return err;
    /* Only a sealed memfd is kept: the EFBIG fallback hands out the file itself. */
    int sealed = mfd >= 0 && fcntl(mfd, F_GET_SEALS) > 0;
    int fd2 = -1;
    if (settled && sealed && same_file(&pre, &st) && (!out || (fd2 = blob_reopen(mfd)) >= 0)) {
        blob_cache_put(path, b2hex, shahex, size, &st, mfd);
        mfd = fd2;
    }
    if (out)
        *out = mfd;
    else if (mfd >= 0)
        close(mfd);
    return 0;
}

int wfh_registry_blob_shape(const wfh_registry *r, const wfh_reg_plugin *p)
{
    char what[WHAT_LEN];
    int fd, err;
    if ((err = reg_blob_open(r, p, what, &fd)) < 0)
        return err;
    err = blob_shape(fd, p->size, what, NULL);
    close(fd);
    return err;
}

int wfh_registry_check_blob_file(const char *path, const char *name, const char *version,
                                 const char *b2hex, const char *sha256hex, uint64_t size)
{
    char what[WHAT_LEN];
    blob_what(what, sizeof what, name, version, b2hex);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return open_blob_error(what);
    /* kept for the attempts to come (wfh_registry_blob_memfd) */
    int err = blob_check(fd, path, b2hex, sha256hex, size, what, NULL);
    close(fd);
    return err;
}

int wfh_registry_blob_memfd(const char *path, const char *b2hex, const char *sha256hex,
                            uint64_t size, const char *label, int *out)
{
    char what[300];
    *out = -1;
    if ((*out = blob_cache_get(path, b2hex, sha256hex, size)) >= 0)
        return 0; /* the bytes hashed earlier in this process, from an unchanged file */
    snprintf(what, sizeof what, "plugin %s (%s)", label, path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return open_blob_error(what);
    int err = blob_check(fd, path, b2hex, sha256hex, size, what, out);
    close(fd);
    return err;
}

int wfh_registry_verify_all(const wfh_registry *r, FILE *ok, FILE *problems)
{
    int bad = 0;
    if (!r->index)
        return wfh_error_set(WFH_ESECURITY, "registry/index.json: missing");
    for (size_t i = 0; i < r->index->n_plugins; i++) {
        const wfh_reg_plugin *p = &r->index->plugins[i];
        int fd = -1;
        int err = wfh_registry_open_blob(r, p, &fd);
        if (err == 0) {
            uint8_t *img = mmap(NULL, p->size, PROT_READ, MAP_PRIVATE, fd, 0);
            char what[160];
            snprintf(what, sizeof what, "plugin %s@%s", p->name, p->version);
            if (img == MAP_FAILED)
                err = wfh_error_set(WFH_EIO, "%s: mmap: %s", what, strerror(errno));
            else {
                err = wfh_elf_check(img, p->size, what);
                munmap(img, p->size);
            }
            close(fd);
        }
        if (err == 0 && (p->abi_major != 1))
            err = wfh_error_set(WFH_ESECURITY, "plugin %s@%s: ABI %u.%u needs a newer wfhost "
                                "(this one speaks 1.x)", p->name, p->version, p->abi_major,
                                p->abi_minor);
        if (err < 0) {
            fprintf(problems, "wfhost: %s\n", wfh_error_last());
            bad++;
        } else {
            fprintf(ok, "ok   %s@%s %s (%llu bytes, blake2b256 %.16s...)\n", p->name,
                    p->version, wfh_reg_state_name(p->state), (unsigned long long)p->size,
                    p->blake2b256);
        }
    }
    if (bad)
        return wfh_error_set(WFH_ESECURITY, "registry: %d of %zu plugin(s) failed verification",
                             bad, r->index->n_plugins);
    return 0;
}

int wfh_registry_write_keypair(const char *dir, const char *name, const wfh_ms_pubkey *pk,
                               const wfh_ms_seckey *sk)
{
    int err = wfh_fs_mkdirs(dir, 1);
    char *sk_text = NULL, *pk_text = NULL; /* owned */
    char path[4096];
    int fd = -1;
    if (err < 0)
        return err;
    sk_text = wfh_ms_seckey_file_text(sk);
    pk_text = wfh_ms_pubkey_file_text(pk);
    if (!sk_text || !pk_text) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *t = pass ? pk_text : sk_text;
        snprintf(path, sizeof path, "%s/%s.%s", dir, name, pass ? "pub" : "key");
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, pass ? 0644 : 0600);
        if (fd < 0) {
            err = wfh_error_set(WFH_EIO, "%s: %s%s", path, strerror(errno),
                                errno == EEXIST ? " (refusing to overwrite a key)" : "");
            goto done;
        }
        size_t n = strlen(t);
        if (write(fd, t, n) != (ssize_t)n || fsync(fd) < 0) {
            err = wfh_error_set(WFH_EIO, "%s: write: %s", path, strerror(errno));
            goto done;
        }
        close(fd);
        fd = -1;
    }
done:
    if (fd >= 0)
        close(fd);
    if (sk_text) {
        sodium_memzero(sk_text, strlen(sk_text));
        free(sk_text);
    }
    free(pk_text);
    return err;
}

static int read_small(const char *path, char **out, size_t *len)
{
    int dfd = AT_FDCWD;
    return wfh_fs_read_at(dfd, path, 16384, 0, path, out, len);
}

int wfh_registry_read_seckey(const char *path, wfh_ms_seckey *sk)
{
    char *text = NULL;
    size_t len = 0;
    int err = read_small(path, &text, &len);
    if (err < 0)
        return err;
    err = wfh_ms_seckey_parse(text, len, path, sk);
    sodium_memzero(text, len);
    free(text);
    return err;
}

int wfh_registry_read_pubkey(const char *path, wfh_ms_pubkey *pk)
{
    char *text = NULL;
    size_t len = 0;
    int err = read_small(path, &text, &len);
    if (err < 0)
        return err;
    err = wfh_ms_pubkey_parse(text, len, path, pk);
    free(text);
    return err;
}
