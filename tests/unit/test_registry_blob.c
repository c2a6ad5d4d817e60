/*
 * tests/unit/test_registry_blob.c - the verified plugin bytes a process keeps
 * (registry/registry.c, wfh_registry_blob_memfd): a blob that checked out is hashed once
 * however many attempts load it, each attempt gets its own descriptor of the same
 * sealed bytes, and any change to the file - rewritten in place with the same size and
 * its mtime set back, or replaced by rename - is hashed again and refused. A file that
 * changed just before it was hashed is not kept. Each digest is compared on its own, and
 * past WFH_REG_BLOB_CACHE_MAX blobs the least recently used one is dropped. The hash counter
 * (wfh_registry_blob_hash_count) is what tells a reuse from a hash; no timing is
 * asserted (the waits only let a file's change time age past the 100 ms rule).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../core/error.h"
#include "registry/registry.h"

typedef struct blobfix {
    char dir[64];
    char path[128];
    char b2[65], sha[65];
    unsigned char bytes[40000];
} blobfix;

static void hexify(const unsigned char *d, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void write_file(const char *path, const unsigned char *b, size_t n)
{
    (void)chmod(path, 0644); /* blobs are 0444 */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, 0444), 0);
}

/* Past the 100 ms rule: a file whose last change is this old may be kept. */
static void settle(void)
{
    struct timespec ts = {0, 250 * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    blobfix *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(sodium_init() < 0, 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/wfh-blob-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/blob.so", f->dir);
    randombytes_buf(f->bytes, sizeof f->bytes);
    unsigned char d[32];
    crypto_generichash(d, 32, f->bytes, sizeof f->bytes, NULL, 0);
    hexify(d, f->b2);
    crypto_hash_sha256(d, f->bytes, sizeof f->bytes);
    hexify(d, f->sha);
    write_file(f->path, f->bytes, sizeof f->bytes);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    blobfix *f = *state;
    char p[160];
    unlink(f->path);
    snprintf(p, sizeof p, "%s/new.so", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The bytes behind @p fd are the fixture's, and the descriptor cannot write them. */
static void expect_bytes(const blobfix *f, int fd)
{
    static unsigned char got[sizeof f->bytes + 1];
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, got, sizeof got, 0), (ssize_t)sizeof f->bytes);
    assert_memory_equal(got, f->bytes, sizeof f->bytes);
    assert_true(pwrite(fd, "x", 1, 0) < 0);
}

static int memfd_of(const blobfix *f, int *fd)
{
    return wfh_registry_blob_memfd(f->path, f->b2, f->sha, sizeof f->bytes, "fixture@1.0.0", fd);
}

/* Let the file settle and load it once, so it is kept; the hash count after that. */
static unsigned long load_kept(const blobfix *f)
{
    settle();
    int fd = -1;
    assert_int_equal(memfd_of(f, &fd), 0);
    close(fd);
    return wfh_registry_blob_hash_count();
}

/* 100 attempts of one plugin: the check before the run hashes it, no attempt does. */
static void test_hashed_once(void **state)
{
    blobfix *f = *state;
    settle();
    unsigned long before = wfh_registry_blob_hash_count();
    assert_int_equal(wfh_registry_check_blob_file(f->path, "fixture", "1.0.0", f->b2, f->sha,
                                                  sizeof f->bytes),
                     0);
    assert_int_equal(wfh_registry_blob_hash_count(), before + 1);
    int first = -1;
    for (int i = 0; i < 100; i++) {
        int fd = -1;
        assert_int_equal(memfd_of(f, &fd), 0);
        if (i == 0 || i == 99)
            expect_bytes(f, fd);
        if (i == 0)
            first = fd;
        else
            close(fd);
    }
    assert_int_equal(wfh_registry_blob_hash_count(), before + 1);
    /* each attempt has its own open file: no shared offset between runners */
    int fd = -1;
    assert_int_equal(memfd_of(f, &fd), 0);
    assert_int_equal(lseek(first, 100, SEEK_SET), 100);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
    close(fd);
    close(first);
}

/* Same size, a flipped byte, the mtime set back: the change time gives it away, and
 * the next attempt is refused as a tampered blob is. */
static void test_rewritten_same_size_same_mtime(void **state)
{
    blobfix *f = *state;
    unsigned long before = load_kept(f);
    int fd = -1;
    assert_int_equal(memfd_of(f, &fd), 0); /* kept: no hash */
    close(fd);
    assert_int_equal(wfh_registry_blob_hash_count(), before);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(chmod(f->path, 0644), 0);
    int w = open(f->path, O_WRONLY | O_CLOEXEC);
    assert_true(w >= 0);
    unsigned char c = f->bytes[5000] ^ 1;
    assert_int_equal(pwrite(w, &c, 1, 5000), 1);
    close(w);
    assert_int_equal(chmod(f->path, 0444), 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, f->path, times, 0), 0);
    struct stat st2;
    assert_int_equal(stat(f->path, &st2), 0);
    assert_int_equal(st2.st_size, st.st_size);
    assert_int_equal(st2.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
    assert_int_equal(st2.st_mtim.tv_sec, st.st_mtim.tv_sec);

    fd = -1;
    assert_int_equal(memfd_of(f, &fd), WFH_ESECURITY);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(wfh_error_last(), "hash mismatch"));
    assert_int_equal(wfh_registry_blob_hash_count(), before + 1);
    /* and again: a refused file is never kept */
    assert_int_equal(memfd_of(f, &fd), WFH_ESECURITY);
    assert_int_equal(wfh_registry_blob_hash_count(), before + 2);

    /* put back: accepted again, hashed once more */
    write_file(f->path, f->bytes, sizeof f->bytes);
    assert_int_equal(memfd_of(f, &fd), 0);
    expect_bytes(f, fd);
    close(fd);
}

/* Replaced by rename (another inode of the same size, mtime copied): hashed again. */
static void test_replaced_by_rename(void **state)
{
    blobfix *f = *state;
    unsigned long before = load_kept(f);
    int fd = -1;
    char np[160];
    snprintf(np, sizeof np, "%s/new.so", f->dir);
    unsigned char *other = malloc(sizeof f->bytes);
    assert_non_null(other);
    memcpy(other, f->bytes, sizeof f->bytes);
    other[0] ^= 0x80;
    write_file(np, other, sizeof f->bytes);
    free(other);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, np, times, 0), 0);
    assert_int_equal(rename(np, f->path), 0);
    assert_int_equal(memfd_of(f, &fd), WFH_ESECURITY);
    assert_int_equal(wfh_registry_blob_hash_count(), before + 1);
    write_file(f->path, f->bytes, sizeof f->bytes);
}

