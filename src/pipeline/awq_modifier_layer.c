/*
 * awq_modifier_layer.c — llm-compressor's AWQModifier on one decoder layer (`--algo awq
 * --format compressed-tensors`; docs/AWQ.md, calib/awq_modifier.h for the arithmetic).
 *
 * Its mappings for Llama, Mistral and Qwen2/3, in its order:
 *
 *   smooth layer               balance linears   parent (where the loss is measured)
 *   input_layernorm            q, k, v           self_attn (o_proj's output)
 *   v_proj                     o                 o_proj      (only when v's outputs are o's
 *                                                             inputs: not under GQA)
 *   post_attention_layernorm   gate, up          mlp (down_proj's output)
 *   up_proj                    down              down_proj
 *
 * Before the calibration pass the first balance linear of each mapping is told to keep its
 * inputs (the parent's inputs); afterwards each mapping searches its grid: the parent is
 * rerun on those inputs once with the layer's weights (y0) and once per grid point with the
 * balance linears' trial weights, and the point with the least loss gives s. The balance
 * linears' columns are multiplied by s and the smooth layer divided by it (the norm's
 * weight, or v_proj's / up_proj's rows), which input_smoothing records (smoothing.c applies
 * it to the weights, the export to the norms). Every mapping reads the calibration pass's
 * inputs and the model's weights, so their order does not change the result; v_proj and
 * up_proj get their columns before their rows, as llm-compressor applies them.
 *
 * A mapping with an excluded member is left as it is: strata copies unquantized weights
 * unchanged, so it cannot scale an excluded linear's columns as llm-compressor would; nor
 * v_proj -> o_proj when v_proj has a bias (Qwen2 with as many KV heads as heads), whose bias
 * llm-compressor divides too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/values_dtype.h"
#include "core/big_buffer.h"
#include "core/clock.h"
#include "core/error.h"
#include "kernels/minifloat.h"
#include "pipeline/run.h"

typedef enum parent_kind { PARENT_ATTENTION, PARENT_MLP, PARENT_LINEAR } parent_kind;

typedef struct mapping {
    const char *smooth_name;        /* for messages */
    bool smooth_is_linear;          /* v_proj / up_proj (role smooth_role), else a norm */
    strata_linear_role smooth_role;
    strata_linear_role balance[3];
    int n_balance;
    parent_kind parent;
} mapping;

static const mapping MAPPINGS[] = {
    {"input_layernorm", false, 0, {STRATA_LINEAR_Q, STRATA_LINEAR_K, STRATA_LINEAR_V}, 3, PARENT_ATTENTION},
    {"v_proj", true, STRATA_LINEAR_V, {STRATA_LINEAR_O}, 1, PARENT_LINEAR},
    {"post_attention_layernorm", false, 0, {STRATA_LINEAR_GATE, STRATA_LINEAR_UP}, 2, PARENT_MLP},
    {"up_proj", true, STRATA_LINEAR_UP, {STRATA_LINEAR_DOWN}, 1, PARENT_LINEAR},
};
enum { N_MAPPINGS = sizeof MAPPINGS / sizeof MAPPINGS[0] };

/* A mapping resolved in one layer. */
typedef struct resolved {
    const mapping *m;
    linear_calib *balance[3];
    linear_calib *smooth;           /* the smooth linear, or NULL for a norm */
} resolved;

static linear_calib *find_role(layer_calib *lc, strata_linear_role role)
{
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        if (lc->linears[i].desc->role == role && lc->linears[i].desc->expert < 0) return &lc->linears[i];
    return NULL;
}

/* Whether mapping m applies in the layer: every member present and quantized, and (v_proj ->
 * o_proj) the shapes chained. Logs why not, once (layer 0), for the reasons a model has. */
