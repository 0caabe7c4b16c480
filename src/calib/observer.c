/*
 * observer.c — the per-layer calibration state and the hooks that fill and use it (see
 * layer_calib.h).
 *
 * Observation keeps, per linear, the running max |x| of its inputs, the tokens that
 * reached it, and the first CALIB_SAMPLE_ROWS input rows (to measure the linear's output
 * error later); with an FP8 KV cache also max |k| after RoPE and max |v|; with GPTQ the
 * Hessians (hessian.c). Maxima do not depend on the order tokens arrive in, so chunking
 * and threads do not change them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/layer_calib.h"
#include "core/error.h"
#include "forward/layer_weights.h"
#include "kernels/cpu.h"
#include "kernels/minifloat.h"
#include "quant/format.h"
#include "quant/recipe.h"

static int fused_group_of(const strata_linear *l, int n_experts)
{
    switch (l->role) {
    case STRATA_LINEAR_Q:
    case STRATA_LINEAR_K:
    case STRATA_LINEAR_V:
    case STRATA_LINEAR_Q_A:  /* MLA: q_a_proj (or q_proj) and kv_a_proj_with_mqa read the normed input */
    case STRATA_LINEAR_KV_A: return 0;
    case STRATA_LINEAR_GATE:
    case STRATA_LINEAR_UP:
        if (l->expert >= 0) return 2 + l->expert;
        return l->shared_expert ? 2 + n_experts : 1;
    default: return -1;
    }
}

strata_status layer_calib_init(layer_calib *lc, const strata_layer *layer, const layer_calib_options *options)
{
    *lc = (layer_calib){.index = layer->index, .layer = layer, .scheme = options->scheme, .kv_cache = options->kv_cache,
                        .sample_inputs = options->sample_inputs};
    quant_recipe recipe = {.arch = options->arch, .scheme = options->scheme, .attention = options->attention,
                           .exclude = options->exclude, .n_exclude = options->n_exclude};
    lc->linears = calloc(layer->n_linears ? layer->n_linears : 1, sizeof *lc->linears);
    if (!lc->linears) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for layer %d", layer->index);
    int n_experts = 0;
    for (size_t i = 0; i < layer->n_linears; i++)
        if (layer->linears[i].expert + 1 > n_experts) n_experts = layer->linears[i].expert + 1;
    for (size_t i = 0; i < layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        c->desc = &layer->linears[i];
        c->scheme = recipe_linear_scheme(&recipe, c->desc);
        c->quantized = c->scheme != NULL;
        if (c->scheme) c->sharing = scheme_sharing(c->scheme, options->convention, options->fuse_fp8_scales);
        c->convention = options->convention;
        c->fused_group = fused_group_of(c->desc, n_experts);
        c->hessian = -1;
        c->awq_alpha = -1;
    }
    /* A fused group reads one input: its first quantized linear keeps the samples for all. */
    for (size_t i = 0; i < layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        c->sample_owner = (int)i;
        for (size_t j = 0; j < i && c->fused_group >= 0; j++)
            if (lc->linears[j].fused_group == c->fused_group && lc->linears[j].quantized) {
                c->sample_owner = (int)j;
                break;
            }
    }
    return STRATA_OK;
}

void layer_calib_free_samples(layer_calib *lc)
{
    for (size_t i = 0; lc->linears && i < lc->layer->n_linears; i++) {
        free(lc->linears[i].sample);
        free(lc->linears[i].sample_tokens);
        lc->linears[i].sample = NULL;
        lc->linears[i].sample_tokens = NULL;
    }
}

bool layer_calib_quantizes_inputs(const layer_calib *lc)
{
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        if (lc->linears[i].quantized && lc->linears[i].scheme->input != INPUT_NONE) return true;
    return false;
}

strata_quant_shape linear_calib_quantized_shape(const linear_calib *c, const scheme_info *scheme)
{
    strata_quant_params p = scheme_weight_params(scheme, c->convention, c->weight_amax);
    strata_quant_shape shape = {0};
    if (strata_quant_shape_get(&p, c->desc->n_out, c->desc->n_in, &shape) != STRATA_OK) strata_error_clear();
    return shape;
}

