/*
 * direct_read.c — see direct_read.h.
 */
#include "io/direct_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/error.h"

#define ALIGN_DOWN(x) ((x) & ~(uint64_t)(DIRECT_READ_ALIGN - 1))

size_t direct_read_capacity(size_t n) { return n + 2 * (size_t)DIRECT_READ_ALIGN; }

strata_status direct_reader_open(direct_reader *r, const char *path)
{
    *r = (direct_reader){.fd = -1, .direct_fd = -1, .nowait = true};
    r->path = strdup(path);
    if (!r->path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        strata_status status = strata_fail(STRATA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        direct_reader_close(r);
        return status;
    }
    r->direct_fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT); /* -1 where refused: buffered reads */
    return STRATA_OK;
}

void direct_reader_close(direct_reader *r)
{
    if (r->fd >= 0) close(r->fd);
    if (r->direct_fd >= 0) close(r->direct_fd);
    free(r->path);
    *r = (direct_reader){.fd = -1, .direct_fd = -1};
}

static strata_status read_failed(const direct_reader *r, uint64_t offset, ssize_t got)
{
    return strata_fail(STRATA_ERR_IO, "%s: cannot read at byte %llu: %s", r->path, (unsigned long long)offset,
                       got < 0 ? strerror(errno) : "unexpected end of file");
}

/* What the page cache holds of [offset, offset + n), from the start: bytes read. */
static size_t read_cached(direct_reader *r, uint8_t *dst, size_t n, uint64_t offset)
{
    size_t done = 0;
    while (r->nowait && done < n) {
        struct iovec piece = {.iov_base = dst + done, .iov_len = n - done};
        ssize_t got = preadv2(r->fd, &piece, 1, (off_t)(offset + done), RWF_NOWAIT);
        if (got > 0) done += (size_t)got;
        else if (got < 0 && errno == EINTR) continue;
        else {
            if (got < 0 && errno != EAGAIN) r->nowait = false; /* not supported here */
            break;                                             /* EAGAIN: the rest is on the disk */
        }
    }
    return done;
}

strata_status direct_reader_read(direct_reader *r, uint8_t *buf, size_t n, uint64_t offset, const uint8_t **data)
{
    uint64_t base = ALIGN_DOWN(offset), end = offset + n;
    uint8_t *dst = buf + (offset - base);
    uint64_t pos = offset + read_cached(r, dst, n, offset);
    while (pos < end) {
        ssize_t got;
        if (r->direct_fd >= 0) {
            /* Whole blocks from the one holding pos; the bytes before pos in that block are
             * read again, the same bytes. */
            uint64_t start = ALIGN_DOWN(pos), stop = ALIGN_DOWN(end + DIRECT_READ_ALIGN - 1);
            size_t want = stop - start < DIRECT_READ_PIECE ? (size_t)(stop - start) : DIRECT_READ_PIECE;
            got = pread(r->direct_fd, buf + (start - base), want, (off_t)start);
            if (got < 0 && errno == EINVAL) { /* an alignment this device refuses: buffered from here on */
                close(r->direct_fd);
                r->direct_fd = -1;
                continue;
            }
            if (got > 0 && start + (uint64_t)got <= pos) got = 0; /* nothing new: the end of the file */
            if (got > 0) got = (ssize_t)(start + (uint64_t)got - pos);
        } else {
            got = pread(r->fd, buf + (pos - base), (size_t)(end - pos), (off_t)pos);
        }
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return read_failed(r, pos, got);
        pos += (uint64_t)got;
    }
    *data = dst;
    return STRATA_OK;
}
