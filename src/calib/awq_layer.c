/*
 * awq_layer.c — AWQ's decisions for one layer, as ModelOpt's awq_lite and its HF export
 * make them (docs/AWQ.md):
 *
 *   1. each quantized linear that calibration tokens reached searches its own a on its
 *      input's Hessian (awq.h); its pre_quant_scale is p = 1/s, its weight's columns are
 *      multiplied by 1/p (in fp32, rounded to the weight's dtype);
 *   2. NVFP4_AWQ: down_proj's p is folded into up_proj's rows (and o_proj's into v_proj's
 *      where the shapes allow: not under grouped-query attention);
 *   3. linears reading one norm's output (q/k/v; gate/up) take the average of their p,
 *      their weights multiplied by own / average, the average folded into the norm;
 *   4. with quantized inputs, the input amax is max over channels of (channel amax x p),
 *      with each linear's own unrounded p.
 * The weights' amax are taken afterwards, from the weights so changed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/layer_calib.h"
#include "calib/values_dtype.h"
#include "core/error.h"
#include "forward/layer_weights.h"
#include "kernels/minifloat.h"
#include "quant/format.h"

static float *vector(int64_t n, const char *name)
{
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the AWQ scales of %s", name);
    return v;
}

static bool all_finite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return false;
    return true;
}

/* Step 1 for one linear: the search, or (no tokens, NaN statistics) ones as ModelOpt
 * gives a linear it could not calibrate. h is its input's Hessian, w scratch (n_out, n_in). */
static strata_status search_linear(linear_calib *c, const calib_hessian *h, const strata_model *model, float *w)
{
    const strata_linear *l = c->desc;
    int64_t K = l->n_in;
    c->values_dtype = linear_values_dtype(model, l);
    c->smooth.own = vector(K, l->name);
    c->smooth.input = vector(K, l->name);
    if (!c->smooth.own || !c->smooth.input) return STRATA_ERR_OUT_OF_MEMORY;
    float *act = vector(K, l->name);
    if (!act) return STRATA_ERR_OUT_OF_MEMORY;
    /* ModelOpt's act: the windows' means added in window order, over their count */
    for (int64_t k = 0; k < K; k++) act[k] = 0;
    for (int64_t window = 0; window < c->awq_windows; window++)
        for (int64_t k = 0; k < K; k++) act[k] += c->awq_window_means[window * K + k];
    for (int64_t k = 0; k < K && c->awq_windows > 0; k++) act[k] /= (float)c->awq_windows;
    strata_status status = STRATA_OK;
    bool searched = c->awq_windows > 0 && h && h->h && all_finite(act, K);
    if (searched) status = linear_weight_f32(model, l, w);
    if (status == STRATA_OK && searched) {
        strata_quant_params qp = scheme_weight_params(c->scheme, c->convention, 0);
        qp.values_dtype = c->values_dtype;
        const strata_format_info *f = strata_format_get(qp.format);
        awq_search_input in = {.weight = &qp, .w = w, .n_out = l->n_out, .n_in = K,
                               .block = c->scheme->group_size ? c->scheme->group_size : f->block_cols,
                               .act = act, .h = h->h};
        awq_search_result result;
        c->smooth.columns = vector(K, l->name); /* receives s, then 1 / (1/s) in place */
        if (!c->smooth.columns) status = STRATA_ERR_OUT_OF_MEMORY;
        if (status == STRATA_OK) status = awq_search(&in, l->name, c->smooth.columns, &result);
        if (status == STRATA_OK) {
            c->awq_alpha = result.best;
            memcpy(c->awq_loss, result.loss, sizeof result.loss);
            /* 4: with quantized inputs, the input amax after smoothing, with this linear's own p */
            bool smooth_amax = c->scheme->input != INPUT_NONE && c->channel_range;
            float amax = 0;
            for (int64_t k = 0; k < K; k++) {
                float p = 1.0f / c->smooth.columns[k];
                c->smooth.own[k] = in_dtype(p, c->values_dtype);
                c->smooth.columns[k] = 1.0f / p;
                float v = smooth_amax ? bf16_round(linear_calib_channel_amax(c, k)) * p : 0;
                amax = v > amax ? v : amax;
            }
            if (smooth_amax) c->input_amax = bf16_round(amax);
        }
        linear_weight_release_pages(model, l);
    } else if (status == STRATA_OK) {
        for (int64_t k = 0; k < K; k++) c->smooth.own[k] = 1.0f;
        strata_log(STRATA_LOG_WARN, "awq: %s %s; its pre_quant_scale is 1 (max calibration)", l->name,
                   c->awq_windows > 0 ? "has NaN activation statistics" : "received no calibration tokens");
    }
    if (status == STRATA_OK) memcpy(c->smooth.input, c->smooth.own, (size_t)K * sizeof *c->smooth.own);
    free(act);
    return status;
}

/* The quantized linear of the layer with this role, or NULL. */
static linear_calib *find_role(layer_calib *lc, strata_linear_role role)
{
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        if (lc->linears[i].quantized && lc->linears[i].desc->role == role && lc->linears[i].desc->expert < 0)
            return &lc->linears[i];
    return NULL;
}

