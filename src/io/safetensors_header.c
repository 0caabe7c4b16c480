/*
 * safetensors_header.c — validation of a safetensors header against its file
 * (see safetensors_header.h for the rules).
 */
#include "io/safetensors_header.h"

#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/error.h"
#include "io/json.h"

static uint64_t read_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void st_header_free(st_header *header)
{
    if (!header) return;
    for (size_t i = 0; i < header->n_entries; i++) free(header->entries[i].name);
    free(header->entries);
    string_pairs_free(&header->metadata);
    *header = (st_header){0};
}

static strata_status parse_metadata(const sjson *meta, const char *path, st_header *out)
{
    if (!sjson_is_object(meta))
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"__metadata__\" must be an object of strings, found %s",
                           path, sjson_type_name(meta));
    for (void *it = sjson_iter(meta); it; it = sjson_iter_next(meta, it)) {
        const char *value = sjson_as_string(sjson_iter_value(it));
        if (!value)
            return strata_fail(STRATA_ERR_FORMAT, "%s: \"__metadata__\" entry '%s' must be a string, found %s",
                               path, sjson_iter_key(it), sjson_type_name(sjson_iter_value(it)));
        if (!string_pairs_set(&out->metadata, sjson_iter_key(it), value, false))
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    return STRATA_OK;
}