static bool resolve(layer_calib *lc, const mapping *m, bool quiet, resolved *out)
{
    *out = (resolved){.m = m};
    for (int b = 0; b < m->n_balance; b++)
        if (!(out->balance[b] = find_role(lc, m->balance[b]))) return false;
    if (m->smooth_is_linear && !(out->smooth = find_role(lc, m->smooth_role))) return false;
    if (out->smooth && out->smooth->desc->n_out != out->balance[0]->desc->n_in) {
        if (lc->index == 0 && !quiet)
            strata_log(STRATA_LOG_INFO, "awq: %s -> %s skipped, as llm-compressor skips it: %s's %lld outputs are not "
                       "%s's %lld inputs (grouped-query attention)", m->smooth_name, out->balance[0]->desc->name,
                       m->smooth_name, (long long)out->smooth->desc->n_out, out->balance[0]->desc->name,
                       (long long)out->balance[0]->desc->n_in);
        return false;
    }
    if (out->smooth && out->smooth->desc->bias) {
        /* llm-compressor divides the bias too; strata's forward and export keep biases as read */
        if (lc->index == 0 && !quiet)
            strata_log(STRATA_LOG_INFO, "awq: %s -> %s skipped: %s has a bias, which strata does not rescale",
                       m->smooth_name, out->balance[0]->desc->name, out->smooth->desc->name);
        return false;
    }
    for (int b = 0; b <= m->n_balance; b++) {
        linear_calib *c = b < m->n_balance ? out->balance[b] : out->smooth;
        if (c && !c->quantized) {
            if (!quiet)
                strata_log(STRATA_LOG_INFO, "awq: %s is not quantized; %s -> %s is left unscaled", c->desc->name,
                       m->smooth_name, out->balance[0]->desc->name);
            return false;
        }
    }
    return true;
}

int awq_modifier_mappings(layer_calib *lc)
{
    int n = 0;
    for (int i = 0; i < N_MAPPINGS; i++) {
        resolved map;
        n += resolve(lc, &MAPPINGS[i], true, &map);
    }
    return n;
}

strata_status awq_modifier_prepare(run *r, layer_calib *lc)
{
    lc->awq_first_token = r->first_window * r->params->seq_len;
    lc->awq_rows = r->params->n_samples * r->params->seq_len;
    size_t element = r->precision == GEMM_BF16 ? sizeof(uint16_t) : sizeof(float);
    for (int i = 0; i < N_MAPPINGS; i++) {
        resolved map;
        if (!resolve(lc, &MAPPINGS[i], false, &map)) continue;
        linear_calib *c = map.balance[0];
        c->awq_inputs = big_buffer_alloc((size_t)lc->awq_rows * (size_t)c->desc->n_in * element);
        if (!c->awq_inputs)
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory keeping the %lld calibration inputs of %s "
                               "for AWQ", (long long)lc->awq_rows, c->desc->name);
    }
    return STRATA_OK;
}

/* Rows [row0, row0 + n) of a kept input as fp32 (x (n, K)). */
static void kept_rows(const layer_calib *lc, const linear_calib *c, int64_t row0, int64_t n, float *x)
{
    int64_t K = c->desc->n_in;
    if (!lc->inputs_bf16) {
        memcpy(x, (const float *)c->awq_inputs + row0 * K, (size_t)(n * K) * sizeof *x);
        return;
    }
    const uint16_t *b = (const uint16_t *)c->awq_inputs + row0 * K;
    for (int64_t i = 0; i < n * K; i++) x[i] = f32_from_bits((uint32_t)b[i] << 16);
}

/* The layer's weights with some linears replaced (a grid point's trial weights). */
static void substitute(layer_weights *lw, const layer_linear *from, layer_linear *to)
{
    layer_linear **slots[] = {&lw->q, &lw->k, &lw->v, &lw->o, &lw->gate, &lw->up, &lw->down};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (*slots[i] == from) *slots[i] = to;
}

