/*
 * tests/unit/test_seccomp_filter.c - the proof that the hand-written seccomp program
 * (core/runner/sandbox_seccomp.c, the runner's on x86-64 and arm64) answers every
 * system call as libseccomp's program for the same rules does
 * (core/runner/sandbox_seccomp_ref.c; both read the one table in sandbox_seccomp.h).
 *
 * Both programs are built for each spec the filter depends on (no network, a port
 * grant, every port; with and without the sanitizer build's ptrace hole) and run
 * through this file's own classic-BPF interpreter over: every syscall number 0..599,
 * the x32 range, -1 and a few extremes, foreign audit arches, and a grid of arguments
 * for the calls with argument rules. Verdicts must be identical, with one documented
 * exception where an int argument has high bits set: the hand-written program decides
 * on the low 32 bits, as the kernel reads an int, and libseccomp's rule
 * personality(!= 0xffffffff) compares all 64, so personality(0x1_ffffffff), which the
 * kernel reads as the query 0xffffffff, is allowed by ours and refused by libseccomp.
 * Every such case is asserted explicitly (ours equals the reference's verdict on the
 * low 32 bits; and ours is at least as strict except for that query). A few absolute
 * verdicts (mount refused, write allowed, ...) guard the table itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <seccomp.h>

#include "sandbox_seccomp.h"

/* sandbox_seccomp.c's apply path reports through this; the builders never call it. */
int wfh_sandbox_fail(int code, const char *fmt, ...)
{
    (void)fmt;
    return code;
}

#define BAD_PROGRAM 0xdeadbeefU /* not an action any builder emits */

/* Runs @p prog (@p n instructions) on @p d as the kernel would; BAD_PROGRAM if the
 * program does something the kernel's checker would refuse. */
static uint32_t run_bpf(const struct sock_filter *prog, size_t n, const struct seccomp_data *d)
{
    uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
    const unsigned char *data = (const unsigned char *)d;
    for (size_t pc = 0; pc < n; pc++) {
        const struct sock_filter *f = &prog[pc];
        uint32_t k = f->k, src;
        switch (BPF_CLASS(f->code)) {
        case BPF_LD:
        case BPF_LDX: {
            uint32_t v;
            if (BPF_MODE(f->code) == BPF_ABS && BPF_SIZE(f->code) == BPF_W) {
                if (k % 4 || k + 4 > sizeof *d)
                    return BAD_PROGRAM;
                memcpy(&v, data + k, 4);
            } else if (BPF_MODE(f->code) == BPF_IMM) {
                v = k;
            } else if (BPF_MODE(f->code) == BPF_MEM && k < BPF_MEMWORDS) {
                v = mem[k];
            } else if (BPF_MODE(f->code) == BPF_LEN) {
                v = sizeof *d;
            } else {
                return BAD_PROGRAM;
            }
            if (BPF_CLASS(f->code) == BPF_LD)
                a = v;
            else
                x = v;
            break;
        }
        case BPF_ST:
        case BPF_STX:
            if (k >= BPF_MEMWORDS)
                return BAD_PROGRAM;
            mem[k] = BPF_CLASS(f->code) == BPF_ST ? a : x;
            break;
        case BPF_ALU:
            src = BPF_SRC(f->code) == BPF_X ? x : k;
            switch (BPF_OP(f->code)) {
            case BPF_ADD:
                a += src;
                break;
            case BPF_SUB:
                a -= src;
                break;
            case BPF_MUL:
                a *= src;
                break;
            case BPF_DIV:
                if (!src)
                    return BAD_PROGRAM;
                a /= src;
                break;
            case BPF_OR:
                a |= src;
                break;
            case BPF_AND:
                a &= src;
                break;
            case BPF_LSH:
                a = src < 32 ? a << src : 0;
                break;
            case BPF_RSH:
                a = src < 32 ? a >> src : 0;
                break;
            case BPF_NEG:
                a = -a;
                break;
            default:
                return BAD_PROGRAM;
            }
            break;
        case BPF_JMP: {
            if (BPF_OP(f->code) == BPF_JA) {
                pc += k;
                break;
            }
            src = BPF_SRC(f->code) == BPF_X ? x : k;
            int t;
            switch (BPF_OP(f->code)) {
            case BPF_JEQ:
                t = a == src;
                break;
            case BPF_JGT:
                t = a > src;
                break;
            case BPF_JGE:
                t = a >= src;
                break;
            case BPF_JSET:
                t = (a & src) != 0;
                break;
            default:
                return BAD_PROGRAM;
            }
            pc += t ? f->jt : f->jf;
            break;
        }
        case BPF_RET:
            return BPF_RVAL(f->code) == BPF_A ? a : k;
        case BPF_MISC:
            if (BPF_MISCOP(f->code) == BPF_TAX)
                x = a;
            else
                a = x;
            break;
        default:
            return BAD_PROGRAM;
        }
    }
    return BAD_PROGRAM; /* fell off the end */
}

