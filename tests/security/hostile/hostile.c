/*
 * tests/security/hostile/hostile.c - a plugin that attacks its sandbox, one attack per
 * step input "case", for tests/security/sandbox_*.sh. Attacks that the kernel refuses
 * end with status failed and the errno text as the error, so a test can assert the
 * exact refusal; attacks the supervisor must stop (bombs, spins, floods) never return.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <wfhost/plugin.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* Pulls "key":"value" or "key":number out of the flat inputs object (no JSON library
 * in a plugin: it links nothing). Returns a static copy, or "". */
static const char *input(const wfh_step_request *req, const char *key)
{
    static char val[4][512];
    static int slot;
    char *out = val[slot++ % 4];
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(req->inputs_json, pat);
    out[0] = '\0';
    if (!p)
        return out;
    p += strlen(pat);
    if (*p == '"')
        p++;
    size_t n = 0;
    while (*p && *p != '"' && *p != ',' && *p != '}' && n + 1 < 512)
        out[n++] = *p++;
    out[n] = '\0';
    return out;
}

static int32_t fail_errno(const wfh_host_api *h, wfh_call *c, const char *what, int e)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
    h->set_error(c, msg, strlen(msg));
    return WFH_STEP_FAILED;
}

static int32_t ok_with(const wfh_host_api *h, wfh_call *c, const char *json)
{
    h->set_output(c, "value", json, strlen(json));
    return WFH_STEP_OK;
}

