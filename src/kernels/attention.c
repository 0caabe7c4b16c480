/*
 * attention.c — causal grouped-query attention (see attention.h).
 *
 * One task per (sequence, key/value head): the head's keys are copied transposed
 * (head_dim, seq_len) and its values (seq_len, head_dim) contiguously, so both products of
 * a query are the kernel set's vecmat: scores = q^T K^T, output = p^T V. vecmat keeps a
 * register block of outputs across the whole reduction in a fixed order (bit-identical in
 * every kernel set). Every output
 * element is computed by one task in that order, so results depend neither on the number
 * of threads nor on how sequences are chunked.
 */
#include "kernels/attention.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/pool.h"

typedef struct attention_job {
    const attention_shape *shape;
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv, ldo;
    float *out;
    atomic_bool out_of_memory;
} attention_job;

typedef struct head_scratch {
    float *kt;     /* (head_dim, seq_len) */
    float *vh;     /* (seq_len, v_head_dim) */
    float *scores; /* (seq_len) */
} head_scratch;

/* First key query i may attend to. */
static int64_t first_key(int64_t i, int64_t window) { return window > 0 && i >= window ? i - window + 1 : 0; }

/* Every query of one query head against the key/value head held in scratch. */
static void attend_head(const attention_job *job, const head_scratch *s, const float *q_head, float *out_head)
{
    const attention_shape *shape = job->shape;
    const kernel_set *ks = kernels();
    int64_t T = shape->seq_len, D = shape->head_dim, DV = shape->v_head_dim;
    float scale = shape->scale;
    for (int64_t i = 0; i < T; i++) {
        int64_t first = first_key(i, shape->window), n = i + 1 - first;
        float *scores = s->scores;
        ks->vecmat(q_head + i * job->ldq, s->kt + first, (size_t)T, (size_t)D, (size_t)n, scores);
        float max = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            scores[j] *= scale;
            if (scores[j] > max) max = scores[j];
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            scores[j] = expf(scores[j] - max);
            sum += scores[j];
        }
        for (int64_t j = 0; j < n; j++) scores[j] /= sum;
        ks->vecmat(scores, s->vh + first * DV, (size_t)DV, (size_t)n, (size_t)DV, out_head + i * job->ldo);
    }
}

static void attention_range(void *ctx, int64_t begin, int64_t end)
{
    attention_job *job = ctx;
    const attention_shape *shape = job->shape;
    int64_t T = shape->seq_len, D = shape->head_dim, DV = shape->v_head_dim;
    int group = shape->n_heads / shape->n_kv_heads;
    head_scratch s = {
        .kt = malloc((size_t)(D * T) * sizeof(float)),
        .vh = malloc((size_t)(T * DV) * sizeof(float)),
        .scores = malloc((size_t)T * sizeof(float)),
    };
    if (!s.kt || !s.vh || !s.scores) {
        atomic_store(&job->out_of_memory, true);
        goto done;
    }
    for (int64_t task = begin; task < end; task++) {
        int64_t seq = task / shape->n_kv_heads;
        int kv_head = (int)(task % shape->n_kv_heads);
        int64_t row0 = seq * T;
        for (int64_t t = 0; t < T; t++) {
            const float *k = job->k + (row0 + t) * job->ldk + kv_head * D;
            const float *v = job->v + (row0 + t) * job->ldv + kv_head * DV;
            for (int64_t d = 0; d < D; d++) s.kt[d * T + t] = k[d];
            memcpy(s.vh + t * DV, v, (size_t)DV * sizeof(float));
        }
        for (int h = kv_head * group; h < (kv_head + 1) * group; h++) {
            const float *q_head = job->q + row0 * job->ldq + h * D;
            float *out_head = job->out + row0 * job->ldo + h * DV;
            attend_head(job, &s, q_head, out_head);
        }
    }
done:
    free(s.kt);
    free(s.vh);
    free(s.scores);
}

strata_status attention_forward(const attention_shape *shape, const float *q, int64_t ldq, const float *k, int64_t ldk,
                                const float *v, int64_t ldv, float *out, int64_t ldo)
{
    if (shape->n_kv_heads <= 0 || shape->n_heads % shape->n_kv_heads != 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "attention: %d heads cannot share %d key/value heads",
                           shape->n_heads, shape->n_kv_heads);
    attention_job job = {.shape = shape, .q = q, .k = k, .v = v, .ldq = ldq, .ldk = ldk, .ldv = ldv, .ldo = ldo,
                         .out = out};
    atomic_init(&job.out_of_memory, false);
    pool_parallel_for(shape->n_seq * shape->n_kv_heads, 1, attention_range, &job);
    if (atomic_load(&job.out_of_memory))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for attention scratch (sequence length %lld)",
                           (long long)shape->seq_len);
    return STRATA_OK;
}
