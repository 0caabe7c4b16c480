/*
 * base_logits.h — a base model's next-token log-probabilities saved once and compared
 * against later, in llama.cpp's `--kl-divergence-base` file format, so files move between
 * the two tools (when the tokenizations agree):
 *
 *   "_logits_"                 8 bytes
 *   n_ctx, n_vocab, n_chunk    int32 each: tokens per window, vocabulary, windows
 *   tokens                     int32 (n_chunk * n_ctx)
 *   records                    per window, n_ctx - 1 - n_ctx / 2 of them, one per scored
 *                              position p = n_ctx / 2 ... n_ctx - 2 (predicting p + 1):
 *                              uint16 (nv = 2 * ((n_vocab + 1) / 2) + 4)
 *
 * A record is float scale, float min_log_prob, then q_i for each vocabulary entry (a zero
 * pad when n_vocab is odd), little-endian: log p_i = scale q_i + min_log_prob, the
 * log-softmax quantized to 65536 levels over the 16 nats below the largest logit
 * (llama.cpp's log_softmax in perplexity.cpp, float arithmetic as there).
 */
#ifndef STRATA_EVAL_BASE_LOGITS_H
#define STRATA_EVAL_BASE_LOGITS_H

#include <stdint.h>
#include <stdio.h>

#include "strata.h"

/* uint16 words per record. */
int64_t base_logits_record_words(int64_t n_vocab);
/* Records per window: the scored positions n_ctx / 2 ... n_ctx - 2. */
int64_t base_logits_records_per_window(int64_t n_ctx);
/* First scored position of a window. */
int64_t base_logits_first_position(int64_t n_ctx);

/* Compresses one position's logits (n_vocab) into record (record_words). */
void base_logits_compress(const float *logits, int64_t n_vocab, uint16_t *record);

typedef struct base_logits_writer {
    char *path, *temp;
    FILE *file;
    int64_t n_vocab, records_left;
} base_logits_writer;

/* Starts the file at a temporary name beside path, with the header and tokens
 * (n_chunk * n_ctx); base_logits_commit renames it into place after the last record. */
strata_status base_logits_create(const char *path, int64_t n_ctx, int64_t n_vocab, int64_t n_chunk,
                                 const int32_t *tokens, base_logits_writer *w);
strata_status base_logits_append(base_logits_writer *w, const uint16_t *records, int64_t n_records);
strata_status base_logits_commit(base_logits_writer *w);
/* Removes the temporary file unless committed. */
void base_logits_writer_free(base_logits_writer *w);

typedef struct base_logits_reader {
    char *path;
    int fd;
    int64_t n_ctx, n_vocab, n_chunk;
    int32_t *tokens;     /* (n_chunk * n_ctx) */
} base_logits_reader;

/* Opens and checks a file: the magic, positive sizes, and a length that matches them
 * exactly (a truncated or padded file is an error naming it). */
strata_status base_logits_open(const char *path, base_logits_reader *r);
/* The records of windows [first, first + count) into records. */
strata_status base_logits_read(const base_logits_reader *r, int64_t first, int64_t count, uint16_t *records);
void base_logits_close(base_logits_reader *r);

#endif
