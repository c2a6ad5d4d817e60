/*
 * core/runner/sandbox_seccomp.h - the step's seccomp rules, written once, and the two
 * programs built from them. The rules are data here; sandbox_seccomp.c writes them out
 * as classic BPF by hand (the runtime path on x86-64 and arm64: microseconds, no
 * library) and sandbox_seccomp_ref.c has libseccomp generate them (the runtime path on
 * every other architecture, and everywhere the reference the hand-written program is
 * proved against: tests/unit/test_seccomp_filter.c runs both through a cBPF
 * interpreter). A rule changed here changes both programs.
 *
 * Argument rules compare the low 32 bits of an argument (what the kernel reads of an
 * int), except personality's "!= 0xffffffff", which libseccomp compares on all 64
 * (documented in the test).
 */
#ifndef WFH_RUNNER_SANDBOX_SECCOMP_H
#define WFH_RUNNER_SANDBOX_SECCOMP_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "sandbox.h"

/* 1 where sandbox_seccomp.c writes the program itself (and knows the numbers). */
#if (defined(__x86_64__) || defined(__aarch64__)) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WFH_SECCOMP_BY_HAND 1
#else
#define WFH_SECCOMP_BY_HAND 0
#endif

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif

/* A foreign audit arch, or (x86-64) the x32 bit on a number other than -1: the whole
 * process is killed, in both programs. */
#define WFH_SECCOMP_BADARCH SECCOMP_RET_KILL_PROCESS

#if WFH_SECCOMP_BY_HAND
/* Numbers from 424 on are the same on x86-64 and arm64; build machines may have headers
 * older than the kernel they run. (Not on every architecture: alpha and mips differ,
 * so the libseccomp path resolves names instead.) */
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
#define WFH_SECCOMP_ARCH AUDIT_ARCH_X86_64
#define WFH_SECCOMP_X32_BIT 0x40000000U
#else
#define WFH_SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif
/* A call by name and, for the hand-written program, its number. */
#define WFH_SC(name) #name, __NR_##name
#else
#define WFH_SC(name) #name, -1 /* libseccomp resolves the name */
#endif

/* A call an architecture may lack (arm64 has no iopl, mknod, ...) is listed under
 * "#if !WFH_SECCOMP_BY_HAND || defined(__NR_x)": where its number exists, and always for
 * libseccomp, which skips a name this architecture does not have. */

/* Refused with EPERM whatever their arguments. */
typedef struct wfh_seccomp_deny {
    const char *name;
    int nr;          /* -1 where only the name is known (libseccomp path) */
    int asan_hole;   /* allowed in sanitizer builds: LeakSanitizer ptrace()s its threads */
} wfh_seccomp_deny;

static const wfh_seccomp_deny wfh_seccomp_denied[] = {
    {WFH_SC(ptrace), 1},
    {WFH_SC(process_vm_readv), 0}, {WFH_SC(process_vm_writev), 0},
    {WFH_SC(pidfd_getfd), 0}, {WFH_SC(kcmp), 0},
    {WFH_SC(mount), 0}, {WFH_SC(umount2), 0}, {WFH_SC(pivot_root), 0},
    {WFH_SC(chroot), 0}, {WFH_SC(unshare), 0}, {WFH_SC(setns), 0},
    {WFH_SC(move_mount), 0}, {WFH_SC(open_tree), 0}, {WFH_SC(fsopen), 0},
    {WFH_SC(fsconfig), 0}, {WFH_SC(fsmount), 0}, {WFH_SC(fspick), 0},
    {WFH_SC(mount_setattr), 0}, {WFH_SC(bpf), 0}, {WFH_SC(perf_event_open), 0},
    {WFH_SC(userfaultfd), 0}, {WFH_SC(keyctl), 0}, {WFH_SC(add_key), 0},
    {WFH_SC(request_key), 0}, {WFH_SC(init_module), 0}, {WFH_SC(finit_module), 0},
    {WFH_SC(delete_module), 0}, {WFH_SC(kexec_load), 0},
#if !WFH_SECCOMP_BY_HAND || defined(__NR_kexec_file_load)
    {WFH_SC(kexec_file_load), 0},
#endif
    {WFH_SC(reboot), 0}, {WFH_SC(swapon), 0}, {WFH_SC(swapoff), 0}, {WFH_SC(acct), 0},
    {WFH_SC(syslog), 0}, {WFH_SC(settimeofday), 0}, {WFH_SC(clock_settime), 0},
    {WFH_SC(clock_adjtime), 0}, {WFH_SC(adjtimex), 0}, {WFH_SC(quotactl), 0},
    {WFH_SC(quotactl_fd), 0},
#if !WFH_SECCOMP_BY_HAND || defined(__NR_iopl)
    {WFH_SC(iopl), 0},
#endif
#if !WFH_SECCOMP_BY_HAND || defined(__NR_ioperm)
    {WFH_SC(ioperm), 0},
#endif
    {WFH_SC(open_by_handle_at), 0}, {WFH_SC(name_to_handle_at), 0},
    {WFH_SC(io_uring_setup), 0}, {WFH_SC(io_uring_enter), 0},
    {WFH_SC(io_uring_register), 0}, {WFH_SC(fanotify_init), 0}, {WFH_SC(vhangup), 0},
#if !WFH_SECCOMP_BY_HAND || defined(__NR_lookup_dcookie)
    {WFH_SC(lookup_dcookie), 0},
#endif
#if !WFH_SECCOMP_BY_HAND || defined(__NR_nfsservctl)
    {WFH_SC(nfsservctl), 0},
#endif
    {WFH_SC(sethostname), 0}, {WFH_SC(setdomainname), 0},
#if !WFH_SECCOMP_BY_HAND || defined(__NR_mknod)
    {WFH_SC(mknod), 0},
#endif
    {WFH_SC(mknodat), 0},
};

