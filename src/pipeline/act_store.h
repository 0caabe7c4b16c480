/*
 * act_store.h — the activation store: the hidden states of every calibration token at
 * one layer boundary, (rows, hidden) bf16, double-buffered: the current layer reads
 * buffer `current` and writes the next layer's inputs into the other one, then they swap.
 *
 * Both buffers live in RAM, or, when they do not fit the memory limit, in two unlinked
 * files in a spill directory, read and written by row ranges (the page cache decides
 * what stays resident). Either way the values are the same bf16 bits, so spilling never
 * changes results.
 */
#ifndef STRATA_PIPELINE_ACT_STORE_H
#define STRATA_PIPELINE_ACT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "strata.h"

typedef struct act_store {
    int64_t rows, hidden;
    bool spilled;
    int current;              /* 0 or 1: the buffer holding this layer's inputs */
    uint16_t *ram[2];         /* (rows, hidden) bf16 when in RAM */
    int fd[2];                /* spill files when spilled */
    const char *spill_dir;
} act_store;

/* Bytes one buffer takes. */
uint64_t act_store_buffer_bytes(int64_t rows, int64_t hidden);

strata_status act_store_create(act_store *s, int64_t rows, int64_t hidden, bool spill, const char *spill_dir);
void act_store_free(act_store *s);

/* x (n, hidden) fp32 <- rows [row0, row0 + n) of the current buffer. */
strata_status act_store_read(const act_store *s, int64_t row0, int64_t n, float *x);
/* Rows [row0, row0 + n) of the next buffer <- x (n, hidden) fp32, rounded to bf16. */
strata_status act_store_write_next(act_store *s, int64_t row0, int64_t n, const float *x);
/* Reads rows of the next buffer (to compare against what the layer produced). */
strata_status act_store_read_next(const act_store *s, int64_t row0, int64_t n, float *x);
/* The next buffer becomes the current one. */
void act_store_swap(act_store *s);

/* Rows move to and from files in pieces of this many rows. */
enum { ACT_STORE_PIECE_ROWS = 4096 };

/* Rows that act_store_save appends after the store's own: each call gives the next piece
 * of raw bf16 rows (*data, *bytes), *bytes = 0 at the end. */
typedef strata_status (*act_rows_fn)(void *ctx, const uint16_t **data, size_t *bytes);

/* Writes the current buffer, then the rows `more` gives (NULL: none), to path (atomically)
 * and returns the file's CRC-32 and size. */
strata_status act_store_save(const act_store *s, const char *path, act_rows_fn more, void *more_ctx, uint32_t *crc,
                             uint64_t *size);
/* Hands the current buffer to fn in pieces of ACT_STORE_PIECE_ROWS rows (the last one
 * shorter), as raw bf16. */
strata_status act_store_visit(const act_store *s, strata_status (*fn)(void *ctx, const uint16_t *data, size_t bytes),
                              void *ctx);
/* Fills the current buffer with rows [row0, row0 + rows) of a file of file_rows rows
 * saved by act_store_save. With crc (not NULL) the whole file is read and its CRC-32
 * checked; without, only those rows are read. */
strata_status act_store_load(act_store *s, const char *path, const uint32_t *crc, int64_t row0, int64_t file_rows);

#endif
