/*
 * attention.h — grouped-query causal self-attention over a batch of equal-length
 * sequences, fp32 throughout, as transformers' eager attention computes it:
 * scores = (q k^T) * scale, masked causally (and to the last `window` keys when
 * window > 0), softmax in fp32, then the weighted sum of v. Query head h reads key/value
 * head h / (n_heads / n_kv_heads). Queries and keys have head_dim elements per head, values
 * v_head_dim (they differ in MLA: 192 and 128 in DeepSeek-V3).
 */
#ifndef STRATA_KERNELS_ATTENTION_H
#define STRATA_KERNELS_ATTENTION_H

#include <stdint.h>

#include "strata.h"

typedef struct attention_shape {
    int64_t n_seq, seq_len;
    int n_heads, n_kv_heads;
    int64_t head_dim;   /* of queries and keys */
    int64_t v_head_dim; /* of values and the output */
    float scale;        /* softmax scale: head_dim^-0.5 (arch->attention_scale) */
    int64_t window;     /* sliding window in keys, 0 for full causal attention */
} attention_shape;

/* q (n_seq * seq_len, n_heads * head_dim) row stride ldq; k (n_seq * seq_len,
 * n_kv_heads * head_dim) row stride ldk; v (n_seq * seq_len, n_kv_heads * v_head_dim) row
 * stride ldv; out (n_seq * seq_len, n_heads * v_head_dim) row stride ldo. Runs on the
 * thread pool over (sequence, key/value head) pairs. */
strata_status attention_forward(const attention_shape *shape, const float *q, int64_t ldq, const float *k, int64_t ldk,
                                const float *v, int64_t ldv, float *out, int64_t ldo);

#endif
