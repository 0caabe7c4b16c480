/*
 * bench_disk.h — cold reads for the benchmarks: a file's pages dropped from the page cache
 * (a clean file needs no privilege), and the disk's sequential read rate on that file.
 */
#ifndef STRATA_BENCH_DISK_H
#define STRATA_BENCH_DISK_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_clock.h"

static inline void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* Bytes per second over up to 2 GiB of `path` read cold; its pages are dropped again after. */
static inline double disk_read_rate(const char *path)
{
    drop_cache(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    enum { BLOCK = 8 << 20 };
    char *buffer = malloc(BLOCK);
    uint64_t total = 0;
    double t = now();
    ssize_t n;
    while (buffer && total < (2ull << 30) && (n = read(fd, buffer, BLOCK)) > 0) total += (uint64_t)n;
    t = now() - t;
    free(buffer);
    close(fd);
    drop_cache(path);
    return t > 0 ? (double)total / t : 0;
}

#endif
