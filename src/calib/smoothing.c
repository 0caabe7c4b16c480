/*
 * smoothing.c — a per-input-channel scale moved from a linear's input into its weight
 * (layer_calib.h's input_smoothing), applied wherever the layer loop meets it. AWQ
 * (awq_layer.c) and SmoothQuant (smoothquant.c) decide the scales; this file applies them:
 *
 *   weight   W' = W diag(columns), then diag(rows) W' (or diag(rows)^-1 W'), then x own / input (a
 *            group member) or x own / experts, then x experts / input (a routed expert),
 *            each product rounded to the weight's dtype, as the reference libraries do it
 *   input    x' = x diag(input), what the folded norm (or pre_quant_scale) gives the linear;
 *            nothing when the previous linear's rows already did it (in_rows) and the
 *            forward runs with those rows
 *   Hessian  H' = diag(input) H diag(input): the Hessian of the smoothed input, from the
 *            calibration pass's unsmoothed one (2/n X^T X with X diag(p) in place of X)
 */
#include <stdlib.h>
#include <string.h>

#include "calib/layer_calib.h"
#include "calib/values_dtype.h"
#include "core/error.h"
#include "forward/layer_weights.h"
#include "kernels/minifloat.h"

void linear_calib_free_smoothing(linear_calib *c)
{
    free(c->awq_window_means);
    free(c->awq_window_sum);
    free(c->channel_range);
    free(c->awq_inputs);
    c->awq_inputs = NULL;
    c->awq_window_means = NULL;
    c->awq_windows = c->awq_window_capacity = 0;
    c->channel_range = NULL;
    c->awq_window_sum = NULL;
    input_smoothing_free(&c->smooth);
}

strata_status linear_calib_alloc_smoothing(linear_calib *c)
{
    input_smoothing *s = &c->smooth;
    size_t bytes = (size_t)c->desc->n_in * sizeof(float);
    s->columns = malloc(bytes);
    s->own = malloc(bytes);
    s->input = malloc(bytes);
    if (!s->columns || !s->own || !s->input)
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the input scales of %s", c->desc->name);
    return STRATA_OK;
}

void input_smoothing_free(input_smoothing *s)
{
    free(s->columns);
    free(s->own);
    free(s->input);
    free(s->experts);
    free(s->rows);
    *s = (input_smoothing){0};
}

/* w's columns times from / to, unless the two are equal (ModelOpt's torch.equal test). */
static void rescale(float *w, int64_t N, int64_t K, const float *from, const float *to, strata_dtype dtype)
{
    if (memcmp(from, to, (size_t)K * sizeof *from) == 0) return;
    for (int64_t r = 0; r < N; r++)
        for (int64_t k = 0; k < K; k++) w[r * K + k] = in_dtype(w[r * K + k] * from[k] / to[k], dtype);
}

void linear_calib_smooth_weight(const linear_calib *c, strata_dtype dtype, float *w)
{
    const input_smoothing *s = &c->smooth;
    int64_t N = c->desc->n_out, K = c->desc->n_in;
    if (s->columns)
        for (int64_t r = 0; r < N; r++)
            for (int64_t k = 0; k < K; k++) w[r * K + k] = in_dtype(w[r * K + k] * s->columns[k], dtype);
    if (s->rows)
        for (int64_t r = 0; r < N; r++)
            for (int64_t k = 0; k < K; k++)
                w[r * K + k] = in_dtype(s->rows_divided ? w[r * K + k] / s->rows[r] : w[r * K + k] * s->rows[r], dtype);
    if (s->experts) {
        rescale(w, N, K, s->own, s->experts, dtype);
        rescale(w, N, K, s->experts, s->input, dtype);
    } else if (s->in_norm && s->own) {
        rescale(w, N, K, s->own, s->input, dtype);
    }
}

strata_status linear_calib_weight_f32(const strata_model *model, const linear_calib *c, float *w)
{
    strata_status status = linear_weight_f32(model, c->desc, w);
    if (status == STRATA_OK) linear_calib_smooth_weight(c, linear_values_dtype(model, c->desc), w);
    return status;
}

void linear_calib_smooth_input(const linear_calib *c, float *x, int64_t n_tokens)
{
    const float *p = c->smooth.input;
    if (!p || c->smooth.in_rows) return;
    int64_t K = c->desc->n_in;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t k = 0; k < K; k++) x[t * K + k] *= p[k];
}

void layer_hessians_smooth(layer_calib *lc)
{
    for (size_t g = 0; g < lc->n_hessians; g++) {
        calib_hessian *hg = &lc->hessians[g];
        const float *p = hg->owner >= 0 ? lc->linears[hg->owner].smooth.input : NULL;
        if (!hg->h || !p) continue;
        int64_t K = hg->n_in;
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < K; j++) hg->h[i * K + j] *= p[i] * p[j];
    }
}
