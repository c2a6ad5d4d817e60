/*
 * core/runner/sandbox_seccomp.c - the kernel surface the step may not touch. Applied
 * last (after no_new_privs and Landlock), as bubblewrap, nsjail and minijail do, so the
 * filter may forbid the very calls used to set the sandbox up.
 *
 * A deny list with argument filters rather than an allow list: an allow list breaks
 * exec'd programs unpredictably (research §3.7). The rules themselves are the table in
 * sandbox_seccomp.h. On x86-64 and arm64 this file writes them out as a classic BPF
 * program (libseccomp generating it cost 0.1-0.2 ms per attempt); elsewhere libseccomp
 * generates it (sandbox_seccomp_ref.c), which is also the reference
 * tests/unit/test_seccomp_filter.c proves this program against, verdict by verdict.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "../error.h"
#include "sandbox.h"
#include "sandbox_seccomp.h"

#if WFH_SECCOMP_BY_HAND

/* Where an instruction jumps: the next one, or a label placed later. Labels from
 * N_FIXED on are handed out by new_label (search tree, argument rules). */
enum { NEXT = -1, L_ALLOW, L_EPERM, L_ENOSYS, L_KILL, L_X32, N_FIXED };
#define N_LABELS (N_FIXED + 96)
#define N_INS 192

typedef struct bpf_builder {
    struct sock_filter ins[N_INS];
    int jt[N_INS], jf[N_INS]; /* labels, resolved by bpf_finish */
    int at[N_LABELS];         /* where each label was placed, -1 if not */
    size_t n;
    int next_label; /* the next free label */
    int overflow;
} bpf_builder;

static void emit(bpf_builder *b, unsigned short code, unsigned k, int jt, int jf)
{
    if (b->n >= N_INS) {
        b->overflow = 1;
        return;
    }
    b->ins[b->n] = (struct sock_filter){code, 0, 0, k};
    b->jt[b->n] = jt;
    b->jf[b->n] = jf;
    b->n++;
}

static int new_label(bpf_builder *b)
{
    if (b->next_label >= N_LABELS) {
        b->overflow = 1;
        return L_KILL; /* never emitted: overflow fails the build */
    }
    return b->next_label++;
}

static void place(bpf_builder *b, int label)
{
    b->at[label] = (int)b->n;
}

/* The low 32 bits of argument @p i (little endian): what an int argument is. */
static void load_arg(bpf_builder *b, unsigned i)
{
    emit(b, BPF_LD | BPF_W | BPF_ABS, (unsigned)(offsetof(struct seccomp_data, args) + 8 * i), NEXT,
         NEXT);
}

/* Jumps only go forward and fit in 8 bits; anything else is a bug here, refused. */
static int bpf_finish(bpf_builder *b)
{
    if (b->overflow)
        return -1;
    for (size_t i = 0; i < b->n; i++) {
        int t[2] = {b->jt[i], b->jf[i]};
        unsigned char off[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            if (t[k] == NEXT)
                continue;
            int d = b->at[t[k]] - (int)i - 1;
            if (b->at[t[k]] < 0 || d < 0 || d > 255)
                return -1;
            off[k] = (unsigned char)d;
        }
        b->ins[i].jt = off[0];
        b->ins[i].jf = off[1];
    }
    return 0;
}

static void jeq(bpf_builder *b, unsigned k, int jt, int jf)
{
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);
}

static void ret(bpf_builder *b, unsigned action)
{
    emit(b, BPF_RET | BPF_K, action, NEXT, NEXT);
}

/* A system call the filter answers by number, and where it goes. */
typedef struct nr_rule {
    unsigned nr;
    int label;
} nr_rule;

static int nr_cmp(const void *a, const void *b)
{
    unsigned x = ((const nr_rule *)a)->nr, y = ((const nr_rule *)b)->nr;
    return (x > y) - (x < y);
}

