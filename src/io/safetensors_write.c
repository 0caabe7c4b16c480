/*
 * safetensors_write.c — the streaming, sharded safetensors writer.
 *
 * A safetensors header precedes its data and depends on every tensor in the file, and HF
 * shard names (model-00001-of-00004) depend on how many shards there will be; neither is
 * known while tensors are still being produced. So each tensor's bytes are appended to a
 * temporary data file for the current shard as soon as they arrive (memory holds only
 * the tensor list), a new shard is started when the next tensor would push the current
 * one past max_shard_bytes, and finish() assembles each shard as header + data under a
 * temporary name, fsyncs it, and only then renames every shard and the index json into
 * place.
 *
 * The data goes DATA_RESERVE bytes into its file, behind a hole. The header is padded
 * with spaces so that the data starts on a 4 KiB boundary; assembling writes it at the
 * front and removes the rest of the hole with FALLOC_FL_COLLAPSE_RANGE, so no data byte
 * is copied (copying a multi-GB shard and freeing the copy's source cost more than
 * producing it). Where the filesystem cannot collapse a range, or the header outgrows
 * the reserve, the data is copied behind the header into a new file (copy_file_range,
 * in the kernel). Either way the file holds the same bytes. The data itself is appended
 * with O_DIRECT where the file system allows (direct_append.h): no page-cache copy, no
 * writeback work for the cores that produce the tensors.
 *
 * Resumable mode (safetensors_resume.h) seals a shard (header + data, fsync, rename to
 * shard-0000i.safetensors in the output directory, which is then a run's staging area)
 * as soon as the next one starts, so a run killed at any moment leaves only whole shards
 * behind. A new writer on the same directory adopts those shards; tensors they hold are
 * skipped when added again, and finish() renames them to their final names with the new
 * ones.
 *
 * Sealing in place needs no extra disk. Where the file system cannot collapse a range
 * (tmpfs, NFS, overlay on some kernels), the copy needs the shard's size once more until
 * the data file goes: that free space is checked first, and its lack is an error naming
 * the file system, not a write failure half way through the copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/checked.h"
#include "core/error.h"
#include "core/strmap.h"
#include "core/strpairs.h"
#include "io/direct_append.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/safetensors_resume.h"

#define DATA_RESERVE ((uint64_t)64 << 20) /* room for the header in front of a shard's data */
#define DATA_ALIGN 4096                    /* where the data starts: a multiple of this */

typedef struct written_tensor {
    char *name;
    strata_dtype dtype;
    int n_dims;
    int64_t shape[STRATA_MAX_DIMS];
    uint64_t begin, end;              /* offsets into the shard's data buffer */
} written_tensor;

typedef struct shard_out {
    char *data_path;                  /* temporary file holding the data buffer */
    int data_fd;
    direct_append *data;              /* appends to data_fd from DATA_RESERVE on */
    written_tensor *tensors;          /* (n_tensors) in append order */
    size_t n_tensors, capacity;
    uint64_t data_bytes;
    char *assembled_path;             /* temporary header + data file, set by finish */
    char *sealed_path;                /* resumable mode: the sealed shard (shard-0000i.safetensors) */
    bool adopted;                     /* sealed by an earlier writer */
} shard_out;

struct strata_safetensors_writer {
    char *dir;
    char *stem;
    uint64_t max_shard_bytes;
    string_pairs metadata;            /* "__metadata__" of every shard */
    shard_out *shards;                /* (n_shards) */
    size_t n_shards;
    strmap names;                     /* every tensor name added, for duplicates */
    bool resumable;                   /* shards are sealed in dir as they fill (safetensors_resume.h) */
    strmap adopted;                   /* names held by adopted shards -> (shard << 32 | index) */
    bool finished;
    bool failed;                      /* an earlier error left the output unusable */
};

