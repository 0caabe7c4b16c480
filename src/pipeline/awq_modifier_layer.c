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
 * and in an MoE layer (its Qwen3-MoE mappings) in place of the last two:
 *
 *   post_attention_layernorm   the router, every expert's gate, every expert's up (one s)
 *                                                the MoE block (routed, weighted output)
 *   expert e's up_proj         e's down          e's down_proj, over every token
 *
 * Before the calibration pass the first balance linear of each mapping is told to keep its
 * inputs (the parent's inputs: the router's are the block's); an expert's down_proj inputs
 * are recomputed from the block's when its mapping is searched (silu(gate x) * up x, every
 * token, as llm-compressor calibrates every expert). Each mapping searches its grid: the parent is
 * rerun on those inputs once with the layer's weights (y0) and once per grid point with the
 * balance linears' trial weights, and the point with the least loss gives s. The balance
 * linears' columns are multiplied by s and the smooth layer divided by it (the norm's
 * weight, or v_proj's / up_proj's rows), which input_smoothing records (smoothing.c applies
 * it to the weights, the export to the norms). Every mapping reads the calibration pass's
 * inputs and the model's weights, so their order does not change the result; v_proj and
 * up_proj get their columns before their rows, as llm-compressor applies them.
 *
 * The router has no scheme: it is left out of the weight statistic and of the trials (the
 * routing is the calibration pass's at every point), and its columns take s at the export.
 * Under mpirun each rank reruns the parents on its own windows; the windows' loss terms and
 * column sums are gathered in window order, so every rank adds them as one process does.
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

enum { ALL_EXPERTS = -2 }; /* add_mapping's expert: the router, then the roles of every routed expert */

/* One mapping resolved in a layer. */
typedef struct resolved {
    const char *smooth_name;        /* for messages */
    linear_calib *smooth;           /* the smooth linear (v_proj, up_proj), or NULL for a norm */
    linear_calib **balance;         /* (n_balance) in llm-compressor's order; an MoE layer's router
                                     * (unquantized: its columns scaled, left out of the trials) first */
    int n_balance;
    parent_kind parent;
    linear_calib *source;           /* whose kept inputs the parent reads: balance[0], or for an
                                     * expert's up -> down the router's (the block's inputs), ... */
    const linear_calib *hidden_gate, *hidden_up; /* ... through this expert's gate and up */
} resolved;

/* A layer's mappings, in llm-compressor's order. */
typedef struct layer_mappings {
    resolved *maps;
    int n;
    linear_calib **members;         /* storage of the balance lists */
    int n_members;
} layer_mappings;

static void layer_mappings_free(layer_mappings *lm)
{
    free(lm->maps);
    free(lm->members);
    *lm = (layer_mappings){0};
}

/* The linear of the layer with this role (a routed expert's when expert >= 0). */
static linear_calib *find_role(layer_calib *lc, strata_linear_role role, int expert)
{
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        if (lc->linears[i].desc->role == role && lc->linears[i].desc->expert == expert &&
            !lc->linears[i].desc->shared_expert)
            return &lc->linears[i];
    return NULL;
}

/* Appends a mapping when every member is present and quantized (the router aside), and (v_proj
 * -> o_proj) the shapes chained; logs why not (quiet: never; the shape and bias reasons only
 * in layer 0, where a model has them). roles[] of expert (-1: not an expert's), or with
 * ALL_EXPERTS the router, then every routed expert's gate, then every one's up, as
 * llm-compressor lists them. */
static void add_mapping(layer_calib *lc, layer_mappings *lm, const char *smooth_name, linear_calib *smooth,
                        const strata_linear_role *roles, int n_roles, int expert, int experts, parent_kind parent,
                        bool quiet)
{
    linear_calib **balance = lm->members + lm->n_members;
    int n = 0;
    bool complete = true;
    if (expert == ALL_EXPERTS) {
        complete = (balance[n++] = find_role(lc, STRATA_LINEAR_ROUTER, -1)) != NULL;
        for (int r = 0; complete && r < n_roles; r++)
            for (int e = 0; complete && e < experts; e++) complete = (balance[n++] = find_role(lc, roles[r], e)) != NULL;
    } else {
        for (int r = 0; complete && r < n_roles; r++) complete = (balance[n++] = find_role(lc, roles[r], expert)) != NULL;
    }
    if (!complete) return;
    const strata_linear *first = balance[0]->desc;
    if (smooth && smooth->desc->n_out != first->n_in) {
        if (lc->index == 0 && !quiet)
            strata_log(STRATA_LOG_INFO, "awq: %s -> %s skipped, as llm-compressor skips it: %s's %lld outputs are not "
                       "%s's %lld inputs (grouped-query attention)", smooth_name, first->name, smooth_name,
                       (long long)smooth->desc->n_out, first->name, (long long)first->n_in);
        return;
    }
    if (smooth && smooth->desc->bias) {
        /* llm-compressor divides the bias too; strata's forward and export keep biases as read */
        if (lc->index == 0 && !quiet)
            strata_log(STRATA_LOG_INFO, "awq: %s -> %s skipped: %s has a bias, which strata does not rescale",
                       smooth_name, first->name, smooth->desc->name);
        return;
    }
    for (int b = -1; b < n; b++) {
        linear_calib *c = b < 0 ? smooth : balance[b];
        if (c && !c->quantized && c->desc->role != STRATA_LINEAR_ROUTER) {
            if (!quiet)
                strata_log(STRATA_LOG_INFO, "awq: %s is not quantized; %s -> %s is left unscaled", c->desc->name,
                           smooth_name, first->name);
            return;
        }
    }
    lm->n_members += n;
    lm->maps[lm->n++] = (resolved){.smooth_name = smooth_name, .smooth = smooth, .balance = balance, .n_balance = n,
                                   .parent = parent, .source = balance[0]};
}

/* Resolves the layer's mappings (docs/AWQ.md):
 *   input_layernorm -> q, k, v                       parent self_attn
 *   v_proj -> o_proj (not under grouped-query)       parent o_proj
 *   post_attention_layernorm -> gate, up             parent the MLP, or in an MoE layer
 *     -> the router, every expert's gate and up      the MoE block (routed, weighted sum)
 *   up_proj -> down_proj, per routed expert          parent down_proj, over every token */
static strata_status resolve_layer(layer_calib *lc, bool quiet, layer_mappings *lm)
{
    static const strata_linear_role qkv[] = {STRATA_LINEAR_Q, STRATA_LINEAR_K, STRATA_LINEAR_V},
                                    o[] = {STRATA_LINEAR_O}, gate_up[] = {STRATA_LINEAR_GATE, STRATA_LINEAR_UP},
                                    down[] = {STRATA_LINEAR_DOWN};
    int experts = 0;
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        experts = lc->linears[i].desc->expert + 1 > experts ? lc->linears[i].desc->expert + 1 : experts;
    *lm = (layer_mappings){.maps = calloc((size_t)(4 + experts), sizeof *lm->maps),
                           .members = calloc((size_t)(8 + 4 * experts), sizeof *lm->members)};
    if (!lm->maps || !lm->members) {
        layer_mappings_free(lm);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for layer %d's AWQ mappings", lc->index);
    }
    add_mapping(lc, lm, "input_layernorm", NULL, qkv, 3, -1, experts, PARENT_ATTENTION, quiet);
    linear_calib *v = find_role(lc, STRATA_LINEAR_V, -1);
    if (v) add_mapping(lc, lm, "v_proj", v, o, 1, -1, experts, PARENT_LINEAR, quiet);
    if (!lc->layer->is_moe) {
        add_mapping(lc, lm, "post_attention_layernorm", NULL, gate_up, 2, -1, experts, PARENT_MLP, quiet);
        linear_calib *up = find_role(lc, STRATA_LINEAR_UP, -1);
        if (up) add_mapping(lc, lm, "up_proj", up, down, 1, -1, experts, PARENT_LINEAR, quiet);
        return STRATA_OK;
    }
    add_mapping(lc, lm, "post_attention_layernorm", NULL, gate_up, 2, ALL_EXPERTS, experts, PARENT_MLP, quiet);
    linear_calib *router = find_role(lc, STRATA_LINEAR_ROUTER, -1);
    for (int e = 0; e < experts && router; e++) {
        linear_calib *up = find_role(lc, STRATA_LINEAR_UP, e), *gate = find_role(lc, STRATA_LINEAR_GATE, e);
        if (!up || !gate) continue;
        int before = lm->n;
        add_mapping(lc, lm, up->desc->name, up, down, 1, e, experts, PARENT_LINEAR, quiet);
        if (lm->n > before) {
            resolved *m = &lm->maps[lm->n - 1];
            m->source = router;
            m->hidden_gate = gate;
            m->hidden_up = up;
        }
    }
    return STRATA_OK;
}

int awq_modifier_mappings(layer_calib *lc)
{
    layer_mappings lm;
    if (resolve_layer(lc, true, &lm) != STRATA_OK) return 0;
    int n = lm.n;
    layer_mappings_free(&lm);
    return n;
}

strata_status awq_modifier_prepare(run *r, layer_calib *lc)
{
    lc->awq_first_token = r->first_window * r->params->seq_len;
    lc->awq_rows = r->params->n_samples * r->params->seq_len;
    size_t element = r->precision == GEMM_BF16 ? sizeof(uint16_t) : sizeof(float);
    layer_mappings lm;
    strata_status status = resolve_layer(lc, false, &lm);
    for (int i = 0; status == STRATA_OK && i < lm.n; i++) {
        linear_calib *c = lm.maps[i].source;
        if (c->awq_inputs) continue;
        c->awq_inputs = big_buffer_alloc((size_t)lc->awq_rows * (size_t)c->desc->n_in * element);
        if (!c->awq_inputs)
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory keeping the %lld calibration inputs of %s "
                                 "for AWQ", (long long)lc->awq_rows, c->desc->name);
    }
    layer_mappings_free(&lm);
    return status;
}

