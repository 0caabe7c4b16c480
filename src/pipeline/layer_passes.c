/*
 * layer_passes.c — a layer's passes over this rank's calibration windows (see run.h):
 *
 *   layer_pass: chunk by chunk through decoder_layer_forward, with the hooks of the pass;
 *   layer_pass_grouped: an MoE layer whose routed experts are materialized in groups,
 *     token-major over windows of chunks (each expert read once per window);
 *   layer_pass_expert_parallel: an MoE layer whose routed experts are spread over the
 *     ranks (expert_parallel.h).
 * Each chunk's outputs are checked for NaN/Inf, compared with the next buffer (the
 * quantized pass: the layer's output error, summed per window) and written to it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/non_finite.h"
#include "pipeline/expert_parallel.h"
#include "pipeline/run.h"

/* Over each sequence s0 + s: the sum of x^2 and (x - y)^2, in order, kept per window. */
static void add_output_error(run *r, int64_t s0, const float *ref, const float *q, int64_t n_seq, int64_t seq_len,
                             int64_t hidden)
{
    for (int64_t s = 0; s < n_seq; s++) {
        double sq = 0, diff = 0;
        const float *a = ref + s * seq_len * hidden, *b = q + s * seq_len * hidden;
        for (int64_t i = 0; i < seq_len * hidden; i++) {
            double d = (double)a[i] - (double)b[i];
            sq += (double)a[i] * (double)a[i];
            diff += d * d;
        }
        r->window_sq[s0 + s] = sq;
        r->window_diff[s0 + s] = diff;
    }
}

/* The layer's output sums: every rank's windows gathered and added in window order (each
 * rank's block padded with zeros to max_share, which add nothing), so one process and N
 * ranks add the same numbers in the same order. */
strata_status fold_output_error(run *r, layer_calib *lc)
{
    size_t n = (size_t)r->max_share, all = n * (size_t)r->collective.n_ranks;
    double *sq = malloc(2 * all * sizeof *sq);
    if (!sq) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the output errors of layer %d", lc->index);
    double *diff = sq + all;
    strata_status status = r->collective.allgather_f64(r->collective.ctx, r->window_sq, n, sq);
    if (status == STRATA_OK) status = r->collective.allgather_f64(r->collective.ctx, r->window_diff, n, diff);
    lc->output_sq_sum = lc->output_diff_sq_sum = 0;
    for (size_t i = 0; status == STRATA_OK && i < all; i++) {
        lc->output_sq_sum += sq[i];
        lc->output_diff_sq_sum += diff[i];
    }
    free(sq);
    return status;
}

/* A layer's outputs must be finite: NaN/Inf from a weight (an --allow-non-finite norm)
 * or an overflow would otherwise reach every later amax silently. */
static strata_status check_outputs_finite(int layer, const float *x, size_t n, int64_t first_sample)
{
    non_finite_scan scan;
    non_finite_find(STRATA_DTYPE_F32, x, n, &scan);
    if (scan.count == 0) return STRATA_OK;
    return strata_fail(STRATA_ERR_FORMAT, "layer %d produced %llu non-finite output values on the calibration "
                       "samples from %lld on (%s at element %llu): its weights or inputs hold NaN/Inf, or overflow",
                       layer, (unsigned long long)scan.count, (long long)first_sample,
                       scan.first_is_nan ? "NaN" : "Inf", (unsigned long long)scan.first);
}

/* The end of a pass over one chunk: its outputs x checked, compared with (and, when write
 * is set, replacing) the next buffer, and counted. */
static strata_status finish_chunk(run *r, layer_calib *lc, const float *x, float *ref, int64_t s0, int64_t n,
                                  bool write, bool compare)
{
    int64_t H = r->arch->hidden_size, seq = r->params->seq_len;
    strata_status status = check_outputs_finite(lc->index, x, (size_t)(n * seq * H), r->first_window + s0);
    if (status == STRATA_OK && compare) {
        status = act_store_read_next(&r->store, s0 * seq, n * seq, ref);
        if (status == STRATA_OK) add_output_error(r, s0, ref, x, n, seq, H);
    }
    if (status == STRATA_OK && write) status = act_store_write_next(&r->store, s0 * seq, n * seq, x);
    progress_tokens(&r->progress, lc->index, n * seq, false);
    return status;
}