/* What one mapping's search works with. */
typedef struct search {
    run *r;
    layer_calib *lc;
    const resolved *map;
    decoder_scratch *ds;
    int64_t K, tokens, seq, chunk_rows, out_width;
    strata_dtype dtype;
    float *x;                       /* (chunk_rows, K) one chunk of the parent's inputs */
    float *y;                       /* (chunk_rows, out_width) the parent's output */
    float *y0;                      /* (tokens, out_width) its output with the layer's weights */
} search;

/* The parent over every chunk of the kept inputs, with the weights in lw (a linear parent:
 * `linear`); loss NULL: its outputs kept as y0, else each window's loss term added (float32,
 * in window order) into *loss. */
static strata_status run_parent(search *s, const layer_weights *lw, const layer_linear *linear, float *loss)
{
    const parent_kind kind = s->map->m->parent;
    const linear_calib *first = s->map->balance[0];
    strata_status status = STRATA_OK;
    for (int64_t t0 = 0; status == STRATA_OK && t0 < s->tokens; t0 += s->chunk_rows) {
        int64_t n = s->tokens - t0 < s->chunk_rows ? s->tokens - t0 : s->chunk_rows;
        kept_rows(s->lc, first, t0, n, s->x);
        float *y = loss ? s->y : s->y0 + t0 * s->out_width;
        if (kind == PARENT_ATTENTION)
            status = decoder_attention_output(lw, s->ds, &s->r->rope, s->x, n / s->seq, s->seq, y);
        else if (kind == PARENT_MLP)
            status = decoder_mlp_output(lw, s->ds, s->x, n, y);
        else
            status = decoder_linear_output(s->ds, linear, s->x, n, y);
        progress_tokens(&s->r->progress, s->lc->index, n, false);
        for (int64_t w = 0; status == STRATA_OK && loss && w < n; w += s->seq) {
            int64_t at = w * s->out_width, len = s->seq * s->out_width;
            *loss += awq_modifier_window_loss(s->y0 + t0 * s->out_width + at, y + at, len, s->dtype);
        }
    }
    return status;
}

/* The activation statistic: each channel's mean |x| over every token, torch's float32 sums of
 * each window's column sums added in window order, divided by the token count. */
static strata_status activation_means(search *s, float *x_mean)
{
    memset(x_mean, 0, (size_t)s->K * sizeof *x_mean);
    strata_status status = STRATA_OK;
    for (int64_t t0 = 0; status == STRATA_OK && t0 < s->tokens; t0 += s->seq) {
        kept_rows(s->lc, s->map->balance[0], t0, s->seq, s->x);
        status = awq_modifier_add_column_sums(s->x, s->seq, s->K, x_mean);
    }
    for (int64_t k = 0; k < s->K; k++) x_mean[k] /= (float)s->tokens;
    return status;
}

/* The winner's s as each member's smoothing. */
static strata_status apply(const resolved *map, const double *s, int best, const double *losses)
{
    int64_t K = map->balance[0]->desc->n_in;
    for (int b = 0; b < map->m->n_balance; b++) {
        linear_calib *c = map->balance[b];
        input_smoothing *sm = &c->smooth;
        strata_status status = linear_calib_alloc_smoothing(c);
        if (status != STRATA_OK) return status;
        for (int64_t k = 0; k < K; k++) {
            sm->columns[k] = (float)s[k];
            sm->own[k] = sm->input[k] = 1.0f / (float)s[k];
        }
        if (map->smooth) sm->in_rows = true;
        else sm->in_norm = sm->norm_divided = true;
        c->awq_alpha = best;
        for (int i = 0; i < AWQ_MODIFIER_GRID; i++) c->awq_loss[i] = losses[i];
    }
    if (map->smooth) {
        input_smoothing *sm = &map->smooth->smooth;
        if (!(sm->rows = malloc((size_t)K * sizeof *sm->rows)))
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the AWQ scales of %s", map->smooth->desc->name);
        for (int64_t k = 0; k < K; k++) sm->rows[k] = (float)s[k];
        sm->rows_divided = true;
    }
    return STRATA_OK;
}

