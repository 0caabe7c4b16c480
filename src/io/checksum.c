/*
 * checksum.c — CRC-32 through zlib (see checksum.h).
 */
#include "io/checksum.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"

uint32_t checksum_update(uint32_t crc, const void *data, size_t n)
{
    const Bytef *p = data;
    while (n > 0) {
        uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32((uLong)crc, p, step);
        p += step;
        n -= step;
    }
    return crc;
}

strata_status checksum_file(const char *path, uint32_t *crc, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return strata_fail(STRATA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    enum { BUFFER = 1 << 20 };
    unsigned char *buffer = malloc(BUFFER);
    if (!buffer) {
        close(fd);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    *crc = 0;
    *size = 0;
    strata_status status = STRATA_OK;
    for (;;) {
        ssize_t n = read(fd, buffer, BUFFER);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            status = strata_fail(STRATA_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        *crc = checksum_update(*crc, buffer, (size_t)n);
        *size += (uint64_t)n;
    }
    free(buffer);
    close(fd);
    return status;
}
