/*
 * direct_read.h — reading large byte ranges of a file the way a converter wants them: from
 * the page cache where they are cached, straight from the disk (O_DIRECT) where not.
 *
 * A buffered read of a cold file pays a kernel copy and a page-cache page per 4 KiB on top
 * of the disk's own time. On the 2-core development machine reading 3.3 GB cold costs
 * 0.4-1.5 s of CPU through the page cache and 0.04 s with O_DIRECT, at the same or better
 * speed; for a converter that needs those cores for quantizing, that is most of the
 * difference. O_DIRECT ignores what the cache already holds, though (a model just
 * downloaded or converted), which a buffered read gets at memory speed. So each range is
 * first looked up in the cache (mincore on a mapping of the range, which touches no
 * page): cached runs of pages are read buffered, the others directly, in
 * DIRECT_READ_PIECE reads of whole DIRECT_READ_ALIGN blocks. (A RWF_NOWAIT read would
 * tell the same, but it starts the kernel's readahead of what it misses, and the disk
 * then reads those bytes twice.) Where the file system refuses O_DIRECT (tmpfs on older
 * kernels, some FUSE file systems) or the mapping, plain buffered reads.
 *
 * Direct reads move whole blocks into the caller's buffer, so the buffer is block-aligned,
 * has room for the blocks around the range (direct_read_capacity), and the range's first
 * byte lands at buf + offset % DIRECT_READ_ALIGN.
 */
#ifndef STRATA_IO_DIRECT_READ_H
#define STRATA_IO_DIRECT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

#define DIRECT_READ_ALIGN 4096u
#define DIRECT_READ_PIECE ((size_t)4 << 20) /* one direct read; larger single reads were slower here */

typedef struct direct_reader {
    char *path;
    int fd;          /* buffered: cached reads and the fallback */
    int direct_fd;   /* O_DIRECT, or -1 where refused */
    unsigned char *resident; /* (capacity) mincore's answer, a byte per page of a range */
    size_t capacity;
} direct_reader;

/* Bytes a buffer needs to read n bytes at any offset. */
size_t direct_read_capacity(size_t n);

strata_status direct_reader_open(direct_reader *r, const char *path);
void direct_reader_close(direct_reader *r); /* harmless on a closed or zeroed reader */

/* Reads bytes [offset, offset + n) into buf (DIRECT_READ_ALIGN aligned, at least
 * direct_read_capacity(n) bytes); *data = buf + offset % DIRECT_READ_ALIGN, where they
 * start. A range past the end of the file is an error naming the file. */
strata_status direct_reader_read(direct_reader *r, uint8_t *buf, size_t n, uint64_t offset, const uint8_t **data);

#endif
