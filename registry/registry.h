/*
 * registry/registry.h - the signed local registry: one verified view of HOME/registry.
 *
 * Layout under the wfhost home (see core/home.h for where that is):
 *
 *     registry/keys.txt                  trusted keys, threshold, revocations (trust.h)
 *     registry/state.txt                 newest index seq/sha256 and keys version seen
 *     registry/index.json                THE signed snapshot of installed plugins (index.h)
 *     registry/index.json.minisig        a signature (stock minisign's default name)
 *     registry/index.json.<KEYID>.minisig  further signatures, one file per key
 *     registry/blobs/<blake2b256>.so     plugin files, content-addressed, 0444
 *     keys/<name>.key, keys/<name>.pub   secret keys made by `wfhost registry` (0600)
 *
 * wfh_registry_open() verifies, in this order, before anything is parsed from the index
 * or any blob is touched: directories are real directories owned by root or the user
 * and not group/other-writable; keys.txt likewise; keys.txt is not older than the
 * version seen; a threshold of distinct, trusted, unrevoked keys made valid prehashed
 * signatures over index.json whose trusted comment is "wfhost-index seq=<seq>"; the
 * index names the current keys version (no mix-and-match), is not older than the seq
 * seen (rollback), and has not expired (freeze). Every refusal is WFH_ESECURITY with a
 * one-line reason naming the file.
 */
#ifndef WFH_REGISTRY_H
#define WFH_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "index.h"
#include "minisign.h"
#include "trust.h"

#define WFH_REG_DIR "registry"
#define WFH_REG_KEYS_FILE "keys.txt"
#define WFH_REG_STATE_FILE "state.txt"
#define WFH_REG_INDEX_FILE "index.json"
#define WFH_REG_DEFAULT_EXPIRE_DAYS 365

typedef struct wfh_registry wfh_registry;

enum {
    /* Do not record the newest seq in state.txt (read-only callers, tests). */
    WFH_REG_OPEN_READONLY = 1u << 0,
    /* Load keys, state and index without checking signatures, expiry or rollback:
     * only for `registry sign`, which is about to replace the signatures. */
    WFH_REG_OPEN_UNVERIFIED = 1u << 1,
    /* Accept a missing state.txt and start one from this index (an operator's explicit
     * `registry verify --reinit-state`). */
    WFH_REG_OPEN_REINIT_STATE = 1u << 2,
    /* Hold an exclusive lock on registry/ until wfh_registry_free, so two changes never
     * both write seq+1 from the same base. */
    WFH_REG_OPEN_LOCK = 1u << 3,
};

/* Create the layout under @p home (keys.txt with @p first_key if given; the state
 * file). An existing keys.txt is kept. */
int wfh_registry_init(const char *home, const wfh_ms_pubkey *first_key);

/* Open and verify (see above). *out owned: wfh_registry_free. */
int wfh_registry_open(const char *home, unsigned flags, wfh_registry **out);
void wfh_registry_free(wfh_registry *r);

/* Borrowed views (valid until wfh_registry_free). The index is NULL only with
 * WFH_REG_OPEN_UNVERIFIED on a registry that has no index yet. */
const wfh_index *wfh_registry_index(const wfh_registry *r);
const wfh_trust *wfh_registry_trust(const wfh_registry *r);
const wfh_reg_state *wfh_registry_state(const wfh_registry *r);
/* Distinct valid signers found at open (0 with WFH_REG_OPEN_UNVERIFIED). */
size_t wfh_registry_signers(const wfh_registry *r);

/* Write @p next as the next index: seq = newest seen + 1, issued now, expires in
 * @p expire_days (0: default), keys version and threshold from keys.txt; sign it with
 * @p sk (which must be trusted and unrevoked), drop the now-stale signatures, record the
 * new state. @p next is updated in place. */
int wfh_registry_commit(wfh_registry *r, wfh_index *next, const wfh_ms_seckey *sk,
                        unsigned expire_days);
/* 0 if @p sk is listed in keys.txt and not revoked, else WFH_ESECURITY naming it. */
int wfh_registry_check_signer(const wfh_registry *r, const wfh_ms_seckey *sk);
/* Add a signature by @p sk over the index as it is (for a threshold > 1). */
int wfh_registry_cosign(wfh_registry *r, const wfh_ms_seckey *sk);
/* True if index.json is byte-identical to the last index this machine accepted or
 * wrote, belongs to the current keys version and has not expired (so adding a signature
 * is enough; otherwise `registry sign` writes a new seq). */
int wfh_registry_index_is_current(const wfh_registry *r);

/* Store plugin bytes as blobs/<blake2b256>.so (0444, atomically); fills both digests
 * (hex). An existing blob with that name is kept. */
