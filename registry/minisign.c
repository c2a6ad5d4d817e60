/*
 * registry/minisign.c - minisign's file formats over libsodium (see minisign.h).
 *
 * Layouts (minisign's src/minisign.h): public key "Ed" | keyid(8) | pk(32); secret key
 * "Ed" | kdf(2) | "B2" | salt(32) | opslimit(8) | memlimit(8) | keyid(8) | sk(64) |
 * chk(32) where chk = BLAKE2b-256("Ed" | keyid | sk); signature alg(2) | keyid(8) |
 * sig(64), then the trusted comment and a global signature over sig || comment.
 * Note: crypto_sign_init/update/final is Ed25519ph with SHA-512, NOT minisign's "ED";
 * "ED" is plain Ed25519 over the 64-byte BLAKE2b digest.
 */
#include "minisign.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define SECKEY_BYTES (2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32)

static int sodium_ready(void)
{
    if (sodium_init() < 0)
        return wfh_error_set(WFH_EIO, "libsodium failed to initialise");
    return 0;
}

void wfh_ms_keyid_hex(const uint8_t keyid[WFH_MS_KEYID_BYTES], char out[17])
{
    uint64_t v = 0;
    for (int i = WFH_MS_KEYID_BYTES - 1; i >= 0; i--)
        v = (v << 8) | keyid[i];
    snprintf(out, 17, "%016" PRIX64, v);
}

/* Decode exactly @p want bytes of standard base64 from [s, s+n); nothing else. */
static int b64_exact(const char *s, size_t n, uint8_t *bin, size_t want)
{
    size_t got = 0;
    const char *end = NULL;
    if (n == 0 || n > 4 * ((want + 2) / 3))
        return -1;
    if (sodium_base642bin(bin, want, s, n, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    if (got != want || end != s + n)
        return -1;
    return 0;
}

/* Split [text, text+len) into lines; tolerates one trailing newline and CRLF. */
static size_t split_lines(const char *text, size_t len, const char **starts, size_t *lens,
                          size_t max)
{
    size_t n = 0, i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t l = nl ? (size_t)(nl - (text + i)) : len - i;
        if (n == max)
            return max + 1;
        starts[n] = text + i;
        lens[n] = (l > 0 && text[i + l - 1] == '\r') ? l - 1 : l;
        n++;
        i += l + (nl ? 1 : 0);
    }
    return n;
}

int wfh_ms_pubkey_parse(const char *text, size_t len, const char *what, wfh_ms_pubkey *out)
{
    const char *line[3];
    size_t ll[3];
    size_t n = split_lines(text, len, line, ll, 2);
    const char *b64 = NULL;
    size_t b64len = 0;
    if (n == 1) {
        b64 = line[0];
        b64len = ll[0];
    } else if (n == 2 && ll[0] >= strlen(UNTRUSTED_PREFIX) &&
               !memcmp(line[0], UNTRUSTED_PREFIX, strlen(UNTRUSTED_PREFIX))) {
        b64 = line[1];
        b64len = ll[1];
    } else {
        return wfh_error_set(WFH_EPARSE,
                             "%s: not a minisign public key (expected 'untrusted comment:' "
                             "and one base64 line)", what);
    }
    uint8_t bin[42];
    if (b64_exact(b64, b64len, bin, sizeof bin) != 0)
        return wfh_error_set(WFH_EPARSE, "%s: public key is not 42 bytes of base64", what);
    if (memcmp(bin, "Ed", 2) != 0)
        return wfh_error_set(WFH_EPARSE, "%s: unsupported public key algorithm", what);
    memcpy(out->keyid, bin + 2, 8);
    memcpy(out->pk, bin + 10, 32);
    return 0;
}

void wfh_ms_pubkey_b64(const wfh_ms_pubkey *pk, char out[57])
{
    uint8_t bin[42];
    memcpy(bin, "Ed", 2);
    memcpy(bin + 2, pk->keyid, 8);
    memcpy(bin + 10, pk->pk, 32);
    sodium_bin2base64(out, 57, bin, sizeof bin, sodium_base64_VARIANT_ORIGINAL);
}

char *wfh_ms_pubkey_file_text(const wfh_ms_pubkey *pk)
{
    char b64[57], id[17];
    wfh_ms_pubkey_b64(pk, b64);
    wfh_ms_keyid_hex(pk->keyid, id);
    size_t n = strlen(UNTRUSTED_PREFIX) + 64 + 57 + 4;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, UNTRUSTED_PREFIX "minisign public key %s\n%s\n", id, b64);
    return s;
}

int wfh_ms_keygen(wfh_ms_pubkey *pk, wfh_ms_seckey *sk)
{
    int err = sodium_ready();
    if (err < 0)
        return err;
    randombytes_buf(sk->keyid, sizeof sk->keyid);
    crypto_sign_keypair(pk->pk, sk->sk);
    memcpy(pk->keyid, sk->keyid, sizeof pk->keyid);
    return 0;
}

static void seckey_chk(const wfh_ms_seckey *sk, uint8_t chk[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"Ed", 2);
    crypto_generichash_update(&st, sk->keyid, sizeof sk->keyid);
    crypto_generichash_update(&st, sk->sk, sizeof sk->sk);
    crypto_generichash_final(&st, chk, 32);
}

