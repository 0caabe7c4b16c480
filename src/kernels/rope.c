/*
 * rope.c — inverse frequencies, cos/sin tables and the rotation (see rope.h).
 *
 * transformers computes inv_freq = 1 / theta^(2i / D) in fp32, scales it per rope type,
 * multiplies by the position in fp32 and takes cos/sin in fp32; so does this file.
 * llama3 scaling (transformers' _compute_llama3_parameters): wavelengths longer than
 * original_max_position / low_freq_factor are divided by factor, shorter than
 * original_max_position / high_freq_factor are kept, and the band between is blended.
 * YaRN (transformers' _compute_yarn_parameters) blends each frequency between itself
 * (extrapolation) and itself / factor (interpolation) by a linear ramp over the dims
 * between the correction range of beta_fast and beta_slow rotations.
 */
#include "kernels/rope.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/pool.h"

/* The dimension at which num_rotations full turns fit in the original context (YaRN). */
static double yarn_correction_dim(double num_rotations, double dim, double base, double max_position)
{
    return (dim * log(max_position / (num_rotations * 2 * M_PI))) / (2 * log(base));
}

static void yarn_frequencies(const strata_arch *arch, int64_t half, float *inv_freq)
{
    int64_t dim = 2 * half;
    double base = arch->rope.theta, original = (double)arch->rope.original_max_position;
    double low = yarn_correction_dim(arch->yarn.beta_fast, (double)dim, base, original);
    double high = yarn_correction_dim(arch->yarn.beta_slow, (double)dim, base, original);
    if (arch->yarn.truncate) {
        low = floor(low);
        high = ceil(high);
    }
    low = low > 0 ? low : 0;
    high = high < (double)(dim - 1) ? high : (double)(dim - 1);
    if (low == high) high += 0.001; /* as transformers: no singular ramp */
    float factor = (float)arch->rope.factor, span = (float)(high - low);
    for (int64_t i = 0; i < half; i++) {
        float pos_freq = powf((float)base, (float)(2 * i) / (float)dim);
        float extrapolation = 1.0f / pos_freq, interpolation = 1.0f / (factor * pos_freq);
        float ramp = ((float)i - (float)low) / span;
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        float extrapolation_factor = 1.0f - ramp;
        inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
}

static void inverse_frequencies(const strata_arch *arch, int64_t half, float *inv_freq)
{
    if (arch->rope.type == STRATA_ROPE_YARN) {
        yarn_frequencies(arch, half, inv_freq);
        return;
    }
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
    bool scaled = arch->rope.type == STRATA_ROPE_YARN;
    float attention_factor = (float)arch->yarn.attention_factor;
    for (int64_t p = 0; p < n_positions; p++) {
        for (int64_t i = 0; i < half; i++) {
            float angle = (float)p * inv_freq[i];
            cos_t[p * half + i] = scaled ? cosf(angle) * attention_factor : cosf(angle);
            sin_t[p * half + i] = scaled ? sinf(angle) * attention_factor : sinf(angle);
        }
    }
    free(inv_freq);
    *out = (rope_table){.n_positions = n_positions, .half = half, .interleaved = arch->rope_interleave,
                        .cos = cos_t, .sin = sin_t};
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
    int64_t ld, head_stride, seq_len;
    int n_heads;
} rope_job;

static void rotate_half(float *x, const float *c, const float *s, int64_t half)
{
    for (int64_t i = 0; i < half; i++) {
        float x1 = x[i], x2 = x[i + half];
        x[i] = x1 * c[i] - x2 * s[i];
        x[i + half] = x2 * c[i] + x1 * s[i];
    }
}

static void rotate_interleaved(float *x, const float *c, const float *s, int64_t half)
{
    float pairs[ROPE_MAX_INTERLEAVED_DIM];
    for (int64_t i = 0; i < 2 * half; i++) pairs[i] = x[i];
    for (int64_t i = 0; i < half; i++) {
        float x1 = pairs[2 * i], x2 = pairs[2 * i + 1];
        x[i] = x1 * c[i] - x2 * s[i];
        x[i + half] = x2 * c[i] + x1 * s[i];
    }
}

static void rope_range(void *ctx, int64_t begin, int64_t end)
{
    const rope_job *job = ctx;
    int64_t half = job->table->half;
    for (int64_t token = begin; token < end; token++) {
        int64_t position = token % job->seq_len;
        const float *c = job->table->cos + position * half;
        const float *s = job->table->sin + position * half;
        for (int h = 0; h < job->n_heads; h++) {
            float *x = job->x + token * job->ld + (int64_t)h * job->head_stride;
            if (job->table->interleaved) rotate_interleaved(x, c, s, half);
            else rotate_half(x, c, s, half);
        }
    }
}

void rope_apply(const rope_table *t, float *x, int64_t ld, int64_t head_stride, int64_t n_seq, int64_t seq_len,
                int n_heads)
{
    rope_job job = {t, x, ld, head_stride, seq_len, n_heads};
    pool_parallel_for(n_seq * seq_len, 64, rope_range, &job);
}
