/*
 * act_store.c — the activation store (see act_store.h).
 *
 * Saved files are the raw bf16 buffer, row-major, little-endian; the checkpoint manifest
 * keeps their CRC-32 and size.
 */
#include "pipeline/act_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/checksum.h"
#include "io/fsutil.h"
#include "kernels/gemm.h"

enum { IO_ROWS = ACT_STORE_PIECE_ROWS };

uint64_t act_store_buffer_bytes(int64_t rows, int64_t hidden) { return (uint64_t)rows * (uint64_t)hidden * 2; }

strata_status act_store_create(act_store *s, int64_t rows, int64_t hidden, bool spill, const char *spill_dir)
{
    *s = (act_store){.rows = rows, .hidden = hidden, .spilled = spill, .fd = {-1, -1}, .spill_dir = spill_dir};
    uint64_t bytes = act_store_buffer_bytes(rows, hidden);
    for (int b = 0; b < 2; b++) {
        if (!spill) {
            s->ram[b] = malloc(bytes ? bytes : 1);
            if (!s->ram[b]) {
                act_store_free(s);
                return strata_fail(STRATA_ERR_OUT_OF_MEMORY,
                                   "out of memory for the activation store (%llu MiB per buffer); lower "
                                   "--max-memory to spill it to disk",
                                   (unsigned long long)(bytes >> 20));
            }
            continue;
        }
        s->fd[b] = fd_unlinked_temp(spill_dir, ".strata-act-store");
        if (s->fd[b] < 0 || ftruncate(s->fd[b], (off_t)bytes) != 0) {
            strata_status status = strata_fail(STRATA_ERR_IO, "%s: cannot create the activation spill file: %s",
                                               spill_dir, strerror(errno));
            act_store_free(s);
            return status;
        }
    }
    return STRATA_OK;
}

void act_store_free(act_store *s)
{
    for (int b = 0; b < 2; b++) {
        free(s->ram[b]);
        if (s->fd[b] >= 0) close(s->fd[b]);
    }
    *s = (act_store){.fd = {-1, -1}};
}

static strata_status read_rows(const act_store *s, int buffer, int64_t row0, int64_t n, float *x)
{
    size_t count = (size_t)n * (size_t)s->hidden;
    uint64_t offset = (uint64_t)row0 * (uint64_t)s->hidden * 2;
    if (!s->spilled) return strata_convert_to_f32(STRATA_DTYPE_BF16, (const uint8_t *)s->ram[buffer] + offset, count, x);
    uint16_t *tmp = malloc(count * 2 + 1);
    if (!tmp) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading the activation store");
    strata_status status = STRATA_OK;
    if (!fd_pread_all(s->fd[buffer], tmp, count * 2, offset))
        status = strata_fail(STRATA_ERR_IO, "%s: reading the activation spill file failed: %s", s->spill_dir,
                             strerror(errno));
    else status = strata_convert_to_f32(STRATA_DTYPE_BF16, tmp, count, x);
    free(tmp);
    return status;
}

strata_status act_store_read(const act_store *s, int64_t row0, int64_t n, float *x)
{
    return read_rows(s, s->current, row0, n, x);
}

strata_status act_store_read_next(const act_store *s, int64_t row0, int64_t n, float *x)
{
    return read_rows(s, 1 - s->current, row0, n, x);
}

strata_status act_store_write_next(act_store *s, int64_t row0, int64_t n, const float *x)
{
    int b = 1 - s->current;
    size_t count = (size_t)n * (size_t)s->hidden;
    uint64_t offset = (uint64_t)row0 * (uint64_t)s->hidden * 2;
    if (!s->spilled) {
        gemm_round_to_bf16(x, (uint16_t *)((uint8_t *)s->ram[b] + offset), count);
        return STRATA_OK;
    }
    uint16_t *tmp = malloc(count * 2 + 1);
    if (!tmp) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory writing the activation store");
    gemm_round_to_bf16(x, tmp, count);
    strata_status status = STRATA_OK;
    if (!fd_pwrite_all(s->fd[b], tmp, count * 2, offset))
        status = strata_fail(STRATA_ERR_IO, "%s: writing the activation spill file failed: %s", s->spill_dir,
                             strerror(errno));
    free(tmp);
    return status;
}

void act_store_swap(act_store *s) { s->current = 1 - s->current; }

/* Visits the current buffer in slices of IO_ROWS rows as raw bf16 bytes. */
static strata_status current_slice(const act_store *s, int64_t row0, int64_t n, uint16_t *tmp, const uint16_t **out)
{
    uint64_t offset = (uint64_t)row0 * (uint64_t)s->hidden * 2;
    size_t bytes = (size_t)n * (size_t)s->hidden * 2;
    if (!s->spilled) {
        *out = (const uint16_t *)((const uint8_t *)s->ram[s->current] + offset);
        return STRATA_OK;
    }
    if (!fd_pread_all(s->fd[s->current], tmp, bytes, offset))
        return strata_fail(STRATA_ERR_IO, "%s: reading the activation spill file failed: %s", s->spill_dir,
                           strerror(errno));
    *out = tmp;
    return STRATA_OK;
}