int wfh_ms_seckey_parse(const char *text, size_t len, const char *what, wfh_ms_seckey *out)
{
    int err = sodium_ready();
    if (err < 0)
        return err;
    const char *line[3];
    size_t ll[3];
    size_t n = split_lines(text, len, line, ll, 2);
    if (n != 2 || ll[0] < strlen(UNTRUSTED_PREFIX) ||
        memcmp(line[0], UNTRUSTED_PREFIX, strlen(UNTRUSTED_PREFIX)) != 0)
        return wfh_error_set(WFH_EPARSE, "%s: not a minisign secret key file", what);
    uint8_t bin[SECKEY_BYTES];
    if (b64_exact(line[1], ll[1], bin, sizeof bin) != 0)
        return wfh_error_set(WFH_EPARSE, "%s: secret key is not %d bytes of base64", what,
                             SECKEY_BYTES);
    if (memcmp(bin, "Ed", 2) != 0 || memcmp(bin + 4, "B2", 2) != 0) {
        err = wfh_error_set(WFH_EPARSE, "%s: unsupported secret key algorithm", what);
        goto done;
    }
    if (memcmp(bin + 2, "\0\0", 2) != 0) {
        err = wfh_error_set(WFH_EINVAL,
                            "%s: the secret key is password-protected; sign with "
                            "'minisign -S -s %s -m FILE -t COMMENT' instead (see docs/registry.md)",
                            what, what);
        goto done;
    }
    const uint8_t *ks = bin + 2 + 2 + 2 + 32 + 8 + 8;
    memcpy(out->keyid, ks, 8);
    memcpy(out->sk, ks + 8, 64);
    uint8_t chk[32], zero[32] = {0};
    seckey_chk(out, chk);
    /* minisign 0.11 leaves the checksum zero in unencrypted keys; newer ones fill it. */
    if (sodium_memcmp(chk, ks + 72, 32) != 0 && sodium_memcmp(zero, ks + 72, 32) != 0) {
        err = wfh_error_set(WFH_EPARSE, "%s: secret key checksum mismatch (corrupt key)", what);
        goto done;
    }
    /* The secret key carries its public half; a mismatch means a corrupt file. */
    uint8_t pk_from_seed[32], sk_check[64];
    crypto_sign_seed_keypair(pk_from_seed, sk_check, out->sk);
    sodium_memzero(sk_check, sizeof sk_check);
    if (memcmp(pk_from_seed, out->sk + 32, 32) != 0)
        err = wfh_error_set(WFH_EPARSE, "%s: secret key is inconsistent (corrupt key)", what);
done:
    sodium_memzero(bin, sizeof bin);
    if (err < 0)
        sodium_memzero(out, sizeof *out);
    return err;
}

void wfh_ms_seckey_public(const wfh_ms_seckey *sk, wfh_ms_pubkey *pk)
{
    memcpy(pk->keyid, sk->keyid, 8);
    memcpy(pk->pk, sk->sk + 32, 32);
}

char *wfh_ms_seckey_file_text(const wfh_ms_seckey *sk)
{
    uint8_t bin[SECKEY_BYTES] = {0};
    memcpy(bin, "Ed", 2);
    memcpy(bin + 4, "B2", 2);
    uint8_t *ks = bin + 2 + 2 + 2 + 32 + 8 + 8;
    memcpy(ks, sk->keyid, 8);
    memcpy(ks + 8, sk->sk, 64);
    seckey_chk(sk, ks + 72);
    char b64[sodium_base64_ENCODED_LEN(SECKEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, bin, sizeof bin, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(bin, sizeof bin);
    size_t n = sizeof b64 + 128;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, UNTRUSTED_PREFIX "minisign secret key (unencrypted, wfhost)\n%s\n", b64);
    sodium_memzero(b64, sizeof b64);
    return s;
}

void wfh_ms_seckey_wipe(wfh_ms_seckey *sk)
{
    sodium_memzero(sk, sizeof *sk);
}

static void prehash(const void *msg, size_t len, uint8_t digest[64])
{
    crypto_generichash(digest, 64, msg, len, NULL, 0);
}

int wfh_ms_sign(const wfh_ms_seckey *sk, const void *msg, size_t len,
                const char *trusted_comment, char **out)
{
    int err = sodium_ready();
    char *text = NULL; /* owned until handed to *out */
    uint8_t *gmsg = NULL;
    *out = NULL;
    if (err < 0)
        return err;
    size_t tlen = strlen(trusted_comment);
    if (tlen > WFH_MS_TRUSTED_COMMENT_MAX - 1 || memchr(trusted_comment, '\n', tlen) ||
        memchr(trusted_comment, '\r', tlen))
        return wfh_error_set(WFH_EINVAL, "trusted comment is too long or has a newline");
    uint8_t digest[64], sigbin[74], global[64];
    prehash(msg, len, digest);
    memcpy(sigbin, "ED", 2);
    memcpy(sigbin + 2, sk->keyid, 8);
    crypto_sign_detached(sigbin + 10, NULL, digest, sizeof digest, sk->sk);
    gmsg = malloc(64 + tlen);
    if (!gmsg) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory signing");
        goto done;
    }
    memcpy(gmsg, sigbin + 10, 64);
    memcpy(gmsg + 64, trusted_comment, tlen);
    crypto_sign_detached(global, NULL, gmsg, 64 + tlen, sk->sk);
    char b64sig[sodium_base64_ENCODED_LEN(74, sodium_base64_VARIANT_ORIGINAL)];
    char b64glob[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64sig, sizeof b64sig, sigbin, sizeof sigbin, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64glob, sizeof b64glob, global, sizeof global, sodium_base64_VARIANT_ORIGINAL);
    size_t n = 128 + sizeof b64sig + tlen + sizeof b64glob;
    text = malloc(n);
    if (!text) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory signing");
        goto done;
    }
    snprintf(text, n, UNTRUSTED_PREFIX "signature from wfhost secret key\n%s\n" TRUSTED_PREFIX
             "%s\n%s\n", b64sig, trusted_comment, b64glob);
    *out = text;
    text = NULL;