/* How strict a verdict is: allow < errno < kill thread < kill process. */
static int strictness(uint32_t v)
{
    switch (v & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_ALLOW:
        return 0;
    case SECCOMP_RET_ERRNO:
        return 1;
    case SECCOMP_RET_KILL_THREAD:
        return 2;
    case SECCOMP_RET_KILL_PROCESS:
        return 3;
    default:
        return -1;
    }
}

typedef struct programs {
    struct sock_filter ours[256];
    size_t n_ours;
    struct sock_filter *ref; /* owned */
    size_t n_ref;
} programs;

static void build_both(const wfh_sandbox_spec *spec, int asan, programs *p)
{
    const char *what = NULL;
    int rc = wfh_seccomp_ref_build(spec, asan, &p->ref, &p->n_ref, &what);
    if (rc != 0)
        fail_msg("libseccomp (%s): %s", what, strerror(-rc));
#if WFH_SECCOMP_BY_HAND
    assert_int_equal(wfh_seccomp_build(spec, asan, p->ours, 256, &p->n_ours), 0);
#else
    memcpy(p->ours, p->ref, p->n_ref * sizeof p->ref[0]); /* nothing hand-written here */
    p->n_ours = p->n_ref;
#endif
    assert_true(p->n_ours > 0 && p->n_ref > 0);
}

static struct seccomp_data data(uint32_t arch, int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
    struct seccomp_data d = {.nr = nr, .arch = arch, .instruction_pointer = 0x7f0012345678};
    d.args[0] = a0;
    d.args[1] = a1;
    d.args[2] = a2;
    d.args[3] = d.args[4] = d.args[5] = 0xdeadbeefcafef00dULL;
    return d;
}

static void same(const programs *p, const struct seccomp_data *d, const char *what)
{
    uint32_t o = run_bpf(p->ours, p->n_ours, d), r = run_bpf(p->ref, p->n_ref, d);
    if (o == BAD_PROGRAM || r == BAD_PROGRAM || o != r)
        fail_msg("%s: arch %#x nr %d args %#llx %#llx %#llx: ours %#x, libseccomp %#x", what,
                 d->arch, d->nr, (unsigned long long)d->args[0], (unsigned long long)d->args[1],
                 (unsigned long long)d->args[2], o, r);
}

#ifndef AUDIT_ARCH_RISCV64
#define AUDIT_ARCH_RISCV64 0xc00000f3U
#endif
static const uint32_t arches[] = {AUDIT_ARCH_X86_64, AUDIT_ARCH_I386,    AUDIT_ARCH_AARCH64,
                                  AUDIT_ARCH_ARM,    AUDIT_ARCH_RISCV64, AUDIT_ARCH_PPC64LE,
                                  AUDIT_ARCH_S390X,  AUDIT_ARCH_MIPS,    0,
                                  0xffffffffU};

/* The native arch as libseccomp knows it (what both programs accept). */
static uint32_t native_arch(void)
{
    return seccomp_arch_native();
}

/* The specs the filter can depend on; asan is passed separately. */
static void spec_for(int which, wfh_sandbox_spec *s, uint16_t *port)
{
    memset(s, 0, sizeof *s);
    s->profile = WFH_SANDBOX_STRICT;
    if (which == 1) { /* a port grant */
        *port = 8080;
        s->ports = port;
        s->n_ports = 1;
    } else if (which == 2) { /* every port */
        s->net_all = 1;
    }
}

static void each_spec(void (*check)(const programs *, const wfh_sandbox_spec *, int))
{
    for (int which = 0; which < 3; which++)
        for (int asan = 0; asan < 2; asan++) {
            wfh_sandbox_spec spec;
            uint16_t port;
            spec_for(which, &spec, &port);
            programs p;
            memset(&p, 0, sizeof p);
            build_both(&spec, asan, &p);
            check(&p, &spec, asan);
            free(p.ref);
        }
}