/* Rows [row0, row0 + n) of kept inputs (rows, K) as fp32 (x (n, K)). */
static void kept_rows(const layer_calib *lc, const void *inputs, int64_t K, int64_t row0, int64_t n, float *x)
{
    if (!lc->inputs_bf16) {
        memcpy(x, (const float *)inputs + row0 * K, (size_t)(n * K) * sizeof *x);
        return;
    }
    const uint16_t *b = (const uint16_t *)inputs + row0 * K;
    for (int64_t i = 0; i < n * K; i++) x[i] = f32_from_bits((uint32_t)b[i] << 16);
}

/* The layer's weights with one linear replaced (a grid point's trial weight); lw's expert
 * lists are the caller's copies. */
static void substitute(layer_weights *lw, const layer_linear *from, layer_linear *to)
{
    layer_linear **slots[] = {&lw->q, &lw->k, &lw->v, &lw->o, &lw->gate, &lw->up, &lw->down};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (*slots[i] == from) *slots[i] = to;
    for (int e = 0; lw->expert_gate && e < lw->arch->moe.n_experts; e++) {
        if (lw->expert_gate[e] == from) lw->expert_gate[e] = to;
        if (lw->expert_up[e] == from) lw->expert_up[e] = to;
    }
}

/* What one mapping's search works with. */
typedef struct search {
    run *r;
    layer_calib *lc;
    const resolved *map;
    decoder_scratch *ds;
    int64_t K, tokens, seq, chunk_rows, out_width;
    strata_dtype dtype;
    const void *inputs;             /* (tokens, K) the parent's inputs, as linear_calib.awq_inputs */
    float *x;                       /* (chunk_rows, widest) one chunk of the parent's inputs */
    float *y;                       /* (chunk_rows, max(out_width, intermediate)) the parent's output */
    float *up;                      /* (chunk_rows, intermediate) an expert's up_proj output */
    float *y0;                      /* (tokens, out_width) its output with the layer's weights */
    void *expert_inputs;            /* (tokens, widest expert) what one expert's down_proj reads */
} search;

