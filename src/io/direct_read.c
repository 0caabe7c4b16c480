/*
 * direct_read.c — see direct_read.h.
 */
#include "io/direct_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"

#define ALIGN_DOWN(x, a) ((x) / (a) * (a))

size_t direct_read_capacity(size_t n) { return n + 2 * (size_t)DIRECT_READ_ALIGN; }

strata_status direct_reader_open(direct_reader *r, const char *path)
{
    *r = (direct_reader){.fd = -1, .direct_fd = -1};
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
    free(r->resident);
    *r = (direct_reader){.fd = -1, .direct_fd = -1};
}

static strata_status read_failed(const direct_reader *r, uint64_t offset, ssize_t got)
{
    return strata_fail(STRATA_ERR_IO, "%s: cannot read at byte %llu: %s", r->path, (unsigned long long)offset,
                       got < 0 ? strerror(errno) : "unexpected end of file");
}

/* Which pages of [first, first + span) the page cache holds, a byte each in r->resident
 * (bit 0); false where that cannot be told (then everything is read as if not cached). */
static bool look_up_cache(direct_reader *r, uint64_t first, size_t span, size_t page)
{
    size_t pages = (span + page - 1) / page;
    if (pages > r->capacity) {
        unsigned char *grown = realloc(r->resident, pages);
        if (!grown) return false;
        r->resident = grown;
        r->capacity = pages;
    }
    void *map = mmap(NULL, span, PROT_READ, MAP_SHARED, r->fd, (off_t)first);
    if (map == MAP_FAILED) return false;
    bool ok = mincore(map, span, r->resident) == 0;
    munmap(map, span);
    return ok;
}

/* Bytes [pos, end) of the file into buf (which holds the file from byte base on), through
 * the cache. */
static strata_status read_buffered(const direct_reader *r, uint8_t *buf, uint64_t base, uint64_t pos, uint64_t end)
{
    while (pos < end) {
        ssize_t got = pread(r->fd, buf + (pos - base), (size_t)(end - pos), (off_t)pos);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return read_failed(r, pos, got);
        pos += (uint64_t)got;
    }
    return STRATA_OK;
}

/* The same with direct reads of whole blocks from the one holding pos (the bytes of the
 * first and last blocks outside [pos, end) are read too, the same bytes the file holds
 * there). An alignment the device refuses (EINVAL) turns direct reads off. */
static strata_status read_direct(direct_reader *r, uint8_t *buf, uint64_t base, uint64_t pos, uint64_t end)
{
    while (pos < end) {
        if (r->direct_fd < 0) return read_buffered(r, buf, base, pos, end);
        uint64_t start = ALIGN_DOWN(pos, DIRECT_READ_ALIGN);
        uint64_t stop = ALIGN_DOWN(end + DIRECT_READ_ALIGN - 1, DIRECT_READ_ALIGN);
        size_t want = stop - start < DIRECT_READ_PIECE ? (size_t)(stop - start) : DIRECT_READ_PIECE;
        ssize_t got = pread(r->direct_fd, buf + (start - base), want, (off_t)start);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EINVAL) {
            close(r->direct_fd);
            r->direct_fd = -1;
            continue;
        }
        if (got < 0 || start + (uint64_t)got <= pos) return read_failed(r, pos, got < 0 ? got : 0);
        pos = start + (uint64_t)got;
    }
    return STRATA_OK;
}

strata_status direct_reader_read(direct_reader *r, uint8_t *buf, size_t n, uint64_t offset, const uint8_t **data)
{
    uint64_t base = ALIGN_DOWN(offset, DIRECT_READ_ALIGN), end = offset + n;
    *data = buf + (offset - base);
    if (n == 0) return STRATA_OK;
    if (r->direct_fd < 0) return read_buffered(r, buf, base, offset, end);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t first = ALIGN_DOWN(offset, page);
    if (!look_up_cache(r, first, (size_t)(end - first), page)) return read_direct(r, buf, base, offset, end);
    /* Run by run of pages that are all cached or all not. */
    strata_status status = STRATA_OK;
    for (uint64_t pos = offset; status == STRATA_OK && pos < end;) {
        size_t k = (size_t)((pos - first) / page);
        bool cached = r->resident[k] & 1;
        uint64_t run_end = first + (uint64_t)(k + 1) * page;
        while (run_end < end && (bool)(r->resident[(run_end - first) / page] & 1) == cached) run_end += page;
        if (run_end > end) run_end = end;
        status = cached ? read_buffered(r, buf, base, pos, run_end) : read_direct(r, buf, base, pos, run_end);
        pos = run_end;
    }
    return status;
}
