/*
 * dir_lock.h — one strata run at a time per directory.
 *
 * A run that writes an output or checkpoint directory holds an exclusive flock(2) on
 * DIR/.strata-lock for as long as it runs; the file holds the holder's pid, so a second
 * run is refused with a message naming it. The kernel releases the lock when the holder
 * exits or is killed, so a stale file never blocks anyone: the next run simply takes it.
 *
 * Release unlinks the file before closing it. A run that opened the old file just before
 * the unlink could then lock an inode no longer in the directory, so acquiring checks
 * that the locked file is still the one at the path and retries when it is not.
 */
#ifndef STRATA_IO_DIR_LOCK_H
#define STRATA_IO_DIR_LOCK_H

#include <stdbool.h>

#include "strata.h"

#define DIR_LOCK_NAME ".strata-lock"

typedef struct dir_lock {
    int fd;        /* the locked file while held */
    char *path;    /* DIR/.strata-lock while held, else NULL */
} dir_lock;

static inline bool dir_lock_held(const dir_lock *lock) { return lock->path != NULL; }

/* Takes the lock of an existing directory; `what` names it in the refusal ("output
 * directory", "checkpoint directory"). */
strata_status dir_lock_acquire(const char *dir, const char *what, dir_lock *lock);
/* Releases a held lock (a no-op on one never taken or already released). */
void dir_lock_release(dir_lock *lock);

#endif
