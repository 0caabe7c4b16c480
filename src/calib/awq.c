/*
 * awq.c — ModelOpt's awq_lite search for one linear (see awq.h).
 */
#include "calib/awq.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/values_dtype.h"
#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/minifloat.h"
#include "quant/format.h"

float awq_alpha(int i) { return (float)(i / 10.0); }

/* x rounded to the dtype the reference computes in (bf16 for a bf16 weight). */
strata_status awq_weight_scale(const float *w, int64_t n_out, int64_t n_in, int64_t block, strata_dtype values_dtype,
                               float *out)
{
    if (block <= 0) block = n_in;
    double *sum = calloc((size_t)n_in, sizeof *sum);
    if (!sum) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the AWQ weight statistics");
    for (int64_t r = 0; r < n_out; r++) {
        const float *row = w + r * n_in;
        for (int64_t b0 = 0; b0 < n_in; b0 += block) {
            int64_t b1 = b0 + block < n_in ? b0 + block : n_in;
            float amax = 0;
            for (int64_t c = b0; c < b1; c++) amax = fabsf(row[c]) > amax ? fabsf(row[c]) : amax;
            /* amax + finfo(dtype).tiny, in the dtype: the tiny only matters for a zero block */
            float denominator = in_dtype(amax + FLT_MIN, values_dtype);
            for (int64_t c = b0; c < b1; c++) sum[c] += in_dtype(fabsf(row[c]) / denominator, values_dtype);
        }
    }
    for (int64_t c = 0; c < n_in; c++) out[c] = in_dtype((float)(sum[c] / (double)n_out), values_dtype);
    free(sum);
    return STRATA_OK;
}

void awq_scale(const float *act, const float *weight_scale, int64_t n_in, float alpha, float *s)
{
    float w_exponent = (float)(1.0 - (double)alpha);
    float lo = INFINITY, hi = 0;
    for (int64_t c = 0; c < n_in; c++) {
        float v = powf(act[c], alpha) / (powf(weight_scale[c], w_exponent) + FLT_MIN);
        v = v < 1e-4f ? 1e-4f : v > 1e4f ? 1e4f : v;
        s[c] = v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float norm = sqrtf(hi * lo);
    for (int64_t c = 0; c < n_in; c++) s[c] /= norm;
}

/* tr(dW H dW^T) / (2 n_out) with dW = W - Q(W diag sb) diag(ib), where sb and ib are s and
 * 1/s as the two quantizers hold them (the weight's dtype). scaled and product are (n_out,
 * n_in) scratch. */
static strata_status candidate_loss(const awq_search_input *in, const float *s, float *scaled, float *product,
                                    float *ib, double *loss)
{
    int64_t n_out = in->n_out, n_in = in->n_in;
    strata_dtype dtype = in->weight->values_dtype;
    float amax = 0, *sb = product; /* product's first row, free until the GEMM */
    for (int64_t c = 0; c < n_in; c++) {
        sb[c] = in_dtype(s[c], dtype);
        ib[c] = in_dtype(1.0f / s[c], dtype);
    }
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t c = 0; c < n_in; c++) {
            float v = in_dtype(in->w[r * n_in + c] * sb[c], dtype);
            scaled[r * n_in + c] = v;
            amax = fabsf(v) > amax ? fabsf(v) : amax;
        }
    strata_quant_params qp = *in->weight;
    qp.amax = amax; /* the quantizer's dynamic scales, of the scaled weight */
    strata_status status = quant_fake_clipped(&qp, STRATA_DTYPE_F32, scaled, n_out, n_in, NULL, scaled);
    if (status != STRATA_OK) return status;
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t c = 0; c < n_in; c++) scaled[r * n_in + c] = in->w[r * n_in + c] - scaled[r * n_in + c] * ib[c];
    /* dW H (H symmetric), then the trace of it times dW^T */
    status = gemm_f32(false, false, n_out, n_in, n_in, 1.0f, scaled, n_in, in->h, n_in, 0.0f, product, n_in);
    if (status != STRATA_OK) return status;
    double sum = 0;
    for (size_t i = 0; i < (size_t)n_out * (size_t)n_in; i++) sum += (double)scaled[i] * (double)product[i];
    *loss = sum / (2.0 * (double)n_out);
    return STRATA_OK;
}

strata_status awq_search(const awq_search_input *in, const char *name, float *scale, awq_search_result *out)
{
    int64_t n_in = in->n_in;
    size_t n = (size_t)in->n_out * (size_t)n_in;
    float *weight_scale = malloc((size_t)n_in * sizeof *weight_scale), *s = malloc((size_t)n_in * sizeof *s);
    float *ib = malloc((size_t)n_in * sizeof *ib);
    float *scaled = malloc(n * sizeof *scaled), *product = malloc(n * sizeof *product);
    strata_status status = STRATA_OK;
    if (!weight_scale || !s || !ib || !scaled || !product)
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the AWQ search of %s", name);
    if (status == STRATA_OK)
        status = awq_weight_scale(in->w, in->n_out, n_in, in->block, in->weight->values_dtype, weight_scale);
    out->best = 0;
    for (int i = 0; status == STRATA_OK && i < AWQ_ALPHAS; i++) {
        awq_scale(in->act, weight_scale, n_in, awq_alpha(i), s);
        status = candidate_loss(in, s, scaled, product, ib, &out->loss[i]);
        if (status != STRATA_OK) status = strata_fail_context(status, "the AWQ search of %s", name);
        else if (out->loss[i] < out->loss[out->best]) out->best = i;
    }
    if (status == STRATA_OK) awq_scale(in->act, weight_scale, n_in, awq_alpha(out->best), scale);
    free(weight_scale);
    free(s);
    free(ib);
    free(scaled);
    free(product);
    return status;
}
