/*
 * awq_modifier.c — llm-compressor's AWQModifier arithmetic (see awq_modifier.h).
 */
#include "calib/awq_modifier.h"

#include <math.h>
#include <stdlib.h>

#include "calib/values_dtype.h"
#include "core/error.h"
#include "quant/format.h"

void awq_modifier_point(int i, double *ratio, bool *duo)
{
    /* duo_scaling=True: (0, no duo), then (i / (n_grid - 2), duo) for i = 0 .. n_grid - 2 */
    *duo = i > 0;
    *ratio = i > 0 ? (double)(i - 1) / (AWQ_MODIFIER_GRID - 2) : 0.0;
}

/* torch's float32 column sums of a contiguous (rows, K) tensor (aten's cascade sum: four
 * levels of partial sums, a level carried up every 2^level_power rows), for every column at
 * once, row by row. */
strata_status awq_modifier_add_column_sums(const float *x, int64_t rows, int64_t K, float *acc_out)
{
    int ceil_log2 = 0;
    while (((int64_t)1 << ceil_log2) < rows) ceil_log2++;
    int level_power = ceil_log2 / 4 > 4 ? ceil_log2 / 4 : 4;
    int64_t step = (int64_t)1 << level_power, mask = step - 1;
    float *acc = calloc(4 * (size_t)K, sizeof *acc);
    if (!acc) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's activation sums");
    int64_t i = 0;
    while (i + step <= rows) {
        for (int64_t j = 0; j < step; j++, i++)
            for (int64_t c = 0; c < K; c++) acc[c] += fabsf(x[i * K + c]);
        for (int level = 1; level < 4; level++) {
            float *up = acc + level * K, *down = up - K;
            for (int64_t c = 0; c < K; c++) {
                up[c] += down[c];
                down[c] = 0;
            }
            if (i & (mask << (level * level_power))) break;
        }
    }
    for (; i < rows; i++)
        for (int64_t c = 0; c < K; c++) acc[c] += fabsf(x[i * K + c]);
    for (int64_t c = 0; c < K; c++) {
        float sum = acc[c];
        sum += acc[K + c];
        sum += acc[2 * K + c];
        sum += acc[3 * K + c];
        acc_out[c] += sum;
    }
    free(acc);
    return STRATA_OK;
}

void awq_modifier_add_weight_sums(const float *w, int64_t n_out, int64_t K, int64_t group, strata_dtype dtype,
                                  double *sum)
{
    if (group <= 0) group = K;
    for (int64_t r = 0; r < n_out; r++) {
        const float *row = w + r * K;
        for (int64_t g0 = 0; g0 < K; g0 += group) {
            int64_t g1 = g0 + group < K ? g0 + group : K;
            float amax = 0;
            for (int64_t c = g0; c < g1; c++) amax = fabsf(row[c]) > amax ? fabsf(row[c]) : amax;
            float denominator = in_dtype(amax + 1e-6f, dtype);
            for (int64_t c = g0; c < g1; c++) sum[c] += in_dtype(fabsf(row[c]) / denominator, dtype);
        }
    }
}

/* torch's pow of a tensor by a Python scalar: 0 fills ones, 1 copies, 0.5 is a square root. */
static float pow_f32(float x, double e)
{
    if (e == 0) return 1.0f;
    if (e == 1) return x;
    if (e == 0.5) return sqrtf(x);
    return powf(x, (float)e);
}

static double pow_f64(double x, double e)
{
    if (e == 0) return 1.0;
    if (e == 1) return x;
    if (e == 0.5) return sqrt(x);
    return pow(x, e);
}

void awq_modifier_scales(int point, const float *x_mean, const double *w_mean, int64_t K, double *s)
{
    double ratio;
    bool duo;
    awq_modifier_point(point, &ratio, &duo);
    if (duo) {
        double most = -INFINITY, least = INFINITY;
        bool nan = false;
        for (int64_t c = 0; c < K; c++) {
            double v = (double)pow_f32(x_mean[c], ratio) / (pow_f64(w_mean[c], 1 - ratio) + 1e-4);
            s[c] = v < 1e-4 ? 1e-4 : v; /* clamp(min=1e-4): NaN stays NaN */
            nan |= isnan(s[c]);
            most = s[c] > most ? s[c] : most;
            least = s[c] < least ? s[c] : least;
        }
        double norm = nan ? NAN : sqrt(most * least);
        for (int64_t c = 0; c < K; c++) s[c] /= norm;
    } else {
        /* float32 throughout; s holds the float32 values */
        float most = -INFINITY, least = INFINITY;
        bool nan = false;
        for (int64_t c = 0; c < K; c++) {
            float v = pow_f32(x_mean[c], ratio);
            v = v < 1e-4f ? 1e-4f : v;
            nan |= isnan(v);
            most = v > most ? v : most;
            least = v < least ? v : least;
            s[c] = v;
        }
        float norm = nan ? NAN : sqrtf(most * least);
        for (int64_t c = 0; c < K; c++) s[c] = (float)s[c] / norm;
    }
    for (int64_t c = 0; c < K; c++)
        if (!isfinite(s[c])) s[c] = 1;
}

/* w * s (or w / s) rounded as torch rounds a bf16 tensor times a float64 (through float32)
 * or a float32 (in float32) scale. */
static float scaled(float w, double s, bool duo, bool divide, strata_dtype dtype)
{
    if (duo) return in_dtype((float)(divide ? (double)w / s : (double)w * s), dtype);
    return in_dtype(divide ? w / (float)s : w * (float)s, dtype);
}

strata_status awq_modifier_trial_weight(const strata_quant_params *weight, const float *w, int64_t n_out, int64_t K,
                                        const double *s, bool duo, float *out)
{
    strata_dtype dtype = weight->values_dtype;
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t c = 0; c < K; c++) out[r * K + c] = scaled(w[r * K + c], s[c], duo, false, dtype);
    strata_status status = quant_fake_clipped(weight, STRATA_DTYPE_F32, out, n_out, K, NULL, out);
    if (status != STRATA_OK) return status;
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t c = 0; c < K; c++) out[r * K + c] = scaled(in_dtype(out[r * K + c], dtype), s[c], duo, true, dtype);
    return STRATA_OK;
}

float awq_modifier_window_loss(const float *y0, const float *y, int64_t n, strata_dtype dtype)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float d = in_dtype(in_dtype(y0[i], dtype) - in_dtype(y[i], dtype), dtype);
        sum += in_dtype(d * d, dtype);
    }
    return in_dtype((float)sum, dtype);
}