static void check_numbers(const programs *p, const wfh_sandbox_spec *spec, int asan)
{
    (void)spec;
    (void)asan;
    static const int extremes[] = {
        -1,   -2,   0x3fffffff, 0x7fffffff, (int)0x80000000U, (int)0xbfffffffU, (int)0xc0000000U,
        1000, 4095, 65535};
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
        for (int nr = 0; nr < 600; nr++) {
            struct seccomp_data d = data(arches[a], nr, 0, 0, 0);
            same(p, &d, "number");
            d = data(arches[a], (int)(0x40000000U | (unsigned)nr), 0, 0, 0); /* x32 */
            same(p, &d, "x32");
        }
        for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++) {
            struct seccomp_data d = data(arches[a], extremes[i], 0, 0, 0);
            same(p, &d, "extreme number");
        }
    }
}

static void test_numbers_and_arches(void **state)
{
    (void)state;
    each_spec(check_numbers);
}

/* The values each argument of the argument-ruled calls takes, low 32 bits. */
static const uint32_t grid[] = {
    0,
    1,
    2,
    3,
    5,
    AF_INET,
    AF_INET6,
    AF_PACKET,
    AF_NETLINK,
    SOCK_STREAM,
    SOCK_DGRAM,
    SOCK_RAW,
    SOCK_DGRAM | SOCK_CLOEXEC,
    SOCK_RAW | SOCK_NONBLOCK,
    SOCK_SEQPACKET,
    IPPROTO_UDP,
    IPPROTO_MPTCP,
    IPPROTO_MPTCP | 0x10000,
    TIOCSTI,
    TIOCSTI | 0x10000,
    TIOCGWINSZ,
    0xffffffffU,
    0xfffffffeU,
    0x7fffffffU,
    0x11 /* SIGCHLD */,
    CLONE_VM | CLONE_FS | 0x11,
    CLONE_NEWNS,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
    CLONE_NEWIPC,
    CLONE_NEWUTS,
    CLONE_NEWCGROUP,
    CLONE_NEWUSER | CLONE_NEWNS | 0x11,
    CLONE_THREAD | CLONE_SIGHAND,
};
#define N_GRID (sizeof grid / sizeof grid[0])
static const uint64_t highs[] = {0x100000000ULL, 0xffffffff00000000ULL};

static void check_args(const programs *p, const wfh_sandbox_spec *spec, int asan)
{
    (void)spec;
    if (asan)
        return; /* the ptrace hole changes only the number search, checked above */
    const uint32_t arch = native_arch();
    static const char *const calls[] = {"socket", "clone", "ioctl", "personality", "clone3"};
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        int nr = seccomp_syscall_resolve_name(calls[c]);
        assert_int_not_equal(nr, __NR_SCMP_ERROR);
        int personality = !strcmp(calls[c], "personality");
        for (size_t i = 0; i < N_GRID; i++)
            for (size_t j = 0; j < N_GRID; j++)
                for (size_t k = 0; k < N_GRID; k++) {
                    uint64_t v[3] = {grid[i], grid[j], grid[k]};
                    struct seccomp_data d = data(arch, nr, v[0], v[1], v[2]);
                    same(p, &d, calls[c]);
                    /* High bits on one argument at a time. */
                    for (int which = 0; which < 3; which++)
                        for (size_t h = 0; h < 2; h++) {
                            uint64_t w[3] = {v[0], v[1], v[2]};
                            w[which] |= highs[h];
                            struct seccomp_data hi = data(arch, nr, w[0], w[1], w[2]);
                            uint32_t o = run_bpf(p->ours, p->n_ours, &hi);
                            uint32_t r = run_bpf(p->ref, p->n_ref, &hi);
                            uint32_t r_lo = run_bpf(p->ref, p->n_ref, &d);
                            /* What the kernel reads of an int: the low 32 bits. */
                            if (o != r_lo)
                                fail_msg("%s high bits: ours %#x, libseccomp on the low "
                                         "32 bits %#x",
                                         calls[c], o, r_lo);
                            if (strictness(o) >= strictness(r))
                                continue;
                            /* The one looser case: personality's query, refused by
                             * libseccomp only for its high bits. */
                            if (!(personality && which == 0 && (uint32_t)w[0] == 0xffffffffU &&
                                  o == SECCOMP_RET_ALLOW))
                                fail_msg("%s(%#llx, %#llx, %#llx): ours %#x is looser than "
                                         "libseccomp's %#x",
                                         calls[c], (unsigned long long)w[0],
                                         (unsigned long long)w[1], (unsigned long long)w[2], o, r);
                        }
                }
    }
}