static const layer_linear *weights_of(const search *s, const layer_weights *lw, const linear_calib *c)
{
    return lw->linears + (c->desc - s->lc->layer->linears);
}

/* Values per calibration window (n each) of this rank's windows, every rank's gathered in
 * window order (ranks hold consecutive windows): *all (windows, n) malloc'd, *windows their
 * count. Sums over windows are then added in one process's order on every rank. */
static strata_status gather_windows(const search *s, const double *mine, int64_t n, double **all, int64_t *windows)
{
    const calib_collective *coll = &s->r->collective;
    int64_t local = s->tokens / s->seq;
    if (coll->n_ranks <= 1) {
        *windows = local;
        *all = malloc((size_t)(local * n) * sizeof **all);
        if (!*all) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's window sums");
        memcpy(*all, mine, (size_t)(local * n) * sizeof **all);
        return STRATA_OK;
    }
    size_t ranks = (size_t)coll->n_ranks, block = (size_t)(s->r->max_share * n);
    double *padded = calloc(block, sizeof *padded), *gathered = malloc(ranks * block * sizeof *gathered);
    int64_t total = 0;
    for (size_t k = 0; k < ranks; k++) total += s->r->rank_rows[k] / s->seq;
    *all = malloc((size_t)(total * n) * sizeof **all);
    strata_status status = padded && gathered && *all
                           ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's window sums");
    if (status == STRATA_OK) {
        memcpy(padded, mine, (size_t)(local * n) * sizeof *padded);
        status = coll->allgather_f64(coll->ctx, padded, block, gathered);
    }
    int64_t w = 0;
    for (size_t k = 0; status == STRATA_OK && k < ranks; k++) {
        int64_t count = s->r->rank_rows[k] / s->seq;
        memcpy(*all + w * n, gathered + k * block, (size_t)(count * n) * sizeof **all);
        w += count;
    }
    *windows = total;
    free(padded);
    free(gathered);
    return status;
}

