/*
 * core/runner/sandbox_landlock.c - which paths and TCP ports the step reaches.
 *
 * Landlock is unprivileged and stackable, and inherited by everything the step starts,
 * so an exec'd program stays confined (unlike Deno's --allow-run). The kernel headers
 * on build machines may be older than the running kernel (Debian 12 ships 6.1 headers
 * that stop at ABI 2), so the constants and structs of later ABIs are spelled out here
 * and trimmed to what the running kernel reports (the "best effort" pattern of the
 * kernel's documentation, except that wfhost reports what it applied).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../error.h"
#include "sandbox.h"

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

#define LL_CREATE_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

#define FS_EXECUTE (1ull << 0)
#define FS_WRITE_FILE (1ull << 1)
#define FS_READ_FILE (1ull << 2)
#define FS_READ_DIR (1ull << 3)
#define FS_REMOVE_DIR (1ull << 4)
#define FS_REMOVE_FILE (1ull << 5)
#define FS_MAKE_CHAR (1ull << 6)
#define FS_MAKE_DIR (1ull << 7)
#define FS_MAKE_REG (1ull << 8)
#define FS_MAKE_SOCK (1ull << 9)
#define FS_MAKE_FIFO (1ull << 10)
#define FS_MAKE_BLOCK (1ull << 11)
#define FS_MAKE_SYM (1ull << 12)
#define FS_REFER (1ull << 13)     /* ABI 2 */
#define FS_TRUNCATE (1ull << 14)  /* ABI 3 */
#define FS_IOCTL_DEV (1ull << 15) /* ABI 5 */
#define NET_BIND_TCP (1ull << 0)  /* ABI 4 */
#define NET_CONNECT_TCP (1ull << 1)
#define SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port {
    uint64_t allowed_access;
    uint64_t port;
};

int wfh_sandbox_landlock_abi(void)
{
    long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

#define FS_READ (FS_READ_FILE | FS_READ_DIR)
#define FS_WRITE                                                                           \
    (FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG |          \
     FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_SYM | FS_REFER | FS_TRUNCATE)

/* Adds one path rule; a granted path that does not exist is skipped (nothing there to
 * protect or reach), any other failure is fatal. */
static int add_path(int rs, const char *path, uint64_t access, uint64_t handled)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return wfh_sandbox_fail(WFH_EIO, "sandbox: landlock: %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
    struct ll_path_beneath pb = {.allowed_access = access & handled, .parent_fd = fd};
    long r = syscall(__NR_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0);
    int saved = errno;
    close(fd);
    if (r != 0)
        return wfh_sandbox_fail(WFH_EIO, "sandbox: landlock rule for %s: %s", path,
                                strerror(saved));
    return 0;
}

/* Always readable so the runner can work at all after confinement: the shared
 * libraries a plugin links (mmap is not EXECUTE), the loader cache, locale and time
 * zone data, and the few devices every program expects. Bin directories are NOT in
 * here: with the loader executable, `ld.so /readable/bin/x` would run any of them. */
static const char *const base_read[] = {
    "/usr/lib", "/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache",
    "/etc/localtime", "/usr/share/zoneinfo", "/usr/share/locale", "/etc/nsswitch.conf",
    "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/ssl", "/proc/self",
    "/etc/host.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
    /* /etc/ssl/certs is a farm of symlinks into here, and Landlock checks the target */
    "/usr/share/ca-certificates", "/etc/ca-certificates", "/etc/pki",
    "/dev/urandom", "/dev/random", "/dev/zero", NULL};
static const char *const base_write[] = {"/dev/null", "/tmp", NULL};

/* The ELF interpreter: EXECUTE is checked on it too when a granted program runs. */
static const char *const interpreters[] = {"/lib64/ld-linux-x86-64.so.2",
                                           "/lib/ld-linux-aarch64.so.1", NULL};

int wfh_sandbox_landlock_apply(const wfh_sandbox_spec *spec, int abi)
{
    struct ll_ruleset_attr attr = {0};
    size_t attr_size = abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
    uint64_t fs = FS_EXECUTE | FS_WRITE | FS_READ | FS_MAKE_CHAR | FS_MAKE_BLOCK | FS_IOCTL_DEV;
    /* Rights the running kernel does not know are dropped (they are then simply not
     * mediated, which the ABI number in the report says). */
    if (abi < 2)
        fs &= ~FS_REFER;
    if (abi < 3)
        fs &= ~FS_TRUNCATE;
    if (abi < 5)
        fs &= ~FS_IOCTL_DEV;
    attr.handled_access_fs = fs;
    if (abi >= 4 && !spec->net_all)
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP;
    if (abi >= 6)
        attr.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL;

    int rs = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0)
        return wfh_sandbox_fail(WFH_ESECURITY, "sandbox: landlock unavailable: %s",
                                strerror(errno));
    int err = 0;
    for (size_t i = 0; base_read[i] && !err; i++)
        err = add_path(rs, base_read[i], FS_READ, fs);
    for (size_t i = 0; base_write[i] && !err; i++)
        err = add_path(rs, base_write[i], FS_READ | FS_WRITE, fs);
    /* A registry plugin arrives as an inherited sealed memfd ("/proc/self/fd/N"): it has
     * no place in the file tree to grant, and Landlock does not stop reopening it. */
    if (!err && spec->plugin && strncmp(spec->plugin, "/proc/self/fd/", 14) != 0)
        err = add_path(rs, spec->plugin, FS_READ, fs);
    if (!err && spec->workspace)
        err = add_path(rs, spec->workspace, FS_READ | FS_WRITE, fs);
    for (size_t i = 0; spec->read && spec->read[i] && !err; i++)
        err = add_path(rs, spec->read[i], FS_READ, fs);
    for (size_t i = 0; spec->write && spec->write[i] && !err; i++)
        err = add_path(rs, spec->write[i], FS_READ | FS_WRITE, fs);
    if (spec->run && spec->run[0])
        for (size_t i = 0; interpreters[i] && !err; i++)
            err = add_path(rs, interpreters[i], FS_EXECUTE | FS_READ, fs);
    for (size_t i = 0; spec->run && spec->run[i] && !err; i++)
        err = add_path(rs, spec->run[i], FS_EXECUTE | FS_READ, fs);
    for (size_t i = 0; i < spec->n_ports && !err && attr.handled_access_net; i++) {
        struct ll_net_port np = {.allowed_access = NET_CONNECT_TCP, .port = spec->ports[i]};
        if (syscall(__NR_landlock_add_rule, rs, LL_RULE_NET_PORT, &np, 0) != 0)
            err = wfh_sandbox_fail(WFH_EIO, "sandbox: landlock port %u: %s",
                                   (unsigned)spec->ports[i], strerror(errno));
    }
    if (!err && syscall(__NR_landlock_restrict_self, rs, 0) != 0)
        err = wfh_sandbox_fail(WFH_EIO, "sandbox: landlock_restrict_self: %s", strerror(errno));
    close(rs);
    return err;
}