strata_status linear_calib_alloc_quantized(linear_calib *c, const scheme_info *scheme)
{
    linear_calib_free_quantized(c);
    strata_quant_params p = scheme_weight_params(scheme, c->convention, c->weight_amax);
    strata_quant_shape shape;
    strata_status status = strata_quant_shape_get(&p, c->desc->n_out, c->desc->n_in, &shape);
    if (status == STRATA_OK && !quant_qtensor_alloc(&shape, &c->weight_q))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the quantized weight of %s", c->desc->name);
    return status;
}

void linear_calib_free_quantized(linear_calib *c)
{
    quant_qtensor_free(&c->weight_q);
    c->spill = NULL;
}

void layer_calib_release_quantized(layer_calib *lc)
{
    for (size_t i = 0; lc->linears && i < lc->layer->n_linears; i++) linear_calib_free_quantized(&lc->linears[i]);
}

void layer_calib_free(layer_calib *lc)
{
    if (!lc || !lc->linears) return;
    for (size_t i = 0; i < lc->layer->n_linears; i++) {
        free(lc->linears[i].sample);
        free(lc->linears[i].sample_tokens);
        free(lc->linears[i].clip);
        free(lc->linears[i].amax_floor);
        linear_calib_free_smoothing(&lc->linears[i]);
        linear_calib_free_quantized(&lc->linears[i]);
    }
    layer_hessians_free(lc);
    free(lc->linears);
    lc->linears = NULL;
}

linear_calib *layer_calib_find(layer_calib *lc, const strata_linear *linear)
{
    ptrdiff_t i = linear - lc->layer->linears;
    if (i < 0 || (size_t)i >= lc->layer->n_linears) return NULL;
    return &lc->linears[i];
}

static bool wants_output(const layer_calib *lc, const strata_linear *l)
{
    return lc->kv_cache && linear_feeds_kv_cache(l);
}

/* The sample: the input rows of the CALIB_SAMPLE_ROWS earliest tokens (by index in the
 * run) that reached the linear. Rows arrive in token order per call and calls in chunk
 * order, except that with every expert on every token an expert gets a chunk's routed
 * rows, then its others: those are merged in. So the sample is the same rows however
 * the tokens were chunked or split over ranks (gathered in rank order, moe_sync.c). */
static strata_status keep_sample(linear_calib *c, const float *x, int64_t n, const int64_t *token_index,
                                 int64_t chunk_first_token)
{
    const int64_t cap = CALIB_SAMPLE_ROWS, K = c->desc->n_in;
    size_t row = (size_t)K * sizeof(float);
#define TOKEN(i) (chunk_first_token + (token_index ? token_index[i] : (i)))
    if (c->sample_rows == cap && TOKEN(0) > c->sample_tokens[cap - 1]) return STRATA_OK;
    if (!c->sample) {
        c->sample = malloc((size_t)cap * row);
        c->sample_tokens = malloc((size_t)cap * sizeof *c->sample_tokens);
        if (!c->sample || !c->sample_tokens)
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory sampling %s", c->desc->name);
    }
    if (c->sample_rows == 0 || TOKEN(0) > c->sample_tokens[c->sample_rows - 1]) { /* after every kept row */
        int64_t take = cap - c->sample_rows < n ? cap - c->sample_rows : n;
        memcpy(c->sample + c->sample_rows * K, x, (size_t)take * row);
        for (int64_t i = 0; i < take; i++) c->sample_tokens[c->sample_rows + i] = TOKEN(i);
        c->sample_rows += take;
        return STRATA_OK;
    }
    float *merged = malloc((size_t)cap * row);
    int64_t *tokens = malloc((size_t)cap * sizeof *tokens);
    if (!merged || !tokens) {
        free(merged);
        free(tokens);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory sampling %s", c->desc->name);
    }
    int64_t m = 0, a = 0, b = 0;
    for (; m < cap && (a < c->sample_rows || b < n); m++) {
        bool kept = b == n || (a < c->sample_rows && c->sample_tokens[a] < TOKEN(b));
        memcpy(merged + m * K, kept ? c->sample + a * K : x + b * K, row);
        tokens[m] = kept ? c->sample_tokens[a++] : TOKEN(b++);
    }
#undef TOKEN
    free(c->sample);
    free(c->sample_tokens);
    c->sample = merged;
    c->sample_tokens = tokens;
    c->sample_rows = m;
    return STRATA_OK;
}

