/*
 * fsutil.c — file-system helpers (see fsutil.h).
 */
#include "io/fsutil.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/error.h"

bool path_has_suffix(const char *path, const char *suffix)
{
    size_t a = strlen(path), b = strlen(suffix);
    return a >= b && strcmp(path + a - b, suffix) == 0;
}

char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *out = malloc(a + b + 2);
    if (!out) return NULL;
    memcpy(out, dir, a);
    if (slash) out[a++] = '/';
    memcpy(out + a, name, b + 1);
    return out;
}

char *path_temp_template(const char *path)
{
    static const char SUFFIX[] = ".tmp-XXXXXX";
    size_t n = strlen(path);
    char *out = malloc(n + sizeof SUFFIX);
    if (!out) return NULL;
    memcpy(out, path, n);
    memcpy(out + n, SUFFIX, sizeof SUFFIX);
    return out;
}

bool path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

strata_status file_read_all(const char *path, uint64_t max_bytes, char **data, size_t *length)
{
    *data = NULL;
    *length = 0;
    strata_status status = STRATA_OK;
    char *buffer = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return strata_fail(errno == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO, "%s: cannot open: %s", path,
                           strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        status = strata_fail(STRATA_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: %lld bytes is larger than the %llu this file may have", path,
                             (long long)st.st_size, (unsigned long long)max_bytes);
        goto done;
    }
    size_t size = (size_t)st.st_size;
    buffer = malloc(size + 1);
    if (!buffer) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes", path, size);
        goto done;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buffer + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            status = strata_fail(STRATA_ERR_IO, "%s: read failed: %s", path, n < 0 ? strerror(errno) : "file shrank");
            goto done;
        }
        got += (size_t)n;
    }
    buffer[size] = '\0';
    *data = buffer;
    *length = size;
    buffer = NULL;
done:
    free(buffer);
    close(fd);
    return status;
}

bool fd_write_all(int fd, const void *data, size_t length)
{
    const char *p = data;
    while (length > 0) {
        ssize_t n = write(fd, p, length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        length -= (size_t)n;
    }
    return true;
}

bool fd_pread_all(int fd, void *buffer, size_t n, uint64_t offset)
{
    char *p = buffer;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got == 0) errno = EIO;
            return false;
        }
        p += got;
        n -= (size_t)got;
        offset += (uint64_t)got;
    }
    return true;
}

int fd_unlinked_temp(const char *dir, const char *prefix)
{
    size_t n = strlen(prefix) + 16;
    char *name = malloc(n);
    if (!name) return -1;
    snprintf(name, n, "%s.tmp-XXXXXX", prefix);
    char *path = path_join(dir, name);
    free(name);
    if (!path) return -1;
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
    free(path);
    return fd;
}

bool fd_pwrite_all(int fd, const void *data, size_t n, uint64_t offset)
{
    const char *p = data;
    while (n > 0) {
        ssize_t put = pwrite(fd, p, n, (off_t)offset);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) {
            if (put == 0) errno = EIO;
            return false;
        }
        p += put;
        n -= (size_t)put;
        offset += (uint64_t)put;
    }
    return true;
}

void fsync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

strata_status file_write_atomic(const char *path, const void *data, size_t length)
{
    char *temp = path_temp_template(path);
    if (!temp) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    strata_status status = STRATA_OK;
    int fd = mkstemp(temp);
    if (fd < 0) {
        status = strata_fail(STRATA_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(temp);
        return status;
    }
    if (fchmod(fd, 0644) != 0 || !fd_write_all(fd, data, length) || fsync(fd) != 0) {
        status = strata_fail(STRATA_ERR_IO, "%s: write failed: %s", temp, strerror(errno));
        close(fd);
        unlink(temp);
        free(temp);
        return status;
    }
    close(fd);
    if (rename(temp, path) != 0) {
        status = strata_fail(STRATA_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(temp);
    } else {
        fsync_parent_dir(path);
    }
    free(temp);
    return status;
}

bool make_dirs(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return false;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            free(copy);
            return false;
        }
        *p = '/';
    }
    bool ok = mkdir(copy, 0755) == 0 || (errno == EEXIST && path_is_dir(copy));
    free(copy);
    return ok;
}

void dir_remove_files(const char *dir, bool remove_dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char path[PATH_MAX + 256]; /* no allocation: this cleans up after failures */
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n > 0 && (size_t)n < sizeof path && !path_is_dir(path)) unlink(path);
    }
    closedir(d);
    if (remove_dir) rmdir(dir);
}

void fs_describe(const char *path, char *out, size_t size)
{
    snprintf(out, size, "the file system of %s", path);
    struct stat st;
    FILE *f = stat(path, &st) == 0 ? fopen("/proc/self/mountinfo", "re") : NULL;
    if (!f) return;
    /* id parent major:minor root mountpoint options [optional...] - fstype source superoptions */
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        unsigned major = 0, minor = 0;
        char mount[1024], rest[2048];
        if (sscanf(line, "%*d %*d %u:%u %*s %1023s %2047[^\n]", &major, &minor, mount, rest) != 4) continue;
        if (makedev(major, minor) != st.st_dev) continue;
        char *dash = strstr(rest, " - ");
        char type[64] = "?", source[1024] = "?";
        if (dash) sscanf(dash + 3, "%63s %1023s", type, source);
        snprintf(out, size, "%s (%s, mounted at %s)", source, type, mount);
        break;
    }
    fclose(f);
}
