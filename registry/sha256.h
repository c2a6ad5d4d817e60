/*
 * registry/sha256.h - SHA-256 for the registry's checks (the index's digest in
 * state.txt, every plugin blob's signed "sha256"), with the x86 SHA extensions when the
 * CPU has them and libsodium's portable code otherwise. Same digests either way
 * (tests/unit/test_sha256.c compares them with libsodium's for every length).
 */
#ifndef WFH_REGISTRY_SHA256_H
#define WFH_REGISTRY_SHA256_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

/* A running hash; plain data (no allocation, nothing to free). */
typedef struct wfh_sha256 {
    int ni;                          /* the SHA-extension path (else sodium below) */
    uint32_t h[8];                   /* ni: the chaining value */
    uint64_t bytes;                  /* ni: bytes hashed so far */
    uint8_t buf[64];                 /* ni: a partial block */
    size_t n_buf;
    crypto_hash_sha256_state sodium; /* !ni */
} wfh_sha256;

void wfh_sha256_init(wfh_sha256 *s);
void wfh_sha256_update(wfh_sha256 *s, const void *data, size_t len);
/* Writes the digest to @p out; @p s must be initialized again before reuse. */
void wfh_sha256_final(wfh_sha256 *s, uint8_t out[32]);
/* One call: the digest of @p len bytes at @p data. */
void wfh_sha256_digest(uint8_t out[32], const void *data, size_t len);

/* For tests: 1 if this process uses the SHA extensions, 0 if libsodium's code;
 * wfh_sha256_force_portable(1) makes every later wfh_sha256_init choose libsodium. */
int wfh_sha256_uses_ni(void);
void wfh_sha256_force_portable(int on);

#endif
