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

/* Writes the current buffer to path (atomically) and returns its CRC-32 and size. */
strata_status act_store_save(const act_store *s, const char *path, uint32_t *crc, uint64_t *size);
/* Fills the current buffer from a file saved by act_store_save, checking its CRC-32. */
strata_status act_store_load(act_store *s, const char *path, uint32_t crc);

#endif