/* One mapping: statistics, y0, the grid, the winner applied. */
static strata_status search_mapping(search *s, layer_weights *lw)
{
    const resolved *map = s->map;
    const mapping *m = map->m;
    const strata_model *model = s->r->model;
    int64_t K = s->K;
    float *x_mean = malloc((size_t)K * sizeof *x_mean);
    double *w_mean = calloc((size_t)K, sizeof *w_mean), *scales = malloc((size_t)K * sizeof *scales);
    double *best_scales = malloc((size_t)K * sizeof *best_scales);
    float *w[3] = {0}, *trial = NULL;
    layer_linear trial_linears[3] = {0};
    strata_status status = x_mean && w_mean && scales && best_scales ? STRATA_OK
                           : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's statistics");
    if (status == STRATA_OK) status = activation_means(s, x_mean);
    /* The weight statistic, over the balance linears' rows; their weights kept for the trials */
    int64_t rows = 0, widest = 0;
    for (int b = 0; status == STRATA_OK && b < m->n_balance; b++) {
        const linear_calib *c = map->balance[b];
        const strata_linear *l = c->desc;
        widest = l->n_out > widest ? l->n_out : widest;
        if (!(w[b] = big_buffer_alloc((size_t)(l->n_out * K) * sizeof *w[b])))
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the weight of %s", l->name);
        if (status == STRATA_OK) status = linear_weight_f32(model, l, w[b]);
        linear_weight_release_pages(model, l);
        if (status == STRATA_OK)
            awq_modifier_add_weight_sums(w[b], l->n_out, K, c->scheme->group_size, linear_values_dtype(model, l), w_mean);
        rows += l->n_out;
    }
    for (int64_t k = 0; status == STRATA_OK && k < K; k++) w_mean[k] /= (double)rows;
    if (status == STRATA_OK && !(trial = big_buffer_alloc((size_t)(widest * K) * sizeof *trial)))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's trial weights");
    /* The trial linears: the originals' descriptions and biases, weights rewritten per point
     * (the GEMM reads a weight's values on every call) */
    for (int b = 0; status == STRATA_OK && b < m->n_balance; b++) {
        const strata_linear *l = map->balance[b]->desc;
        const layer_linear *original = lw->linears + (l - s->lc->layer->linears);
        trial_linears[b] = (layer_linear){.desc = l, .bias = original->bias};
        status = gemm_weight_alloc(s->r->precision, l->n_out, K, l->name, &trial_linears[b].weight);
    }
    const layer_linear *parent_linear = lw->linears + (map->balance[0]->desc - s->lc->layer->linears);
    if (status == STRATA_OK) status = run_parent(s, lw, parent_linear, NULL);
    /* llm-compressor skips a mapping whose parent's output is not finite */
    int64_t n_y0 = s->tokens * s->out_width;
    bool finite = true;
    for (int64_t i = 0; status == STRATA_OK && finite && i < n_y0; i++) finite = isfinite(s->y0[i]);
    if (!finite)
        strata_log(STRATA_LOG_WARN, "awq: layer %d's %s output is not finite on the calibration tokens; %s -> %s "
                   "is left unscaled", s->lc->index, map->balance[0]->desc->name, m->smooth_name,
                   map->balance[0]->desc->name);
    double losses[AWQ_MODIFIER_GRID];
    int best = -1;
    float best_loss = INFINITY;
    for (int point = 0; status == STRATA_OK && finite && point < AWQ_MODIFIER_GRID; point++) {
        double ratio;
        bool duo;
        awq_modifier_point(point, &ratio, &duo);
        awq_modifier_scales(point, x_mean, w_mean, K, scales);
        layer_weights trial_lw = *lw;
        for (int b = 0; status == STRATA_OK && b < m->n_balance; b++) {
            const linear_calib *c = map->balance[b];
            const strata_linear *l = c->desc;
            strata_quant_params qp = scheme_weight_params(c->scheme, c->convention, 0);
            qp.values_dtype = linear_values_dtype(model, l);
            status = awq_modifier_trial_weight(&qp, w[b], l->n_out, K, scales, duo, trial);
            void *data = gemm_weight_data(trial_linears[b].weight);
            size_t n = (size_t)(l->n_out * K);
            if (s->r->precision == GEMM_BF16) gemm_round_to_bf16(trial, data, n); /* bf16 values: exact */
            else memcpy(data, trial, n * sizeof *trial);
            substitute(&trial_lw, lw->linears + (l - s->lc->layer->linears), &trial_linears[b]);
        }
        float loss = 0;
        if (status == STRATA_OK) status = run_parent(s, &trial_lw, &trial_linears[0], &loss);
        loss /= (float)n_y0;
        losses[point] = loss;
        if (status == STRATA_OK && loss < best_loss) { /* strict: the first least loss wins */
            best_loss = loss;
            best = point;
            memcpy(best_scales, scales, (size_t)K * sizeof *scales);
        }
    }
    if (status == STRATA_OK && finite && best < 0)
        status = strata_fail(STRATA_ERR_FORMAT, "awq: no grid point of layer %d's %s -> %s gives a finite loss "
                             "(NaN or Inf in its weights or inputs)", s->lc->index, m->smooth_name,
                             map->balance[0]->desc->name);
    if (status == STRATA_OK && finite) status = apply(map, best_scales, best, losses);
    for (int b = 0; b < 3; b++) {
        free(w[b]);
        gemm_weight_free(trial_linears[b].weight);
    }
    free(trial);
    free(x_mean);
    free(w_mean);
    free(scales);
    free(best_scales);
    return status;
}