/* How an argument rule tests the low 32 bits a of argument arg. */
typedef enum wfh_seccomp_op {
    WFH_SC_EQ,     /* (a & mask) == value */
    WFH_SC_NE,     /* a != value (mask all ones; libseccomp: all 64 bits) */
    WFH_SC_ANYBIT, /* a & mask != 0 */
} wfh_seccomp_op;

typedef struct wfh_seccomp_cond {
    unsigned arg;
    wfh_seccomp_op op;
    uint32_t mask, value;
} wfh_seccomp_cond;

/* A call refused with errno_ when all its conditions hold (none: always). Rules for
 * one call are tried in order; the call is allowed if none matches. */
typedef struct wfh_seccomp_rule {
    const char *name;
    int nr;
    int errno_;
    int unless_net_all;            /* only without a grant of the whole network */
    size_t n_cond;
    wfh_seccomp_cond cond[2];
} wfh_seccomp_rule;

#define WFH_SECCOMP_NSFLAGS                                                              \
    (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |          \
     CLONE_NEWUTS | CLONE_NEWCGROUP)

static const wfh_seccomp_rule wfh_seccomp_rules[] = {
    /* libc falls back to clone, whose flags can be inspected. */
    {WFH_SC(clone3), ENOSYS, 0, 0, {{0}}},
    /* glibc and some tools query it with 0xffffffff; only changes are refused. */
    {WFH_SC(personality), EPERM, 0, 1, {{0, WFH_SC_NE, 0xffffffffU, 0xffffffffU}}},
    /* No new namespace of any kind. */
    {WFH_SC(clone), EPERM, 0, 1, {{0, WFH_SC_ANYBIT, WFH_SECCOMP_NSFLAGS, 0}}},
    /* CVE-2017-5226: TIOCSTI pushes keystrokes into a terminal the step shares. */
    {WFH_SC(ioctl), EPERM, 0, 1, {{1, WFH_SC_EQ, 0xffffffffU, TIOCSTI}}},
    /* Packet and raw sockets, MPTCP (Landlock's TCP rules do not cover them) ... */
    {WFH_SC(socket), EPERM, 0, 1, {{0, WFH_SC_EQ, 0xffffffffU, AF_PACKET}}},
    {WFH_SC(socket), EPERM, 0, 1, {{1, WFH_SC_EQ, 0xf, SOCK_RAW}}},
    {WFH_SC(socket), EPERM, 0, 1, {{2, WFH_SC_EQ, 0xffffffffU, IPPROTO_MPTCP}}},
    /* ... and without a grant of every port, every datagram socket on IP. */
    {WFH_SC(socket), EPERM, 1, 2,
     {{0, WFH_SC_EQ, 0xffffffffU, AF_INET}, {1, WFH_SC_EQ, 0xf, SOCK_DGRAM}}},
    {WFH_SC(socket), EPERM, 1, 2,
     {{0, WFH_SC_EQ, 0xffffffffU, AF_INET6}, {1, WFH_SC_EQ, 0xf, SOCK_DGRAM}}},
};

/* The hand-written program for @p spec (borrowed): its instructions into @p out
 * (@p cap of them), their count in *n. @p asan: leave the sanitizer hole (ptrace).
 * Returns 0, or -1 if the program does not fit (a bug). Only where
 * WFH_SECCOMP_BY_HAND. */
int wfh_seccomp_build(const wfh_sandbox_spec *spec, int asan, struct sock_filter *out,
                      size_t cap, size_t *n);

/* libseccomp's program for the same rules, exported (seccomp_export_bpf), not loaded.
 * *out is owned by the caller (free()). Returns 0, or a negative errno with *what (a
 * static string) naming the step that failed. */
int wfh_seccomp_ref_build(const wfh_sandbox_spec *spec, int asan, struct sock_filter **out,
                          size_t *n, const char **what);

#endif
