/*
 * registry/fsutil.h - the file primitives the registry trusts: bounded reads through
 * directory descriptors that never follow symlinks, and atomic replacement.
 *
 * Every registry file is read once into memory (with a size cap checked before the
 * read and again by reading at most cap+1 bytes) and parsed from there, so what was
 * verified is exactly what is used.
 */
#ifndef WFH_REG_FSUTIL_H
#define WFH_REG_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Open directory @p name under @p dirfd without following a symlink at the last
 * component. Returns an fd (O_DIRECTORY|O_CLOEXEC) or a negative WFH_E* code; a
 * missing directory is WFH_ENOTFOUND, a symlink WFH_ESECURITY. @p what names it in
 * messages. */
int wfh_fs_opendir_at(int dirfd, const char *name, const char *what);

/* Read regular file @p name under @p dirfd (no symlinks, at most @p cap bytes) into
 * *out (owned, NUL-terminated for convenience; *len excludes the NUL). Refuses files
 * that are group/other-writable when @p strict_perms. Missing file: WFH_ENOTFOUND. */
int wfh_fs_read_at(int dirfd, const char *name, size_t cap, int strict_perms,
                   const char *what, char **out, size_t *len);

/* Replace @p name under @p dirfd with @p data atomically: write a temporary file,
 * fsync, rename over, fsync the directory. @p mode applies to the new file. */
int wfh_fs_write_atomic_at(int dirfd, const char *name, const void *data, size_t len,
                           unsigned mode, const char *what);

/* mkdir -p for one path component at a time, mode 0755 (0700 when @p private_). */
int wfh_fs_mkdirs(const char *path, int private_);

/* Lowercase hex of @p n bytes into @p out (2n+1 bytes). */
void wfh_hex(const uint8_t *in, size_t n, char *out);

#endif
