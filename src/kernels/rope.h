/*
 * rope.h — rotary position embeddings in transformers' rotate-half layout.
 *
 * For a head vector x of head_dim D and half h = D/2, position p:
 *   y[i]     = x[i]     * cos(p f_i) - x[i + h] * sin(p f_i)
 *   y[i + h] = x[i + h] * cos(p f_i) + x[i]     * sin(p f_i)
 * with the inverse frequencies f_i of the model's rope type (default, linear, llama3,
 * yarn), computed in fp32 as transformers does; YaRN also multiplies cos and sin by its
 * attention factor. With partial rotary embeddings (glm4_moe) D is the rotary dim
 * (arch->rotary_dim), the leading part of each head; the rest passes through unchanged.
 *
 * Interleaved rope (DeepSeek's rope_interleave) pairs x[2i] with x[2i + 1] and, as
 * transformers' apply_rotary_pos_emb_interleave, writes the result de-interleaved:
 *   y[i]     = x[2i]     * cos(p f_i) - x[2i + 1] * sin(p f_i)
 *   y[i + h] = x[2i + 1] * cos(p f_i) + x[2i]     * sin(p f_i)
 * (queries and keys alike, so their dot products are those of the interleaved rotation).
 */
#ifndef STRATA_KERNELS_ROPE_H
#define STRATA_KERNELS_ROPE_H

#include <stdint.h>

#include "strata.h"

/* The widest rotary part an interleaved rope rotates (DeepSeek-V3: 64). */
#define ROPE_MAX_INTERLEAVED_DIM 1024

typedef struct rope_table {
    int64_t n_positions, half; /* positions 0..n_positions-1, rotary_dim / 2 */
    bool interleaved;
    float *cos, *sin;          /* (n_positions, half) */
} rope_table;

/* Builds the table for positions [0, n_positions) of this architecture. */
strata_status rope_table_create(const strata_arch *arch, int64_t n_positions, rope_table *out);
void rope_table_free(rope_table *t);

/* Rotates the first 2 * half elements of each of n_heads heads, head_stride apart, of each
 * row of x (n_seq * seq_len rows, row stride ld), in place; token t of each sequence is at
 * position t. seq_len <= table->n_positions. */
void rope_apply(const rope_table *t, float *x, int64_t ld, int64_t head_stride, int64_t n_seq, int64_t seq_len,
                int n_heads);

#endif
