/*
 * core/runner/zygote.c - `wfhost-runner --zygote`: the step runner, exec'd once, that
 * makes each attempt's runner process with a fork instead of an exec.
 *
 * Why: an exec'd runner pays exec, the dynamic linker (jansson, libseccomp, libdl), and
 * the loader's CPU probing (cpuid traps in some VMs) before it does anything; that was
 * most of the per-attempt cost of a short step. The zygote pays it once.
 *
 * What it is not: it never reads a request, never loads a plugin, and holds nothing
 * secret (the host spawns it like a runner, with its socket as stdin and /dev/null as
 * stdout/stderr). A message from the host (wfh_zygote_msg, core/runner/runner.h) carries
 * the attempt's descriptors (request memfd, out and err pipe write ends, the verified
 * plugin memfd if any, a warm runner's go socket: core/attempt.h) and the host's pid. The zygote clones with CLONE_PARENT, so the
 * new process is the host's child (the scheduler's waitpid(), kill(-pgid) and the
 * runner's PR_SET_PDEATHSIG/getppid() check work as for a spawned runner), and returns
 * from wfh_zygote_serve in that child, which then runs exactly the path an exec'd runner
 * runs after start-up (main.c). One process per attempt, never reused.
 *
 * The reply (the child's pid) is sent by the child itself, before it touches the
 * request: if the zygote dies between clone and reply, the child still answers; if the
 * host has given up waiting (it shuts the socket down), the child's send fails and it
 * exits without running anything, so no attempt runs that the host does not know of.
 * The zygote itself replies only with -errno when it could not clone.
 *
 * Raw clone() skips glibc's fork handlers: the child's cached TID is the zygote's. This
 * process is single-threaded and takes no lock across the clone; glibc 2.36's raise()/
 * abort() ask the kernel for the TID, fork() in the child (the sandbox's) resets it for
 * the grandchild, and getpid() is not cached, so nothing the runner uses reads it.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void close_all(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* In the new child: answer the host, then make the process look like a freshly spawned
 * runner (the posix_spawn attributes of core/attempt.c). Returns 0, or -1 when the host
 * is no longer waiting for this child (it must then exit without running anything). */
static int become_attempt(int sock, int *fds, int n)
{
    int32_t me = (int32_t)getpid();
    if (send(sock, &me, sizeof me, MSG_NOSIGNAL) != (ssize_t)sizeof me)
        return -1;
    (void)setpgid(0, 0); /* the host does the same from its side (the shell's idiom) */
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    /* Descriptors that already sit at a target number would be overwritten by an earlier
     * dup2: move them out of the way first. */
    for (int i = 0; i < n; i++)
        if (fds[i] < n && fds[i] != i) {
            int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, n);
            if (moved < 0)
                return -1;
            close(fds[i]);
            fds[i] = moved;
        }
    for (int i = 0; i < n; i++) {
        if (fds[i] == i) {
            if (fcntl(i, F_SETFD, 0) < 0)
                return -1;
        } else if (dup2(fds[i], i) < 0) {
            return -1;
        }
    }
    /* Everything else goes, the zygote's socket included. */
    if (syscall(SYS_close_range, (unsigned)n, ~0u, 0) < 0)
        for (int fd = n; fd < 1024; fd++)
            close(fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    static const int reset[] = WFH_RUNNER_RESET_SIGNALS;
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        signal(reset[i], SIG_DFL);
    return 0;
}

int wfh_zygote_serve(int sock, pid_t host)
{
    /* Every later attempt starts as a copy of this process: no process (of its uid, the host
     * included) without CAP_SYS_PTRACE may read or write its memory or ptrace it. Each
     * child is made dumpable again, as an exec'd runner is. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    for (;;) {
        wfh_zygote_msg msg;
        int fds[WFH_ZYGOTE_MAX_FDS];
        int nfds = 0;
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * WFH_ZYGOTE_MAX_FDS)];
        } ctl;
        struct iovec iov = {&msg, sizeof msg};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                            .msg_controllen = sizeof ctl.buf};
        ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0; /* the host closed its end (or is gone): nothing more to do */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (nfds < WFH_ZYGOTE_MAX_FDS)
                    fds[nfds++] = fd;
                else
                    close(fd);
            }
        }
        int32_t reply = 0;
        if (r != (ssize_t)sizeof msg || msg.magic != WFH_ZYGOTE_MAGIC || (mh.msg_flags & MSG_CTRUNC) ||
            msg.nfds < 3 || msg.nfds > WFH_ZYGOTE_MAX_FDS || (int)msg.nfds != nfds)
            reply = -EPROTO;
        else if (msg.host_pid != (int32_t)host || getppid() != host)
            reply = -EPERM; /* only the host that started us may make its children */
        if (reply == 0) {
            long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, NULL);
            if (pid == 0) {
                if (become_attempt(sock, fds, nfds) < 0)
                    _exit(3);
                return -1; /* main.c runs the attempt */
            }
            if (pid < 0)
                reply = -errno;
        }
        close_all(fds, nfds);
        if (reply != 0 && send(sock, &reply, sizeof reply, MSG_NOSIGNAL) != (ssize_t)sizeof reply)
            return 0;
    }
}
