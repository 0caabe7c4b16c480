/*
 * base_logits.c — llama.cpp's --kl-divergence-base files, written and read (see
 * base_logits.h). Writes go to a temporary name renamed into place; reads check the
 * length against the header before anything is trusted.
 */
#include "eval/base_logits.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fsutil.h"

static const char MAGIC[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
enum { HEADER_BYTES = 8 + 3 * 4 };

int64_t base_logits_record_words(int64_t n_vocab)
{
    return 2 * ((n_vocab + 1) / 2) + 4;
}

int64_t base_logits_first_position(int64_t n_ctx)
{
    return n_ctx / 2;
}

int64_t base_logits_records_per_window(int64_t n_ctx)
{
    return n_ctx - 1 - n_ctx / 2;
}

/* Round to nearest, ties to even, of a float in [0, 2^22): llama.cpp's nearest_int. */
static inline int nearest_int(float value)
{
    float shifted = value + 12582912.f;
    int bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

void base_logits_compress(const float *logits, int64_t n_vocab, uint16_t *record)
{
    float max = logits[0], min = logits[0];
    for (int64_t i = 1; i < n_vocab; i++) {
        max = logits[i] > max ? logits[i] : max;
        min = logits[i] < min ? logits[i] : min;
    }
    min = min > max - 16 ? min : max - 16;
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; i++) sum += expf(logits[i] - max);
    float log_sum_exp = (float)log(sum), min_log_prob = min - max - log_sum_exp, scale = (max - min) / 65535.f;
    memset(record, 0, (size_t)base_logits_record_words(n_vocab) * sizeof *record);
    memcpy(record, &scale, sizeof scale);
    memcpy(record + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t *q = record + 4;
    if (scale == 0) return;
    float inverse = 1 / scale;
    for (int64_t i = 0; i < n_vocab; i++) q[i] = logits[i] > min ? (uint16_t)nearest_int(inverse * (logits[i] - min)) : 0;
}

static strata_status write_failed(base_logits_writer *w)
{
    return strata_fail(STRATA_ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
}

strata_status base_logits_create(const char *path, int64_t n_ctx, int64_t n_vocab, int64_t n_chunk,
                                 const int32_t *tokens, base_logits_writer *w)
{
    *w = (base_logits_writer){0};
    if (n_ctx > INT32_MAX || n_vocab > INT32_MAX || n_chunk > INT32_MAX || n_ctx * n_chunk > INT32_MAX)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: %lld windows of %lld tokens do not fit the format", path,
                           (long long)n_chunk, (long long)n_ctx);
    if (path_is_dir(path)) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s is a directory", path);
    w->path = strdup(path);
    w->temp = path_temp_template(path);
    if (!w->path || !w->temp) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    int fd = mkstemp(w->temp);
    if (fd < 0) {
        strata_status status = strata_fail(STRATA_ERR_IO, "%s: cannot create %s: %s", path, w->temp, strerror(errno));
        free(w->temp);
        w->temp = NULL;
        return status;
    }
    w->file = fdopen(fd, "wb");
    if (!w->file) {
        close(fd);
        return write_failed(w);
    }
    w->n_vocab = n_vocab;
    w->records_left = n_chunk * base_logits_records_per_window(n_ctx);
    int32_t header[3] = {(int32_t)n_ctx, (int32_t)n_vocab, (int32_t)n_chunk};
    if (fwrite(MAGIC, 1, sizeof MAGIC, w->file) != sizeof MAGIC || fwrite(header, sizeof header, 1, w->file) != 1 ||
        fwrite(tokens, sizeof *tokens, (size_t)(n_ctx * n_chunk), w->file) != (size_t)(n_ctx * n_chunk))
        return write_failed(w);
    return STRATA_OK;
}

strata_status base_logits_append(base_logits_writer *w, const uint16_t *records, int64_t n_records)
{
    if (n_records > w->records_left)
        return strata_fail(STRATA_ERR_INTERNAL, "%s: more records than the header announces", w->path);
    size_t words = (size_t)(n_records * base_logits_record_words(w->n_vocab));
    if (fwrite(records, sizeof *records, words, w->file) != words) return write_failed(w);
    w->records_left -= n_records;
    return STRATA_OK;
}

strata_status base_logits_commit(base_logits_writer *w)
{
    if (w->records_left != 0)
        return strata_fail(STRATA_ERR_INTERNAL, "%s: %lld records missing", w->path, (long long)w->records_left);
    FILE *file = w->file;
    w->file = NULL;
    bool ok = fflush(file) == 0 && fsync(fileno(file)) == 0;
    ok = fclose(file) == 0 && ok;
    if (!ok || rename(w->temp, w->path) != 0) return write_failed(w);
    fsync_parent_dir(w->path);
    free(w->temp);
    w->temp = NULL;
    return STRATA_OK;
}

void base_logits_writer_free(base_logits_writer *w)
{
    if (w->file) fclose(w->file);
    if (w->temp) unlink(w->temp);
    free(w->temp);
    free(w->path);
    *w = (base_logits_writer){0};
}

static strata_status not_a_base_file(const char *path, const char *why)
{
    return strata_fail(STRATA_ERR_FORMAT, "%s is not a base log-probability file (llama.cpp --kl-divergence-base): %s",
                       path, why);
}

strata_status base_logits_open(const char *path, base_logits_reader *r)
{
    *r = (base_logits_reader){.fd = -1};
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) return strata_fail(STRATA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!(r->path = strdup(path))) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    struct stat st;
    unsigned char header[HEADER_BYTES];
    if (fstat(r->fd, &st) != 0) return strata_fail(STRATA_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return not_a_base_file(path, "not a regular file");
    if ((uint64_t)st.st_size < HEADER_BYTES || !fd_pread_all(r->fd, header, HEADER_BYTES, 0))
        return not_a_base_file(path, "shorter than its header");
    if (memcmp(header, MAGIC, sizeof MAGIC) != 0) return not_a_base_file(path, "no \"_logits_\" at the start");
    int32_t sizes[3];
    memcpy(sizes, header + sizeof MAGIC, sizeof sizes);
    r->n_ctx = sizes[0];
    r->n_vocab = sizes[1];
    r->n_chunk = sizes[2];
    if (r->n_ctx < 2 || r->n_vocab < 1 || r->n_chunk < 1)
        return not_a_base_file(path, "its window, vocabulary or window count is not positive");
    uint64_t tokens = (uint64_t)r->n_ctx * (uint64_t)r->n_chunk;
    uint64_t expected = HEADER_BYTES + 4 * tokens + 2 * (uint64_t)base_logits_record_words(r->n_vocab) *
                                                        (uint64_t)base_logits_records_per_window(r->n_ctx) *
                                                        (uint64_t)r->n_chunk;
    if ((uint64_t)st.st_size != expected) {
        char why[160];
        snprintf(why, sizeof why, "%llu bytes, where %lld windows of %lld tokens over %lld entries take %llu",
                 (unsigned long long)st.st_size, (long long)r->n_chunk, (long long)r->n_ctx, (long long)r->n_vocab,
                 (unsigned long long)expected);
        return not_a_base_file(path, why);
    }
    if (!(r->tokens = malloc(tokens * sizeof *r->tokens)))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the tokens of %s", path);
    if (!fd_pread_all(r->fd, r->tokens, tokens * sizeof *r->tokens, HEADER_BYTES))
        return strata_fail(STRATA_ERR_IO, "%s: cannot read its tokens: %s", path, strerror(errno));
    return STRATA_OK;
}

strata_status base_logits_read(const base_logits_reader *r, int64_t first, int64_t count, uint16_t *records)
{
    uint64_t window_bytes = 2 * (uint64_t)base_logits_record_words(r->n_vocab) *
                            (uint64_t)base_logits_records_per_window(r->n_ctx);
    uint64_t offset = HEADER_BYTES + 4 * (uint64_t)r->n_ctx * (uint64_t)r->n_chunk + window_bytes * (uint64_t)first;
    if (!fd_pread_all(r->fd, records, window_bytes * (uint64_t)count, offset))
        return strata_fail(STRATA_ERR_IO, "%s: cannot read windows %lld to %lld: %s", r->path, (long long)first,
                           (long long)(first + count - 1), strerror(errno));
    return STRATA_OK;
}

void base_logits_close(base_logits_reader *r)
{
    if (r->fd >= 0) close(r->fd);
    free(r->tokens);
    free(r->path);
    *r = (base_logits_reader){.fd = -1};
}