done:
    free(text);
    free(gmsg);
    return err;
}

int wfh_ms_sig_parse(const char *text, size_t len, const char *what, wfh_ms_sig *out)
{
    const char *line[5];
    size_t ll[5];
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len))
        return wfh_error_set(WFH_EPARSE, "%s: signature file contains a NUL byte", what);
    size_t n = split_lines(text, len, line, ll, 4);
    size_t up = strlen(UNTRUSTED_PREFIX), tp = strlen(TRUSTED_PREFIX);
    if (n != 4 || ll[0] < up || memcmp(line[0], UNTRUSTED_PREFIX, up) != 0 || ll[2] < tp ||
        memcmp(line[2], TRUSTED_PREFIX, tp) != 0)
        return wfh_error_set(WFH_EPARSE,
                             "%s: not a minisign signature (expected 4 lines: untrusted "
                             "comment, signature, trusted comment, global signature)", what);
    uint8_t bin[74];
    if (b64_exact(line[1], ll[1], bin, sizeof bin) != 0)
        return wfh_error_set(WFH_EPARSE, "%s: signature line is not 74 bytes of base64", what);
    if (b64_exact(line[3], ll[3], out->global_sig, 64) != 0)
        return wfh_error_set(WFH_EPARSE, "%s: global signature is not 64 bytes of base64",
                             what);
    size_t tlen = ll[2] - tp;
    if (tlen >= WFH_MS_TRUSTED_COMMENT_MAX)
        return wfh_error_set(WFH_EPARSE, "%s: trusted comment is too long", what);
    out->trusted_comment = malloc(tlen + 1);
    if (!out->trusted_comment)
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", what);
    memcpy(out->trusted_comment, line[2] + tp, tlen);
    out->trusted_comment[tlen] = '\0';
    memcpy(out->alg, bin, 2);
    memcpy(out->keyid, bin + 2, 8);
    memcpy(out->sig, bin + 10, 64);
    return 0;
}

void wfh_ms_sig_clear(wfh_ms_sig *sig)
{
    if (!sig)
        return;
    free(sig->trusted_comment);
    memset(sig, 0, sizeof *sig);
}

int wfh_ms_verify(const wfh_ms_sig *sig, const wfh_ms_pubkey *pk, const void *msg,
                  size_t len, const char *what)
{
    int err = sodium_ready();
    uint8_t *gmsg = NULL;
    if (err < 0)
        return err;
    if (!memcmp(sig->alg, "Ed", 2))
        return wfh_error_set(WFH_ESECURITY,
                             "%s: legacy (non-prehashed 'Ed') signature refused; sign with "
                             "minisign without -l", what);
    if (memcmp(sig->alg, "ED", 2) != 0)
        return wfh_error_set(WFH_ESECURITY, "%s: unknown signature algorithm", what);
    if (memcmp(sig->keyid, pk->keyid, 8) != 0) {
        char a[17], b[17];
        wfh_ms_keyid_hex(sig->keyid, a);
        wfh_ms_keyid_hex(pk->keyid, b);
        return wfh_error_set(WFH_ESECURITY, "%s: signed by key %s, not by key %s", what, a, b);
    }
    uint8_t digest[64];
    prehash(msg, len, digest);
    if (crypto_sign_verify_detached(sig->sig, digest, sizeof digest, pk->pk) != 0)
        return wfh_error_set(WFH_ESECURITY, "%s: signature does not match the file", what);
    size_t tlen = strlen(sig->trusted_comment);
    gmsg = malloc(64 + tlen);
    if (!gmsg)
        return wfh_error_set(WFH_ENOMEM, "%s: out of memory", what);
    memcpy(gmsg, sig->sig, 64);
    memcpy(gmsg + 64, sig->trusted_comment, tlen);
    if (crypto_sign_verify_detached(sig->global_sig, gmsg, 64 + tlen, pk->pk) != 0)
        err = wfh_error_set(WFH_ESECURITY, "%s: trusted comment signature is invalid", what);
    free(gmsg);
    return err;
}