/* Appends bytes to the file being saved, adding them to its CRC and size. */
static strata_status save_bytes(int fd, const char *path, const void *data, size_t bytes, uint32_t *crc, uint64_t *size)
{
    if (!fd_write_all(fd, data, bytes)) return strata_fail(STRATA_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    *crc = checksum_update(*crc, data, bytes);
    *size += bytes;
    return STRATA_OK;
}

strata_status act_store_save(const act_store *s, const char *path, act_rows_fn more, void *more_ctx, uint32_t *crc,
                             uint64_t *size)
{
    char *tmp_path = path_temp_template(path);
    uint16_t *tmp = malloc((size_t)IO_ROWS * (size_t)s->hidden * 2);
    if (!tmp_path || !tmp) {
        free(tmp_path);
        free(tmp);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    strata_status status = STRATA_OK;
    int fd = mkostemp(tmp_path, O_CLOEXEC);
    if (fd < 0) status = strata_fail(STRATA_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    *crc = 0;
    *size = 0;
    for (int64_t row = 0; status == STRATA_OK && row < s->rows; row += IO_ROWS) {
        int64_t n = s->rows - row < IO_ROWS ? s->rows - row : IO_ROWS;
        const uint16_t *data = NULL;
        status = current_slice(s, row, n, tmp, &data);
        if (status == STRATA_OK) status = save_bytes(fd, path, data, (size_t)n * (size_t)s->hidden * 2, crc, size);
    }
    while (status == STRATA_OK && more) {
        const uint16_t *data = NULL;
        size_t bytes = 0;
        status = more(more_ctx, &data, &bytes);
        if (status != STRATA_OK || bytes == 0) break;
        status = save_bytes(fd, path, data, bytes, crc, size);
    }
    if (status == STRATA_OK && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
        status = strata_fail(STRATA_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    if (status == STRATA_OK && rename(tmp_path, path) != 0)
        status = strata_fail(STRATA_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (status != STRATA_OK && fd >= 0) unlink(tmp_path);
    if (status == STRATA_OK) fsync_parent_dir(path);
    free(tmp_path);
    free(tmp);
    return status;
}

strata_status act_store_visit(const act_store *s, strata_status (*fn)(void *ctx, const uint16_t *data, size_t bytes),
                              void *ctx)
{
    uint16_t *tmp = malloc((size_t)IO_ROWS * (size_t)s->hidden * 2);
    if (!tmp) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading the activation store");
    strata_status status = STRATA_OK;
    for (int64_t row = 0; status == STRATA_OK && row < s->rows; row += IO_ROWS) {
        int64_t n = s->rows - row < IO_ROWS ? s->rows - row : IO_ROWS;
        const uint16_t *data = NULL;
        status = current_slice(s, row, n, tmp, &data);
        if (status == STRATA_OK) status = fn(ctx, data, (size_t)n * (size_t)s->hidden * 2);
    }
    free(tmp);
    return status;
}

strata_status act_store_load(act_store *s, const char *path, const uint32_t *crc, int64_t row0, int64_t file_rows)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return strata_fail(STRATA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    uint64_t bytes = act_store_buffer_bytes(file_rows, s->hidden);
    strata_status status = STRATA_OK;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != bytes || row0 < 0 || row0 + s->rows > file_rows)
        status = strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: %lld bytes, expected %llu", path,
                             (long long)st.st_size, (unsigned long long)bytes);
    uint16_t *tmp = malloc((size_t)IO_ROWS * (size_t)s->hidden * 2);
    if (status == STRATA_OK && !tmp) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    /* Every row when checking the CRC, else only the store's. */
    int64_t first = crc ? 0 : row0, end = crc ? file_rows : row0 + s->rows;
    uint32_t seen = 0;
    for (int64_t row = first; status == STRATA_OK && row < end; row += IO_ROWS) {
        int64_t n = end - row < IO_ROWS ? end - row : IO_ROWS;
        size_t count = (size_t)n * (size_t)s->hidden;
        if (!fd_pread_all(fd, tmp, count * 2, (uint64_t)row * (uint64_t)s->hidden * 2)) {
            status = strata_fail(STRATA_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (crc) seen = checksum_update(seen, tmp, count * 2);
        /* The part of these rows that is the store's. */
        int64_t a = row > row0 ? row : row0, b = row + n < row0 + s->rows ? row + n : row0 + s->rows;
        if (a >= b) continue;
        const uint16_t *src = tmp + (size_t)(a - row) * (size_t)s->hidden;
        size_t piece = (size_t)(b - a) * (size_t)s->hidden * 2;
        uint64_t offset = (uint64_t)(a - row0) * (uint64_t)s->hidden * 2;
        if (!s->spilled) memcpy((uint8_t *)s->ram[s->current] + offset, src, piece);
        else if (!fd_pwrite_all(s->fd[s->current], src, piece, offset))
            status = strata_fail(STRATA_ERR_IO, "%s: writing the activation spill file failed: %s", s->spill_dir,
                                 strerror(errno));
    }
    if (status == STRATA_OK && crc && seen != *crc)
        status = strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: checksum %08x, the manifest records %08x",
                             path, (unsigned)seen, (unsigned)*crc);
    free(tmp);
    close(fd);
    return status;
}