void grouped_close(grouped_pass *g)
{
    decoder_scratch_free(g->ds);
    free(g->x);
    free(g->normed);
    free(g->out);
    free(g->weights);
    free(g->experts);
    free(g->ref);
}

strata_status grouped_open(run *r, layer_calib *lc, const layer_weights *lw, const forward_hooks *hooks,
                                  bool observe_all_experts, bool compare, grouped_pass *g)
{
    const strata_arch *a = r->arch;
    int64_t H = a->hidden_size, seq = r->params->seq_len, k = a->moe.top_k;
    *g = (grouped_pass){.r = r, .lc = lc, .lw = lw,
                        .window = r->plan.window_sequences > 0 ? r->plan.window_sequences : r->params->n_samples};
    size_t tokens = (size_t)(g->window * seq);
    forward_config config = {.precision = r->precision, .memory_budget = r->plan.chunk_budget, .hooks = hooks,
                             .n_hooks = hooks ? 1 : 0, .observe_all_experts = observe_all_experts};
    g->x = malloc(tokens * (size_t)H * sizeof *g->x);
    g->normed = malloc(tokens * (size_t)H * sizeof *g->normed);
    g->out = malloc(tokens * (size_t)H * sizeof *g->out);
    g->weights = malloc(tokens * (size_t)k * sizeof *g->weights);
    g->experts = malloc(tokens * (size_t)k * sizeof *g->experts);
    g->ref = compare ? malloc((size_t)(r->plan.chunk_sequences * seq * H) * sizeof *g->ref) : NULL;
    strata_status status = STRATA_OK;
    if (!g->x || !g->normed || !g->out || !g->weights || !g->experts || (compare && !g->ref))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %zu tokens of layer %d", tokens, lc->index);
    if (status == STRATA_OK) status = decoder_scratch_create(a, &config, r->plan.chunk_sequences * seq, &g->ds);
    if (status != STRATA_OK) grouped_close(g);
    return status;
}

/* The window of sequences [w0, ...): every chunk's attention and routing. */
strata_status grouped_begin(grouped_pass *g, int64_t w0)
{
    run *r = g->r;
    int64_t H = r->arch->hidden_size, seq = r->params->seq_len, chunk = r->plan.chunk_sequences, k = r->arch->moe.top_k;
    g->w0 = w0;
    g->w1 = w0 + g->window < r->params->n_samples ? w0 + g->window : r->params->n_samples;
    memset(g->out, 0, (size_t)((g->w1 - w0) * seq * H) * sizeof *g->out);
    strata_status status = STRATA_OK;
    for (int64_t s0 = w0; status == STRATA_OK && s0 < g->w1; s0 += chunk) {
        int64_t n = g->w1 - s0 < chunk ? g->w1 - s0 : chunk, t = (s0 - w0) * seq;
        status = act_store_read(&r->store, s0 * seq, n * seq, g->x + t * H);
        if (status == STRATA_OK)
            status = decoder_moe_begin(g->lw, g->ds, &r->rope, g->x + t * H, n, seq, s0 * seq, g->normed + t * H,
                                       g->experts + t * k, g->weights + t * k);
    }
    return status;
}

/* Routed experts [first, first + count) over every chunk of the window. */
strata_status grouped_experts(grouped_pass *g, int first, int count)
{
    run *r = g->r;
    int64_t H = r->arch->hidden_size, seq = r->params->seq_len, chunk = r->plan.chunk_sequences, k = r->arch->moe.top_k;
    strata_status status = STRATA_OK;
    for (int64_t s0 = g->w0; status == STRATA_OK && s0 < g->w1; s0 += chunk) {
        int64_t n = g->w1 - s0 < chunk ? g->w1 - s0 : chunk, t = (s0 - g->w0) * seq;
        status = decoder_moe_experts(g->lw, g->ds, g->normed + t * H, n * seq, g->experts + t * k, g->weights + t * k,
                                     first, count, s0 * seq, g->out + t * H);
    }
    return status;
}

