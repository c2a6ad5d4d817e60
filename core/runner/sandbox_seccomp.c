/*
 * core/runner/sandbox_seccomp.c - the kernel surface the step may not touch. Applied
 * last (after no_new_privs and Landlock), as bubblewrap, nsjail and minijail do, so the
 * filter may forbid the very calls used to set the sandbox up.
 *
 * A deny list with argument filters rather than an allow list: an allow list breaks
 * exec'd programs unpredictably (research §3.7). Denied calls get EPERM, a clean error
 * the step can report; libseccomp kills on a foreign architecture and on the x32
 * syscall bit. clone3 gets ENOSYS so libc falls back to clone, whose flags can be
 * inspected. Landlock's TCP rules do not cover MPTCP or UDP, so socket() is filtered
 * here too.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"
#include "sandbox.h"

#if (defined(__x86_64__) || defined(__aarch64__)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
/* Numbers from 424 on are the same on every architecture; build machines may have
 * headers older than the kernel they run. */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#define __NR_move_mount 429
#define __NR_fsopen 430
#define __NR_fsconfig 431
#define __NR_fsmount 432
#define __NR_fspick 433
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_quotactl_fd
#define __NR_quotactl_fd 443
#endif

#if defined(__x86_64__)
#define WFH_AUDIT_ARCH AUDIT_ARCH_X86_64
#define WFH_X32_BIT 0x40000000U
#else
#define WFH_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Refused with EPERM whatever their arguments; a call this architecture does not have
 * has no number here (as libseccomp skips it). */
static const int denied[] = {
#ifndef WFH_SANDBOX_ASAN /* LeakSanitizer ptrace()s its own threads at exit */
    __NR_ptrace,
#endif
    __NR_process_vm_readv, __NR_process_vm_writev, __NR_pidfd_getfd, __NR_kcmp,
    __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_unshare, __NR_setns,
    __NR_move_mount, __NR_open_tree, __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick,
    __NR_mount_setattr, __NR_bpf, __NR_perf_event_open, __NR_userfaultfd, __NR_keyctl,
    __NR_add_key, __NR_request_key, __NR_init_module, __NR_finit_module, __NR_delete_module,
    __NR_kexec_load,
#ifdef __NR_kexec_file_load
    __NR_kexec_file_load,
#endif
    __NR_reboot, __NR_swapon, __NR_swapoff, __NR_acct, __NR_syslog, __NR_settimeofday,
    __NR_clock_settime, __NR_clock_adjtime, __NR_adjtimex, __NR_quotactl, __NR_quotactl_fd,
#ifdef __NR_iopl
    __NR_iopl,
#endif
#ifdef __NR_ioperm
    __NR_ioperm,
#endif
    __NR_open_by_handle_at, __NR_name_to_handle_at, __NR_io_uring_setup,
    __NR_io_uring_enter, __NR_io_uring_register, __NR_fanotify_init, __NR_vhangup,
#ifdef __NR_lookup_dcookie
    __NR_lookup_dcookie,
#endif
#ifdef __NR_nfsservctl
    __NR_nfsservctl,
#endif
    __NR_sethostname, __NR_setdomainname,
#ifdef __NR_mknod
    __NR_mknod,
#endif
    __NR_mknodat};

/* Where an instruction jumps: the next one, or a label placed later. */
enum { NEXT = -1, L_ALLOW, L_EPERM, L_ENOSYS, L_KILL, L_X32, L_PERSONALITY, L_CLONE,
       L_IOCTL, L_SOCKET, L_DGRAM, N_FIXED };
/* Labels from N_FIXED on are the search tree's own (see emit_tree). */
#define N_LABELS (N_FIXED + 64)

typedef struct bpf_builder {
    struct sock_filter ins[160];
    int jt[160], jf[160];  /* labels, resolved by bpf_finish */
    int at[N_LABELS];      /* where each label was placed, -1 if not */
    size_t n;
    int next_label;        /* the next free tree label */
    int overflow;
} bpf_builder;

static void emit(bpf_builder *b, unsigned short code, unsigned k, int jt, int jf)
{
    if (b->n >= sizeof b->ins / sizeof b->ins[0]) {
        b->overflow = 1;
        return;
    }
    b->ins[b->n] = (struct sock_filter){code, 0, 0, k};
    b->jt[b->n] = jt;
    b->jf[b->n] = jf;
    b->n++;
}