/* The parent over every chunk of the inputs, with the weights in lw (a linear parent:
 * `linear`); terms NULL: its outputs kept as y0, else each of this rank's windows' loss
 * term into terms (window order). */
static strata_status run_parent(search *s, const layer_weights *lw, const layer_linear *linear, double *terms)
{
    const parent_kind kind = s->map->parent;
    strata_status status = STRATA_OK;
    for (int64_t t0 = 0; status == STRATA_OK && t0 < s->tokens; t0 += s->chunk_rows) {
        int64_t n = s->tokens - t0 < s->chunk_rows ? s->tokens - t0 : s->chunk_rows;
        kept_rows(s->lc, s->inputs, s->K, t0, n, s->x);
        float *y = terms ? s->y : s->y0 + t0 * s->out_width;
        if (kind == PARENT_ATTENTION)
            status = decoder_attention_output(lw, s->ds, &s->r->rope, s->x, n / s->seq, s->seq, y);
        else if (kind == PARENT_MLP)
            status = decoder_mlp_output(lw, s->ds, s->x, n, y);
        else
            status = decoder_linear_output(s->ds, linear, s->x, n, y);
        progress_tokens(&s->r->progress, s->lc->index, n, false);
        for (int64_t w = 0; status == STRATA_OK && terms && w < n; w += s->seq) {
            int64_t at = w * s->out_width, len = s->seq * s->out_width;
            terms[(t0 + w) / s->seq] = awq_modifier_window_loss(s->y0 + t0 * s->out_width + at, y + at, len, s->dtype);
        }
    }
    return status;
}

