/*
 * tests/unit/test_sha256.c - registry/sha256.c, the SHA-256 the registry checks blobs
 * and the index with: the FIPS 180 examples, and the same digests as libsodium's for
 * every length up to 1 KiB and for one buffer fed in many chunkings, on both of its
 * paths (the x86 SHA extensions when this CPU has them, and libsodium's code).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "registry/sha256.h"

static void hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void expect_hex(const void *data, size_t len, const char *want)
{
    uint8_t d[32];
    char h[65];
    wfh_sha256_digest(d, data, len);
    hex(d, h);
    assert_string_equal(h, want);
}

static void fips_vectors(void)
{
    expect_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_hex(m448, strlen(m448),
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    static uint8_t million[1000000];
    memset(million, 'a', sizeof million);
    expect_hex(million, sizeof million,
               "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every length 0..1024 in one call, and a 100 KB buffer fed in chunks of 1..200 bytes
 * (crossing block boundaries every way), against crypto_hash_sha256. */
static void same_as_sodium(void)
{
    static uint8_t buf[100000];
    randombytes_buf(buf, sizeof buf);
    uint8_t a[32], b[32];
    for (size_t n = 0; n <= 1024; n++) {
        wfh_sha256_digest(a, buf, n);
        crypto_hash_sha256(b, buf, n);
        assert_memory_equal(a, b, 32);
    }
    for (size_t step = 1; step <= 200; step += 7) {
        wfh_sha256 s;
        wfh_sha256_init(&s);
        for (size_t off = 0; off < sizeof buf;) {
            size_t take = step + (off % 3);
            if (take > sizeof buf - off)
                take = sizeof buf - off;
            wfh_sha256_update(&s, buf + off, take);
            off += take;
        }
        wfh_sha256_final(&s, a);
        crypto_hash_sha256(b, buf, sizeof buf);
        assert_memory_equal(a, b, 32);
    }
}

static void test_fast_path(void **state)
{
    (void)state;
    wfh_sha256_force_portable(0);
    print_message("SHA extensions: %s\n", wfh_sha256_uses_ni() ? "used" : "not on this CPU");
    fips_vectors();
    same_as_sodium();
}

static void test_portable_path(void **state)
{
    (void)state;
    wfh_sha256_force_portable(1);
    assert_int_equal(wfh_sha256_uses_ni(), 0);
    fips_vectors();
    same_as_sodium();
    wfh_sha256_force_portable(0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_path),
        cmocka_unit_test(test_portable_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