strata_status awq_modifier_decide(run *r, layer_calib *lc)
{
    const strata_arch *a = r->arch;
    int64_t seq = r->params->seq_len, chunk_rows = r->plan.chunk_sequences * seq;
    forward_config config = {.precision = r->precision, .memory_budget = r->plan.chunk_budget};
    layer_weights lw;
    strata_status status = layer_weights_load(r->model, lc->index, r->precision, NULL, 0, &lw);
    if (status != STRATA_OK) return strata_fail_context(status, "AWQ on layer %d", lc->index);
    search s = {.r = r, .lc = lc, .seq = seq, .tokens = lc->awq_rows, .chunk_rows = chunk_rows,
                .out_width = a->hidden_size};
    int64_t widest = a->hidden_size > a->intermediate_size ? a->hidden_size : a->intermediate_size;
    widest = (int64_t)a->n_heads * a->head_dim > widest ? (int64_t)a->n_heads * a->head_dim : widest;
    s.x = big_buffer_alloc((size_t)(chunk_rows * widest) * sizeof *s.x);
    s.y = big_buffer_alloc((size_t)(chunk_rows * a->hidden_size) * sizeof *s.y);
    s.y0 = big_buffer_alloc((size_t)(s.tokens * a->hidden_size) * sizeof *s.y0);
    if (!s.x || !s.y || !s.y0)
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's outputs of layer %d", lc->index);
    if (status == STRATA_OK) status = decoder_scratch_create(a, &config, chunk_rows, &s.ds);
    for (int i = 0; status == STRATA_OK && i < N_MAPPINGS; i++) {
        resolved map;
        if (!resolve(lc, &MAPPINGS[i], true, &map) || !map.balance[0]->awq_inputs) continue;
        s.map = &map;
        s.K = map.balance[0]->desc->n_in;
        s.dtype = linear_values_dtype(r->model, map.balance[0]->desc);
        status = search_mapping(&s, &lw);
        free(map.balance[0]->awq_inputs);
        map.balance[0]->awq_inputs = NULL;
    }
    decoder_scratch_free(s.ds);
    free(s.x);
    free(s.y);
    free(s.y0);
    layer_weights_free(&lw);
    if (status != STRATA_OK) return strata_fail_context(status, "AWQ on layer %d", lc->index);
    return STRATA_OK;
}