/* A grid point's loss: the windows' terms added in window order (float32), over the number
 * of outputs. */
static strata_status point_loss(search *s, const layer_weights *lw, const layer_linear *linear, double *terms,
                                float *loss)
{
    double *all = NULL;
    int64_t windows = 0;
    strata_status status = run_parent(s, lw, linear, terms);
    if (status == STRATA_OK) status = gather_windows(s, terms, 1, &all, &windows);
    float sum = 0;
    for (int64_t w = 0; status == STRATA_OK && w < windows; w++) sum += (float)all[w];
    *loss = sum / (float)(windows * s->seq * s->out_width);
    free(all);
    return status;
}

/* An expert's up_proj -> down_proj: what its down_proj reads on every token (llm-compressor
 * calibrates every expert on every token, its default), silu(gate(x)) * up(x) with the
 * layer's weights on the block's kept inputs, kept as the calibration pass keeps inputs. */
static strata_status expert_inputs(search *s, const layer_weights *lw)
{
    const resolved *map = s->map;
    int64_t H = map->source->desc->n_in, I = s->K;
    strata_status status = STRATA_OK;
    for (int64_t t0 = 0; status == STRATA_OK && t0 < s->tokens; t0 += s->chunk_rows) {
        int64_t n = s->tokens - t0 < s->chunk_rows ? s->tokens - t0 : s->chunk_rows;
        kept_rows(s->lc, map->source->awq_inputs, H, t0, n, s->x);
        status = decoder_gated_hidden(s->ds, weights_of(s, lw, map->hidden_gate), weights_of(s, lw, map->hidden_up),
                                      s->x, n, s->y, s->up);
        if (status == STRATA_OK && s->lc->inputs_bf16)
            gemm_round_to_bf16(s->y, (uint16_t *)s->expert_inputs + t0 * I, (size_t)(n * I));
        else if (status == STRATA_OK)
            memcpy((float *)s->expert_inputs + t0 * I, s->y, (size_t)(n * I) * sizeof *s->y);
    }
    s->inputs = s->expert_inputs;
    return status;
}

/* The activation statistic: each channel's mean |x| over every token, torch's float32 sums of
 * each window's column sums added in window order, divided by the token count. */
static strata_status activation_means(search *s, float *x_mean)
{
    int64_t K = s->K, local = s->tokens / s->seq, windows = 0;
    double *sums = malloc((size_t)(local * K) * sizeof *sums), *all = NULL;
    strata_status status = sums ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's sums");
    for (int64_t w = 0; status == STRATA_OK && w < local; w++) {
        memset(x_mean, 0, (size_t)K * sizeof *x_mean);
        kept_rows(s->lc, s->inputs, K, w * s->seq, s->seq, s->x);
        status = awq_modifier_add_column_sums(s->x, s->seq, K, x_mean);
        for (int64_t k = 0; k < K; k++) sums[w * K + k] = x_mean[k];
    }
    if (status == STRATA_OK) status = gather_windows(s, sums, K, &all, &windows);
    memset(x_mean, 0, (size_t)K * sizeof *x_mean);
    for (int64_t w = 0; status == STRATA_OK && w < windows; w++)
        for (int64_t k = 0; k < K; k++) x_mean[k] += (float)all[w * K + k];
    for (int64_t k = 0; k < K; k++) x_mean[k] /= (float)(windows * s->seq);
    free(sums);
    free(all);
    return status;
}

/* The winner's s as each member's smoothing: balance columns times s (an MoE router's too,
 * as llm-compressor scales every balance layer's weight), the norm or the smooth linear's
 * rows divided by it. */