/* Each input channel's least and largest x, for smoothing (AWQ's smoothed input amax,
 * SmoothQuant's ranges): rounding is monotonic, so these are also the bf16-rounded inputs'. */
strata_status linear_calib_alloc_channel_range(linear_calib *c)
{
    int64_t K = c->desc->n_in;
    if (c->channel_range) return STRATA_OK;
    if (!(c->channel_range = malloc(2 * (size_t)K * sizeof *c->channel_range)))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the channel ranges of %s", c->desc->name);
    for (int64_t k = 0; k < K; k++) {
        c->channel_range[k] = INFINITY;
        c->channel_range[K + k] = -INFINITY;
    }
    return STRATA_OK;
}

static strata_status observe_channels(linear_calib *c, const float *x, int64_t n_tokens)
{
    int64_t K = c->desc->n_in;
    strata_status status = linear_calib_alloc_channel_range(c);
    if (status != STRATA_OK) return status;
    float *least = c->channel_range, *largest = c->channel_range + K;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t k = 0; k < K; k++) {
            float v = x[t * K + k];
            if (v < least[k]) least[k] = v;
            if (v > largest[k]) largest[k] = v;
        }
    return STRATA_OK;
}

/* Room for one more window mean of c. */
static strata_status awq_reserve_window(linear_calib *c)
{
    int64_t K = c->desc->n_in;
    if (c->awq_windows < c->awq_window_capacity) return STRATA_OK;
    int64_t capacity = c->awq_window_capacity ? 2 * c->awq_window_capacity : 4;
    float *means = realloc(c->awq_window_means, (size_t)(capacity * K) * sizeof *means);
    if (!means) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the AWQ statistics of %s", c->desc->name);
    c->awq_window_means = means;
    c->awq_window_capacity = capacity;
    return STRATA_OK;
}

strata_status awq_close_window(const layer_calib *lc, linear_calib *c)
{
    if (c->awq_open_count == 0) return STRATA_OK;
    int64_t K = c->desc->n_in;
    strata_status status = awq_reserve_window(c);
    if (status != STRATA_OK) return status;
    float *means = c->awq_window_means + c->awq_windows * K;
    for (int64_t k = 0; k < K; k++) {
        float mean = (float)(c->awq_window_sum[k] / (double)c->awq_open_count);
        means[k] = lc->inputs_bf16 ? bf16_round(mean) : mean;
    }
    c->awq_windows++;
    c->awq_open_count = 0;
    return STRATA_OK;
}

/* AWQ's statistics: per calibration window that reached the linear, the mean |x| of each
 * channel over the window's tokens it received (an expert: those routed to it), in bf16 as
 * ModelOpt's bf16 mean gives it, kept in window order. Rows arrive in token order, a window's
 * possibly over several calls; a window is closed when the next one starts (or by
 * awq_close_window before the decision). */
static strata_status observe_awq(layer_calib *lc, linear_calib *c, const float *x, int64_t n_tokens,
                                 const int64_t *token_index, int64_t chunk_first_token)
{
    int64_t K = c->desc->n_in;
    if (lc->hessian_seq_len <= 0)
        return strata_fail(STRATA_ERR_INTERNAL, "AWQ statistics of %s without calibration windows", c->desc->name);
    if (!c->awq_window_sum && !(c->awq_window_sum = malloc((size_t)K * sizeof *c->awq_window_sum)))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the AWQ statistics of %s", c->desc->name);
    double *sum = c->awq_window_sum;
    strata_status status = STRATA_OK;
    for (int64_t t = 0; status == STRATA_OK && t < n_tokens; t++) {
        int64_t window = layer_calib_row_window(lc, token_index, chunk_first_token, t);
        if (c->awq_open_count > 0 && window != c->awq_open_window) status = awq_close_window(lc, c);
        if (c->awq_open_count == 0) {
            c->awq_open_window = window;
            for (int64_t k = 0; k < K; k++) sum[k] = 0;
        }
        for (int64_t k = 0; k < K; k++) {
            float v = fabsf(x[t * K + k]);
            sum[k] += lc->inputs_bf16 ? bf16_round(v) : v;
        }
        c->awq_open_count++;
    }
    return status;
}