static void place(bpf_builder *b, int label)
{
    b->at[label] = (int)b->n;
}

/* The low 32 bits of argument @p i (little endian): what an int argument is. */
static void load_arg(bpf_builder *b, unsigned i)
{
    emit(b, BPF_LD | BPF_W | BPF_ABS,
         (unsigned)(offsetof(struct seccomp_data, args) + 8 * i), NEXT, NEXT);
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
    if (b->next_label >= N_LABELS) {
        b->overflow = 1;
        return;
    }
    size_t mid = n / 2;
    int right = b->next_label++;
    emit(b, BPF_JMP | BPF_JGE | BPF_K, r[mid].nr, right, NEXT);
    emit_tree(b, r, mid);
    place(b, right);
    emit_tree(b, r + mid, n - mid);
}

/* Builds the program for @p spec into @p b; 0, or -1 if it does not fit (a bug). */
static int build_filter(const wfh_sandbox_spec *spec, bpf_builder *b)
{
    memset(b, 0, sizeof *b);
    for (int i = 0; i < N_LABELS; i++)
        b->at[i] = -1;
    b->next_label = N_FIXED;
    emit(b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), NEXT, NEXT);
    jeq(b, WFH_AUDIT_ARCH, NEXT, L_KILL);
    emit(b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), NEXT, NEXT);
#ifdef WFH_X32_BIT
    emit(b, BPF_JMP | BPF_JGE | BPF_K, WFH_X32_BIT, L_X32, NEXT);
#endif
    nr_rule rules[sizeof denied / sizeof denied[0] + 5];
    size_t n = 0;
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        rules[n++] = (nr_rule){(unsigned)denied[i], L_EPERM};
    rules[n++] = (nr_rule){__NR_clone3, L_ENOSYS};
    rules[n++] = (nr_rule){__NR_personality, L_PERSONALITY};
    rules[n++] = (nr_rule){__NR_clone, L_CLONE};
    rules[n++] = (nr_rule){__NR_ioctl, L_IOCTL};
    rules[n++] = (nr_rule){__NR_socket, L_SOCKET};
    qsort(rules, n, sizeof rules[0], nr_cmp);
    emit_tree(b, rules, n);

#ifdef WFH_X32_BIT
    /* x32 shares x86-64's audit arch, so a filter that looked at the number alone
     * would let 0x40000000|nr through: killed, except -1 (a call a tracer skipped),
     * as libseccomp does. */
    place(b, L_X32);
    jeq(b, 0xffffffffU, L_ALLOW, L_KILL);
