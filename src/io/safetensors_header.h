/*
 * safetensors_header.h — parsing and validating one safetensors file held in memory.
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object mapping
 * tensor names to {dtype, shape, data_offsets} plus an optional "__metadata__" string
 * map), then the data buffer. Offsets are relative to the data buffer, which must be
 * covered exactly: no overlaps, no gaps, nothing after the last tensor (the rules of the
 * reference Rust implementation).
 *
 * This is the code that meets untrusted bytes first, so every size is checked for
 * overflow and bounds before use; tests/fuzz drives it directly.
 */
#ifndef STRATA_IO_SAFETENSORS_HEADER_H
#define STRATA_IO_SAFETENSORS_HEADER_H

#include "core/strpairs.h"
#include "strata.h"

/* The reference implementation's limit on the header's size. */
#define ST_MAX_HEADER_BYTES 100000000ull

typedef struct st_entry {
    char *name;                      /* owned */
    strata_dtype dtype;
    int n_dims;
    int64_t shape[STRATA_MAX_DIMS];
    int64_t n_elements;
    uint64_t begin, end;             /* offsets into the data buffer */
} st_entry;

typedef struct st_header {
    st_entry *entries;               /* (n_entries), sorted by data offset */
    size_t n_entries;
    string_pairs metadata;           /* "__metadata__", in file order */
    uint64_t data_start;             /* 8 + header length */
} st_header;

/* Parses and validates file_size bytes of a safetensors file. path names the file in
 * error messages. On failure *out is left empty. */
strata_status st_header_parse(const uint8_t *file, uint64_t file_size, const char *path,
                              st_header *out);
void st_header_free(st_header *header);

#endif
