/*
 * fsutil.h — small file-system helpers shared by readers and writers: whole-file reads,
 * path joins, and atomic replacement of a file (write to a temporary name in the same
 * directory, fsync, rename, fsync the directory).
 */
#ifndef STRATA_IO_FSUTIL_H
#define STRATA_IO_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

/* "dir/name" in a new malloc'd string (NULL on allocation failure). */
char *path_join(const char *dir, const char *name);
bool path_is_dir(const char *path);
bool path_exists(const char *path);
/* mkdir -p: creates path and its missing parents; false with errno set on failure. */
bool make_dirs(const char *path);
/* Whether the name ends with suffix (".json", ".safetensors"). */
bool path_has_suffix(const char *path, const char *suffix);

/* path + ".tmp-XXXXXX", a template for mkstemp/mkdtemp beside path (malloc'd). */
char *path_temp_template(const char *path);

/* Reads a whole file, refusing files larger than max_bytes. *data is NUL-terminated. */
strata_status file_read_all(const char *path, uint64_t max_bytes, char **data, size_t *length);

/* Replaces path with the given bytes atomically; nothing changes on failure. */
strata_status file_write_atomic(const char *path, const void *data, size_t length);

/* Writes all bytes to fd, retrying short writes. false with errno set on failure. */
bool fd_write_all(int fd, const void *data, size_t length);

/* pread/pwrite of all n bytes at offset, retrying short transfers. false on failure, with
 * errno set (EIO where the file ended or nothing was written). */
bool fd_pread_all(int fd, void *buffer, size_t n, uint64_t offset);
bool fd_pwrite_all(int fd, const void *data, size_t n, uint64_t offset);

/* A new file in dir named from `prefix` (".name.tmp-XXXXXX"), unlinked at once: it lives
 * while the descriptor is open, so a crash leaves nothing to clean. -1 with errno set. */
int fd_unlinked_temp(const char *dir, const char *prefix);

/* Removes every entry of dir that is not a directory, and dir itself when asked (then
 * only if that leaves it empty). */
void dir_remove_files(const char *dir, bool remove_dir);

/* The file system holding path, for messages: "/dev/vda (ext4, mounted at /)", or the
 * path itself when /proc/self/mountinfo does not say. */
void fs_describe(const char *path, char *out, size_t size);

/* fsyncs the directory holding path so a rename into it is durable. */
void fsync_parent_dir(const char *path);

#endif