/* A binary search over the sorted numbers: every call is answered in about eight
 * comparisons instead of walking sixty, which matters twice: the kernel runs the
 * program for every syscall number when it is installed (to cache the calls it always
 * allows), and every call the cache cannot answer (ioctl, socket, clone) runs it. */
static void emit_tree(bpf_builder *b, const nr_rule *r, size_t n)
{
    if (n <= 4) {
        for (size_t i = 0; i < n; i++)
            jeq(b, r[i].nr, r[i].label, i + 1 == n ? L_ALLOW : NEXT);
        return;
    }
    size_t mid = n / 2;
    int right = new_label(b);
    emit(b, BPF_JMP | BPF_JGE | BPF_K, r[mid].nr, right, NEXT);
    emit_tree(b, r, mid);
    place(b, right);
    emit_tree(b, r + mid, n - mid);
}

static int errno_label(bpf_builder *b, int err)
{
    if (err == EPERM)
        return L_EPERM;
    if (err == ENOSYS)
        return L_ENOSYS;
    b->overflow = 1; /* a return this builder does not emit: a bug */
    return L_KILL;
}

static int rule_applies(const wfh_seccomp_rule *r, const wfh_sandbox_spec *spec)
{
    return !(r->unless_net_all && spec->net_all);
}

/* The argument rules of call @p nr, in table order, placed at @p label: each condition
 * that fails jumps to the next rule, the last rule's to L_ALLOW. */
static void emit_arg_rules(bpf_builder *b, const wfh_sandbox_spec *spec, int nr, int label)
{
    const size_t n_rules = sizeof wfh_seccomp_rules / sizeof wfh_seccomp_rules[0];
    place(b, label);
    size_t last = n_rules;
    for (size_t i = 0; i < n_rules; i++)
        if (wfh_seccomp_rules[i].nr == nr && rule_applies(&wfh_seccomp_rules[i], spec))
            last = i;
    for (size_t i = 0; i <= last && i < n_rules; i++) {
        const wfh_seccomp_rule *r = &wfh_seccomp_rules[i];
        if (r->nr != nr || !rule_applies(r, spec))
            continue;
        int fail = i == last ? L_ALLOW : new_label(b);
        int hit = errno_label(b, r->errno_);
        if (r->n_cond == 0)
            jeq(b, 0, hit, hit); /* unconditional */
        for (size_t c = 0; c < r->n_cond; c++) {
            const wfh_seccomp_cond *k = &r->cond[c];
            int pass = c + 1 == r->n_cond ? hit : NEXT;
            load_arg(b, k->arg);
            switch (k->op) {
            case WFH_SC_EQ:
                if (k->mask != 0xffffffffU)
                    emit(b, BPF_ALU | BPF_AND | BPF_K, k->mask, NEXT, NEXT);
                jeq(b, k->value, pass, fail);
                break;
            case WFH_SC_NE:
                jeq(b, k->value, fail, pass);
                break;
            case WFH_SC_ANYBIT:
                emit(b, BPF_JMP | BPF_JSET | BPF_K, k->mask, pass, fail);
                break;
            }
        }
        if (fail != L_ALLOW)
            place(b, fail);
    }
}

int wfh_seccomp_build(const wfh_sandbox_spec *spec, int asan, struct sock_filter *out, size_t cap,
                      size_t *n_out)
{
    bpf_builder bb, *b = &bb;
    memset(b, 0, sizeof *b);
    for (int i = 0; i < N_LABELS; i++)
        b->at[i] = -1;
    b->next_label = N_FIXED;
    emit(b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), NEXT, NEXT);
    jeq(b, WFH_SECCOMP_ARCH, NEXT, L_KILL);
    emit(b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), NEXT, NEXT);
#ifdef WFH_SECCOMP_X32_BIT
    emit(b, BPF_JMP | BPF_JGE | BPF_K, WFH_SECCOMP_X32_BIT, L_X32, NEXT);
