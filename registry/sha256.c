/*
 * registry/sha256.c - SHA-256 with the x86 SHA extensions (SHA-NI) where the CPU has
 * them, else libsodium's portable implementation (see sha256.h).
 *
 * Why: the host hashes the index (~19 KB) and the blob of every plugin a run uses (the
 * shell plugin: 40 KB) with SHA-256 at every start. libsodium has only portable C for
 * SHA-256: 3.26 M of the 12.0 M instructions of a one-step `wfhost exec` (callgrind),
 * ~0.16 ms per 64 KB on this machine's EPYC. The SHA extensions do a 64-byte block in a
 * few dozen cycles. OpenSSL's libcrypto uses them too, but loading it costs more than it
 * saves at start-up: a program that hashes the same 64 KB took 1.95 ms of CPU with
 * libcrypto (EVP or SHA256()) against 0.70 ms with libsodium (perf stat -r 300).
 *
 * The block function is the well-known formulation with _mm_sha256rnds2_epu32 (state
 * kept as ABEF/CDGH, message schedule with sha256msg1/msg2); padding and the length
 * are the standard ones (FIPS 180-4). tests/unit/test_sha256.c checks it against
 * libsodium for every length up to 1 KiB and many chunkings, and the FIPS vectors.
 */
#include "sha256.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define WFH_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define WFH_SHA_NI 0
#endif

static int force_portable;

#if WFH_SHA_NI

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

/* -1 not asked yet, else whether the CPU has SHA, SSSE3 and SSE4.1 (asked once: CPUID
 * traps to the hypervisor in a VM, ~5 us each here). Racing first callers compute the
 * same answer. */
static int cpu_has_ni = -1;

static int have_ni(void)
{
    if (cpu_has_ni < 0) {
        unsigned a, b, c, d;
        int ok = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) && (c & bit_SSE4_1);
        ok = ok && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)); /* SHA */
        __atomic_store_n(&cpu_has_ni, ok, __ATOMIC_RELAXED);
    }
    return __atomic_load_n(&cpu_has_ni, __ATOMIC_RELAXED);
}

/* Hash @p blocks 64-byte blocks at @p p into @p h. */
__attribute__((target("sha,sse4.1,ssse3"))) static void ni_blocks(uint32_t h[8],
                                                                  const uint8_t *p,
                                                                  size_t blocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);      /* DCBA */
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);      /* HGFE */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                          /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);                          /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);                  /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                       /* CDGH */
    while (blocks--) {
        __m128i abef = st0, cdgh = st1, w[4];
        for (int i = 0; i < 16; i++) {
            __m128i m;
            if (i < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
            } else {
                /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at a time */
                m = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
                m = _mm_add_epi32(m, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
                m = _mm_sha256msg2_epu32(m, w[(i + 3) & 3]);
            }
            w[i & 3] = m;
            __m128i k = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K[4 * i]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, k);
            k = _mm_shuffle_epi32(k, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, k);
        }
        st0 = _mm_add_epi32(st0, abef);
        st1 = _mm_add_epi32(st1, cdgh);
        p += 64;
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);                          /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);                          /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);                       /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);                          /* ABEF */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

#endif /* WFH_SHA_NI */

int wfh_sha256_uses_ni(void)
{
#if WFH_SHA_NI
    return !force_portable && have_ni();
#else
    return 0;
#endif
}

void wfh_sha256_force_portable(int on) { force_portable = on; }

void wfh_sha256_init(wfh_sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memset(s, 0, sizeof *s);
    s->ni = wfh_sha256_uses_ni();
    if (s->ni)
        memcpy(s->h, iv, sizeof iv);
    else
        crypto_hash_sha256_init(&s->sodium);
}

void wfh_sha256_update(wfh_sha256 *s, const void *data, size_t len)
{
    if (!s->ni) {
        crypto_hash_sha256_update(&s->sodium, data, len);
        return;
    }
#if WFH_SHA_NI
    const uint8_t *p = data;
    s->bytes += len;
    if (s->n_buf) {
        size_t take = 64 - s->n_buf < len ? 64 - s->n_buf : len;
        memcpy(s->buf + s->n_buf, p, take);
        s->n_buf += take;
        p += take;
        len -= take;
        if (s->n_buf < 64)
            return;
        ni_blocks(s->h, s->buf, 1);
        s->n_buf = 0;
    }
    if (len >= 64) {
        ni_blocks(s->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    memcpy(s->buf, p, len);
    s->n_buf = len;
#endif
}

void wfh_sha256_final(wfh_sha256 *s, uint8_t out[32])
{
    if (!s->ni) {
        crypto_hash_sha256_final(&s->sodium, out);
        return;
    }
#if WFH_SHA_NI
    uint64_t bits = s->bytes * 8;
    uint8_t pad[72] = {0x80};
    /* 0x80, zeros up to 56 mod 64, then the length in bits, big-endian */
    size_t n = (s->n_buf < 56 ? 56 : 120) - s->n_buf;
    for (int i = 0; i < 8; i++)
        pad[n + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    wfh_sha256_update(s, pad, n + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
#endif
    memset(s, 0, sizeof *s);
}

void wfh_sha256_digest(uint8_t out[32], const void *data, size_t len)
{
    wfh_sha256 s;
    wfh_sha256_init(&s);
    wfh_sha256_update(&s, data, len);
    wfh_sha256_final(&s, out);
}
