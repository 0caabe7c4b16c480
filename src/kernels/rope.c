/*
 * rope.c — inverse frequencies, cos/sin tables and the rotation (see rope.h).
 *
 * transformers computes inv_freq = 1 / theta^(2i / D) in fp32, scales it per rope type,
 * multiplies by the position in fp32 and takes cos/sin in fp32; so does this file.
 * llama3 scaling (transformers' _compute_llama3_parameters): wavelengths longer than
 * original_max_position / low_freq_factor are divided by factor, shorter than
 * original_max_position / high_freq_factor are kept, and the band between is blended.
 */
#include "kernels/rope.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/pool.h"

static void inverse_frequencies(const strata_arch *arch, int64_t half, float *inv_freq)
{
    const float two_pi = 6.283185307179586f;
    int64_t dim = 2 * half;
    for (int64_t i = 0; i < half; i++) {
        float f = 1.0f / powf((float)arch->rope.theta, (float)(2 * i) / (float)dim);
        if (arch->rope.type == STRATA_ROPE_LINEAR) {
            f = f / (float)arch->rope.factor;
        } else if (arch->rope.type == STRATA_ROPE_LLAMA3) {
            float factor = (float)arch->rope.factor;
            float low = (float)arch->rope.low_freq_factor, high = (float)arch->rope.high_freq_factor;
            float old_len = (float)arch->rope.original_max_position;
            /* torch evaluates scalar / tensor as reciprocal(tensor) * scalar */
            float wavelen = (1.0f / f) * two_pi;
            if (wavelen > old_len / low) {
                f = f / factor;
            } else if (wavelen >= old_len / high) {
                float smooth = ((1.0f / wavelen) * old_len - low) / (high - low);
                f = (1.0f - smooth) * f / factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

strata_status rope_table_create(const strata_arch *arch, int64_t n_positions, rope_table *out)
{
    *out = (rope_table){0};
    int64_t half = (arch->rotary_dim > 0 ? arch->rotary_dim : arch->head_dim) / 2;
    float *inv_freq = malloc((size_t)half * sizeof *inv_freq);
    float *cos_t = malloc((size_t)(n_positions * half) * sizeof *cos_t);
    float *sin_t = malloc((size_t)(n_positions * half) * sizeof *sin_t);
    if (!inv_freq || !cos_t || !sin_t) {
        free(inv_freq);
        free(cos_t);
        free(sin_t);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for a rope table of %lld positions",
                           (long long)n_positions);
    }
    inverse_frequencies(arch, half, inv_freq);
    for (int64_t p = 0; p < n_positions; p++) {
        for (int64_t i = 0; i < half; i++) {
            float angle = (float)p * inv_freq[i];
            cos_t[p * half + i] = cosf(angle);
            sin_t[p * half + i] = sinf(angle);
        }
    }
    free(inv_freq);
    *out = (rope_table){.n_positions = n_positions, .half = half, .head_dim = arch->head_dim, .cos = cos_t, .sin = sin_t};
    return STRATA_OK;
}

void rope_table_free(rope_table *t)
{
    if (!t) return;
    free(t->cos);
    free(t->sin);
    *t = (rope_table){0};
}

typedef struct rope_job {
    const rope_table *table;
    float *x;
    int64_t ld, seq_len;
    int n_heads;
} rope_job;

static void rope_range(void *ctx, int64_t begin, int64_t end)
{
    const rope_job *job = ctx;
    int64_t half = job->table->half;
    for (int64_t token = begin; token < end; token++) {
        int64_t position = token % job->seq_len;
        const float *c = job->table->cos + position * half;
        const float *s = job->table->sin + position * half;
        for (int h = 0; h < job->n_heads; h++) {
            float *x = job->x + token * job->ld + (int64_t)h * job->table->head_dim;
            for (int64_t i = 0; i < half; i++) {
                float x1 = x[i], x2 = x[i + half];
                x[i] = x1 * c[i] - x2 * s[i];
                x[i + half] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

void rope_apply(const rope_table *t, float *x, int64_t ld, int64_t n_seq, int64_t seq_len, int n_heads)
{
    rope_job job = {t, x, ld, seq_len, n_heads};
    pool_parallel_for(n_seq * seq_len, 64, rope_range, &job);
}
