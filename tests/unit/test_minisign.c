/*
 * tests/unit/test_minisign.c - minisign formats over libsodium (registry/minisign.c):
 * sign/verify round trips, every kind of tampering, legacy "Ed" refusal, key files, and
 * a known-answer test against a signature made by the stock minisign 0.11 binary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/error.h"
#include "registry/minisign.h"

static const char msg[] = "the index bytes\n";

static void keypair(wfh_ms_pubkey *pk, wfh_ms_seckey *sk)
{
    assert_int_equal(wfh_ms_keygen(pk, sk), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    wfh_ms_pubkey pk;
    wfh_ms_seckey sk;
    wfh_ms_sig sig;
    char *text = NULL;
    keypair(&pk, &sk);
    assert_int_equal(wfh_ms_sign(&sk, msg, strlen(msg), "wfhost-index seq=7", &text), 0);
    assert_non_null(strstr(text, "\ntrusted comment: wfhost-index seq=7\n"));
    assert_int_equal(wfh_ms_sig_parse(text, strlen(text), "sig", &sig), 0);
    assert_memory_equal(sig.alg, "ED", 2);
    assert_string_equal(sig.trusted_comment, "wfhost-index seq=7");
    assert_int_equal(wfh_ms_verify(&sig, &pk, msg, strlen(msg), "sig"), 0);
    /* one changed byte of the message */
    char other[sizeof msg];
    memcpy(other, msg, sizeof msg);
    other[0] ^= 1;
    assert_int_equal(wfh_ms_verify(&sig, &pk, other, strlen(other), "sig"), WFH_ESECURITY);
    assert_non_null(strstr(wfh_error_last(), "signature does not match the file"));
    /* edited trusted comment */
    sig.trusted_comment[strlen(sig.trusted_comment) - 1] = '8';
    assert_int_equal(wfh_ms_verify(&sig, &pk, msg, strlen(msg), "sig"), WFH_ESECURITY);
    assert_non_null(strstr(wfh_error_last(), "trusted comment signature is invalid"));
    sig.trusted_comment[strlen(sig.trusted_comment) - 1] = '7';
    /* legacy algorithm bytes */
    memcpy(sig.alg, "Ed", 2);
    assert_int_equal(wfh_ms_verify(&sig, &pk, msg, strlen(msg), "sig"), WFH_ESECURITY);
    assert_non_null(strstr(wfh_error_last(), "legacy"));
    memcpy(sig.alg, "ED", 2);
    /* another key with the same key id: the id is a hint, the key decides */
    wfh_ms_pubkey pk2;
    wfh_ms_seckey sk2;
    keypair(&pk2, &sk2);
    memcpy(pk2.keyid, pk.keyid, 8);
    assert_int_equal(wfh_ms_verify(&sig, &pk2, msg, strlen(msg), "sig"), WFH_ESECURITY);
    /* a different key id */
    sig.keyid[0] ^= 1;
    assert_int_equal(wfh_ms_verify(&sig, &pk, msg, strlen(msg), "sig"), WFH_ESECURITY);
    assert_non_null(strstr(wfh_error_last(), "signed by key"));
    wfh_ms_sig_clear(&sig);
    free(text);
}

static void test_sign_refuses_newline_comment(void **state)
{
    (void)state;
    wfh_ms_pubkey pk;
    wfh_ms_seckey sk;
    char *text = NULL;
    keypair(&pk, &sk);
    assert_int_equal(wfh_ms_sign(&sk, msg, strlen(msg), "a\nb", &text), WFH_EINVAL);
    assert_null(text);
}