#endif
    /* glibc and some tools query it with 0xffffffff; only changes are refused. */
    place(b, L_PERSONALITY);
    load_arg(b, 0);
    jeq(b, 0xffffffffU, L_ALLOW, L_EPERM);
    /* No new namespace of any kind. */
    place(b, L_CLONE);
    load_arg(b, 0);
    emit(b, BPF_JMP | BPF_JSET | BPF_K,
         CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
             CLONE_NEWUTS | CLONE_NEWCGROUP,
         L_EPERM, L_ALLOW);
    /* CVE-2017-5226: TIOCSTI pushes keystrokes into a terminal the step shares. */
    place(b, L_IOCTL);
    load_arg(b, 1);
    jeq(b, TIOCSTI, L_EPERM, L_ALLOW);
    /* Packet and raw sockets, MPTCP; without a network grant for every port, every
     * datagram socket on IP too (Landlock mediates TCP only). */
    place(b, L_SOCKET);
    load_arg(b, 0);
    jeq(b, AF_PACKET, L_EPERM, NEXT);
    load_arg(b, 1);
    emit(b, BPF_ALU | BPF_AND | BPF_K, 0xf, NEXT, NEXT);
    jeq(b, SOCK_RAW, L_EPERM, NEXT);
    load_arg(b, 2);
    jeq(b, IPPROTO_MPTCP, L_EPERM, NEXT);
    if (!spec->net_all) {
        load_arg(b, 0);
        jeq(b, AF_INET, L_DGRAM, NEXT);
        jeq(b, AF_INET6, L_DGRAM, L_ALLOW);
        place(b, L_DGRAM);
        load_arg(b, 1);
        emit(b, BPF_ALU | BPF_AND | BPF_K, 0xf, NEXT, NEXT);
        jeq(b, SOCK_DGRAM, L_EPERM, L_ALLOW);
    }
    place(b, L_ALLOW);
    ret(b, SECCOMP_RET_ALLOW);
    place(b, L_EPERM);
    ret(b, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    place(b, L_ENOSYS);
    ret(b, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
    place(b, L_KILL);
    ret(b, SECCOMP_RET_KILL_PROCESS);
    return bpf_finish(b);
}

int wfh_sandbox_seccomp_apply(const wfh_sandbox_spec *spec)
{
    bpf_builder b;
    if (build_filter(spec, &b) != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: seccomp (build): the filter does not fit");
    struct sock_fprog prog = {(unsigned short)b.n, b.ins};
    /* no_new_privs is already set (confine_step), as the kernel requires. */
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
        if (errno == EINVAL)
            return wfh_sandbox_fail(WFH_ESECURITY, "sandbox: seccomp unavailable: %s",
                                    strerror(errno));
        return wfh_sandbox_fail(WFH_EIO, "sandbox: seccomp (load): %s", strerror(errno));
    }
    return 0;
}

#else /* another architecture: the same rules through libseccomp */

#include <linux/sched.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static const char *const denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "syslog", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "quotactl", "quotactl_fd", "iopl", "ioperm",
    "open_by_handle_at", "name_to_handle_at", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "fanotify_init", "vhangup", "lookup_dcookie", "nfsservctl",
    "sethostname", "setdomainname", "mknod", "mknodat", "personality", NULL};

/* SCMP_A0() and friends leave datum_b out, which clang's -Wextra rejects. */
static struct scmp_arg_cmp cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
    struct scmp_arg_cmp c = {arg, op, a, b};
    return c;
}

int wfh_sandbox_seccomp_apply(const wfh_sandbox_spec *spec)
{
    int err = 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW); /* owned */
    if (!ctx)
        return wfh_sandbox_fail(WFH_ESECURITY, "sandbox: seccomp unavailable");
    int rc = 0;
    const char *what = "init";
    for (size_t i = 0; denied[i] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        what = denied[i];
#ifdef WFH_SANDBOX_ASAN
        if (!strcmp(denied[i], "ptrace"))
            continue;
#endif
        if (!strcmp(denied[i], "personality"))
            /* glibc and some tools query it with 0xffffffff; only changes are denied. */
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                                  cmp(0, SCMP_CMP_NE, 0xffffffffu, 0));
        else
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    if (rc == 0) {
        what = "clone3";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    }
    /* Any one namespace flag is enough to refuse: one rule per flag, since masked
     * comparisons test "all bits of the mask". */
    static const unsigned long nsflags[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,
                                            CLONE_NEWNET, CLONE_NEWIPC,  CLONE_NEWUTS,
                                            CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof nsflags / sizeof nsflags[0] && rc == 0; i++) {
        what = "clone";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              cmp(0, SCMP_CMP_MASKED_EQ, nsflags[i], nsflags[i]));
    }
    /* CVE-2017-5226: TIOCSTI pushes keystrokes into a terminal the step shares. */
    if (rc == 0) {
        what = "ioctl";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                              cmp(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
    }
    if (rc == 0) {
        what = "socket";
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                              cmp(0, SCMP_CMP_EQ, AF_PACKET, 0));
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                              cmp(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                              cmp(2, SCMP_CMP_EQ, IPPROTO_MPTCP, 0));
    if (!spec->net_all) {
        /* With no network or port grants only TCP is mediated (by Landlock), so every
         * datagram socket on IP is refused. */
        static const int fams[] = {AF_INET, AF_INET6};
        for (size_t i = 0; i < 2 && rc == 0; i++)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 2,
                                  cmp(0, SCMP_CMP_EQ, (scmp_datum_t)fams[i], 0),
                                  cmp(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM));
    }
    if (rc == 0) {
        what = "load";
        rc = seccomp_load(ctx);
    }
    if (rc != 0)
        err = wfh_sandbox_fail(WFH_EIO, "sandbox: seccomp (%s): %s", what, strerror(-rc));
    seccomp_release(ctx);
    return err;
}

#endif
