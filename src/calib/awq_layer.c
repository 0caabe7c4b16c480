/*
 * awq_layer.c — AWQ's decisions for one layer, as ModelOpt's awq_lite and its HF export
 * make them (docs/AWQ.md):
 *
 *   1. each quantized linear that calibration tokens reached searches its own a on its
 *      input's Hessian (awq.h); its pre_quant_scale is p = 1/s, its weight's columns are
 *      multiplied by 1/p (in fp32, rounded to the weight's dtype); a routed expert searches
 *      on its routed tokens (each window's mean error weighing the same, hessian.c);
 *   2. NVFP4_AWQ: down_proj's p is folded into up_proj's rows (and o_proj's into v_proj's
 *      where the shapes allow: not under grouped-query attention), each expert's into its
 *      own up_proj; only for the model classes ModelOpt folds (Llama, Qwen3, Qwen3-MoE);
 *   3. linears reading one norm's output (q/k/v; gate/up) take the average of their p,
 *      their weights multiplied by own / average, the average folded into the norm;
 *   4. routed experts: per linear name the experts' p are averaged (each weight multiplied
 *      by own / average), then each expert's gate and up take the mean of the two averages;
 *      no norm folding, a pre_quant_scale tensor per expert; INT4's gate and up share the
 *      elementwise maximum of their block amax;
 *   5. with quantized inputs, the input amax is max over channels of (channel amax x p),
 *      with each linear's own unrounded p (an expert's channel amax the maximum over the
 *      layer's experts), then the maximum over the fused group.
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
 * gives a linear it could not calibrate. h is its input's Hessian, w scratch (n_out, n_in);
 * experts_amax (n_in) the experts' channel amax for a routed expert with quantized inputs,
 * else NULL. */
