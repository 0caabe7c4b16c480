/*
 * dir_lock.c — exclusive run locks on directories (see dir_lock.h).
 */
#include "io/dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fsutil.h"

/* The pid another run wrote into the lock file, or 0 when it has not yet. */
static long holder_pid(int fd)
{
    char text[32] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    text[n] = '\0';
    return strtol(text, NULL, 10);
}

strata_status dir_lock_acquire(const char *dir, const char *what, dir_lock *lock)
{
    *lock = (dir_lock){.fd = -1};
    char *path = path_join(dir, DIR_LOCK_NAME);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            strata_status status = strata_fail(STRATA_ERR_IO, "%s: cannot create the lock file of the %s: %s", path,
                                               what, strerror(errno));
            free(path);
            return status;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            long pid = holder_pid(fd);
            close(fd);
            free(path);
            if (err != EWOULDBLOCK)
                return strata_fail(STRATA_ERR_IO, "%s: cannot lock the %s: %s", dir, what, strerror(err));
            char holder[48] = "another strata run";
            if (pid > 0) snprintf(holder, sizeof holder, "another strata run (pid %ld)", pid);
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                               "%s: %s is using this %s; wait for it to finish or stop it (the lock is %s/%s)", dir,
                               holder, what, dir, DIR_LOCK_NAME);
        }
        /* Locked; is it still the file at the path (not one a releasing run unlinked)? */
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_dev == now.st_dev && held.st_ino == now.st_ino) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || !fd_pwrite_all(fd, pid, (size_t)n, 0))
                strata_log(STRATA_LOG_DEBUG, "%s: cannot record the pid: %s", path, strerror(errno));
            *lock = (dir_lock){.fd = fd, .path = path};
            return STRATA_OK;
        }
        close(fd);
    }
    free(path);
    return strata_fail(STRATA_ERR_IO, "%s: cannot lock the %s: its lock file keeps being replaced", dir, what);
}

void dir_lock_release(dir_lock *lock)
{
    if (lock->path && lock->fd >= 0) { /* held (a zeroed lock was never taken) */
        unlink(lock->path);
        close(lock->fd);
    }
    free(lock->path);
    *lock = (dir_lock){.fd = -1};
}
