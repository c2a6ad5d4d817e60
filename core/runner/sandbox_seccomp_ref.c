/*
 * core/runner/sandbox_seccomp_ref.c - the step's seccomp rules (sandbox_seccomp.h) as
 * libseccomp generates them. Two uses: the runner's program on architectures where
 * sandbox_seccomp.c does not write it by hand (compiled into the runner only there,
 * core/CMakeLists.txt), and, on every architecture, the reference
 * tests/unit/test_seccomp_filter.c proves the hand-written program against. The program
 * is exported with seccomp_export_bpf (libseccomp 2.5 has no in-memory export) through
 * a memfd and never loaded here: the caller loads it.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox_seccomp.h"

/* SCMP_A0() and friends leave datum_b out, which clang's -Wextra rejects. */
static struct scmp_arg_cmp cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
    struct scmp_arg_cmp c = {arg, op, a, b};
    return c;
}

/* Adds rule @p r; 0 or a negative errno. A name this architecture lacks is skipped. */
static int add_rule(scmp_filter_ctx ctx, const wfh_seccomp_rule *r)
{
    int nr = seccomp_syscall_resolve_name(r->name);
    if (nr == __NR_SCMP_ERROR)
        return 0;
    uint32_t act = SCMP_ACT_ERRNO((uint32_t)r->errno_);
    if (r->n_cond == 1 && r->cond[0].op == WFH_SC_ANYBIT) {
        /* Masked comparisons test "all bits of the mask": one rule per bit. */
        for (unsigned bit = 0; bit < 32; bit++) {
            scmp_datum_t m = r->cond[0].mask & (1U << bit);
            if (!m)
                continue;
            int rc =
                seccomp_rule_add(ctx, act, nr, 1, cmp(r->cond[0].arg, SCMP_CMP_MASKED_EQ, m, m));
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    struct scmp_arg_cmp c[2];
    for (size_t i = 0; i < r->n_cond; i++) {
        const wfh_seccomp_cond *k = &r->cond[i];
        if (k->op == WFH_SC_NE)
            c[i] = cmp(k->arg, SCMP_CMP_NE, k->value, 0);
        else if (k->op == WFH_SC_EQ)
            /* The low 32 bits, as the kernel reads an int. */
            c[i] = cmp(k->arg, SCMP_CMP_MASKED_EQ, k->mask, k->value);
        else
            return -EINVAL; /* ANYBIT only alone (above) */
    }
    return seccomp_rule_add_array(ctx, act, nr, (unsigned)r->n_cond, c);
}

int wfh_seccomp_ref_build(const wfh_sandbox_spec *spec, int asan, struct sock_filter **out,
                          size_t *n, const char **what)
{
    *out = NULL;
    *n = 0;
    *what = "init";
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW); /* owned */
    if (!ctx)
        return -ENOSYS;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, WFH_SECCOMP_BADARCH);
    const size_t n_denied = sizeof wfh_seccomp_denied / sizeof wfh_seccomp_denied[0];
    for (size_t i = 0; i < n_denied && rc == 0; i++) {
        const wfh_seccomp_deny *d = &wfh_seccomp_denied[i];
        int nr = seccomp_syscall_resolve_name(d->name);
        if (nr == __NR_SCMP_ERROR || (asan && d->asan_hole))
            continue; /* not on this architecture, or the sanitizer's hole */
        *what = d->name;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    const size_t n_rules = sizeof wfh_seccomp_rules / sizeof wfh_seccomp_rules[0];
    for (size_t i = 0; i < n_rules && rc == 0; i++) {
        const wfh_seccomp_rule *r = &wfh_seccomp_rules[i];
        if (r->unless_net_all && spec->net_all)
            continue;
        *what = r->name;
        rc = add_rule(ctx, r);
    }
    int fd = -1;
    if (rc == 0) {
        *what = "export";
        fd = memfd_create("wfh-seccomp", MFD_CLOEXEC);
        rc = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
    }
    struct stat st;
    if (rc == 0 && fstat(fd, &st) != 0)
        rc = -errno;
    if (rc == 0 && (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter)))
        rc = -EIO;
    if (rc == 0 && !(*out = malloc((size_t)st.st_size)))
        rc = -ENOMEM;
    if (rc == 0 && pread(fd, *out, (size_t)st.st_size, 0) != st.st_size)
        rc = -EIO;
    if (rc == 0)
        *n = (size_t)st.st_size / sizeof(struct sock_filter);
    if (rc != 0) {
        free(*out);
        *out = NULL;
    }
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return rc;
}
