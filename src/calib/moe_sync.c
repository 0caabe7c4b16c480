/*
 * moe_sync.c — a layer's observations reduced over the participants, and the peer
 * maximum of its routed experts (see layer_calib.h).
 *
 * With top-k routing an expert sees only its tokens, and some see none. As ModelOpt does
 * since its DeepSeek work, every routed expert's input amax is then set to the maximum
 * over the layer's experts, per projection family: gate/up read the layer's MLP input,
 * down reads each expert's own activation, so the two families are synced separately.
 * Every expert therefore gets a static input scale, the same one (engines that fuse the
 * experts use one anyway), and an expert without tokens is never left unscaled. Shared
 * experts are ordinary MLPs and keep their own amax.
 *
 * Before that, input and output amax are MAX-reduced and token counts SUM-reduced over
 * the participants, for every linear of every layer, so the peer maximum is the one over
 * all ranks' tokens; and the input samples (the first CALIB_SAMPLE_ROWS rows a linear
 * saw, for its output error) are gathered to rank 0 in rank order, which is window order,
 * so rank 0 holds the rows one process would have sampled. Smoothing's channel ranges are
 * reduced the same way (MIN and MAX per channel).
 */
#include <stdlib.h>
#include <string.h>

#include "calib/layer_calib.h"
#include "core/error.h"

int linear_calib_expert_family(const linear_calib *c)
{
    const strata_linear *l = c->desc;
    if (l->expert < 0) return -1;
    if (l->role == STRATA_LINEAR_GATE || l->role == STRATA_LINEAR_UP) return 0;
    return l->role == STRATA_LINEAR_DOWN ? 1 : -1;
}

static strata_status reduce_over_participants(layer_calib *lc, const calib_collective *coll)
{
    size_t n = lc->layer->n_linears;
    float *amax = malloc((2 * n + 1) * sizeof *amax);
    int64_t *tokens = malloc((n + 1) * sizeof *tokens);
    strata_status status = amax && tokens ? STRATA_OK
                                          : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reducing layer %d", lc->index);
    for (size_t i = 0; status == STRATA_OK && i < n; i++) {
        amax[i] = lc->linears[i].input_amax;
        amax[n + i] = lc->linears[i].output_amax;
        tokens[i] = lc->linears[i].tokens;
    }
    if (status == STRATA_OK) status = coll->max_f32(coll->ctx, amax, 2 * n);
    if (status == STRATA_OK) status = coll->sum_i64(coll->ctx, tokens, n);
    for (size_t i = 0; status == STRATA_OK && i < n; i++) {
        lc->linears[i].input_amax = amax[i];
        lc->linears[i].output_amax = amax[n + i];
        lc->linears[i].tokens = tokens[i];
    }
    free(amax);
    free(tokens);
    if (status != STRATA_OK) return strata_fail_context(status, "reducing the observations of layer %d", lc->index);
    return STRATA_OK;
}

/* Smoothing's per-channel ranges (SmoothQuant's statistic, AWQ's smoothed input amax): the
 * least and largest x of each channel over every rank's tokens. MAX of (-least, largest) is
 * exact in any order, so N ranks decide the scales one process decides. A linear no rank's
 * token reached is left without ranges, as in one process. */
static strata_status reduce_channel_ranges(layer_calib *lc, const calib_collective *coll)
{
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        if (!c->quantized) continue;
        int64_t K = c->desc->n_in;
        status = linear_calib_alloc_channel_range(c); /* none seen here: least +inf, largest -inf */
        if (status != STRATA_OK) return status;
        for (int64_t k = 0; k < K; k++) c->channel_range[k] = -c->channel_range[k];
        status = coll->max_f32(coll->ctx, c->channel_range, 2 * (size_t)K);
        for (int64_t k = 0; k < K; k++) c->channel_range[k] = -c->channel_range[k];
        if (c->tokens == 0) {
            free(c->channel_range);
            c->channel_range = NULL;
        }
    }
    return status;
}

/* Every sample-owning linear, in layer order on every rank: rank 0 ends with the first
 * rows over all ranks; the others drop theirs (only rank 0 reports errors). */
static strata_status gather_samples(layer_calib *lc, const calib_collective *coll)
{
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && lc->sample_inputs && i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        if (!c->quantized || c->sample_owner != (int)i) continue;
        int64_t cols = c->desc->n_in, gathered = 0;
        if (coll->rank == 0 && !c->sample) {
            c->sample = malloc((size_t)CALIB_SAMPLE_ROWS * (size_t)cols * sizeof *c->sample);
            if (!c->sample) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory sampling %s", c->desc->name);
            c->sample_rows = 0;
        }
        status = coll->gather_rows_f32(coll->ctx, c->sample, c->sample_rows, cols, CALIB_SAMPLE_ROWS,
                                       coll->rank == 0 ? c->sample : NULL, &gathered);
        if (coll->rank == 0) {
            c->sample_rows = gathered;
        } else {
            free(c->sample);
            free(c->sample_tokens);
            c->sample = NULL;
            c->sample_tokens = NULL;
            c->sample_rows = 0;
        }
    }
    return status;
}

strata_status layer_calib_sync(layer_calib *lc, const calib_collective *coll)
{
    strata_status status = reduce_over_participants(lc, coll);
    if (status == STRATA_OK && coll->n_ranks > 1) status = gather_samples(lc, coll);
    if (status == STRATA_OK && coll->n_ranks > 1 && lc->observe_channels) status = reduce_channel_ranges(lc, coll);
    if (status != STRATA_OK) return status;
    float peer[2] = {0, 0};
    for (size_t i = 0; i < lc->layer->n_linears; i++) {
        const linear_calib *c = &lc->linears[i];
        int f = linear_calib_expert_family(c);
        if (f >= 0 && c->quantized && c->input_amax > peer[f]) peer[f] = c->input_amax;
    }
    for (size_t i = 0; i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        int f = linear_calib_expert_family(c);
        if (f >= 0 && c->quantized) c->input_amax = peer[f];
    }
    return STRATA_OK;
}
