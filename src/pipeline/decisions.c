/*
 * decisions.c — each quantized linear's weight decided once per layer (see run.h): mse's
 * clip search or GPTQ on its Hessian, else round-to-nearest, the codes and scales held
 * until export, the weight's relative error and the output error on its sampled inputs.
 * With several ranks GPTQ's and mse's decisions are dealt out by linear and sent to every
 * rank (calib/decision_share.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/scale_search.h"
#include "core/big_buffer.h"
#include "core/clock.h"
#include "core/error.h"
#include "pipeline/run.h"
#include "quant/format.h"

/* ||a - b|| / ||a|| over n values (0 when a is zero). */
static double relative_error(const float *a, const float *b, size_t n)
{
    double sq = 0, diff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        sq += (double)a[i] * (double)a[i];
        diff += d * d;
    }
    return sq > 0 ? sqrt(diff / sq) : 0;
}

/* GPTQ on the linear's Hessian: q receives the updated weight's values, c->weight_q its
 * codes and scales. */
static strata_status quantize_gptq(run *r, layer_calib *lc, linear_calib *c, const float *w, float *q)
{
    const strata_linear *l = c->desc;
    const calib_hessian *hg = c->hessian >= 0 ? &lc->hessians[c->hessian] : NULL;
    strata_quant_params qp = scheme_weight_params(c->scheme, c->convention, c->weight_amax);
    memcpy(q, w, (size_t)l->n_out * (size_t)l->n_in * sizeof *q);
    strata_status status = linear_calib_alloc_quantized(c, c->scheme);
    if (status == STRATA_OK)
        status = gptq_quantize(&qp, hg ? hg->h : NULL, hg ? hg->tokens : 0, q, l->n_out, l->n_in, &r->gptq_options,
                               &c->weight_q, &c->gptq);
    if (status != STRATA_OK) return strata_fail_context(status, "GPTQ on %s", l->name);
    c->gptq_done = true;
    if (c->gptq.outcome == GPTQ_RTN_NOT_POSITIVE_DEFINITE)
        strata_log(STRATA_LOG_WARN, "%s: the Hessian is not positive definite even with damping %g; rounded to nearest",
                   l->name, r->gptq_options.damp * pow(10, GPTQ_DAMP_RETRIES));
    else if (c->gptq.outcome == GPTQ_RTN_FEW_TOKENS)
        strata_log(STRATA_LOG_INFO, "%s: %lld calibration tokens (fewer than %lld); rounded to nearest", l->name,
                   (long long)(hg ? hg->tokens : 0), (long long)r->gptq_options.min_tokens);
    return STRATA_OK;
}

void decide_scratch_free(run *r)
{
    free(r->decide_w);
    free(r->decide_q);
    r->decide_w = r->decide_q = NULL;
    r->decide_capacity = 0;
}

/* The decisions' working copies for n elements, kept from one linear to the next of a
 * layer (fresh pages are cleared by the kernel: 2 x 0.9 GB per layer at 8B's size) and
 * freed after the layer's decisions. Huge pages, cache-line aligned, so the error
 * products use them in place. */
static strata_status decide_scratch(run *r, size_t n, const char *name)
{
    if (n <= r->decide_capacity) return STRATA_OK;
    decide_scratch_free(r);
    r->decide_w = big_buffer_alloc(n * sizeof *r->decide_w);
    r->decide_q = big_buffer_alloc(n * sizeof *r->decide_q);
    if (r->decide_w && r->decide_q) {
        r->decide_capacity = n;
        return STRATA_OK;
    }
    decide_scratch_free(r);
    return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %s", name);
}

/* The linear's output error on its samples (its fused group's) when it has them: w and q
 * are its weight and quantized weight (n_out, n_in) fp32. */
static strata_status measure_output_error(run *r, layer_calib *lc, linear_calib *c, const float *w, const float *q)
{
    const strata_linear *l = c->desc;
    const linear_calib *sampled = &lc->linears[c->sample_owner];
    if (sampled->sample_rows == 0) return STRATA_OK;
    double start = seconds_now();
    gemm_weight *gw = NULL, *gq = NULL;
    size_t out = (size_t)sampled->sample_rows * (size_t)l->n_out;
    float *y = big_buffer_alloc(out * sizeof *y), *yq = big_buffer_alloc(out * sizeof *yq);
    strata_status status = STRATA_OK;
    if (!y || !yq) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %s", l->name);
    /* With smoothing, the input as the linear receives it (divided by s) and its changed weight:
     * the error of the quantization, in the space it happens in. */
    const float *x = sampled->sample;
    float *scaled = NULL;
    if (status == STRATA_OK && c->smooth.input && !c->smooth.in_rows) {
        size_t n = (size_t)sampled->sample_rows * (size_t)l->n_in;
        if (!(scaled = malloc(n * sizeof *scaled))) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        if (scaled) {
            memcpy(scaled, x, n * sizeof *scaled);
            linear_calib_smooth_input(c, scaled, sampled->sample_rows);
            x = scaled;
        }
    }
    if (status == STRATA_OK) status = gemm_weight_borrow(GEMM_F32, w, l->n_out, l->n_in, l->name, &gw);
    if (status == STRATA_OK) status = gemm_weight_borrow(GEMM_F32, q, l->n_out, l->n_in, l->name, &gq);
    if (status == STRATA_OK) status = gemm_linear(gw, x, l->n_in, sampled->sample_rows, y, l->n_out);
    if (status == STRATA_OK) status = gemm_linear(gq, x, l->n_in, sampled->sample_rows, yq, l->n_out);
    free(scaled);
    if (status == STRATA_OK) c->output_error = relative_error(y, yq, out);
    gemm_weight_free(gw);
    gemm_weight_free(gq);
    free(y);
    free(yq);
    r->timings.layers[lc->index].errors_s += seconds_now() - start;
    return status;
}