static strata_status search_linear(linear_calib *c, const calib_hessian *h, const strata_model *model,
                                   const float *experts_amax, float *w)
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
            bool smooth_amax = c->scheme->input != INPUT_NONE && (experts_amax || c->channel_range);
            float amax = 0;
            for (int64_t k = 0; k < K; k++) {
                float p = 1.0f / c->smooth.columns[k];
                c->smooth.own[k] = in_dtype(p, c->values_dtype);
                c->smooth.columns[k] = 1.0f / p;
                float channel = !smooth_amax ? 0 : experts_amax ? experts_amax[k]
                                                               : bf16_round(linear_calib_channel_amax(c, k));
                amax = channel * p > amax ? channel * p : amax;
            }
            if (smooth_amax) c->input_amax = bf16_round(amax);
        }
        linear_weight_release_pages(model, l);
    } else if (status == STRATA_OK) {
        for (int64_t k = 0; k < K; k++) c->smooth.own[k] = 1.0f;
        /* an expert no token reached: the experts' unsmoothed amax */
        float amax = 0;
        for (int64_t k = 0; experts_amax && c->scheme->input != INPUT_NONE && k < K; k++)
            amax = experts_amax[k] > amax ? experts_amax[k] : amax;
        if (experts_amax && c->scheme->input != INPUT_NONE) c->input_amax = amax;
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

/* The quantized linear of routed expert e with this role, or NULL. */
static linear_calib *expert_role(layer_calib *lc, int e, strata_linear_role role)
{
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        if (lc->linears[i].quantized && lc->linears[i].desc->role == role && lc->linears[i].desc->expert == e)
            return &lc->linears[i];
    return NULL;
}

static int n_experts(const layer_calib *lc)
{
    int n = 0;
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        if (lc->layer->linears[i].expert + 1 > n) n = lc->layer->linears[i].expert + 1;
    return n;
}

/* ModelOpt folds a linear's scale into the previous one's rows for the module classes of
 * its PQS_FUSE_MODULE_MAPPING (matched by class name): Llama's, Qwen3's and Qwen3-MoE's
 * attention and MLP (each Qwen3MoeMLP expert); not Mistral's, Qwen2's or Mixtral's. */
static bool folds_into_rows(strata_family family)
{
    return family == STRATA_FAMILY_LLAMA || family == STRATA_FAMILY_QWEN3 || family == STRATA_FAMILY_QWEN3_MOE;
}

/* Step 2: from's pre_quant_scale into into's rows, when their shapes match (an expert's
 * unsearched ones too: ModelOpt folds every expert, then drops the scale). */
static strata_status fold_into_rows(linear_calib *from, linear_calib *into)
{
    if (!from || !into || into->desc->n_out != from->desc->n_in) return STRATA_OK;
    if (from->awq_alpha < 0 && from->desc->expert < 0) return STRATA_OK;
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

enum { EXPERT_ROLES = 3 };
static const strata_linear_role EXPERT_ROLE[EXPERT_ROLES] = {STRATA_LINEAR_GATE, STRATA_LINEAR_UP,
                                                             STRATA_LINEAR_DOWN};

static strata_status awq_close_windows(layer_calib *lc)
{
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < lc->layer->n_linears; i++)
        if (lc->linears[i].quantized) status = awq_close_window(lc, &lc->linears[i]);
    return status;
}

/* Step 5's statistic for routed experts with quantized inputs: per expert role, each input
 * channel's amax (in bf16) maximized over the layer's experts that saw tokens (ModelOpt syncs
 * the experts' per-channel input amax before smoothing); out[r] NULL when none did. */
static strata_status experts_channel_amax(layer_calib *lc, float *out[EXPERT_ROLES])
{
    if (lc->scheme->input == INPUT_NONE) return STRATA_OK;
    for (size_t i = 0; i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        int r = 0;
        while (r < EXPERT_ROLES && c->desc->role != EXPERT_ROLE[r]) r++;
        if (!c->quantized || c->desc->expert < 0 || r == EXPERT_ROLES || !c->channel_range || c->tokens == 0) continue;
        int64_t K = c->desc->n_in;
        if (!out[r]) {
            if (!(out[r] = calloc((size_t)K, sizeof *out[r])))
                return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the experts' input amax");
        }
        for (int64_t k = 0; k < K; k++) {
            float v = bf16_round(linear_calib_channel_amax(c, k));
            out[r][k] = v > out[r][k] ? v : out[r][k];
        }
    }
    return STRATA_OK;
}

/* Step 4: ModelOpt's export of an MoE block under AWQ. Per expert role still holding its
 * scale (NVFP4's down_proj went into up_proj's rows), the experts' bf16 mean of their p (an
 * expert no token reached counts with its ones), each weight multiplied by own / mean; then
 * each expert's gate and up take bf16((gate's mean + up's mean) / 2), their weights
 * multiplied by mean / that, and the larger of their input amax. */
static strata_status average_experts(layer_calib *lc)
{
    int E = n_experts(lc);
    float *mean[EXPERT_ROLES] = {NULL};
    strata_status status = STRATA_OK;
    for (int r = 0; status == STRATA_OK && r < EXPERT_ROLES; r++) {
        linear_calib *first = NULL;
        for (int e = 0; e < E && !first; e++) first = expert_role(lc, e, EXPERT_ROLE[r]);
        if (!first || first->smooth.in_rows) continue;
        int64_t K = first->desc->n_in;
        float *sum = calloc((size_t)K, sizeof *sum);
        int count = 0;
        if (!sum) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the experts' AWQ scales");
        for (int e = 0; status == STRATA_OK && e < E; e++) { /* in expert order, in float */
            linear_calib *c = expert_role(lc, e, EXPERT_ROLE[r]);
            if (!c) continue;
            for (int64_t k = 0; k < K; k++) sum[k] += c->smooth.own[k];
            count++;
        }
        for (int64_t k = 0; status == STRATA_OK && k < K; k++) sum[k] = in_dtype(sum[k] / (float)count, first->values_dtype);
        mean[r] = sum;
        for (int e = 0; status == STRATA_OK && e < E; e++) {
            linear_calib *c = expert_role(lc, e, EXPERT_ROLE[r]);
            if (!c) continue;
            if (!(c->smooth.experts = vector(K, c->desc->name))) status = STRATA_ERR_OUT_OF_MEMORY;
            if (status == STRATA_OK) {
                memcpy(c->smooth.experts, sum, (size_t)K * sizeof *sum);
                memcpy(c->smooth.input, sum, (size_t)K * sizeof *sum);
            }
        }
    }
    /* gate and up: one input */
    for (int e = 0; status == STRATA_OK && mean[0] && mean[1] && e < E; e++) {
        linear_calib *gate = expert_role(lc, e, STRATA_LINEAR_GATE), *up = expert_role(lc, e, STRATA_LINEAR_UP);
        if (!gate || !up) continue;
        for (int64_t k = 0; k < gate->desc->n_in; k++) {
            float both = in_dtype((mean[0][k] + mean[1][k]) / 2.0f, gate->values_dtype);
            gate->smooth.input[k] = up->smooth.input[k] = both;
        }
        float amax = gate->input_amax > up->input_amax ? gate->input_amax : up->input_amax;
        gate->input_amax = up->input_amax = amax;
    }
    for (int r = 0; r < EXPERT_ROLES; r++) free(mean[r]);
    return status;
}

/* Step 4's INT4 amax: ModelOpt's export gives each expert's gate and up the elementwise
 * maximum of their block amax (sync_moe_gate_up_amax), after the weights' smoothing; kept
 * as each one's floor on its blocks' amax (linear_calib.amax_floor). */
static strata_status share_expert_block_amax(layer_calib *lc, const strata_model *model)
{
    if (lc->scheme->weight_format != STRATA_FORMAT_INT4_GROUP) return STRATA_OK;
    int E = n_experts(lc);
    strata_status status = STRATA_OK;
    float *w = NULL;
    for (int e = 0; status == STRATA_OK && e < E; e++) {
        linear_calib *pair[2] = {expert_role(lc, e, STRATA_LINEAR_GATE), expert_role(lc, e, STRATA_LINEAR_UP)};
        if (!pair[0] || !pair[1] || pair[0]->desc->n_out != pair[1]->desc->n_out) continue;
        if (!w && !(w = layer_calib_weight_scratch(lc))) return STRATA_ERR_OUT_OF_MEMORY;
        for (int m = 0; status == STRATA_OK && m < 2; m++) {
            linear_calib *c = pair[m];
            strata_quant_params qp = scheme_weight_params(c->scheme, c->convention, 0);
            strata_quant_shape shape;
            status = strata_quant_shape_get(&qp, c->desc->n_out, c->desc->n_in, &shape);
            int64_t blocks = shape.scale_rows * shape.scale_cols;
            free(c->amax_floor);
            c->amax_floor = NULL;
            if (status == STRATA_OK && !(c->amax_floor = malloc((size_t)blocks * sizeof *c->amax_floor)))
                status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the block amax of %s", c->desc->name);
            c->n_amax_floor = blocks;
            if (status == STRATA_OK) status = linear_calib_weight_f32(model, c, w);
            if (status == STRATA_OK)
                status = quant_block_amax(&qp, STRATA_DTYPE_F32, w, c->desc->n_out, c->desc->n_in, c->amax_floor);
            linear_weight_release_pages(model, c->desc);
        }
        for (int64_t b = 0; status == STRATA_OK && b < pair[0]->n_amax_floor; b++) {
            float m = pair[0]->amax_floor[b] > pair[1]->amax_floor[b] ? pair[0]->amax_floor[b] : pair[1]->amax_floor[b];
            pair[0]->amax_floor[b] = pair[1]->amax_floor[b] = m;
        }
    }
    free(w);
    return status;
}

strata_status awq_gather_windows(layer_calib *lc, const calib_collective *coll, int64_t max_share)
{
    if (coll->n_ranks <= 1) return STRATA_OK;
    size_t ranks = (size_t)coll->n_ranks;
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        if (!c->quantized) continue;
        status = awq_close_window(lc, c);
        if (status != STRATA_OK) break;
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
    strata_status status = awq_close_windows(lc);
    float *experts_amax[EXPERT_ROLES] = {NULL};
    if (status == STRATA_OK) status = experts_channel_amax(lc, experts_amax);
    float *w = status == STRATA_OK ? layer_calib_weight_scratch(lc) : NULL;
    if (status == STRATA_OK && !w) status = STRATA_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        if (!c->quantized) continue;
        const calib_hessian *h = c->hessian >= 0 ? &lc->hessians[c->hessian] : NULL;
        const float *peers = NULL;
        for (int r = 0; r < EXPERT_ROLES; r++)
            if (c->desc->expert >= 0 && c->desc->role == EXPERT_ROLE[r]) peers = experts_amax[r];
        status = search_linear(c, h, model, peers, w);
    }
    free(w);
    for (int r = 0; r < EXPERT_ROLES; r++) free(experts_amax[r]);
    strata_family family = strata_model_arch(model)->family;
    if (status == STRATA_OK && lc->scheme->weight_format == STRATA_FORMAT_NVFP4 && folds_into_rows(family)) {
        status = fold_into_rows(find_role(lc, STRATA_LINEAR_DOWN), find_role(lc, STRATA_LINEAR_UP));
        if (status == STRATA_OK) status = fold_into_rows(find_role(lc, STRATA_LINEAR_O), find_role(lc, STRATA_LINEAR_V));
        for (int e = 0, E = n_experts(lc); status == STRATA_OK && e < E; e++)
            status = fold_into_rows(expert_role(lc, e, STRATA_LINEAR_DOWN), expert_role(lc, e, STRATA_LINEAR_UP));
    }
    if (status == STRATA_OK) status = average_experts(lc);
    if (status == STRATA_OK) status = share_expert_block_amax(lc, model);
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        int group = lc->linears[i].fused_group;
        bool first = group >= 0 && lc->linears[i].desc->expert < 0;
        for (size_t j = 0; j < i && first; j++) first = lc->linears[j].fused_group != group;
        if (first) average_group(lc, group);
    }
    if (status != STRATA_OK) return strata_fail_context(status, "AWQ on layer %d", lc->index);
    return STRATA_OK;
}