/* Every chunk's shared experts and residual; then, when finishing (not only running the
 * shared experts for their observers), the outputs checked, compared and written. */
strata_status grouped_finish(grouped_pass *g, bool finishing, bool write, bool compare)
{
    run *r = g->r;
    int64_t H = r->arch->hidden_size, seq = r->params->seq_len, chunk = r->plan.chunk_sequences;
    strata_status status = STRATA_OK;
    for (int64_t s0 = g->w0; status == STRATA_OK && s0 < g->w1; s0 += chunk) {
        int64_t n = g->w1 - s0 < chunk ? g->w1 - s0 : chunk, t = (s0 - g->w0) * seq;
        status = decoder_moe_finish(g->lw, g->ds, g->x + t * H, g->normed + t * H, n * seq, s0 * seq, g->out + t * H);
        if (status == STRATA_OK && finishing)
            status = finish_chunk(r, g->lc, g->x + t * H, g->ref, s0, n, write, compare);
    }
    return status;
}

/* layer_pass for an MoE layer whose experts are materialized in groups, token-major over
 * windows: every chunk's attention and routing first, then each group of experts over every
 * chunk, then every chunk's shared experts and residual. Each expert is read once per
 * window, not once per chunk; per chunk the arithmetic and its order are layer_pass's, and
 * each linear still sees the chunks in order, so the results are the same bytes. */
static strata_status layer_pass_grouped(run *r, layer_calib *lc, const layer_weights *lw, const forward_hooks *hooks,
                                        bool observe_all_experts, bool write, bool compare)
{
    grouped_pass g;
    strata_status status = grouped_open(r, lc, lw, hooks, observe_all_experts, compare, &g);
    if (status != STRATA_OK) return status;
    int E = r->arch->moe.n_experts, group = lw->experts_per_group;
    for (int64_t w0 = 0; status == STRATA_OK && w0 < r->params->n_samples; w0 += g.window) {
        status = grouped_begin(&g, w0);
        for (int e = 0; e < E && status == STRATA_OK; e += group) {
            int count = E - e < group ? E - e : group;
            status = grouped_experts(&g, e, count);
            layer_weights_release_experts(lw, e, count);
        }
        if (status == STRATA_OK) status = grouped_finish(&g, true, write, compare);
    }
    grouped_close(&g);
    return status;
}

/* layer_pass for an MoE layer whose routed experts are spread over the ranks: per chunk,
 * attention and routing, the exchange with the experts' ranks (expert_parallel.h), then the
 * shared experts and residual. Every rank runs as many chunks as the rank with the most,
 * its surplus ones empty, since each exchange needs every rank. This rank's experts are
 * materialized once for the pass. */