/* A file changed just before it was hashed is not kept: each attempt hashes it until
 * it has settled. */
static void test_fresh_file_not_kept(void **state)
{
    blobfix *f = *state;
    write_file(f->path, f->bytes, sizeof f->bytes); /* changed now */
    unsigned long before = wfh_registry_blob_hash_count();
    for (int i = 0; i < 3; i++) {
        int fd = -1;
        assert_int_equal(memfd_of(f, &fd), 0);
        expect_bytes(f, fd);
        close(fd);
    }
    assert_int_equal(wfh_registry_blob_hash_count(), before + 3);
}

/* The wrong expectations never match a kept entry: another size or digest is its own
 * check, refused as before. */
static void test_other_expectations_not_served(void **state)
{
    blobfix *f = *state;
    (void)load_kept(f);
    int fd = -1;
    char bad[65];
    memcpy(bad, f->b2, sizeof bad);
    bad[0] = bad[0] == '0' ? '1' : '0';
    assert_int_equal(wfh_registry_blob_memfd(f->path, bad, f->sha, sizeof f->bytes, "x@1", &fd),
                     WFH_ESECURITY);
    assert_int_equal(wfh_registry_blob_memfd(f->path, f->b2, f->sha, sizeof f->bytes - 1, "x@1",
                                             &fd),
                     WFH_ESECURITY);
    assert_int_equal(fd, -1);
}

/* Each digest is compared on its own: the right BLAKE2b-256 with a wrong SHA-256 is
 * refused, and the other way round, whether the file was kept or not (a kept entry
 * only serves the exact expectations it was checked against). */