static void test_argument_grid(void **state)
{
    (void)state;
    each_spec(check_args);
}

static uint32_t verdict(const programs *p, uint32_t arch, const char *call, uint64_t a0,
                        uint64_t a1)
{
    int nr = seccomp_syscall_resolve_name(call);
    assert_int_not_equal(nr, __NR_SCMP_ERROR);
    struct seccomp_data d = data(arch, nr, a0, a1, 0);
    same(p, &d, call);
    return run_bpf(p->ours, p->n_ours, &d);
}

#define EPERM_RET (SECCOMP_RET_ERRNO | EPERM)

static void check_absolute(const programs *p, const wfh_sandbox_spec *spec, int asan)
{
    const uint32_t arch = native_arch();
    for (size_t i = 0; i < sizeof wfh_seccomp_denied / sizeof wfh_seccomp_denied[0]; i++) {
        const wfh_seccomp_deny *dn = &wfh_seccomp_denied[i];
        if (seccomp_syscall_resolve_name(dn->name) == __NR_SCMP_ERROR)
            continue;
        assert_int_equal(verdict(p, arch, dn->name, 0, 0),
                         asan && dn->asan_hole ? SECCOMP_RET_ALLOW : EPERM_RET);
    }
    static const char *const always[] = {"mount",       "bpf",        "unshare",
                                         "setns",       "keyctl",     "io_uring_setup",
                                         "userfaultfd", "init_module"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        assert_int_equal(verdict(p, arch, always[i], 0, 0), EPERM_RET);
    assert_int_equal(verdict(p, arch, "ptrace", 0, 0), asan ? SECCOMP_RET_ALLOW : EPERM_RET);
    static const char *const allowed[] = {"read",       "write", "openat", "execve",
                                          "exit_group", "mmap",  "wait4",  "getpid"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        assert_int_equal(verdict(p, arch, allowed[i], 0, 0), SECCOMP_RET_ALLOW);
    assert_int_equal(verdict(p, arch, "clone3", 0, 0), SECCOMP_RET_ERRNO | ENOSYS);
    assert_int_equal(verdict(p, arch, "clone", 0x11, 0), SECCOMP_RET_ALLOW);
    assert_int_equal(verdict(p, arch, "clone", CLONE_NEWUSER | 0x11, 0), EPERM_RET);
    assert_int_equal(verdict(p, arch, "ioctl", 1, TIOCSTI), EPERM_RET);
    assert_int_equal(verdict(p, arch, "ioctl", 1, TIOCGWINSZ), SECCOMP_RET_ALLOW);
    assert_int_equal(verdict(p, arch, "personality", 0xffffffffU, 0), SECCOMP_RET_ALLOW);
    assert_int_equal(verdict(p, arch, "personality", 0, 0), EPERM_RET);
    assert_int_equal(verdict(p, arch, "socket", AF_PACKET, SOCK_DGRAM), EPERM_RET);
    assert_int_equal(verdict(p, arch, "socket", AF_INET, SOCK_RAW), EPERM_RET);
    assert_int_equal(verdict(p, arch, "socket", AF_INET, SOCK_STREAM), SECCOMP_RET_ALLOW);
    assert_int_equal(verdict(p, arch, "socket", AF_UNIX, SOCK_DGRAM), SECCOMP_RET_ALLOW);
    assert_int_equal(verdict(p, arch, "socket", AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC),
                     spec->net_all ? SECCOMP_RET_ALLOW : EPERM_RET);
    /* A foreign arch, and on x86-64 the x32 bit, kill the process. */
    uint32_t foreign = arch == AUDIT_ARCH_I386 ? AUDIT_ARCH_X86_64 : AUDIT_ARCH_I386;
    assert_int_equal(verdict(p, foreign, "write", 0, 0), SECCOMP_RET_KILL_PROCESS);
#ifdef __x86_64__
    struct seccomp_data d = data(arch, 0x40000000 | 1, 0, 0, 0);
    same(p, &d, "x32 write");
    assert_int_equal(run_bpf(p->ours, p->n_ours, &d), SECCOMP_RET_KILL_PROCESS);
    d = data(arch, -1, 0, 0, 0);
    assert_int_equal(run_bpf(p->ours, p->n_ours, &d), SECCOMP_RET_ALLOW);
#endif
}

static void test_absolute_verdicts(void **state)
{
    (void)state;
    each_spec(check_absolute);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_and_arches),
        cmocka_unit_test(test_argument_grid),
        cmocka_unit_test(test_absolute_verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