int wfh_registry_put_blob(wfh_registry *r, const uint8_t *img, size_t len, char b2[65],
                          char sha[65]);
/* Unlink a blob no index entry references any more. */
void wfh_registry_drop_blob(wfh_registry *r, const char *b2);
/* Remove every blob that index @p now does not list (after a commit). */
void wfh_registry_gc(wfh_registry *r, const wfh_index *now);
/* Path of a blob (owned), for the install-time probe. */
char *wfh_registry_blob_path(const wfh_registry *r, const char *b2);

/* The entry for @p name (@p major < 0: the newest active one). With @p any_state 0, a
 * disabled or yanked entry is a WFH_ESECURITY refusal. Borrowed. */
int wfh_registry_find(const wfh_registry *r, const char *name, int major, int any_state,
                      const wfh_reg_plugin **out);

/* Open @p p's blob once (O_NOFOLLOW), copy it into a sealed memfd while hashing,
 * and compare size, BLAKE2b-256 and SHA-256 with the index. Returns the memfd in *fd
 * (owned, O_CLOEXEC: dup2 it into the runner), ready for dlopen("/proc/self/fd/N").
 * @p fd NULL: check only (hash the file, make no copy). */
int wfh_registry_open_blob(const wfh_registry *r, const wfh_reg_plugin *p, int *fd);

/* Without reading the bytes: @p p's blob opens without following a symlink, is a
 * regular file nobody else may write, and has the signed size. What opening a registry
 * checks for every active plugin; the hash is checked for the plugins a run uses
 * (wfh_registry_check_blob_file) and again on the bytes each attempt loads. */
int wfh_registry_blob_shape(const wfh_registry *r, const wfh_reg_plugin *p);

/* Hash the blob at @p path (opened once, O_NOFOLLOW) and compare size, BLAKE2b-256 and
 * SHA-256 with the index's; messages name it as the index does ("plugin NAME@VERSION
 * (registry/blobs/...)"). WFH_ESECURITY on any mismatch. The bytes that checked out are
 * kept as wfh_registry_blob_memfd keeps them, so the run's first attempt need not hash
 * the file again. */
int wfh_registry_check_blob_file(const char *path, const char *name, const char *version,
                                 const char *b2hex, const char *sha256hex, uint64_t size);

/* The same, for a blob named by path (the step-attempt path, which holds the verified
 * catalog rather than the registry): opened once with O_NOFOLLOW, copied into a sealed
 * memfd while hashed, compared with @p b2hex (and @p sha256hex unless NULL) and
 * @p size. Whatever the path points at, only bytes with the signed hash come out.
 * @p label names the plugin in messages. *out (owned, O_CLOEXEC) is a read-only
 * descriptor of the memfd.
 *
 * Both functions keep the sealed memfd of a blob that checked out (for the life of the
 * process), and wfh_registry_blob_memfd hands later attempts a new descriptor of it
 * without hashing again while the file is unchanged: same device, inode, mode, owner,
 * size, mtime and ctime (lstat) as when it was hashed. Any difference drops the kept
 * copy and the file is hashed again, refused on a mismatch as before. A file changed
 * less than 100 ms before it was hashed is not kept (its next change could carry the
 * same timestamp). Up to WFH_REG_BLOB_CACHE_MAX blobs are kept, the least recently used
 * making room for a new one. docs/registry.md, "How a plugin is loaded". */
int wfh_registry_blob_memfd(const char *path, const char *b2hex, const char *sha256hex,
                            uint64_t size, const char *label, int *out);

/* How many verified blobs one process keeps (wfh_registry_blob_memfd): past this many
 * plugins, the one least recently used is dropped for the next, and hashed again if an
 * attempt loads it later. */
#define WFH_REG_BLOB_CACHE_MAX 32

/* For tests: how many times this process has hashed a blob file (every check that read
 * the bytes; a reuse of kept bytes does not count). */
unsigned long wfh_registry_blob_hash_count(void);

/* Check every plugin's blob (hash, size, ELF rules): one "ok" line per good plugin to
 * @p ok, one "FAIL" line per problem to @p problems. Returns 0, or WFH_ESECURITY if any
 * plugin failed. */
int wfh_registry_verify_all(const wfh_registry *r, FILE *ok, FILE *problems);

/* Key files under HOME/keys: write a new pair named @p name (refuses to overwrite). */
int wfh_registry_write_keypair(const char *dir, const char *name, const wfh_ms_pubkey *pk,
                               const wfh_ms_seckey *sk);
/* Read a secret key file (path as given by the operator). */
int wfh_registry_read_seckey(const char *path, wfh_ms_seckey *sk);
/* Read a public key file. */
int wfh_registry_read_pubkey(const char *path, wfh_ms_pubkey *pk);

#endif