static void test_each_hash_checked(void **state)
{
    blobfix *f = *state;
    char bad_b2[65], bad_sha[65];
    memcpy(bad_b2, f->b2, sizeof bad_b2);
    memcpy(bad_sha, f->sha, sizeof bad_sha);
    bad_b2[63] = bad_b2[63] == '0' ? '1' : '0';
    bad_sha[63] = bad_sha[63] == '0' ? '1' : '0';
    for (int kept = 0; kept < 2; kept++) {
        if (kept)
            (void)load_kept(f);
        int fd = -1;
        assert_int_equal(wfh_registry_blob_memfd(f->path, f->b2, bad_sha, sizeof f->bytes,
                                                 "x@1", &fd),
                         WFH_ESECURITY);
        assert_int_equal(fd, -1);
        assert_non_null(strstr(wfh_error_last(), "hash mismatch"));
        assert_int_equal(wfh_registry_blob_memfd(f->path, bad_b2, f->sha, sizeof f->bytes,
                                                 "x@1", &fd),
                         WFH_ESECURITY);
        assert_int_equal(fd, -1);
        assert_int_equal(wfh_registry_check_blob_file(f->path, "x", "1.0.0", f->b2, bad_sha,
                                                      sizeof f->bytes),
                         WFH_ESECURITY);
        assert_int_equal(wfh_registry_check_blob_file(f->path, "x", "1.0.0", bad_b2, f->sha,
                                                      sizeof f->bytes),
                         WFH_ESECURITY);
        assert_int_equal(memfd_of(f, &fd), 0);
        expect_bytes(f, fd);
        close(fd);
    }
}

/* More plugins than the process keeps: the least recently used is dropped for the new
 * one (hashed again at its next load), the others are still served without a hash. */
#define LRU_N (WFH_REG_BLOB_CACHE_MAX + 1)
static void test_lru_eviction(void **state)
{
    blobfix *f = *state;
    static char paths[LRU_N][160], b2[LRU_N][65], sha[LRU_N][65];
    static unsigned char bytes[LRU_N][4096];
    for (int i = 0; i < LRU_N; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/p%02d.so", f->dir, i);
        randombytes_buf(bytes[i], sizeof bytes[i]);
        unsigned char d[32];
        crypto_generichash(d, 32, bytes[i], sizeof bytes[i], NULL, 0);
        hexify(d, b2[i]);
        crypto_hash_sha256(d, bytes[i], sizeof bytes[i]);
        hexify(d, sha[i]);
        write_file(paths[i], bytes[i], sizeof bytes[i]);
    }
    settle();
#define LOAD(i, expect_hash)                                                                \
    do {                                                                                    \
        unsigned long before_ = wfh_registry_blob_hash_count();                             \
        int fd_ = -1;                                                                       \
        assert_int_equal(wfh_registry_blob_memfd(paths[i], b2[i], sha[i], sizeof bytes[i],  \
                                                 "lru@1", &fd_),                            \
                         0);                                                                \
        assert_true(fd_ >= 0);                                                              \
        close(fd_);                                                                         \
        assert_int_equal(wfh_registry_blob_hash_count(), before_ + ((expect_hash) ? 1 : 0)); \
    } while (0)
    /* The first WFH_REG_BLOB_CACHE_MAX fill the cache (pushing out what earlier tests
     * left), and are all served from it afterwards. */
    for (int i = 0; i < WFH_REG_BLOB_CACHE_MAX; i++)
        LOAD(i, 1);
    for (int i = 0; i < WFH_REG_BLOB_CACHE_MAX; i++)
        LOAD(i, 0);
    /* Use #0 again, so #1 is now the least recently used: the new one takes its place. */
    LOAD(0, 0);
    LOAD(LRU_N - 1, 1);
    LOAD(LRU_N - 1, 0);
    LOAD(0, 0);
    LOAD(1, 1); /* evicted: hashed again (and kept again, in place of #2) */
    LOAD(1, 0);
    for (int i = 3; i < WFH_REG_BLOB_CACHE_MAX; i++)
        LOAD(i, 0);
    LOAD(2, 1);
    /* An evicted blob is still checked like any other: tampered, it is refused. */
    bytes[4][100] ^= 1;
    write_file(paths[4], bytes[4], sizeof bytes[4]);
    int fd = -1;
    assert_int_equal(wfh_registry_blob_memfd(paths[4], b2[4], sha[4], sizeof bytes[4], "lru@1",
                                             &fd),
                     WFH_ESECURITY);
#undef LOAD
    for (int i = 0; i < LRU_N; i++)
        unlink(paths[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hashed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewritten_same_size_same_mtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced_by_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_file_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_expectations_not_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_hash_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lru_eviction, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