static int32_t run(const wfh_host_api *h, wfh_call *c, const wfh_step_request *req)
{
    const char *what = input(req, "case");
    const char *arg = input(req, "arg");
    char buf[512];
    if (!strcmp(what, "ok"))
        return ok_with(h, c, "\"fine\"");
    if (!strcmp(what, "forkbomb")) {
        for (;;)
            (void)fork();
    }
    if (!strcmp(what, "membomb")) {
        /* Chained through a volatile pointer so no compiler may drop the allocations
         * as dead (clang does for a plain malloc+memset). */
        static void *volatile head;
        for (;;) {
            char *p = malloc(1 << 20);
            if (p) {
                memset(p, 1, 1 << 20);
                memcpy(p, (const void *)&head, sizeof(void *));
                head = p;
            }
        }
    }
    if (!strcmp(what, "spin")) {
        for (volatile unsigned long i = 0;; i++)
            ;
    }
    if (!strcmp(what, "hang")) {
        for (;;)
            pause();
    }
    if (!strcmp(what, "flood")) {
        memset(buf, 'x', sizeof buf);
        for (;;)
            if (write(2, buf, sizeof buf) < 0 && errno != EINTR)
                return fail_errno(h, c, "flood", errno);
    }
    if (!strcmp(what, "bigresult")) {
        size_t n = (size_t)atol(arg);
        char *s = malloc(n + 3);
        if (!s)
            return fail_errno(h, c, "malloc", errno);
        s[0] = '"';
        memset(s + 1, 'r', n);
        s[n + 1] = '"';
        s[n + 2] = '\0';
        h->set_output(c, "big", s, n + 2);
        free(s);
        return WFH_STEP_OK;
    }
    if (!strcmp(what, "write")) {
        int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return fail_errno(h, c, arg, errno);
        ssize_t w = write(fd, "pwned\n", 6);
        close(fd);
        return w == 6 ? ok_with(h, c, "\"written\"") : fail_errno(h, c, arg, errno);
    }
    if (!strcmp(what, "read")) {
        int fd = open(arg, O_RDONLY);
        if (fd < 0)
            return fail_errno(h, c, arg, errno);
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0)
            return fail_errno(h, c, arg, errno);
        return ok_with(h, c, "\"read\"");
    }
    if (!strcmp(what, "connect") || !strcmp(what, "mptcp") || !strcmp(what, "udp")) {
        int udp = !strcmp(what, "udp");
        int s = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM,
                       !strcmp(what, "mptcp") ? IPPROTO_MPTCP : 0);
        if (s < 0)
            return fail_errno(h, c, "socket", errno);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(arg))};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        int r = udp ? (int)sendto(s, "x", 1, 0, (struct sockaddr *)&sa, sizeof sa)
                    : connect(s, (struct sockaddr *)&sa, sizeof sa);
        int e = errno;
        close(s);
        return r < 0 ? fail_errno(h, c, "connect", e) : ok_with(h, c, "\"connected\"");
    }
    if (!strcmp(what, "exec")) {
        pid_t p = fork();
        if (p == 0) {
            char *argv[] = {(char *)arg, NULL};
            execv(arg, argv);
            _exit(100 + errno);
        }
        int st = 0;
        waitpid(p, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) >= 100)
            return fail_errno(h, c, arg, WEXITSTATUS(st) - 100);
        return ok_with(h, c, "\"executed\"");
    }
    if (!strcmp(what, "escape") || !strcmp(what, "escape_hang")) {
        /* Double fork + setsid: the grandchild is in no process group of ours and its
         * parent is gone; it names itself so the test can look for it. */
        pid_t p = fork();
        if (p == 0) {
            setsid();
            if (fork() == 0) {
                prctl(PR_SET_NAME, arg, 0, 0, 0);
                for (;;)
                    pause();
            }
            _exit(0);
        }
        waitpid(p, NULL, 0);
        usleep(100000);
        if (!strcmp(what, "escape_hang"))
            for (;;)
                pause();
        return ok_with(h, c, "\"escaped\"");
    }
    if (!strcmp(what, "ptrace")) {
        pid_t target = (pid_t)atol(arg);
        if (ptrace(PTRACE_ATTACH, target, NULL, NULL) != 0)
            return fail_errno(h, c, "ptrace", errno);
        return ok_with(h, c, "\"attached\"");
    }
    if (!strcmp(what, "kill")) {
        if (kill((pid_t)atol(arg), SIGKILL) != 0)
            return fail_errno(h, c, "kill", errno);
        return ok_with(h, c, "\"killed\"");
    }
    if (!strcmp(what, "segv")) {
        volatile int *p = NULL;
        *p = 1;
    }
    if (!strcmp(what, "abort"))
        abort();
    if (!strcmp(what, "noresult"))
        _exit(0);
    if (!strcmp(what, "garbage") || !strcmp(what, "forge")) {
        /* Forge the protocol on every pipe it may write besides its logs (one of them
         * is the result channel): garbage: junk, then a result line claiming success;
         * forge: a clean result and a report claiming more confinement than it had. */
        static const char junk[] = "\x01garbage{\n{\"t\":\"result\",\"status\":0}\n";
        static const char forged[] =
            "{\"t\":\"sandbox\",\"sandbox\":{\"profile\":\"strict\",\"forged\":true}}\n"
            "{\"t\":\"result\",\"status\":0,\"sandbox\":{\"profile\":\"strict\",\"forged\":true}}\n";
        const char *text = what[0] == 'g' ? junk : forged;
        for (int fd = 3; fd < 256; fd++) {
            struct stat st;
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0 && (fl & O_ACCMODE) != O_RDONLY && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
                (void)!write(fd, text, strlen(text));
        }
        _exit(0);
    }
    if (!strcmp(what, "env")) {
        const char *v = getenv(arg);
        snprintf(buf, sizeof buf, "\"%s\"", v ? v : "(unset)");
        return ok_with(h, c, buf);
    }
    if (!strcmp(what, "tmp")) {
        int fd = open("/tmp/wfh-sandbox-private", O_WRONLY | O_CREAT, 0644);
        if (fd < 0)
            return fail_errno(h, c, "/tmp", errno);
        close(fd);
        return ok_with(h, c, "\"tmp written\"");
    }
    if (!strcmp(what, "x32")) {
        /* The x32 ABI shares x86-64's audit arch; a filter that only checks nr would
         * let 0x40000000|nr through. Expected: the process is killed. */
        long r = syscall(0x40000000L | SYS_getpid);
        return fail_errno(h, c, r < 0 ? "x32 getpid refused" : "x32 getpid ran", r < 0 ? errno : 0);
    }
    if (!strcmp(what, "io_uring")) {
        char params[120] = {0};
        if (syscall(SYS_io_uring_setup, 8, params) < 0)
            return fail_errno(h, c, "io_uring_setup", errno);
        return ok_with(h, c, "\"io_uring\"");
    }
    if (!strcmp(what, "tiocsti")) {
        char ch = 'x';
        if (ioctl(0, TIOCSTI, &ch) < 0)
            return fail_errno(h, c, "TIOCSTI", errno);
        return ok_with(h, c, "\"injected\"");
    }
    if (!strcmp(what, "personality")) {
        if (personality(READ_IMPLIES_EXEC) < 0)
            return fail_errno(h, c, "personality", errno);
        return ok_with(h, c, "\"changed\"");
    }
    if (!strcmp(what, "surface")) {
        /* Calls the seccomp filter answers itself, each with an errno the kernel would
         * not give without it (no capability is needed for most of them), and two it
         * must let through. The first wrong answer is the error. */
        static const struct {
            const char *name;
            long nr, a0, a1, a2;
            int want; /* errno, 0: must succeed */
        } calls[] = {
            {"clone3", SYS_clone3, 0, 0, 0, ENOSYS},
            {"keyctl", SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0, EPERM},
            {"add_key", SYS_add_key, 0, 0, 0, EPERM},
            {"bpf", SYS_bpf, 0, 0, 0, EPERM},
            {"userfaultfd", SYS_userfaultfd, 0, 0, 0, EPERM},
            {"perf_event_open", SYS_perf_event_open, 0, 0, -1, EPERM},
            {"socket(AF_INET, SOCK_DGRAM)", SYS_socket, AF_INET, SOCK_DGRAM, 0, EPERM},
            {"socket(AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC)", SYS_socket, AF_INET6,
             SOCK_DGRAM | SOCK_CLOEXEC, 0, EPERM},
            {"socket(AF_PACKET)", SYS_socket, 17 /* AF_PACKET */, SOCK_RAW, 0, EPERM},
            {"socket(AF_UNIX, SOCK_DGRAM)", SYS_socket, AF_UNIX, SOCK_DGRAM, 0, 0},
            {"personality(query)", SYS_personality, 0xffffffffL, 0, 0, 0},
        };
        for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
            errno = 0;
            long r = syscall(calls[i].nr, calls[i].a0, calls[i].a1, calls[i].a2, 0, 0, 0);
            int e = r < 0 ? errno : 0;
            if (r >= 0 && calls[i].nr == SYS_socket)
                close((int)r);
            if (e != calls[i].want) {
                snprintf(buf, sizeof buf, "%s: got '%s', want '%s'", calls[i].name,
                         e ? strerror(e) : "success", calls[i].want ? strerror(calls[i].want) : "success");
                h->set_error(c, buf, strlen(buf));
                return WFH_STEP_FAILED;
            }
        }
        /* A new mount namespace through clone's flags (unshare is covered above). */
        long r = syscall(SYS_clone, (long)(CLONE_NEWNS | SIGCHLD), 0L, 0L, 0L, 0L);
        if (r == 0)
            _exit(0);
        if (r > 0) {
            waitpid((pid_t)r, NULL, 0);
            snprintf(buf, sizeof buf, "clone(CLONE_NEWNS) ran");
        } else if (errno != EPERM) {
            return fail_errno(h, c, "clone(CLONE_NEWNS)", errno);
        } else {
            snprintf(buf, sizeof buf, "surface: all as expected");
        }
        h->set_error(c, buf, strlen(buf));
        return WFH_STEP_FAILED;
    }
    if (!strcmp(what, "unshare")) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
            return fail_errno(h, c, "unshare", errno);
        return ok_with(h, c, "\"unshared\"");
    }
    if (!strcmp(what, "memfd_exec")) {
        /* Copy a readable executable (the ELF loader lives in the readable library
         * directories) into a memfd and run it from there: no path, no grant. */
        int src = open(arg, O_RDONLY);
        if (src < 0)
            return fail_errno(h, c, arg, errno);
        int mfd = memfd_create("x", 0);
        if (mfd < 0) {
            close(src);
            return fail_errno(h, c, "memfd_create", errno);
        }
        ssize_t n;
        while ((n = read(src, buf, sizeof buf)) > 0)
            if (write(mfd, buf, (size_t)n) != n)
                break;
        close(src);
        pid_t p = fork();
        if (p == 0) {
            char *argv[] = {"x", "--version", NULL};
            char *envp[] = {NULL};
            syscall(SYS_execveat, mfd, "", argv, envp, AT_EMPTY_PATH);
            _exit(100 + errno);
        }
        int st = 0;
        waitpid(p, &st, 0);
        close(mfd);
        if (WIFEXITED(st) && WEXITSTATUS(st) >= 100)
            return fail_errno(h, c, "execveat(memfd)", WEXITSTATUS(st) - 100);
        return ok_with(h, c, "\"executed\"");
    }
    if (!strcmp(what, "hardlink")) {
        /* A hard link from inside the write grant to a file outside it (REFER). */
        if (link(arg, input(req, "to")) < 0)
            return fail_errno(h, c, "link", errno);
        return ok_with(h, c, "\"linked\"");
    }
    if (!strcmp(what, "abstract_listen") || !strcmp(what, "abstract_connect")) {
        /* Two steps in the shared empty network namespace trying to talk over an
         * abstract unix socket named by arg. */
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n = strlen(arg);
        if (n + 1 >= sizeof sa.sun_path)
            n = sizeof sa.sun_path - 2;
        memcpy(sa.sun_path + 1, arg, n);
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0)
            return fail_errno(h, c, "socket", errno);
        if (!strcmp(what, "abstract_connect")) {
            int r = connect(s, (struct sockaddr *)&sa, len);
            int e = errno;
            close(s);
            return r < 0 ? fail_errno(h, c, "connect", e) : ok_with(h, c, "\"connected\"");
        }
        if (bind(s, (struct sockaddr *)&sa, len) < 0 || listen(s, 4) < 0)
            return fail_errno(h, c, "bind", errno);
        struct pollfd p = {s, POLLIN, 0};
        int r = poll(&p, 1, atoi(input(req, "ms")));
        close(s);
        return r > 0 ? ok_with(h, c, "\"accepted\"") : fail_errno(h, c, "nobody connected", ETIMEDOUT);
    }
    snprintf(buf, sizeof buf, "unknown case '%s'", what);
    h->set_error(c, buf, strlen(buf));
    return WFH_STEP_INVALID_INPUT;
}

static const wfh_step_type types[] = {{
    sizeof(wfh_step_type), "hostile", "attacks its own sandbox (tests only)",
    "{\"type\":\"object\"}", "{\"value\":\"what happened\"}", "{}", run,
}};

static const wfh_plugin plugin = {
    WFH_PLUGIN_INIT, 1, sizeof(wfh_step_type), "hostile", "1.0.0",
    "sandbox test fixture", types, NULL,
};

WFH_PLUGIN_EXPORT const wfh_plugin *wfh_plugin_entry_v1(void)
{
    return &plugin;
}