static strata_status apply(const resolved *map, const double *s, int best, const double *losses)
{
    int64_t K = map->balance[0]->desc->n_in;
    for (int b = 0; b < map->n_balance; b++) {
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

/* The members a grid point quantizes: all but an MoE router, which has no scheme. */
static bool trialled(const linear_calib *c) { return c->quantized; }

/* What a mapping's grid holds: a trial weight in the GEMM's precision per quantized member,
 * and the layer's weights pointing at them (its expert lists copied). */
typedef struct trial_set {
    layer_linear *linears;          /* (n_balance) */
    layer_weights lw;
    layer_linear **expert_gate, **expert_up;
} trial_set;

static void trial_set_free(trial_set *t, int n)
{
    for (int b = 0; t->linears && b < n; b++) gemm_weight_free(t->linears[b].weight);
    free(t->linears);
    free(t->expert_gate);
    free(t->expert_up);
}

static strata_status trial_set_init(search *s, const layer_weights *lw, trial_set *t)
{
    const resolved *map = s->map;
    int E = lw->expert_gate ? lw->arch->moe.n_experts : 0;
    *t = (trial_set){.linears = calloc((size_t)map->n_balance, sizeof *t->linears), .lw = *lw};
    if (E > 0) {
        t->expert_gate = malloc((size_t)E * sizeof *t->expert_gate);
        t->expert_up = malloc((size_t)E * sizeof *t->expert_up);
    }
    if (!t->linears || (E > 0 && (!t->expert_gate || !t->expert_up)))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's trial weights");
    if (E > 0) {
        memcpy(t->expert_gate, lw->expert_gate, (size_t)E * sizeof *t->expert_gate);
        memcpy(t->expert_up, lw->expert_up, (size_t)E * sizeof *t->expert_up);
        t->lw.expert_gate = t->expert_gate;
        t->lw.expert_up = t->expert_up;
    }
    /* The originals' descriptions and biases; weights rewritten per point (the GEMM reads a
     * weight's values on every call) */
    strata_status status = STRATA_OK;
    for (int b = 0; status == STRATA_OK && b < map->n_balance; b++) {
        if (!trialled(map->balance[b])) continue;
        const layer_linear *original = weights_of(s, lw, map->balance[b]);
        const strata_linear *l = original->desc;
        t->linears[b] = (layer_linear){.desc = l, .bias = original->bias};
        status = gemm_weight_alloc(s->r->precision, l->n_out, l->n_in, l->name, &t->linears[b].weight);
        if (status == STRATA_OK) substitute(&t->lw, original, &t->linears[b]);
    }
    return status;
}

/* The balance weights' statistic: the mean over their rows of the group-normalized |W|; an
 * MoE router (no scheme) is left out, as llm-compressor leaves it. */
static strata_status weight_means(search *s, float *w, double *w_mean)
{
    const resolved *map = s->map;
    int64_t rows = 0;
    strata_status status = STRATA_OK;
    for (int b = 0; status == STRATA_OK && b < map->n_balance; b++) {
        const linear_calib *c = map->balance[b];
        const strata_linear *l = c->desc;
        if (!trialled(c)) continue;
        status = linear_weight_f32(s->r->model, l, w);
        linear_weight_release_pages(s->r->model, l);
        if (status == STRATA_OK)
            awq_modifier_add_weight_sums(w, l->n_out, s->K, c->scheme->group_size,
                                         linear_values_dtype(s->r->model, l), w_mean);
        rows += l->n_out;
    }
    for (int64_t k = 0; status == STRATA_OK && k < s->K; k++) w_mean[k] /= (double)rows;
    return status;
}

/* One point's trial weights: Q(W s) / s of every quantized member into its trial linear. */
static strata_status trial_weights(search *s, trial_set *t, int point, const double *scales, float *w, float *trial)
{
    const resolved *map = s->map;
    double ratio;
    bool duo;
    awq_modifier_point(point, &ratio, &duo);
    strata_status status = STRATA_OK;
    for (int b = 0; status == STRATA_OK && b < map->n_balance; b++) {
        const linear_calib *c = map->balance[b];
        const strata_linear *l = c->desc;
        if (!trialled(c)) continue;
        strata_quant_params qp = scheme_weight_params(c->scheme, c->convention, 0);
        qp.values_dtype = linear_values_dtype(s->r->model, l);
        status = linear_weight_f32(s->r->model, l, w);
        linear_weight_release_pages(s->r->model, l);
        if (status == STRATA_OK) status = awq_modifier_trial_weight(&qp, w, l->n_out, s->K, scales, duo, trial);
        void *data = gemm_weight_data(t->linears[b].weight);
        size_t n = (size_t)(l->n_out * s->K);
        if (status == STRATA_OK && s->r->precision == GEMM_BF16) gemm_round_to_bf16(trial, data, n); /* bf16 values: exact */
        else if (status == STRATA_OK) memcpy(data, trial, n * sizeof *trial);
    }
    return status;
}

/* One mapping: statistics, y0, the grid, the winner applied. */
static strata_status search_mapping(search *s, const layer_weights *lw)
{
    const resolved *map = s->map;
    int64_t K = s->K, widest = 0;
    for (int b = 0; b < map->n_balance; b++)
        widest = map->balance[b]->desc->n_out > widest ? map->balance[b]->desc->n_out : widest;
    float *x_mean = malloc((size_t)K * sizeof *x_mean);
    double *w_mean = calloc((size_t)K, sizeof *w_mean), *scales = malloc((size_t)K * sizeof *scales);
    double *best_scales = malloc((size_t)K * sizeof *best_scales);
    float *w = big_buffer_alloc((size_t)(widest * K) * sizeof *w), *trial = big_buffer_alloc((size_t)(widest * K) * sizeof *trial);
    trial_set t = {0};
    strata_status status = x_mean && w_mean && scales && best_scales && w && trial
                           ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's statistics");
    if (status == STRATA_OK && map->hidden_gate) status = expert_inputs(s, lw);
    if (status == STRATA_OK) status = activation_means(s, x_mean);
    if (status == STRATA_OK) status = weight_means(s, w, w_mean);
    if (status == STRATA_OK) status = trial_set_init(s, lw, &t);
    const layer_linear *first = weights_of(s, lw, map->balance[0]);
    double *terms = malloc((size_t)(s->tokens / s->seq + 1) * sizeof *terms);
    if (status == STRATA_OK && !terms) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's losses");
    if (status == STRATA_OK) status = run_parent(s, lw, first, NULL);
    /* llm-compressor skips a mapping whose parent's output is not finite (on any rank) */
    int64_t n_y0 = s->tokens * s->out_width, non_finite = 0;
    for (int64_t i = 0; status == STRATA_OK && !non_finite && i < n_y0; i++) non_finite = !isfinite(s->y0[i]);
    if (status == STRATA_OK) status = s->r->collective.sum_i64(s->r->collective.ctx, &non_finite, 1);
    bool finite = non_finite == 0;
    if (status == STRATA_OK && !finite)
        strata_log(STRATA_LOG_WARN, "awq: layer %d's %s output is not finite on the calibration tokens; %s -> %s "
                   "is left unscaled", s->lc->index, first->desc->name, map->smooth_name, first->desc->name);
    double losses[AWQ_MODIFIER_GRID];
    int best = -1;
    float best_loss = INFINITY;
    for (int point = 0; status == STRATA_OK && finite && point < AWQ_MODIFIER_GRID; point++) {
        awq_modifier_scales(point, x_mean, w_mean, K, scales);
        status = trial_weights(s, &t, point, scales, w, trial);
        float loss = 0;
        if (status == STRATA_OK) status = point_loss(s, &t.lw, &t.linears[0], terms, &loss);
        losses[point] = loss;
        if (status == STRATA_OK && loss < best_loss) { /* strict: the first least loss wins */
            best_loss = loss;
            best = point;
            memcpy(best_scales, scales, (size_t)K * sizeof *scales);
        }
    }
    if (status == STRATA_OK && finite && best < 0)
        status = strata_fail(STRATA_ERR_FORMAT, "awq: no grid point of layer %d's %s -> %s gives a finite loss "
                             "(NaN or Inf in its weights or inputs)", s->lc->index, map->smooth_name, first->desc->name);
    if (status == STRATA_OK && finite) status = apply(map, best_scales, best, losses);
    trial_set_free(&t, map->n_balance);
    free(terms);
    free(w);
    free(trial);
    free(x_mean);
    free(w_mean);
    free(scales);
    free(best_scales);
    return status;
}

/* Whether a later mapping than i reads the same kept inputs. */
static bool read_later(const layer_mappings *lm, int i)
{
    for (int j = i + 1; j < lm->n; j++)
        if (lm->maps[j].source == lm->maps[i].source) return true;
    return false;
}

strata_status awq_modifier_decide(run *r, layer_calib *lc)
{
    const strata_arch *a = r->arch;
    int64_t seq = r->params->seq_len, chunk_rows = r->plan.chunk_sequences * seq;
    forward_config config = {.precision = r->precision, .memory_budget = r->plan.chunk_budget};
    layer_mappings lm = {0};
    layer_weights lw;
    strata_status status = layer_weights_load(r->model, lc->index, r->precision, NULL, 0, &lw);
    if (status != STRATA_OK) return strata_fail_context(status, "AWQ on layer %d", lc->index);
    status = resolve_layer(lc, true, &lm);
    search s = {.r = r, .lc = lc, .seq = seq, .tokens = lc->awq_rows, .chunk_rows = chunk_rows,
                .out_width = a->hidden_size};
    int64_t expert_width = lc->layer->is_moe ? a->moe.intermediate_size : 0;
    int64_t widest = a->hidden_size > a->intermediate_size ? a->hidden_size : a->intermediate_size;
    widest = (int64_t)a->n_heads * a->head_dim > widest ? (int64_t)a->n_heads * a->head_dim : widest;
    widest = expert_width > widest ? expert_width : widest;
    size_t element = lc->inputs_bf16 ? sizeof(uint16_t) : sizeof(float);
    s.x = big_buffer_alloc((size_t)(chunk_rows * widest) * sizeof *s.x);
    s.y = big_buffer_alloc((size_t)(chunk_rows * widest) * sizeof *s.y);
    s.y0 = big_buffer_alloc((size_t)(s.tokens * a->hidden_size) * sizeof *s.y0);
    if (expert_width > 0) {
        s.up = big_buffer_alloc((size_t)(chunk_rows * expert_width) * sizeof *s.up);
        s.expert_inputs = big_buffer_alloc((size_t)(s.tokens * expert_width) * element);
    }
    if (status == STRATA_OK && (!s.x || !s.y || !s.y0 || (expert_width > 0 && (!s.up || !s.expert_inputs))))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for AWQ's outputs of layer %d", lc->index);
    if (status == STRATA_OK) status = decoder_scratch_create(a, &config, chunk_rows, &s.ds);
    for (int i = 0; status == STRATA_OK && i < lm.n; i++) {
        resolved *map = &lm.maps[i];
        if (!map->source->awq_inputs) continue;
        s.map = map;
        s.K = map->balance[0]->desc->n_in;
        s.inputs = map->source->awq_inputs;
        s.dtype = linear_values_dtype(r->model, map->balance[0]->desc);
        status = search_mapping(&s, &lw);
        if (!read_later(&lm, i)) {
            free(map->source->awq_inputs);
            map->source->awq_inputs = NULL;
        }
    }
    decoder_scratch_free(s.ds);
    free(s.x);
    free(s.y);
    free(s.up);
    free(s.y0);
    free(s.expert_inputs);
    layer_mappings_free(&lm);
    layer_weights_free(&lw);
    if (status != STRATA_OK) return strata_fail_context(status, "AWQ on layer %d", lc->index);
    return STRATA_OK;
}
