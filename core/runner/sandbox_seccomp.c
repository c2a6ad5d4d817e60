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
#include <linux/sched.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "../error.h"
#include "sandbox.h"

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
