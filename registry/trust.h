/*
 * registry/trust.h - who may sign the index (keys.txt) and what this machine has
 * already seen (state.txt).
 *
 * keys.txt is the trust anchor, installed by the operator out of band (like apt's
 * trusted.gpg.d) and protected by file ownership: wfhost refuses it if it is writable
 * by group or others or owned by anyone but root or the current user. It is plain
 * `key=value` lines so operators can read and edit it:
 *
 *     format=1
 *     version=3                 # bump on every change; the index names the version
 *     threshold=2               # distinct trusted keys that must sign the index
 *     key=RWQ... ops-laptop     # a minisign public key (base64 line) and a label
 *     revoked=RWQ... stolen-2026-11   # never accepted again, even if listed as key=
 *     reset_index_seq=100       # optional: new index floor after a stolen-key incident
 *
 * state.txt remembers the newest index seq, its sha256 and the keys version seen, so a
 * replayed older (validly signed) index or keys.txt is refused.
 */
#ifndef WFH_REG_TRUST_H
#define WFH_REG_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "minisign.h"

#define WFH_TRUST_MAX_KEYS 32

typedef struct wfh_trust_key {
    wfh_ms_pubkey pk;
    char label[65];
} wfh_trust_key;

typedef struct wfh_trust {
    uint64_t version;
    unsigned threshold;
    wfh_trust_key keys[WFH_TRUST_MAX_KEYS];
    size_t n_keys;
    wfh_trust_key revoked[WFH_TRUST_MAX_KEYS];
    size_t n_revoked;
    uint64_t reset_index_seq; /* 0: none */
} wfh_trust;

typedef struct wfh_reg_state {
    uint64_t index_seq;    /* 0: nothing seen yet */
    char index_sha256[65]; /* "" if none */
    uint64_t keys_version;
} wfh_reg_state;

/* Parse keys.txt text; errors are WFH_EPARSE "what:LINE: reason". */
int wfh_trust_parse(const char *text, size_t len, const char *what, wfh_trust *out);
/* Serialize (owned string). */
char *wfh_trust_format(const wfh_trust *t);
/* Is @p pk revoked? (compares the full public key, never the id alone) */
int wfh_trust_is_revoked(const wfh_trust *t, const wfh_ms_pubkey *pk);
/* The trusted, non-revoked key with this key id, or NULL. */
const wfh_trust_key *wfh_trust_find(const wfh_trust *t, const uint8_t keyid[8]);

int wfh_state_parse(const char *text, size_t len, const char *what, wfh_reg_state *out);
char *wfh_state_format(const wfh_reg_state *s);

#endif
