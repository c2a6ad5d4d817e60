/*
 * registry/fsutil.c - bounded, symlink-refusing reads and atomic writes for the
 * registry (see fsutil.h). The registry never builds a path from untrusted text: callers
 * pass fixed names or hex digests, and every open goes through a directory fd.
 */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/error.h"

int wfh_fs_opendir_at(int dirfd, const char *name, const char *what)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    if (errno == ENOENT)
        return wfh_error_set(WFH_ENOTFOUND, "%s: does not exist", what);
    if (errno == ELOOP || errno == ENOTDIR)
        return wfh_error_set(WFH_ESECURITY, "%s: is a symlink or not a directory; refused",
                             what);
    return wfh_error_set(WFH_EIO, "%s: %s", what, strerror(errno));
}

int wfh_fs_read_at(int dirfd, const char *name, size_t cap, int strict_perms,
                   const char *what, char **out, size_t *len)
{
    int err = 0;
    char *buf = NULL; /* owned until handed to *out */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    *out = NULL;
    *len = 0;
    if (fd < 0) {
        if (errno == ENOENT)
            return wfh_error_set(WFH_ENOTFOUND, "%s: does not exist", what);
        if (errno == ELOOP)
            return wfh_error_set(WFH_ESECURITY, "%s: is a symlink; refused", what);
        return wfh_error_set(WFH_EIO, "%s: %s", what, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        err = wfh_error_set(WFH_EIO, "%s: %s", what, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        err = wfh_error_set(WFH_ESECURITY, "%s: not a regular file; refused", what);
        goto done;
    }
    if (strict_perms && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        err = wfh_error_set(WFH_ESECURITY,
                            "%s: writable by group or others (mode %03o); refused", what,
                            (unsigned)(st.st_mode & 0777));
        goto done;
    }
    if (strict_perms && st.st_uid != 0 && st.st_uid != geteuid()) {
        err = wfh_error_set(WFH_ESECURITY, "%s: owned by uid %u, not by root or you; refused",
                            what, (unsigned)st.st_uid);
        goto done;
    }
    if ((uint64_t)st.st_size > cap) {
        err = wfh_error_set(WFH_ESECURITY, "%s: %lld bytes is over the %zu-byte limit; refused",
                            what, (long long)st.st_size, cap);
        goto done;
    }
    buf = malloc(cap + 2);
    if (!buf) {
        err = wfh_error_set(WFH_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    /* Read up to cap+1 so a file that grew after fstat is still caught. */
    size_t got = 0;
    while (got < cap + 1) {
        ssize_t n = read(fd, buf + got, cap + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = wfh_error_set(WFH_EIO, "%s: %s", what, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > cap) {
        err = wfh_error_set(WFH_ESECURITY, "%s: grew over the %zu-byte limit; refused", what,
                            cap);
        goto done;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
done:
    free(buf);
    close(fd);
    return err;
}

int wfh_fs_write_atomic_at(int dirfd, const char *name, const void *data, size_t len,
                           unsigned mode, const char *what)
{
    int err = 0;
    char tmp[256];
    int n = snprintf(tmp, sizeof tmp, ".%s.tmp.%ld", name, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return wfh_error_set(WFH_EINVAL, "%s: name too long", what);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        unlinkat(dirfd, tmp, 0); /* a leftover from a crashed run of this pid */
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    }
    if (fd < 0)
        return wfh_error_set(WFH_EIO, "%s: cannot create temporary file: %s", what,
                             strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            err = wfh_error_set(WFH_EIO, "%s: write: %s", what, strerror(errno));
            goto done;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        err = wfh_error_set(WFH_EIO, "%s: %s", what, strerror(errno));
        goto done;
    }
    if (close(fd) < 0) {
        fd = -1;
        err = wfh_error_set(WFH_EIO, "%s: close: %s", what, strerror(errno));
        goto done;
    }
    fd = -1;
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        err = wfh_error_set(WFH_EIO, "%s: rename: %s", what, strerror(errno));
        goto done;
    }
    if (fsync(dirfd) < 0)
        err = wfh_error_set(WFH_EIO, "%s: fsync of directory: %s", what, strerror(errno));
    return err;
done:
    if (fd >= 0)
        close(fd);
    unlinkat(dirfd, tmp, 0);
    return err;
}

int wfh_fs_mkdirs(const char *path, int private_)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return wfh_error_set(WFH_EINVAL, "%s: bad directory path", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, private_ ? 0700 : 0755) < 0 && errno != EEXIST)
            return wfh_error_set(WFH_EIO, "%s: mkdir: %s", buf, strerror(errno));
        buf[i] = c;
    }
    return 0;
}

void wfh_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}
