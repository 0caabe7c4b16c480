/*
 * attention.c — causal grouped-query attention (see attention.h).
 *
 * One task per (sequence, key/value head): the head's keys are copied transposed
 * (head_dim, seq_len) and its values (seq_len, head_dim) contiguously, so the two inner
 * loops run over contiguous memory and vectorize without reordering any sum:
 *   scores[j] += q[d] * kT[d][j]   (over keys j, for d in order)
 *   out[d]    += p[j] * v[j][d]    (over d, for keys j in order)
 * Queries are taken in blocks of QUERY_BLOCK so each key and value row is loaded once
 * per block rather than once per query. Every output element is computed by one task in
 * a fixed order, so results do not depend on the number of threads.
 */
#include "kernels/attention.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/pool.h"

enum { QUERY_BLOCK = 8 };

typedef struct attention_job {
    const attention_shape *shape;
    const float *q, *k, *v;
    int64_t ldq, ldkv, ldo;
    float *out;
    atomic_bool out_of_memory;
} attention_job;

typedef struct head_scratch {
    float *kt;     /* (head_dim, seq_len) */
    float *vh;     /* (seq_len, head_dim) */
    float *scores; /* (QUERY_BLOCK, seq_len) */
    float *acc;    /* (QUERY_BLOCK, head_dim) */
} head_scratch;

/* First key query i may attend to. */
static int64_t first_key(int64_t i, int64_t window) { return window > 0 && i >= window ? i - window + 1 : 0; }

/* Queries [i0, i1) of one query head against the key/value head held in scratch. */
static void attend_block(const attention_job *job, const head_scratch *s, const float *q_head, float *out_head,
                         int64_t i0, int64_t i1)
{
    const attention_shape *shape = job->shape;
    int64_t T = shape->seq_len, D = shape->head_dim;
    float scale = 1.0f / sqrtf((float)D);
    int64_t lo = first_key(i0, shape->window), hi = i1; /* keys any query of the block reads */
    for (int64_t i = i0; i < i1; i++) {
        float *scores = s->scores + (i - i0) * T;
        const float *q = q_head + i * job->ldq;
        for (int64_t j = lo; j < hi; j++) scores[j] = 0.0f;
        for (int64_t d = 0; d < D; d++) {
            const float qd = q[d];
            const float *kt = s->kt + d * T;
            for (int64_t j = lo; j < hi; j++) scores[j] += qd * kt[j];
        }
        int64_t first = first_key(i, shape->window);
        float max = -INFINITY;
        for (int64_t j = first; j <= i; j++) {
            scores[j] *= scale;
            if (scores[j] > max) max = scores[j];
        }
        float sum = 0.0f;
        for (int64_t j = first; j <= i; j++) {
            scores[j] = expf(scores[j] - max);
            sum += scores[j];
        }
        for (int64_t j = first; j <= i; j++) scores[j] /= sum;
    }
    memset(s->acc, 0, (size_t)((i1 - i0) * D) * sizeof *s->acc);
    for (int64_t j = lo; j < hi; j++) {
        const float *v = s->vh + j * D;
        for (int64_t i = i0 > j ? i0 : j; i < i1; i++) {
            if (j < first_key(i, shape->window)) continue;
            const float p = s->scores[(i - i0) * T + j];
            float *acc = s->acc + (i - i0) * D;
            for (int64_t d = 0; d < D; d++) acc[d] += p * v[d];
        }
    }
    for (int64_t i = i0; i < i1; i++) memcpy(out_head + i * job->ldo, s->acc + (i - i0) * D, (size_t)D * sizeof(float));
}

static void attention_range(void *ctx, int64_t begin, int64_t end)
{
    attention_job *job = ctx;
    const attention_shape *shape = job->shape;
    int64_t T = shape->seq_len, D = shape->head_dim;
    int group = shape->n_heads / shape->n_kv_heads;
    head_scratch s = {
        .kt = malloc((size_t)(D * T) * sizeof(float)),
        .vh = malloc((size_t)(T * D) * sizeof(float)),
        .scores = malloc((size_t)(QUERY_BLOCK * T) * sizeof(float)),
        .acc = malloc((size_t)(QUERY_BLOCK * D) * sizeof(float)),
    };
    if (!s.kt || !s.vh || !s.scores || !s.acc) {
        atomic_store(&job->out_of_memory, true);
        goto done;
    }
    for (int64_t task = begin; task < end; task++) {
        int64_t seq = task / shape->n_kv_heads;
        int kv_head = (int)(task % shape->n_kv_heads);
        int64_t row0 = seq * T;
        for (int64_t t = 0; t < T; t++) {
            const float *k = job->k + (row0 + t) * job->ldkv + kv_head * D;
            const float *v = job->v + (row0 + t) * job->ldkv + kv_head * D;
            for (int64_t d = 0; d < D; d++) s.kt[d * T + t] = k[d];
            memcpy(s.vh + t * D, v, (size_t)D * sizeof(float));
        }
        for (int h = kv_head * group; h < (kv_head + 1) * group; h++) {
            const float *q_head = job->q + row0 * job->ldq + h * D;
            float *out_head = job->out + row0 * job->ldo + h * D;
            for (int64_t i0 = 0; i0 < T; i0 += QUERY_BLOCK)
                attend_block(job, &s, q_head, out_head, i0, i0 + QUERY_BLOCK < T ? i0 + QUERY_BLOCK : T);
        }
    }
done:
    free(s.kt);
    free(s.vh);
    free(s.scores);
    free(s.acc);
}

strata_status attention_forward(const attention_shape *shape, const float *q, int64_t ldq, const float *k,
                                const float *v, int64_t ldkv, float *out, int64_t ldo)
{
    if (shape->n_kv_heads <= 0 || shape->n_heads % shape->n_kv_heads != 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "attention: %d heads cannot share %d key/value heads",
                           shape->n_heads, shape->n_kv_heads);
    attention_job job = {.shape = shape, .q = q, .k = k, .v = v, .ldq = ldq, .ldkv = ldkv, .ldo = ldo, .out = out};
    atomic_init(&job.out_of_memory, false);
    pool_parallel_for(shape->n_seq * shape->n_kv_heads, 1, attention_range, &job);
    if (atomic_load(&job.out_of_memory))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for attention scratch (sequence length %lld)",
                           (long long)shape->seq_len);
    return STRATA_OK;
}