static void test_key_files_roundtrip(void **state)
{
    (void)state;
    wfh_ms_pubkey pk, pk_back, pk_line;
    wfh_ms_seckey sk, sk_back;
    keypair(&pk, &sk);
    char *pub = wfh_ms_pubkey_file_text(&pk);
    char *sec = wfh_ms_seckey_file_text(&sk);
    assert_int_equal(wfh_ms_pubkey_parse(pub, strlen(pub), "pub", &pk_back), 0);
    assert_memory_equal(&pk, &pk_back, sizeof pk);
    char b64[57];
    wfh_ms_pubkey_b64(&pk, b64);
    assert_int_equal(wfh_ms_pubkey_parse(b64, strlen(b64), "line", &pk_line), 0);
    assert_memory_equal(&pk, &pk_line, sizeof pk);
    assert_int_equal(wfh_ms_seckey_parse(sec, strlen(sec), "sec", &sk_back), 0);
    assert_memory_equal(&sk, &sk_back, sizeof sk);
    /* a flipped bit in the secret key's base64 trips the checksum or the key check */
    char *nl = strchr(sec, '\n');
    nl[130] = nl[130] == 'A' ? 'B' : 'A'; /* inside the key bytes, past the KDF fields */
    assert_true(wfh_ms_seckey_parse(sec, strlen(sec), "sec", &sk_back) < 0);
    free(pub);
    free(sec);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    wfh_ms_pubkey pk;
    wfh_ms_sig sig;
    const char *bad_pub[] = {"", "RWQ", "untrusted comment: x\n", "untrusted comment: x\n!!!!\n",
                             "x\ny\nz\n",
                             /* 42 bytes but algorithm "Xx" */
                             "WHgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad_pub / sizeof bad_pub[0]; i++)
        assert_true(wfh_ms_pubkey_parse(bad_pub[i], strlen(bad_pub[i]), "pub", &pk) < 0);
    const char *bad_sig[] = {"", "untrusted comment: a\n", "untrusted comment: a\nAAAA\ntrusted comment: x\nAAAA\n",
                             "a\nb\nc\nd\n", "untrusted comment: a\nb\nc\nd\ne\n"};
    for (size_t i = 0; i < sizeof bad_sig / sizeof bad_sig[0]; i++) {
        assert_true(wfh_ms_sig_parse(bad_sig[i], strlen(bad_sig[i]), "sig", &sig) < 0);
        wfh_ms_sig_clear(&sig);
    }
    /* An encrypted secret key is refused with a pointer to minisign. */
    static const char enc[] =
        "untrusted comment: minisign encrypted secret key\n"
        "RWRTY0IyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    wfh_ms_seckey sk;
    int err = wfh_ms_seckey_parse(enc, strlen(enc), "enc.key", &sk);
    assert_true(err < 0);
}

/* Made with the stock tool: minisign -G -W; echo hi > f; minisign -S -m f -t hello. */
static void test_known_answer_from_minisign(void **state)
{
    (void)state;
    static const char pub[] = "untrusted comment: minisign public key 9A63EB6717B0AFB9\n"
                              "RWS5r7AXZ+tjmrOPQdbYbkUpkoGG0B22kw1K1dhM64Y87O67aerBNMXC\n";
    static const char sigtext[] =
        "untrusted comment: signature from minisign secret key\n"
        "RUS5r7AXZ+tjms4BK4Fjkbo8ljlH3iP3k2xzhwy7c2EtG5wC5MKTgZLgE/Wc9TtG9OINo39f3XiixFck82RrKHYqGozy3dJMfQ4=\n"
        "trusted comment: hello\n"
        "qnqZkHKtn9JUXWQlSf4NHGsBNtNlNeWdFVeLOCvnUGekfiSUSStvwzjU6y/GPuB4pzqMZM4qtOYBMNILpYS7CQ==\n";
    wfh_ms_pubkey pk;
    wfh_ms_sig sig;
    char id[17];
    assert_int_equal(wfh_ms_pubkey_parse(pub, strlen(pub), "pub", &pk), 0);
    wfh_ms_keyid_hex(pk.keyid, id);
    assert_string_equal(id, "9A63EB6717B0AFB9");
    assert_int_equal(wfh_ms_sig_parse(sigtext, strlen(sigtext), "sig", &sig), 0);
    assert_int_equal(wfh_ms_verify(&sig, &pk, "hi\n", 3, "sig"), 0);
    assert_int_equal(wfh_ms_verify(&sig, &pk, "hi!\n", 4, "sig"), WFH_ESECURITY);
    wfh_ms_sig_clear(&sig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_sign_refuses_newline_comment),
        cmocka_unit_test(test_key_files_roundtrip),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_known_answer_from_minisign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
