/*
 * safetensors_read.c — opening checkpoints: single files, sharded sets behind an index
 * json, or a directory holding either.
 *
 * Every shard is mapped read-only in full and its header validated (safetensors_header.c)
 * before any tensor is exposed; tensors are views into the mappings, so opening a 100 GB
 * checkpoint costs its headers, not its data. Tensors are listed in file order: shards in
 * index order (sorted by file name), then by data offset. Lookups by name go through a
 * hash map.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/strmap.h"
#include "core/strpairs.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/safetensors_header.h"
#include "io/safetensors_mapping.h"

/* An index json larger than this is not an index (DeepSeek-V3's is ~9 MB). */
#define ST_MAX_INDEX_BYTES (256ull << 20)

typedef struct mapped_shard {
    char *path;
    void *map;         /* read-only mapping of the whole file, NULL when empty */
    uint64_t size;
} mapped_shard;

struct strata_safetensors {
    mapped_shard *shards;     /* (n_shards) */
    size_t n_shards;
    strata_tensor *tensors;   /* (n_tensors) in file order */
    char **names;             /* (n_tensors) owned names the tensors point to */
    size_t n_tensors;
    string_pairs metadata;    /* all shards' "__metadata__", first shard first */
    strmap by_name;           /* name -> index into tensors */
};

void strata_safetensors_close(strata_safetensors *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n_shards; i++) {
        if (st->shards[i].map) munmap(st->shards[i].map, st->shards[i].size);
        free(st->shards[i].path);
    }
    for (size_t i = 0; i < st->n_tensors; i++) free(st->names[i]);
    free(st->shards);
    free(st->tensors);
    free(st->names);
    string_pairs_free(&st->metadata);
    strmap_free(&st->by_name);
    free(st);
}

static strata_status map_file(const char *path, mapped_shard *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return strata_fail(errno == ENOENT ? STRATA_ERR_NOT_FOUND : STRATA_ERR_IO, "%s: cannot open: %s", path,
                           strerror(errno));
    struct stat st;
    strata_status status = STRATA_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        status = strata_fail(STRATA_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    out->size = (uint64_t)st.st_size;
    if (out->size > 0) {
        void *map = mmap(NULL, (size_t)out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            status = strata_fail(STRATA_ERR_IO, "%s: cannot map %llu bytes: %s", path,
                                 (unsigned long long)out->size, strerror(errno));
            goto done;
        }
        out->map = map;
    }
done:
    close(fd);
    return status;
}

static bool grow_tensors(strata_safetensors *st, size_t extra)
{
    size_t n = st->n_tensors + extra;
    strata_tensor *tensors = realloc(st->tensors, (n ? n : 1) * sizeof *tensors);
    if (!tensors) return false;
    st->tensors = tensors;
    char **names = realloc(st->names, (n ? n : 1) * sizeof *names);
    if (!names) return false;
    st->names = names;
    return true;
}

/* Adds one shard: maps it, validates its header, and appends its tensors. When
 * wanted is non-NULL (sharded checkpoints) only tensors the index assigns to this shard
 * are kept; wanted maps names to shard indices. */
static strata_status add_shard(strata_safetensors *st, const char *path, const strmap *wanted)
{
    mapped_shard *shards = realloc(st->shards, (st->n_shards + 1) * sizeof *shards);
    if (!shards) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    st->shards = shards;
    size_t shard_index = st->n_shards;
    mapped_shard *sh = &st->shards[st->n_shards++];
    *sh = (mapped_shard){.path = strdup(path)};
    if (!sh->path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);

    strata_status status = map_file(path, sh);
    if (status != STRATA_OK) return status;

    st_header header;
    status = st_header_parse(sh->map ? sh->map : (const uint8_t *)"", sh->size, path, &header);
    if (status != STRATA_OK) return status;
    if (!grow_tensors(st, header.n_entries)) {
        st_header_free(&header);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }

    size_t skipped = 0;
    for (size_t i = 0; i < header.n_entries; i++) {
        st_entry *e = &header.entries[i];
        size_t assigned;
        if (wanted && (!strmap_find(wanted, e->name, &assigned) || assigned != shard_index)) {
            skipped++;
            continue;
        }
        size_t index = st->n_tensors;
        strata_tensor *t = &st->tensors[index];
        *t = (strata_tensor){
            .name = e->name,
            .dtype = e->dtype,
            .n_dims = e->n_dims,
            .n_elements = e->n_elements,
            .n_bytes = e->end - e->begin,
            .data = (const uint8_t *)sh->map + header.data_start + e->begin,
            .shard = shard_index,
            .file_offset = header.data_start + e->begin,
        };
        memcpy(t->shape, e->shape, sizeof t->shape);
        st->names[index] = e->name;
        e->name = NULL;
        st->n_tensors++;
        bool present = false;
        size_t other = 0;
        if (!strmap_insert(&st->by_name, t->name, index, &present, &other)) {
            st_header_free(&header);
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        }
        if (present) {
            status = strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s' is also stored in %s", path, t->name,
                                 st->shards[st->tensors[other].shard].path);
            st_header_free(&header);
            return status;
        }
    }
    if (skipped)
        strata_log(STRATA_LOG_WARN, "%s: %zu tensors are not listed for this shard in the index json; ignored",
                   path, skipped);

    /* Metadata: first shard's keys first; later shards add only new keys. */
    for (size_t i = 0; i < header.metadata.count; i++) {
        if (!string_pairs_set(&st->metadata, header.metadata.keys[i], header.metadata.values[i], true)) {
            st_header_free(&header);
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        }
    }
    st_header_free(&header);
    return STRATA_OK;
}