static void discard_temporaries(strata_safetensors_writer *w)
{
    for (size_t i = 0; i < w->n_shards; i++) {
        shard_out *s = &w->shards[i];
        direct_append_close(s->data);
        s->data = NULL;
        if (s->data_fd >= 0) close(s->data_fd);
        s->data_fd = -1;
        if (s->data_path) unlink(s->data_path);
        if (s->assembled_path) unlink(s->assembled_path);
    }
}

void strata_safetensors_writer_free(strata_safetensors_writer *w)
{
    if (!w) return;
    if (!w->finished) discard_temporaries(w);
    for (size_t i = 0; i < w->n_shards; i++) {
        shard_out *s = &w->shards[i];
        direct_append_close(s->data);
        s->data = NULL;
        if (s->data_fd >= 0) close(s->data_fd);
        for (size_t t = 0; t < s->n_tensors; t++) free(s->tensors[t].name);
        free(s->tensors);
        free(s->data_path);
        free(s->assembled_path);
        free(s->sealed_path);
    }
    strmap_free(&w->adopted);
    string_pairs_free(&w->metadata);
    free(w->shards);
    strmap_free(&w->names);
    free(w->dir);
    free(w->stem);
    free(w);
}

strata_status strata_safetensors_writer_create(const strata_writer_params *params, strata_safetensors_writer **out)
{
    if (!params || !params->dir || !out)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_safetensors_writer_create: NULL argument");
    *out = NULL;
    if (!path_is_dir(params->dir))
        return strata_fail(STRATA_ERR_NOT_FOUND, "%s: output directory does not exist", params->dir);
    const char *stem = params->stem ? params->stem : "model";
    if (stem[0] == '\0' || strchr(stem, '/'))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "safetensors writer: invalid file stem '%s'", stem);
    strata_safetensors_writer *w = calloc(1, sizeof *w);
    if (!w) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", params->dir);
    w->dir = strdup(params->dir);
    w->stem = strdup(stem);
    w->max_shard_bytes = params->max_shard_bytes;
    if (!w->dir || !w->stem) {
        strata_safetensors_writer_free(w);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", params->dir);
    }
    *out = w;
    return STRATA_OK;
}