/* llm-compressor's AWQ: the inputs a mapping's parent reruns on, kept as the linear consumes
 * them (rounded to bf16 when it runs in bf16), at their tokens' rows. */
static strata_status keep_awq_inputs(const layer_calib *lc, linear_calib *c, const float *x, int64_t n_tokens,
                                     const int64_t *token_index, int64_t chunk_first_token)
{
    int64_t K = c->desc->n_in, row0 = chunk_first_token - lc->awq_first_token;
    if (token_index || row0 < 0 || row0 + n_tokens > lc->awq_rows)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "AWQ inputs of %s: only the run's windows of dense layers",
                           c->desc->name);
    if (lc->inputs_bf16) gemm_round_to_bf16(x, (uint16_t *)c->awq_inputs + row0 * K, (size_t)(n_tokens * K));
    else memcpy((float *)c->awq_inputs + row0 * K, x, (size_t)(n_tokens * K) * sizeof *x);
    return STRATA_OK;
}

static strata_status observe_input(void *ctx, const strata_linear *linear, const float *x, int64_t n_tokens,
                                   const int64_t *token_index, const float *weights, int64_t chunk_first_token)
{
    (void)weights;
    layer_calib *lc = ctx;
    linear_calib *c = layer_calib_find(lc, linear);
    if (!c || n_tokens == 0) return STRATA_OK;
    size_t n = (size_t)n_tokens * (size_t)linear->n_in;
    float amax = 0;
    if (!kernels()->block_absmax(x, n, n, &amax))
        return strata_fail(STRATA_ERR_FORMAT, "the input of %s holds NaN or Inf (calibration tokens from %lld)",
                           linear->name, (long long)chunk_first_token);
    if (amax > c->input_amax) c->input_amax = amax;
    c->tokens += n_tokens;
    /* Only while the layer's Hessians exist (GPTQ on a weight-only scheme, AWQ). */
    strata_status status = layer_hessians_add(lc, c, x, n_tokens, token_index, chunk_first_token);
    if (status == STRATA_OK && lc->observe_channels && c->quantized) status = observe_channels(c, x, n_tokens);
    if (status == STRATA_OK && lc->awq && c->quantized) status = observe_awq(lc, c, x, n_tokens, token_index, chunk_first_token);
    if (status == STRATA_OK && c->awq_inputs)
        status = keep_awq_inputs(lc, c, x, n_tokens, token_index, chunk_first_token);
    if (status != STRATA_OK) return status;
    if (lc->sample_inputs && c->quantized && c->sample_owner == (int)(c - lc->linears))
        return keep_sample(c, x, n_tokens, token_index, chunk_first_token);
    return STRATA_OK;
}

static strata_status observe_cache(layer_calib *lc, const strata_linear *linear, const float *y, int64_t n_tokens)
{
    linear_calib *c = layer_calib_find(lc, linear);
    if (!c || !wants_output(lc, linear) || n_tokens == 0) return STRATA_OK;
    size_t n = (size_t)n_tokens * (size_t)linear->n_out;
    float amax = 0;
    if (!kernels()->block_absmax(y, n, n, &amax))
        return strata_fail(STRATA_ERR_FORMAT, "the %s attention caches (%s) hold NaN or Inf",
                           linear->role == STRATA_LINEAR_V ? "values" : "keys", linear->name);
    if (amax > c->output_amax) c->output_amax = amax;
    return STRATA_OK;
}

/* As ModelOpt's k_bmm / v_bmm quantizers: keys after RoPE, values as projected; for MLA
 * the latent cache entries (v_proj NULL). */
static strata_status observe_kv(void *ctx, const strata_linear *k_proj, const float *k, const strata_linear *v_proj,
                                const float *v, int64_t n_tokens)
{
    strata_status status = observe_cache(ctx, k_proj, k, n_tokens);
    return status == STRATA_OK && v_proj ? observe_cache(ctx, v_proj, v, n_tokens) : status;
}