/* Reads one {dtype, shape, data_offsets} entry into *e (name already set). */
static strata_status parse_entry(const sjson *info, const char *path, uint64_t data_size, st_entry *e)
{
    const char *name = e->name;
    if (!sjson_is_object(info))
        return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': entry must be an object, found %s",
                           path, name, sjson_type_name(info));

    const char *dtype = sjson_as_string(sjson_get(info, "dtype"));
    if (!dtype) return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': missing string \"dtype\"", path, name);
    if (!strata_dtype_from_name(dtype, &e->dtype))
        return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name, dtype);

    const sjson *shape = sjson_get(info, "shape");
    if (!sjson_is_array(shape))
        return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': \"shape\" must be an array, found %s",
                           path, name, sjson_type_name(shape));
    size_t n_dims = sjson_array_size(shape);
    if (n_dims > STRATA_MAX_DIMS)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions (strata handles up to %d)",
                           path, name, n_dims, STRATA_MAX_DIMS);
    e->n_dims = (int)n_dims;
    uint64_t n_elements = 1;
    for (size_t d = 0; d < n_dims; d++) {
        int64_t extent;
        if (!sjson_as_int64(sjson_array_at(shape, d), &extent) || extent < 0)
            return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': shape dimension %zu is not a non-negative integer",
                               path, name, d);
        e->shape[d] = extent;
        if (!checked_mul_u64(n_elements, (uint64_t)extent, &n_elements) || n_elements > (uint64_t)INT64_MAX)
            return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': element count overflows 64 bits", path, name);
    }
    e->n_elements = (int64_t)n_elements;

    const sjson *offsets = sjson_get(info, "data_offsets");
    int64_t begin, end;
    if (!sjson_is_array(offsets) || sjson_array_size(offsets) != 2 ||
        !sjson_as_int64(sjson_array_at(offsets, 0), &begin) ||
        !sjson_as_int64(sjson_array_at(offsets, 1), &end) || begin < 0 || end < 0)
        return strata_fail(STRATA_ERR_FORMAT,
                           "%s: tensor '%s': \"data_offsets\" must be two non-negative integers [begin, end]",
                           path, name);
    if (begin > end)
        return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin",
                           path, name, (long long)begin, (long long)end);
    e->begin = (uint64_t)begin;
    e->end = (uint64_t)end;

    uint64_t n_bytes;
    if (!checked_mul_u64(n_elements, strata_dtype_size(e->dtype), &n_bytes))
        return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': byte size overflows 64 bits", path, name);
    if (n_bytes != e->end - e->begin)
        return strata_fail(STRATA_ERR_FORMAT,
                           "%s: tensor '%s': shape and dtype %s need %llu bytes but data_offsets [%llu, %llu] span %llu",
                           path, name, dtype, (unsigned long long)n_bytes, (unsigned long long)e->begin,
                           (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
    if (e->end > data_size)
        return strata_fail(STRATA_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data (%llu bytes)",
                           path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                           (unsigned long long)data_size);
    return STRATA_OK;
}

static int compare_by_offset(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The data buffer must be covered exactly once, in offset order. */
static strata_status check_coverage(const st_header *h, const char *path, uint64_t data_size)
{
    uint64_t covered = 0;
    const char *previous = NULL;
    for (size_t i = 0; i < h->n_entries; i++) {
        const st_entry *e = &h->entries[i];
        if (e->begin < covered)
            return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                               path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                               previous);
        if (e->begin > covered)
            return strata_fail(STRATA_ERR_FORMAT, "%s: tensor '%s': %llu unaccounted bytes before its data at offset %llu",
                               path, e->name, (unsigned long long)(e->begin - covered),
                               (unsigned long long)e->begin);
        if (e->end > e->begin || !previous) previous = e->name;
        covered = e->end;
    }
    if (covered != data_size)
        return strata_fail(STRATA_ERR_FORMAT, "%s: %llu bytes after the last tensor's data are not described by the header",
                           path, (unsigned long long)(data_size - covered));
    return STRATA_OK;
}

strata_status st_header_parse(const uint8_t *file, uint64_t file_size, const char *path, st_header *out)
{
    *out = (st_header){0};
    sjson *root = NULL;
    strata_status status = STRATA_OK;

    if (file_size < 8) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: %llu bytes is too short for a safetensors file (8-byte header length missing)",
                             path, (unsigned long long)file_size);
        goto done;
    }
    uint64_t header_len = read_le64(file);
    if (header_len > ST_MAX_HEADER_BYTES) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: header length %llu is absurdly large (limit %llu bytes)",
                             path, (unsigned long long)header_len, ST_MAX_HEADER_BYTES);
        goto done;
    }
    if (header_len > file_size - 8) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)",
                             path, (unsigned long long)header_len, (unsigned long long)file_size);
        goto done;
    }
    if (header_len < 2 || file[8] != '{') {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: header does not start with '{' (not a safetensors file?)", path);
        goto done;
    }
    out->data_start = 8 + header_len;
    uint64_t data_size = file_size - out->data_start;

    sjson_error jerr;
    root = sjson_parse((const char *)file + 8, (size_t)header_len, true, &jerr);
    if (!root) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: header is not valid JSON (line %d, column %d): %s",
                             path, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    if (!sjson_is_object(root)) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: header must be a JSON object, found %s", path, sjson_type_name(root));
        goto done;
    }

    size_t n_members = sjson_object_size(root);
    out->entries = calloc(n_members ? n_members : 1, sizeof *out->entries);
    if (!out->entries) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu tensors", path, n_members);
        goto done;
    }
    for (void *it = sjson_iter(root); it; it = sjson_iter_next(root, it)) {
        const char *key = sjson_iter_key(it);
        if (strcmp(key, "__metadata__") == 0) {
            status = parse_metadata(sjson_iter_value(it), path, out);
            if (status != STRATA_OK) goto done;
            continue;
        }
        if (key[0] == '\0') {
            status = strata_fail(STRATA_ERR_FORMAT, "%s: a tensor has an empty name", path);
            goto done;
        }
        st_entry *e = &out->entries[out->n_entries++];
        e->name = strdup(key);
        if (!e->name) {
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            goto done;
        }
        status = parse_entry(sjson_iter_value(it), path, data_size, e);
        if (status != STRATA_OK) goto done;
    }
    qsort(out->entries, out->n_entries, sizeof *out->entries, compare_by_offset);
    status = check_coverage(out, path, data_size);

done:
    sjson_free(root);
    if (status != STRATA_OK) st_header_free(out);
    return status;
}