strata_status strata_safetensors_writer_set_metadata(strata_safetensors_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "writer_set_metadata: NULL argument");
    if (w->finished) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: writer already finished", w->dir);
    if (!string_pairs_set(&w->metadata, key, value, false)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

static strata_status seal_shard(strata_safetensors_writer *w, size_t i);

/* Every byte of the shard's data is in its file; the appender goes. */
static strata_status finish_data(shard_out *s)
{
    if (!s->data) return STRATA_OK;
    bool ok = direct_append_flush(s->data);
    int err = errno;
    direct_append_close(s->data);
    s->data = NULL;
    if (!ok) return strata_fail(STRATA_ERR_IO, "%s: write failed: %s", s->data_path, strerror(err));
    return STRATA_OK;
}

static strata_status start_shard(strata_safetensors_writer *w)
{
    shard_out *shards = realloc(w->shards, (w->n_shards + 1) * sizeof *shards);
    if (!shards) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
    w->shards = shards;
    shard_out *s = &w->shards[w->n_shards];
    *s = (shard_out){.data_fd = -1};
    char name[64];
    snprintf(name, sizeof name, ".%.24s-shard%zu.data.tmp-XXXXXX", w->stem, w->n_shards + 1);
    s->data_path = path_join(w->dir, name);
    if (!s->data_path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
    w->n_shards++;
    s->data_fd = mkostemp(s->data_path, O_CLOEXEC);
    if (s->data_fd >= 0 && !(s->data = direct_append_open(s->data_fd, DATA_RESERVE))) {
        close(s->data_fd);
        unlink(s->data_path);
        s->data_fd = -1;
    }
    if (s->data_fd < 0) {
        strata_status status = strata_fail(STRATA_ERR_IO, "%s: cannot create a temporary file: %s", w->dir,
                                           strerror(errno));
        free(s->data_path);
        s->data_path = NULL;
        return status;
    }
    return STRATA_OK;
}

strata_status strata_safetensors_writer_add(strata_safetensors_writer *w, const char *name, strata_dtype dtype,
                                            int n_dims, const int64_t *shape, const void *data, uint64_t n_bytes)
{
    if (!w || !name || (n_dims > 0 && !shape) || (n_bytes > 0 && !data))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "writer_add: NULL argument");
    if (w->finished || w->failed)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: tensor '%s': writer is %s", w->dir, name,
                           w->finished ? "already finished" : "in a failed state");
    if (name[0] == '\0' || strcmp(name, "__metadata__") == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: invalid tensor name '%s'", w->dir, name);
    if (strata_dtype_size(dtype) == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: tensor '%s': invalid dtype %d", w->dir, name, (int)dtype);
    if (n_dims < 0 || n_dims > STRATA_MAX_DIMS)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: tensor '%s': %d dimensions", w->dir, name, n_dims);
    uint64_t expected = strata_dtype_size(dtype);
    for (int d = 0; d < n_dims; d++) {
        if (shape[d] < 0 || !checked_mul_u64(expected, (uint64_t)shape[d], &expected))
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: tensor '%s': invalid shape", w->dir, name);
    }
    if (expected != n_bytes)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: tensor '%s': shape and dtype %s need %llu bytes, got %llu",
                           w->dir, name, strata_dtype_name(dtype), (unsigned long long)expected,
                           (unsigned long long)n_bytes);
    size_t where = 0;
    if (strmap_find(&w->adopted, name, &where)) {
        const written_tensor *held = &w->shards[where >> 32].tensors[where & 0xffffffffu];
        bool same = held->dtype == dtype && held->n_dims == n_dims && held->end - held->begin == n_bytes;
        for (int d = 0; same && d < n_dims; d++) same = held->shape[d] == shape[d];
        if (!same)
            return strata_fail(STRATA_ERR_MISMATCH, "%s: tensor '%s' differs from the one a resumed shard holds",
                               w->dir, name);
        return STRATA_OK;
    }
    if (strmap_find(&w->names, name, NULL))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: tensor '%s' was already written", w->dir, name);

    shard_out *s = w->n_shards ? &w->shards[w->n_shards - 1] : NULL;
    bool full = s && s->n_tensors > 0 && w->max_shard_bytes > 0 && s->data_bytes + n_bytes > w->max_shard_bytes;
    if (!s || full || s->sealed_path) {
        strata_status status = STRATA_OK;
        if (s && w->resumable && !s->sealed_path) status = seal_shard(w, w->n_shards - 1);
        else if (s && !s->sealed_path) status = finish_data(s); /* its staging buffers and thread go */
        if (status == STRATA_OK) status = start_shard(w);
        if (status != STRATA_OK) { w->failed = true; return status; }
        s = &w->shards[w->n_shards - 1];
    }
    if (s->n_tensors == s->capacity) {
        size_t capacity = s->capacity ? s->capacity * 2 : 64;
        written_tensor *grown = realloc(s->tensors, capacity * sizeof *grown);
        if (!grown) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
        s->tensors = grown;
        s->capacity = capacity;
    }
    written_tensor *t = &s->tensors[s->n_tensors];
    *t = (written_tensor){.name = strdup(name), .dtype = dtype, .n_dims = n_dims,
                          .begin = s->data_bytes, .end = s->data_bytes + n_bytes};
    if (!t->name) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
    for (int d = 0; d < n_dims; d++) t->shape[d] = shape[d];
    if (!direct_append_write(s->data, data, (size_t)n_bytes)) {
        w->failed = true;
        free(t->name);
        return strata_fail(STRATA_ERR_IO, "%s: tensor '%s': write failed: %s", s->data_path, name, strerror(errno));
    }
    s->n_tensors++;
    s->data_bytes += n_bytes;
    if (!strmap_insert(&w->names, t->name, 0, NULL, NULL))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
    return STRATA_OK;
}

/* The shard's header JSON, padded with spaces so that the data buffer starts at a
 * multiple of DATA_ALIGN (the reference writer pads to 8; any amount of trailing space is
 * valid JSON and valid safetensors). */
static char *shard_header(const strata_safetensors_writer *w, const shard_out *s, size_t *length)
{
    sjson *root = sjson_new_object();
    bool ok = root != NULL;
    if (ok && w->metadata.count > 0) {
        sjson *meta = sjson_new_object();
        for (size_t i = 0; ok && i < w->metadata.count; i++)
            ok = sjson_set(meta, w->metadata.keys[i], sjson_new_string(w->metadata.values[i]));
        ok = ok && sjson_set(root, "__metadata__", meta);
    }
    for (size_t i = 0; ok && i < s->n_tensors; i++) {
        const written_tensor *t = &s->tensors[i];
        sjson *info = sjson_new_object(), *shape = sjson_new_array(), *offsets = sjson_new_array();
        ok = info && shape && offsets;
        for (int d = 0; ok && d < t->n_dims; d++) ok = sjson_append(shape, sjson_new_int(t->shape[d]));
        ok = ok && sjson_append(offsets, sjson_new_int((int64_t)t->begin)) &&
             sjson_append(offsets, sjson_new_int((int64_t)t->end));
        ok = ok && sjson_set(info, "dtype", sjson_new_string(strata_dtype_name(t->dtype)));
        ok = ok && sjson_set(info, "shape", shape);
        shape = NULL;
        ok = ok && sjson_set(info, "data_offsets", offsets);
        offsets = NULL;
        ok = ok && sjson_set(root, t->name, info);
        info = NULL;
        sjson_free(shape);
        sjson_free(offsets);
        sjson_free(info);
    }
    char *text = ok ? sjson_dump(root, 0) : NULL;
    sjson_free(root);
    if (!text) return NULL;
    size_t n = strlen(text), padded = (8 + n + DATA_ALIGN - 1) / DATA_ALIGN * DATA_ALIGN - 8;
    char *out = realloc(text, padded + 1);
    if (!out) { free(text); return NULL; }
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *length = padded;
    return out;
}

/* Copies bytes [start, end) of in_fd to out_fd's position. */
static bool copy_range(int in_fd, int out_fd, uint64_t start, uint64_t end)
{
    loff_t offset = (loff_t)start;
    while ((uint64_t)offset < end) {
        ssize_t n = copy_file_range(in_fd, &offset, out_fd, NULL, (size_t)(end - (uint64_t)offset), 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 || errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) break;
        return false;
    }
    char buffer[1 << 16];
    while ((uint64_t)offset < end) {
        size_t want = sizeof buffer;
        if (end - (uint64_t)offset < want) want = (size_t)(end - (uint64_t)offset);
        ssize_t n = pread(in_fd, buffer, want, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || !fd_write_all(out_fd, buffer, (size_t)n)) return false;
        offset += n;
    }
    return true;
}

/* Puts the header in front of the data in the data file itself and collapses the rest of
 * the reserve; false where that cannot be done (the data is then still intact at
 * DATA_RESERVE, for the copying path). */
static bool assemble_in_place(shard_out *s, const uint8_t length_bytes[8], const char *header, size_t header_length)
{
    uint64_t data_start = 8 + (uint64_t)header_length;
    if (data_start > DATA_RESERVE || s->data_bytes == 0) return false;
    if (pwrite(s->data_fd, length_bytes, 8, 0) != 8 ||
        pwrite(s->data_fd, header, header_length, 8) != (ssize_t)header_length)
        return false;
    if (data_start < DATA_RESERVE &&
        fallocate(s->data_fd, FALLOC_FL_COLLAPSE_RANGE, (off_t)data_start, (off_t)(DATA_RESERVE - data_start)) != 0)
        return false;
    s->assembled_path = s->data_path; /* the data file is the shard now */
    s->data_path = NULL;
    return true;
}

/* The copying path writes the whole shard again while its data file still exists. */
static strata_status check_room_for_copy(const char *final_path, uint64_t bytes)
{
    char *dir = strdup(final_path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) *slash = '\0';
    struct statvfs fs;
    bool known = dir && statvfs(slash ? dir : ".", &fs) == 0;
    uint64_t available = known ? (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize : 0;
    strata_status status = STRATA_OK;
    if (known && available < bytes + (bytes >> 6) + (1u << 20)) {
        char where[512];
        fs_describe(slash ? dir : ".", where, sizeof where);
        status = strata_fail(STRATA_ERR_IO, "%s: sealing this shard copies it (its file system cannot collapse a "
                             "range in place), which needs %.1f MiB free on %s; %.1f MiB are free",
                             final_path, (double)bytes / (1 << 20), where, (double)available / (1 << 20));
    }
    free(dir);
    return status;
}

/* Writes header + data of shard i under a temporary name beside its final one. */
static strata_status assemble_shard(strata_safetensors_writer *w, size_t i, const char *final_path)
{
    shard_out *s = &w->shards[i];
    strata_status flushed = finish_data(s);
    if (flushed != STRATA_OK) return flushed;
    size_t header_length = 0;
    char *header = shard_header(w, s, &header_length);
    if (!header) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory building its header", final_path);
    uint8_t length_bytes[8];
    for (int b = 0; b < 8; b++) length_bytes[b] = (uint8_t)((uint64_t)header_length >> (8 * b));
    if (assemble_in_place(s, length_bytes, header, header_length)) {
        strata_status status = STRATA_OK;
        if (fchmod(s->data_fd, 0644) != 0 || fsync(s->data_fd) != 0)
            status = strata_fail(STRATA_ERR_IO, "%s: write failed: %s", s->assembled_path, strerror(errno));
        free(header);
        return status;
    }
    strata_status status = check_room_for_copy(final_path, 8 + header_length + s->data_bytes);
    if (status != STRATA_OK) {
        free(header);
        return status;
    }
    s->assembled_path = path_temp_template(final_path);
    if (!s->assembled_path) {
        free(header);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", final_path);
    }
    int fd = mkostemp(s->assembled_path, O_CLOEXEC);
    if (fd < 0) {
        status = strata_fail(STRATA_ERR_IO, "%s: cannot create a temporary file: %s", final_path, strerror(errno));
        free(s->assembled_path);
        s->assembled_path = NULL;
        free(header);
        return status;
    }
    if (fchmod(fd, 0644) != 0 || !fd_write_all(fd, length_bytes, 8) || !fd_write_all(fd, header, header_length) ||
        !copy_range(s->data_fd, fd, DATA_RESERVE, DATA_RESERVE + s->data_bytes) || fsync(fd) != 0)
        status = strata_fail(STRATA_ERR_IO, "%s: write failed: %s", s->assembled_path, strerror(errno));
    close(fd);
    free(header);
    return status;
}

static char *shard_file_name(const strata_safetensors_writer *w, size_t i)
{
    char name[512];
    if (w->n_shards == 1) snprintf(name, sizeof name, "%s.safetensors", w->stem);
    else snprintf(name, sizeof name, "%s-%05zu-of-%05zu.safetensors", w->stem, i + 1, w->n_shards);
    return strdup(name);
}

static strata_status write_index(const strata_safetensors_writer *w, char **file_names)
{
    uint64_t total = 0;
    sjson *root = sjson_new_object(), *metadata = sjson_new_object(), *map = sjson_new_object();
    bool ok = root && metadata && map;
    for (size_t i = 0; ok && i < w->n_shards; i++) {
        total += w->shards[i].data_bytes;
        for (size_t t = 0; ok && t < w->shards[i].n_tensors; t++)
            ok = sjson_set(map, w->shards[i].tensors[t].name, sjson_new_string(file_names[i]));
    }
    ok = ok && sjson_set(metadata, "total_size", sjson_new_int((int64_t)total));
    for (size_t i = 0; ok && i < w->metadata.count; i++)
        ok = sjson_set(metadata, w->metadata.keys[i], sjson_new_string(w->metadata.values[i]));
    ok = ok && sjson_set(root, "metadata", metadata);
    metadata = NULL;
    ok = ok && sjson_set(root, "weight_map", map);
    map = NULL;
    char *text = ok ? sjson_dump(root, 2) : NULL;
    sjson_free(root);
    sjson_free(metadata);
    sjson_free(map);
    char name[512];
    snprintf(name, sizeof name, "%s.safetensors.index.json", w->stem);
    char *path = path_join(w->dir, name);
    strata_status status;
    if (!text || !path) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
    else status = file_write_atomic(path, text, strlen(text));
    free(text);
    free(path);
    return status;
}

static char *sealed_name(const strata_safetensors_writer *w, size_t i)
{
    char name[32];
    snprintf(name, sizeof name, "shard-%05zu.safetensors", i + 1);
    return path_join(w->dir, name);
}

/* Resumable mode: shard i becomes a whole file under its sealed name, and its data file
 * goes away. */
static strata_status seal_shard(strata_safetensors_writer *w, size_t i)
{
    shard_out *s = &w->shards[i];
    char *path = sealed_name(w, i);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
    strata_status status = assemble_shard(w, i, path);
    if (status == STRATA_OK && rename(s->assembled_path, path) != 0)
        status = strata_fail(STRATA_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (status != STRATA_OK) {
        free(path);
        w->failed = true;
        return status;
    }
    fsync_parent_dir(path);
    free(s->assembled_path);
    s->assembled_path = NULL;
    s->sealed_path = path;
    direct_append_close(s->data);
    s->data = NULL;
    close(s->data_fd);
    s->data_fd = -1;
    if (s->data_path) unlink(s->data_path); /* NULL: it became the shard */
    return STRATA_OK;
}

/* Takes over the consecutive sealed shards of the directory; the writer's other files (a
 * sealed shard after a gap, data files of a killed run) are removed, and nothing else. */
static strata_status adopt_sealed(strata_safetensors_writer *w)
{
    for (;;) {
        char *path = sealed_name(w, w->n_shards);
        if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
        strata_safetensors *st = NULL;
        if (!path_exists(path) || strata_safetensors_open(path, &st) != STRATA_OK) {
            if (path_exists(path)) strata_log(STRATA_LOG_WARN, "%s: unreadable, redone: %s", path, strata_last_error());
            free(path);
            strata_error_clear();
            break;
        }
        shard_out *shards = realloc(w->shards, (w->n_shards + 1) * sizeof *shards);
        size_t n = strata_safetensors_count(st);
        written_tensor *tensors = calloc(n ? n : 1, sizeof *tensors);
        if (shards) w->shards = shards;
        if (!shards || !tensors) {
            free(tensors);
            free(path);
            strata_safetensors_close(st);
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
        }
        shard_out *s = &w->shards[w->n_shards];
        *s = (shard_out){.data_fd = -1, .tensors = tensors, .n_tensors = n, .capacity = n, .sealed_path = path,
                         .adopted = true};
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++) {
            const strata_tensor *t = strata_safetensors_at(st, i);
            written_tensor *wt = &tensors[i];
            *wt = (written_tensor){.name = strdup(t->name), .dtype = t->dtype, .n_dims = t->n_dims,
                                   .begin = s->data_bytes, .end = s->data_bytes + t->n_bytes};
            for (int d = 0; d < t->n_dims; d++) wt->shape[d] = t->shape[d];
            s->data_bytes += t->n_bytes;
            ok = wt->name && strmap_insert(&w->adopted, wt->name, (size_t)w->n_shards << 32 | i, NULL, NULL) &&
                 strmap_insert(&w->names, wt->name, 0, NULL, NULL);
        }
        w->n_shards++;
        strata_safetensors_close(st);
        if (!ok) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
    }
    /* Remove the writer's files that follow the adopted shards. */
    DIR *d = opendir(w->dir);
    if (!d) return strata_fail(STRATA_ERR_IO, "%s: cannot read: %s", w->dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        unsigned index = 0;
        char tail[2];
        bool sealed = sscanf(e->d_name, "shard-%5u.safetensors%1s", &index, tail) == 1;
        bool data = fnmatch(".*-shard[0-9]*.data.tmp-??????", e->d_name, 0) == 0;
        if ((!sealed && !data) || (sealed && index >= 1 && index <= w->n_shards)) continue;
        char *path = path_join(w->dir, e->d_name);
        if (path) unlink(path);
        free(path);
    }
    closedir(d);
    return STRATA_OK;
}

strata_status safetensors_writer_create_resumable(const strata_writer_params *params, strata_safetensors_writer **out)
{
    strata_status status = strata_safetensors_writer_create(params, out);
    if (status != STRATA_OK) return status;
    strata_safetensors_writer *w = *out;
    w->resumable = true;
    status = adopt_sealed(w);
    if (status != STRATA_OK) {
        strata_safetensors_writer_free(w);
        *out = NULL;
    }
    return status;
}

size_t safetensors_writer_adopted_count(const strata_safetensors_writer *w)
{
    size_t n = 0;
    while (n < w->n_shards && w->shards[n].adopted) n++;
    return n;
}

bool safetensors_writer_holds(const strata_safetensors_writer *w, const char *name)
{
    return strmap_find(&w->adopted, name, NULL);
}

strata_status strata_safetensors_writer_finish(strata_safetensors_writer *w)
{
    if (!w) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "writer_finish: NULL writer");
    if (w->finished || w->failed)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: writer is %s", w->dir,
                           w->finished ? "already finished" : "in a failed state");
    strata_status status = STRATA_OK;
    if (w->n_shards == 0 && (status = start_shard(w)) != STRATA_OK) return status;

    char **final_paths = calloc(w->n_shards, sizeof *final_paths);
    char **file_names = calloc(w->n_shards, sizeof *file_names);
    if (!final_paths || !file_names) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
        goto done;
    }
    for (size_t i = 0; i < w->n_shards; i++) {
        file_names[i] = shard_file_name(w, i);
        final_paths[i] = file_names[i] ? path_join(w->dir, file_names[i]) : NULL;
        if (!final_paths[i]) {
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", w->dir);
            goto done;
        }
        if (w->resumable) status = w->shards[i].sealed_path ? STRATA_OK : seal_shard(w, i);
        else status = assemble_shard(w, i, final_paths[i]);
        if (status != STRATA_OK) goto done;
    }
    /* Everything is on disk under temporary names; now put it in place. */
    for (size_t i = 0; i < w->n_shards; i++) {
        char **from = w->resumable ? &w->shards[i].sealed_path : &w->shards[i].assembled_path;
        if (rename(*from, final_paths[i]) != 0) {
            status = strata_fail(STRATA_ERR_IO, "%s: cannot rename into place: %s", final_paths[i], strerror(errno));
            goto done;
        }
        free(*from);
        *from = NULL;
    }
    if (w->n_shards > 1) {
        status = write_index(w, file_names);
    } else {
        /* A stale index from an earlier sharded run would hide the new single file. */
        char name[512];
        snprintf(name, sizeof name, "%s.safetensors.index.json", w->stem);
        char *stale = path_join(w->dir, name);
        if (stale && path_exists(stale)) {
            strata_log(STRATA_LOG_WARN, "%s: removing the index of an earlier sharded checkpoint", stale);
            unlink(stale);
        }
        free(stale);
    }
    fsync_parent_dir(final_paths[0]);
done:
    if (status == STRATA_OK) {
        w->finished = true;
        discard_temporaries(w); /* the data files */
    } else {
        w->failed = true;
    }
    for (size_t i = 0; final_paths && i < w->n_shards; i++) free(final_paths[i]);
    for (size_t i = 0; file_names && i < w->n_shards; i++) free(file_names[i]);
    free(final_paths);
    free(file_names);
    return status;
}