/* mse clip search or GPTQ, the quantized weight (held until export), then the weight's and
 * the linear's output error on its samples. */
strata_status decide_linear(run *r, layer_calib *lc, linear_calib *c)
{
    double start = seconds_now();
    const strata_linear *l = c->desc;
    size_t n = (size_t)l->n_out * (size_t)l->n_in;
    strata_status status = decide_scratch(r, n, l->name);
    float *w = r->decide_w, *q = r->decide_q;
    if (status == STRATA_OK) status = linear_calib_weight_f32(r->model, c, w);
    if (status == STRATA_OK && r->algorithm == CALIB_MSE) status = mse_search_clip(c->scheme, c, w);
    strata_quant_params qp = scheme_weight_params(c->scheme, c->convention, c->weight_amax);
    qp.values_dtype = c->values_dtype;
    /* Quantized once: c->weight_q holds the codes and scales the quantized pass and the
     * export reuse, q their values. */
    if (status == STRATA_OK && calib_algorithm_gptq(r->algorithm)) status = quantize_gptq(r, lc, c, w, q);
    else if (status == STRATA_OK) status = linear_calib_alloc_quantized(c, c->scheme);
    quant_block_adjust adjust = linear_calib_block_adjust(c);
    if (status == STRATA_OK && !calib_algorithm_gptq(r->algorithm))
        status = quant_tensor_adjusted(&qp, STRATA_DTYPE_F32, w, l->n_out, l->n_in, &adjust, &c->weight_q, q);
    if (status == STRATA_OK) c->weight_error = relative_error(w, q, n);
    if (status == STRATA_OK) status = measure_output_error(r, lc, c, w, q);
    /* A layer too big to hold: an expert's quantized weight is recomputed (the same codes)
     * by the quantized pass and the export instead of held; GPTQ's, which cannot be, waits
     * on disk. */
    if (r->plan.experts_per_group > 0 && l->expert >= 0) {
        if (!calib_algorithm_gptq(r->algorithm)) linear_calib_free_quantized(c);
        else if (status == STRATA_OK) status = linear_calib_spill_quantized(c, &r->spill);
    }
    linear_weight_release_pages(r->model, l);
    r->timings.layers[lc->index].decide_s += seconds_now() - start;
    return status;
}

/* The output error of a linear another rank decided, on rank 0's samples: its weight and
 * the received quantized weight, dequantized (or, not held, quantized again with the
 * received clip). */
static strata_status measure_received(run *r, layer_calib *lc, linear_calib *c)
{
    const strata_linear *l = c->desc;
    if (lc->linears[c->sample_owner].sample_rows == 0) return STRATA_OK;
    strata_status status = decide_scratch(r, (size_t)l->n_out * (size_t)l->n_in, l->name);
    strata_quant_params qp = scheme_weight_params(c->scheme, c->convention, c->weight_amax);
    qp.values_dtype = c->values_dtype;
    float *w = r->decide_w, *q = r->decide_q;
    if (status == STRATA_OK) status = linear_calib_weight_f32(r->model, c, w);
    if (status == STRATA_OK && c->weight_q.codes) status = strata_dequantize(&qp, &c->weight_q, l->n_out, l->n_in, q);
    quant_block_adjust adjust = linear_calib_block_adjust(c);
    if (status == STRATA_OK && !c->weight_q.codes)
        status = quant_fake_adjusted(&qp, STRATA_DTYPE_F32, w, l->n_out, l->n_in, &adjust, q);
    if (status == STRATA_OK) status = measure_output_error(r, lc, c, w, q);
    linear_weight_release_pages(r->model, l);
    return status;
}

/* Every quantized linear not decided yet (GPTQ decides a grouped layer's experts group by
 * group). With several ranks, GPTQ's and mse's work is dealt out (calib/decision_share.c):
 * each rank decides its linears, then every decision is sent to every rank in linear
 * order, and rank 0, which alone holds the samples, measures the output errors of the
 * ones it received. Round-to-nearest is cheaper to redo than to send: every rank decides
 * every linear. */
strata_status decide_layer(run *r, layer_calib *lc)
{
    const calib_collective *coll = &r->collective;
    bool share = coll->n_ranks > 1 && r->algorithm != CALIB_MAX;
    size_t n = lc->layer->n_linears;
    bool *pending = calloc(n ? n : 1, sizeof *pending);
    if (!pending) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) pending[i] = lc->linears[i].quantized && !lc->linears[i].gptq_done;
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < n; i++) {
        linear_calib *c = &lc->linears[i];
        if (pending[i] && (!share || linear_calib_decider(lc, c, coll->n_ranks) == coll->rank))
            status = decide_linear(r, lc, c);
    }
    double start = seconds_now();
    for (size_t i = 0; share && status == STRATA_OK && i < n; i++) {
        linear_calib *c = &lc->linears[i];
        if (!pending[i]) continue;
        int from = linear_calib_decider(lc, c, coll->n_ranks);
        status = linear_calib_share_decision(c, coll, from);
        if (status == STRATA_OK && coll->rank == 0 && from != 0) status = measure_received(r, lc, c);
    }
    free(pending);
    r->timings.layers[lc->index].decide_s += seconds_now() - start;
    return status;
}