/* Step 2: from's pre_quant_scale into into's rows, when their shapes match. */
static strata_status fold_into_rows(linear_calib *from, linear_calib *into)
{
    if (!from || !into || from->awq_alpha < 0 || into->desc->n_out != from->desc->n_in) return STRATA_OK;
    into->smooth.rows = vector(into->desc->n_out, into->desc->name);
    if (!into->smooth.rows) return STRATA_ERR_OUT_OF_MEMORY;
    memcpy(into->smooth.rows, from->smooth.own, (size_t)from->desc->n_in * sizeof *from->smooth.own);
    from->smooth.in_rows = true;
    return STRATA_OK;
}

/* Step 3 for the quantized linears of one fused group (one input), at least two. */
static void average_group(layer_calib *lc, int group)
{
    linear_calib *members[8];
    int n = 0;
    for (size_t i = 0; i < lc->layer->n_linears && n < 8; i++)
        if (lc->linears[i].quantized && lc->linears[i].fused_group == group) members[n++] = &lc->linears[i];
    if (n < 2) return;
    int64_t K = members[0]->desc->n_in;
    for (int64_t k = 0; k < K; k++) {
        float sum = 0;
        for (int m = 0; m < n; m++) sum += members[m]->smooth.own[k];
        float average = in_dtype(sum / (float)n, members[0]->values_dtype);
        for (int m = 0; m < n; m++) members[m]->smooth.input[k] = average;
    }
    /* One input scale for the fused GEMM: the largest of the members' smoothed amax */
    float input_amax = 0;
    for (int m = 0; m < n; m++) input_amax = members[m]->input_amax > input_amax ? members[m]->input_amax : input_amax;
    for (int m = 0; m < n; m++) {
        members[m]->smooth.in_norm = true;
        members[m]->input_amax = input_amax;
    }
}

strata_status awq_gather_windows(layer_calib *lc, const calib_collective *coll, int64_t max_share)
{
    if (coll->n_ranks <= 1) return STRATA_OK;
    size_t ranks = (size_t)coll->n_ranks;
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        if (!c->quantized || c->desc->expert >= 0) continue; /* AWQ runs on dense layers */
        int64_t K = c->desc->n_in;
        size_t block = (size_t)(max_share * K);
        double mine_count = (double)c->awq_windows, *counts = malloc(ranks * sizeof *counts);
        double *mine = calloc(block, sizeof *mine), *all = malloc(ranks * block * sizeof *all);
        if (!counts || !mine || !all)
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory gathering the AWQ statistics of %s",
                                 c->desc->name);
        for (int64_t j = 0; status == STRATA_OK && j < c->awq_windows * K; j++) mine[j] = c->awq_window_means[j];
        if (status == STRATA_OK && c->awq_windows > max_share)
            status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "AWQ statistics of %s: %lld windows on a rank, at most "
                                 "%lld expected", c->desc->name, (long long)c->awq_windows, (long long)max_share);
        if (status == STRATA_OK) status = coll->allgather_f64(coll->ctx, &mine_count, 1, counts);
        if (status == STRATA_OK) status = coll->allgather_f64(coll->ctx, mine, block, all);
        int64_t total = 0;
        for (size_t rk = 0; status == STRATA_OK && rk < ranks; rk++) total += (int64_t)counts[rk];
        float *means = status == STRATA_OK && total > 0 ? malloc((size_t)(total * K) * sizeof *means) : NULL;
        if (status == STRATA_OK && total > 0 && !means)
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the AWQ statistics of %s", c->desc->name);
        int64_t w = 0;
        for (size_t rk = 0; status == STRATA_OK && rk < ranks; rk++) { /* rank order is window order */
            int64_t n = (int64_t)counts[rk];
            for (int64_t j = 0; j < n * K; j++) means[w * K + j] = (float)all[rk * block + (size_t)j];
            w += n;
        }
        if (status == STRATA_OK) {
            free(c->awq_window_means);
            c->awq_window_means = means;
            c->awq_windows = c->awq_window_capacity = total;
        } else {
            free(means);
        }
        free(counts);
        free(mine);
        free(all);
    }
    return status;
}

strata_status awq_decide_layer(layer_calib *lc, const strata_model *model)
{
    const strata_layer *layer = lc->layer;
    float *w = layer_calib_weight_scratch(lc);
    if (!w) return STRATA_ERR_OUT_OF_MEMORY;
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        if (!c->quantized) continue;
        const calib_hessian *h = c->hessian >= 0 ? &lc->hessians[c->hessian] : NULL;
        status = search_linear(c, h, model, w);
    }
    free(w);
    if (status == STRATA_OK && lc->scheme->weight_format == STRATA_FORMAT_NVFP4) {
        status = fold_into_rows(find_role(lc, STRATA_LINEAR_DOWN), find_role(lc, STRATA_LINEAR_UP));
        if (status == STRATA_OK) status = fold_into_rows(find_role(lc, STRATA_LINEAR_O), find_role(lc, STRATA_LINEAR_V));
    }
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        int group = lc->linears[i].fused_group;
        bool first = group >= 0;
        for (size_t j = 0; j < i && first; j++) first = lc->linears[j].fused_group != group;
        if (first) average_group(lc, group);
    }
    if (status != STRATA_OK) return strata_fail_context(status, "AWQ on layer %d", lc->index);
    return STRATA_OK;
}