static bool valid_shard_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens the shards an index json names and keeps exactly the tensors it maps. */
static strata_status open_index(strata_safetensors *st, const char *index_path)
{
    char *text = NULL, *dir = NULL;
    size_t length = 0;
    sjson *root = NULL;
    const char **shard_names = NULL;
    strmap tensor_to_shard = {0}, shard_ids = {0};
    strata_status status = file_read_all(index_path, ST_MAX_INDEX_BYTES, &text, &length);
    if (status != STRATA_OK) goto done;

    sjson_error jerr;
    root = sjson_parse(text, length, true, &jerr);
    if (!root) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: not valid JSON (line %d, column %d): %s", index_path, jerr.line,
                             jerr.column, jerr.text);
        goto done;
    }
    const sjson *map = sjson_get(root, "weight_map");
    if (!sjson_is_object(map)) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: missing \"weight_map\" object", index_path);
        goto done;
    }

    /* The distinct shard names, sorted, give shard indices. */
    size_t n_entries = sjson_object_size(map), n_shards = 0;
    shard_names = calloc(n_entries ? n_entries : 1, sizeof *shard_names);
    if (!shard_names) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    for (void *it = sjson_iter(map); it; it = sjson_iter_next(map, it)) {
        const char *file = sjson_as_string(sjson_iter_value(it));
        if (!file || !valid_shard_name(file)) {
            status = strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': shard must be a file name beside the index, found %s",
                                 index_path, sjson_iter_key(it), file ? file : sjson_type_name(sjson_iter_value(it)));
            goto done;
        }
        bool present;
        if (!strmap_insert(&shard_ids, file, 0, &present, NULL)) {
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        if (!present) shard_names[n_shards++] = file;
    }
    qsort(shard_names, n_shards, sizeof *shard_names, compare_strings);
    strmap_free(&shard_ids);
    for (size_t i = 0; i < n_shards; i++) {
        if (!strmap_insert(&shard_ids, shard_names[i], i, NULL, NULL)) {
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
    }
    for (void *it = sjson_iter(map); it; it = sjson_iter_next(map, it)) {
        size_t id = 0;
        strmap_find(&shard_ids, sjson_as_string(sjson_iter_value(it)), &id);
        if (!strmap_insert(&tensor_to_shard, sjson_iter_key(it), id, NULL, NULL)) {
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
    }

    char *slash = strrchr(index_path, '/');
    dir = slash ? strndup(index_path, (size_t)(slash - index_path + 1)) : strdup("./");
    if (!dir) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    for (size_t i = 0; i < n_shards; i++) {
        char *path = path_join(dir, shard_names[i]);
        if (!path) {
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        if (!path_exists(path)) {
            const char *example = "";
            for (void *it = sjson_iter(map); it; it = sjson_iter_next(map, it))
                if (strcmp(sjson_as_string(sjson_iter_value(it)), shard_names[i]) == 0) {
                    example = sjson_iter_key(it);
                    break;
                }
            status = strata_fail(STRATA_ERR_NOT_FOUND, "%s: shard '%s' (holding tensor '%s') does not exist",
                                 index_path, shard_names[i], example);
            free(path);
            goto done;
        }
        status = add_shard(st, path, &tensor_to_shard);
        free(path);
        if (status != STRATA_OK) goto done;
    }

    /* Every tensor the index names must have been found in its shard. */
    for (void *it = sjson_iter(map); it; it = sjson_iter_next(map, it)) {
        if (!strmap_find(&st->by_name, sjson_iter_key(it), NULL)) {
            status = strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s' is listed in shard '%s' but that shard does not contain it",
                                 index_path, sjson_iter_key(it), sjson_as_string(sjson_iter_value(it)));
            goto done;
        }
    }
    int64_t total_size;
    const sjson *metadata = sjson_get(root, "metadata");
    if (sjson_as_int64(sjson_get(metadata, "total_size"), &total_size)) {
        uint64_t sum = 0;
        for (size_t i = 0; i < st->n_tensors; i++) sum += st->tensors[i].n_bytes;
        if ((uint64_t)total_size != sum)
            strata_log(STRATA_LOG_WARN, "%s: metadata.total_size is %lld but the tensors hold %llu bytes", index_path,
                       (long long)total_size, (unsigned long long)sum);
    }
done:
    strmap_free(&tensor_to_shard);
    strmap_free(&shard_ids);
    free(shard_names);
    sjson_free(root);
    free(text);
    free(dir);
    return status;
}

/* Picks what a directory's checkpoint is: its index json, model.safetensors, or its only
 * *.safetensors file. */
static strata_status resolve_dir(const char *dir, char **out)
{
    *out = NULL;
    char *candidate = path_join(dir, "model.safetensors.index.json");
    if (candidate && path_exists(candidate)) { *out = candidate; return STRATA_OK; }
    free(candidate);
    candidate = path_join(dir, "model.safetensors");
    if (candidate && path_exists(candidate)) { *out = candidate; return STRATA_OK; }
    free(candidate);

    DIR *d = opendir(dir);
    if (!d) return strata_fail(STRATA_ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno));
    char *index = NULL, *single = NULL;
    size_t n_index = 0, n_files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (path_has_suffix(e->d_name, ".safetensors.index.json")) {
            n_index++;
            free(index);
            index = strdup(e->d_name);
        } else if (path_has_suffix(e->d_name, ".safetensors")) {
            n_files++;
            free(single);
            single = strdup(e->d_name);
        }
    }
    closedir(d);
    strata_status status = STRATA_OK;
    if (n_index == 1) *out = path_join(dir, index);
    else if (n_index > 1)
        status = strata_fail(STRATA_ERR_FORMAT, "%s: %zu *.safetensors.index.json files; cannot tell which is the checkpoint",
                             dir, n_index);
    else if (n_files == 1) *out = path_join(dir, single);
    else if (n_files == 0)
        status = strata_fail(STRATA_ERR_NOT_FOUND, "%s: no *.safetensors files", dir);
    else
        status = strata_fail(STRATA_ERR_FORMAT, "%s: %zu *.safetensors files but no model.safetensors.index.json", dir,
                             n_files);
    free(index);
    free(single);
    if (status == STRATA_OK && !*out) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    return status;
}