static strata_status layer_pass_expert_parallel(run *r, layer_calib *lc, const layer_weights *lw,
                                                const forward_hooks *hooks, bool write, bool compare)
{
    const strata_arch *a = r->arch;
    int64_t H = a->hidden_size, seq = r->params->seq_len, chunk = r->plan.chunk_sequences, k = a->moe.top_k;
    size_t tokens = (size_t)(chunk * seq);
    forward_config config = {.precision = r->precision, .memory_budget = r->plan.chunk_budget, .hooks = hooks,
                             .n_hooks = hooks ? 1 : 0};
    expert_exchange xc = {.coll = &r->collective, .lw = lw, .seq_len = seq, .max_rows = (int64_t)tokens};
    int first, end;
    expert_parallel_share(a->moe.n_experts, r->collective.rank, r->collective.n_ranks, &first, &end);
    float *x = malloc(tokens * (size_t)H * sizeof *x), *normed = malloc(tokens * (size_t)H * sizeof *normed);
    float *out = malloc(tokens * (size_t)H * sizeof *out), *weights = malloc(tokens * (size_t)k * sizeof *weights);
    int32_t *experts = malloc(tokens * (size_t)k * sizeof *experts);
    float *ref = compare ? malloc(tokens * (size_t)H * sizeof *ref) : NULL;
    strata_status status = STRATA_OK;
    if (!x || !normed || !out || !weights || !experts || (compare && !ref))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %zu tokens of layer %d", tokens, lc->index);
    if (status == STRATA_OK) status = decoder_scratch_create(a, &config, (int64_t)tokens, &xc.ds);
    if (status == STRATA_OK) status = layer_weights_materialize_experts(lw, first, end - first);
    float chunks = (float)((r->params->n_samples + chunk - 1) / chunk); /* small integers: exact */
    if (status == STRATA_OK) status = r->collective.max_f32(r->collective.ctx, &chunks, 1);
    for (int64_t c = 0; status == STRATA_OK && c < (int64_t)chunks; c++) {
        int64_t s0 = c * chunk, n = s0 < r->params->n_samples ? r->params->n_samples - s0 : 0;
        if (n > chunk) n = chunk;
        int64_t first_token = (r->first_window + s0) * seq;
        if (n > 0) status = act_store_read(&r->store, s0 * seq, n * seq, x);
        if (status == STRATA_OK && n > 0)
            status = decoder_moe_begin(lw, xc.ds, &r->rope, x, n, seq, first_token, normed, experts, weights);
        if (status == STRATA_OK) {
            memset(out, 0, (size_t)(n * seq * H) * sizeof *out);
            status = expert_exchange_chunk(&xc, normed, n * seq, experts, weights, first_token, out);
        }
        if (status == STRATA_OK && n > 0) status = decoder_moe_finish(lw, xc.ds, x, normed, n * seq, first_token, out);
        if (status == STRATA_OK && n > 0) status = finish_chunk(r, lc, x, ref, s0, n, write, compare);
    }
    layer_weights_release_experts(lw, first, end - first);
    expert_exchange_free(&xc);
    decoder_scratch_free(xc.ds);
    free(x);
    free(normed);
    free(out);
    free(weights);
    free(experts);
    free(ref);
    return status;
}

/* One pass of layer `lw` over every chunk of the store's current buffer. compare: the
 * outputs are compared with (and, when write is set, replace) the next buffer. */
static strata_status layer_pass(run *r, layer_calib *lc, const layer_weights *lw, const forward_hooks *hooks,
                                bool observe_all_experts, bool write, bool compare)
{
    if (r->expert_parallel && lc->layer->is_moe) return layer_pass_expert_parallel(r, lc, lw, hooks, write, compare);
    if (lw->experts_per_group > 0) return layer_pass_grouped(r, lc, lw, hooks, observe_all_experts, write, compare);
    const strata_quantize_params *p = r->params;
    int64_t H = r->arch->hidden_size, seq = p->seq_len, chunk = r->plan.chunk_sequences;
    forward_config config = {.precision = r->precision, .memory_budget = r->plan.chunk_budget, .hooks = hooks,
                             .n_hooks = hooks ? 1 : 0, .observe_all_experts = observe_all_experts};
    size_t floats = (size_t)(chunk * seq * H);
    float *x = malloc(floats * sizeof *x), *ref = compare ? malloc(floats * sizeof *ref) : NULL;
    strata_status status = STRATA_OK;
    if (!x || (compare && !ref)) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for a chunk of layer inputs");
    for (int64_t s0 = 0; status == STRATA_OK && s0 < p->n_samples; s0 += chunk) {
        int64_t n = p->n_samples - s0 < chunk ? p->n_samples - s0 : chunk;
        status = act_store_read(&r->store, s0 * seq, n * seq, x);
        if (status == STRATA_OK)
            status = decoder_layer_forward(lw, &config, &r->rope, x, n, seq, (r->first_window + s0) * seq);
        if (status == STRATA_OK) status = finish_chunk(r, lc, x, ref, s0, n, write, compare);
    }
    free(x);
    free(ref);
    return status;
}

/* layer_pass, its time (less the reading of grouped experts during it) added to *seconds. */
strata_status timed_pass(run *r, layer_calib *lc, const layer_weights *lw, const forward_hooks *hooks,
                                bool observe_all_experts, bool write, bool compare, double *seconds)
{
    const strata_layer_timing *timing = &r->timings.layers[lc->index];
    double start = seconds_now(), read_before = timing->read_s;
    strata_status status = layer_pass(r, lc, lw, hooks, observe_all_experts, write, compare);
    *seconds += seconds_now() - start - (timing->read_s - read_before);
    return status;
}