forward_hooks calib_observer_hooks(layer_calib *lc)
{
    return (forward_hooks){.ctx = lc, .observe_input = observe_input, .observe_kv = observe_kv};
}

static strata_status quantize_input(void *ctx, const strata_linear *linear, float *x, int64_t n_tokens)
{
    layer_calib *lc = ctx;
    linear_calib *c = layer_calib_find(lc, linear);
    if (!c || !c->quantized || n_tokens == 0) return STRATA_OK;
    /* Smoothing: the input divided by s, as the folded norm or pre_quant_scale does it */
    linear_calib_smooth_input(c, x, n_tokens);
    strata_status status = scheme_fake_quantize_input(c->scheme, c->input_amax, x, n_tokens, linear->n_in);
    if (status != STRATA_OK) return strata_fail_context(status, "quantizing the input of %s", linear->name);
    return STRATA_OK;
}

/* The weight as the engine decided and quantized it (GPTQ's result, or the weight with its
 * clip), from the codes held in memory or spilled, in the GEMM's precision: no fp32 copy of
 * the weight for a bf16 GEMM. *written stays false when nothing holds them. */
static strata_status held_weight(void *ctx, const strata_linear *linear, gemm_precision precision, void *w,
                                 bool *written)
{
    *written = false;
    linear_calib *c = layer_calib_find(ctx, linear);
    if (!c || !c->quantized || (!c->weight_q.codes && !c->spill)) return STRATA_OK;
    strata_quant_params p = scheme_weight_params(c->scheme, c->convention, c->weight_amax);
    p.values_dtype = c->values_dtype;
    strata_qtensor fetched = {0};
    const strata_qtensor *q = NULL;
    strata_status status = linear_calib_quantized(c, &fetched, &q);
    if (status == STRATA_OK)
        status = precision == GEMM_BF16 ? quant_dequantize_bf16(&p, q, linear->n_out, linear->n_in, w)
                                        : strata_dequantize(&p, q, linear->n_out, linear->n_in, w);
    quant_qtensor_free(&fetched);
    if (status != STRATA_OK) return strata_fail_context(status, "quantizing %s", linear->weight);
    *written = true;
    return STRATA_OK;
}

/* held_weight in fp32; quantized here only when nothing holds the codes (a linear restored
 * from a checkpoint without GPTQ, a grouped layer's expert). */
static strata_status quantize_weight(void *ctx, const strata_linear *linear, float *w)
{
    bool written = false;
    strata_status status = held_weight(ctx, linear, GEMM_F32, w, &written);
    if (status != STRATA_OK || written) return status;
    const linear_calib *c = layer_calib_find(ctx, linear);
    if (!c || !c->quantized) return STRATA_OK;
    strata_quant_params p = scheme_weight_params(c->scheme, c->convention, c->weight_amax);
    p.values_dtype = c->values_dtype;
    linear_calib_smooth_weight(c, c->values_dtype, w);
    quant_block_adjust adjust = linear_calib_block_adjust(c);
    status = quant_fake_adjusted(&p, STRATA_DTYPE_F32, w, linear->n_out, linear->n_in, &adjust, w);
    if (status != STRATA_OK) return strata_fail_context(status, "quantizing %s", linear->weight);
    return STRATA_OK;
}

/* The Hessian pass of a scheme that quantizes inputs: each Hessian accumulates its input
 * as the deployed engine quantizes it, with the calibrated amax (ModelOpt's GPTQ does
 * the same), and the layer runs with quantized inputs and unquantized weights. */
static strata_status observe_quantized_input(void *ctx, const strata_linear *linear, const float *x, int64_t n_tokens,
                                             const int64_t *token_index, const float *weights,
                                             int64_t chunk_first_token)
{
    (void)weights;
    layer_calib *lc = ctx;
    linear_calib *c = layer_calib_find(lc, linear);
    if (!c || !layer_hessians_accumulates(lc, c) || n_tokens == 0) return STRATA_OK;
    size_t n = (size_t)n_tokens * (size_t)linear->n_in;
    float *xq = malloc(n * sizeof *xq);
    if (!xq) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the inputs of %s", linear->name);
    memcpy(xq, x, n * sizeof *xq);
    linear_calib_smooth_input(c, xq, n_tokens);
    strata_status status = scheme_fake_quantize_input(c->scheme, c->input_amax, xq, n_tokens, linear->n_in);
    if (status == STRATA_OK) status = layer_hessians_add(lc, c, xq, n_tokens, token_index, chunk_first_token);
    free(xq);
    return status;
}