#endif
    const size_t n_denied = sizeof wfh_seccomp_denied / sizeof wfh_seccomp_denied[0];
    const size_t n_rules = sizeof wfh_seccomp_rules / sizeof wfh_seccomp_rules[0];
    nr_rule nrs[sizeof wfh_seccomp_denied / sizeof wfh_seccomp_denied[0] +
                sizeof wfh_seccomp_rules / sizeof wfh_seccomp_rules[0]];
    int arg_label[sizeof wfh_seccomp_rules / sizeof wfh_seccomp_rules[0]];
    size_t n = 0;
    for (size_t i = 0; i < n_denied; i++)
        if (!(asan && wfh_seccomp_denied[i].asan_hole))
            nrs[n++] = (nr_rule){(unsigned)wfh_seccomp_denied[i].nr, L_EPERM};
    /* One tree entry per call with rules: straight to its errno when a rule has no
     * conditions, else to that call's argument block. */
    for (size_t i = 0; i < n_rules; i++) {
        const wfh_seccomp_rule *r = &wfh_seccomp_rules[i];
        arg_label[i] = -1;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = wfh_seccomp_rules[j].nr == r->nr && rule_applies(&wfh_seccomp_rules[j], spec);
        if (seen || !rule_applies(r, spec))
            continue;
        if (r->n_cond == 0)
            nrs[n++] = (nr_rule){(unsigned)r->nr, errno_label(b, r->errno_)};
        else
            nrs[n++] = (nr_rule){(unsigned)r->nr, arg_label[i] = new_label(b)};
    }
    qsort(nrs, n, sizeof nrs[0], nr_cmp);
    emit_tree(b, nrs, n);

#ifdef WFH_SECCOMP_X32_BIT
    /* x32 shares x86-64's audit arch, so a filter that looked at the number alone
     * would let 0x40000000|nr through: killed, except -1 (a call a tracer skipped),
     * as libseccomp does. */
    place(b, L_X32);
    jeq(b, 0xffffffffU, L_ALLOW, L_KILL);
#endif
    for (size_t i = 0; i < n_rules; i++)
        if (arg_label[i] >= 0)
            emit_arg_rules(b, spec, wfh_seccomp_rules[i].nr, arg_label[i]);
    place(b, L_ALLOW);
    ret(b, SECCOMP_RET_ALLOW);
    place(b, L_EPERM);
    ret(b, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    place(b, L_ENOSYS);
    ret(b, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
    place(b, L_KILL);
    ret(b, WFH_SECCOMP_BADARCH);
    int rc = bpf_finish(b);
    if (rc == 0 && b->n > cap)
        rc = -1;
    if (rc == 0) {
        memcpy(out, b->ins, b->n * sizeof out[0]);
        *n_out = b->n;
    }
    return rc;
}

#endif /* WFH_SECCOMP_BY_HAND */

#ifdef WFH_SANDBOX_ASAN
#define ASAN_HOLE 1
#else
#define ASAN_HOLE 0
#endif

int wfh_sandbox_seccomp_apply(const wfh_sandbox_spec *spec)
{
#if WFH_SECCOMP_BY_HAND
    struct sock_filter ins[N_INS];
    size_t n = 0;
    if (wfh_seccomp_build(spec, ASAN_HOLE, ins, N_INS, &n) != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: seccomp (build): the filter does not fit");
#else
    struct sock_filter *ins = NULL; /* owned */
    size_t n = 0;
    const char *what = "build";
    int rc = wfh_seccomp_ref_build(spec, ASAN_HOLE, &ins, &n, &what);
    if (rc != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: seccomp (%s): %s", what, strerror(-rc));
#endif
    struct sock_fprog prog = {(unsigned short)n, ins};
    /* no_new_privs is already set (confine_step), as the kernel requires. */
    int err = 0;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        err = errno == EINVAL
                  ? wfh_sandbox_fail(WFH_ESECURITY, "sandbox: seccomp unavailable: %s",
                                     strerror(errno))
                  : wfh_sandbox_fail(WFH_EIO, "sandbox: seccomp (load): %s", strerror(errno));
#if !WFH_SECCOMP_BY_HAND
    free(ins);
#endif
    return err;
}
