/*
 * direct_append.c — see direct_append.h.
 */
#include "io/direct_append.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool pwrite_all(int fd, const uint8_t *data, size_t n, uint64_t offset)
{
    while (n > 0) {
        ssize_t put = pwrite(fd, data, n, (off_t)offset);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) {
            if (put == 0) errno = EIO;
            return false;
        }
        data += put;
        n -= (size_t)put;
        offset += (uint64_t)put;
    }
    return true;
}

static bool set_direct(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return false;
    return fcntl(fd, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) == 0;
}

bool direct_append_open(direct_append *a, int fd, uint64_t start)
{
    *a = (direct_append){.fd = fd, .start = start};
    if (start % DIRECT_APPEND_ALIGN != 0 || !set_direct(fd, true)) return true; /* plain writes */
    void *stage = NULL;
    int err = posix_memalign(&stage, DIRECT_APPEND_ALIGN, DIRECT_APPEND_STAGE);
    if (err != 0) {
        (void)set_direct(fd, false);
        errno = err;
        return false;
    }
    a->stage = stage;
    return true;
}

/* Writes the first n bytes of the stage (whole blocks) at the end of what is written. A
 * device that refuses the alignment (EINVAL) gets them as a plain write, and plain writes
 * from then on. */
static bool write_staged(direct_append *a, size_t n)
{
    if (pwrite_all(a->fd, a->stage, n, a->start + a->written)) return true;
    if (errno != EINVAL || !set_direct(a->fd, false)) return false;
    return pwrite_all(a->fd, a->stage, n, a->start + a->written);
}

bool direct_append_write(direct_append *a, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (!a->stage) {
        if (!pwrite_all(a->fd, p, n, a->start + a->written)) return false;
        a->written += n;
        return true;
    }
    while (n > 0) {
        size_t take = DIRECT_APPEND_STAGE - a->staged < n ? DIRECT_APPEND_STAGE - a->staged : n;
        memcpy(a->stage + a->staged, p, take);
        a->staged += take;
        p += take;
        n -= take;
        if (a->staged == DIRECT_APPEND_STAGE) {
            if (!write_staged(a, DIRECT_APPEND_STAGE)) return false;
            a->written += DIRECT_APPEND_STAGE;
            a->staged = 0;
        }
    }
    return true;
}

bool direct_append_flush(direct_append *a)
{
    if (!a->stage) return true;
    size_t tail = a->staged, padded = (tail + DIRECT_APPEND_ALIGN - 1) / DIRECT_APPEND_ALIGN * DIRECT_APPEND_ALIGN;
    memset(a->stage + tail, 0, padded - tail);
    if (padded > 0 && !write_staged(a, padded)) return false;
    a->written += tail;
    a->staged = 0;
    if (ftruncate(a->fd, (off_t)(a->start + a->written)) != 0 || !set_direct(a->fd, false)) return false;
    direct_append_close(a);
    return true;
}

void direct_append_close(direct_append *a)
{
    free(a->stage);
    a->stage = NULL;
    a->staged = 0;
}