forward_hooks calib_hessian_hooks(layer_calib *lc)
{
    return (forward_hooks){.ctx = lc, .observe_input = observe_quantized_input, .quantize_input = quantize_input};
}

static strata_status smooth_weight(void *ctx, const strata_linear *linear, float *w)
{
    /* An unquantized linear (an MoE router AWQ scaled) reads its input as it was: it keeps
     * its weight too, until the export writes both scaled */
    const linear_calib *c = layer_calib_find(ctx, linear);
    if (c && c->quantized) linear_calib_smooth_weight(c, c->values_dtype, w);
    return STRATA_OK;
}

forward_hooks calib_smoothed_hessian_hooks(layer_calib *lc)
{
    forward_hooks hooks = calib_hessian_hooks(lc);
    hooks.quantize_weight = smooth_weight;
    return hooks;
}

static strata_status observe_gram(void *ctx, const strata_linear *linear, const float *x, int64_t n_tokens,
                                  const int64_t *token_index, const float *weights, int64_t chunk_first_token)
{
    (void)weights;
    layer_calib *lc = ctx;
    linear_calib *c = layer_calib_find(lc, linear);
    return c ? layer_hessians_add(lc, c, x, n_tokens, token_index, chunk_first_token) : STRATA_OK;
}

forward_hooks calib_gram_hooks(layer_calib *lc)
{
    return (forward_hooks){.ctx = lc, .observe_input = observe_gram};
}

forward_hooks calib_quantizer_hooks(layer_calib *lc)
{
    return (forward_hooks){.ctx = lc, .quantize_input = quantize_input, .quantize_weight = quantize_weight,
                           .held_weight = held_weight};
}

void layer_calib_round_observed_to_bf16(layer_calib *lc)
{
    for (size_t i = 0; i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        c->input_amax = bf16_round(c->input_amax);
        c->output_amax = bf16_round(c->output_amax);
    }
}

float *layer_calib_weight_scratch(const layer_calib *lc)
{
    const strata_layer *layer = lc->layer;
    size_t widest = 1;
    for (size_t i = 0; i < layer->n_linears; i++) {
        size_t n = (size_t)layer->linears[i].n_out * (size_t)layer->linears[i].n_in;
        widest = n > widest ? n : widest;
    }
    float *w = malloc(widest * sizeof *w);
    if (!w) strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading the weights of layer %d", lc->index);
    return w;
}

strata_status layer_calib_weight_amax(layer_calib *lc, const strata_model *model)
{
    const strata_layer *layer = lc->layer;
    float *w = layer_calib_weight_scratch(lc);
    if (!w) return STRATA_ERR_OUT_OF_MEMORY;
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        if (!c->quantized) continue;
        c->values_dtype = linear_values_dtype(model, c->desc);
        status = linear_calib_weight_f32(model, c, w);
        size_t n = (size_t)c->desc->n_out * (size_t)c->desc->n_in;
        if (status == STRATA_OK) kernels()->block_absmax(w, n, n, &c->weight_amax);
        linear_weight_release_pages(model, c->desc); /* read again when decided */
    }
    free(w);
    if (status != STRATA_OK) return status;
    /* Fused groups take their members' maximum (vLLM requires one scale per fused GEMM). */
    for (size_t i = 0; i < layer->n_linears; i++) {
        linear_calib *a = &lc->linears[i];
        if (!a->quantized || a->fused_group < 0 || a->sharing == SHARE_NONE) continue;
        if (a->sharing == SHARE_EXPERT_GATE_UP && a->desc->expert < 0) continue;
        for (size_t j = 0; j < layer->n_linears; j++) {
            linear_calib *b = &lc->linears[j];
            if (b->quantized && b->scheme == a->scheme && b->fused_group == a->fused_group &&
                b->weight_amax > a->weight_amax)
                a->weight_amax = b->weight_amax;
        }
    }
    return STRATA_OK;
}
