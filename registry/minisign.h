/*
 * registry/minisign.h - minisign key and signature files, made and checked with
 * libsodium, so operators can sign with the stock `minisign` tool or with wfhost and
 * verify with either.
 *
 * Only prehashed signatures ("ED": Ed25519 over BLAKE2b-512 of the file) are made and
 * accepted; legacy "Ed" (Ed25519 over the raw file) is refused, because it would let a
 * signify-made or `minisign -l` signature through a check that operators expect to be
 * the stronger mode. Secret keys are written unencrypted (minisign's KDF "\0\0", as
 * `minisign -G -W` writes them) and must be protected by file permissions.
 */
#ifndef WFH_REG_MINISIGN_H
#define WFH_REG_MINISIGN_H

#include <stddef.h>
#include <stdint.h>

#define WFH_MS_KEYID_BYTES 8
#define WFH_MS_TRUSTED_COMMENT_MAX 8192

typedef struct wfh_ms_pubkey {
    uint8_t keyid[WFH_MS_KEYID_BYTES]; /* random lookup hint, never an identity */
    uint8_t pk[32];
} wfh_ms_pubkey;

typedef struct wfh_ms_seckey {
    uint8_t keyid[WFH_MS_KEYID_BYTES];
    uint8_t sk[64]; /* libsodium's Ed25519 secret key (seed || pk) */
} wfh_ms_seckey;

typedef struct wfh_ms_sig {
    uint8_t alg[2];
    uint8_t keyid[WFH_MS_KEYID_BYTES];
    uint8_t sig[64];
    char *trusted_comment; /* owned, NUL-terminated, without prefix or newline */
    uint8_t global_sig[64];
} wfh_ms_sig;

/* Key id as minisign prints it: the 8 bytes as a little-endian u64, "%016" PRIX64. */
void wfh_ms_keyid_hex(const uint8_t keyid[WFH_MS_KEYID_BYTES], char out[17]);

/* Parse a public key: either the bare base64 line or a whole minisign .pub file.
 * Refuses any algorithm but "Ed" (the key algorithm minisign uses for both signature
 * modes). @p what names the source in messages. */
int wfh_ms_pubkey_parse(const char *text, size_t len, const char *what, wfh_ms_pubkey *out);
/* The base64 line (56 chars + NUL). */
void wfh_ms_pubkey_b64(const wfh_ms_pubkey *pk, char out[57]);
/* A whole .pub file (owned string). NULL on out-of-memory. */
char *wfh_ms_pubkey_file_text(const wfh_ms_pubkey *pk);

/* Fresh key pair (random key id, as minisign does). */
int wfh_ms_keygen(wfh_ms_pubkey *pk, wfh_ms_seckey *sk);
/* Parse a minisign secret key file. Unencrypted keys only; an encrypted one is refused
 * with a hint to sign with `minisign -S` instead. */
int wfh_ms_seckey_parse(const char *text, size_t len, const char *what, wfh_ms_seckey *out);
/* The public half of @p sk. */
void wfh_ms_seckey_public(const wfh_ms_seckey *sk, wfh_ms_pubkey *pk);
/* A whole unencrypted .key file (owned string, to be written 0600). */
char *wfh_ms_seckey_file_text(const wfh_ms_seckey *sk);
/* Wipe the secret. */
void wfh_ms_seckey_wipe(wfh_ms_seckey *sk);

/* Sign @p msg with "ED" and @p trusted_comment; *out is the 4-line .minisig text
 * (owned). */
int wfh_ms_sign(const wfh_ms_seckey *sk, const void *msg, size_t len,
                const char *trusted_comment, char **out);

/* Parse a .minisig file strictly (4 lines). Legacy "Ed" parses (so the refusal can say
 * why) but never verifies. */
int wfh_ms_sig_parse(const char *text, size_t len, const char *what, wfh_ms_sig *out);
void wfh_ms_sig_clear(wfh_ms_sig *sig);

/* Verify @p sig over @p msg with @p pk: algorithm "ED", key id equal, signature and
 * global (trusted comment) signature valid. Returns 0 or WFH_ESECURITY with the reason
 * naming @p what. */
int wfh_ms_verify(const wfh_ms_sig *sig, const wfh_ms_pubkey *pk, const void *msg,
                  size_t len, const char *what);

#endif