strata_status strata_safetensors_open(const char *path, strata_safetensors **out)
{
    if (!path || !out) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_safetensors_open: NULL argument");
    *out = NULL;
    strata_safetensors *st = calloc(1, sizeof *st);
    if (!st) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    char *resolved = NULL;
    strata_status status = STRATA_OK;
    if (path_is_dir(path)) {
        status = resolve_dir(path, &resolved);
        if (status != STRATA_OK) goto done;
        path = resolved;
    } else if (!path_exists(path)) {
        status = strata_fail(STRATA_ERR_NOT_FOUND, "%s: no such file or directory", path);
        goto done;
    }
    if (path_has_suffix(path, ".json")) status = open_index(st, path);
    else status = add_shard(st, path, NULL);
done:
    free(resolved);
    if (status != STRATA_OK) {
        strata_safetensors_close(st);
        return status;
    }
    *out = st;
    return STRATA_OK;
}

size_t strata_safetensors_count(const strata_safetensors *st) { return st ? st->n_tensors : 0; }

const strata_tensor *strata_safetensors_at(const strata_safetensors *st, size_t i)
{
    return st && i < st->n_tensors ? &st->tensors[i] : NULL;
}

const strata_tensor *strata_safetensors_find(const strata_safetensors *st, const char *name)
{
    size_t index;
    if (!st || !name || !strmap_find(&st->by_name, name, &index)) return NULL;
    return &st->tensors[index];
}

size_t strata_safetensors_shard_count(const strata_safetensors *st) { return st ? st->n_shards : 0; }

const char *strata_safetensors_shard_path(const strata_safetensors *st, size_t shard)
{
    return st && shard < st->n_shards ? st->shards[shard].path : NULL;
}

uint64_t strata_safetensors_shard_size(const strata_safetensors *st, size_t shard)
{
    return st && shard < st->n_shards ? st->shards[shard].size : 0;
}

size_t strata_safetensors_metadata_count(const strata_safetensors *st) { return st ? st->metadata.count : 0; }

bool strata_safetensors_metadata_at(const strata_safetensors *st, size_t i, const char **key, const char **value)
{
    if (!st || i >= st->metadata.count) return false;
    if (key) *key = st->metadata.keys[i];
    if (value) *value = st->metadata.values[i];
    return true;
}

const char *strata_safetensors_metadata(const strata_safetensors *st, const char *key)
{
    return st ? string_pairs_get(&st->metadata, key) : NULL;
}

void safetensors_release_range(const strata_safetensors *st, const void *data, size_t bytes)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), p = (uintptr_t)data;
    for (size_t i = 0; st && i < st->n_shards; i++) {
        uintptr_t base = (uintptr_t)st->shards[i].map, end = base + (uintptr_t)st->shards[i].size;
        if (!st->shards[i].map || p < base || p >= end) continue;
        /* Whole pages around the range: a neighbour's page faults back in from the cache. */
        uintptr_t first = p & ~(page - 1), last = p + bytes < end ? p + bytes : end;
        madvise((void *)first, (size_t)(last - first), MADV_DONTNEED);
        return;
    }
}

void safetensors_release_pages(const strata_safetensors *st)
{
    for (size_t i = 0; st && i < st->n_shards; i++)
        if (st->shards[i].map) madvise(st->shards[i].map, (size_t)st->shards[i].size, MADV_DONTNEED);
}
