/*
 * hessian.c — GPTQ's Hessians of one layer (see layer_calib.h).
 *
 * Linears that read the same input share one Hessian: q/k/v, gate/up, and each expert's
 * gate/up (the fused groups of observer.c); every other linear has its own. Only the
 * group's first quantized linear accumulates, so the shared input is counted once. An
 * expert's Hessian sees only the tokens routed to it, since its input hook only receives
 * those.
 *
 * Accumulation: the input rows are rounded to bf16, as the layer's bf16 GEMM consumes
 * them, and h += x^T x runs as one bf16 Gram product with fp32 accumulation (exact
 * products); chunks arrive in a fixed order, so the sums do not depend on the memory
 * limit or a resume. finish() turns the sums into H = 2/n sum x x^T.
 *
 * Scope: a layer whose routed experts are materialized in groups would need every expert's
 * Hessian at once (hidden^2 fp32 each: 196 MiB at 7168) if they were accumulated in its
 * regular passes. The engine instead accumulates only the other linears' there, then one
 * group of experts' at a time, and decides and frees each group's before the next
 * (pipeline/layerwise.c). Each Hessian still sums the same rows in the same order.
 */
#include <limits.h>
#include <stdlib.h>

#include "calib/layer_calib.h"
#include "core/error.h"
#include "kernels/gemm.h"

strata_status layer_hessians_init(layer_calib *lc)
{
    size_t n = lc->layer->n_linears;
    lc->hessians = calloc(n ? n : 1, sizeof *lc->hessians);
    if (!lc->hessians) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the Hessians of layer %d", lc->index);
    for (size_t i = 0; i < n; i++) {
        linear_calib *c = &lc->linears[i];
        c->hessian = -1;
        if (!c->quantized) continue;
        for (size_t j = 0; j < i && c->fused_group >= 0; j++) {
            const linear_calib *earlier = &lc->linears[j];
            if (earlier->hessian >= 0 && earlier->fused_group == c->fused_group) c->hessian = earlier->hessian;
        }
        if (c->hessian >= 0) continue;
        c->hessian = (int)lc->n_hessians;
        lc->hessians[lc->n_hessians++] = (calib_hessian){.n_in = c->desc->n_in, .owner = (int)i};
    }
    layer_hessians_scope(lc, true, 0, INT_MAX);
    return STRATA_OK;
}

void layer_hessians_scope(layer_calib *lc, bool non_experts, int first_expert, int end_expert)
{
    lc->hessians_non_experts = non_experts;
    lc->hessian_experts_first = first_expert;
    lc->hessian_experts_end = end_expert;
}

/* The routed expert whose input Hessian g is, or -1. */
static int hessian_expert(const layer_calib *lc, size_t g)
{
    return lc->linears[lc->hessians[g].owner].desc->expert;
}

bool layer_hessians_accumulates(const layer_calib *lc, const linear_calib *c)
{
    if (!lc->hessians || c->hessian < 0 || lc->linears + lc->hessians[c->hessian].owner != c) return false;
    int e = c->desc->expert;
    return e < 0 ? lc->hessians_non_experts : e >= lc->hessian_experts_first && e < lc->hessian_experts_end;
}

strata_status layer_hessians_add(layer_calib *lc, const linear_calib *c, const float *x, int64_t n_tokens)
{
    if (!layer_hessians_accumulates(lc, c) || n_tokens == 0) return STRATA_OK;
    calib_hessian *hg = &lc->hessians[c->hessian];
    if (hg->finished)
        return strata_fail(STRATA_ERR_INTERNAL, "the Hessian of %s is already finished", c->desc->name);
    size_t K = (size_t)hg->n_in;
    if (!hg->h) {
        hg->h = calloc(K * K, sizeof *hg->h);
        if (!hg->h)
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the (%zu, %zu) Hessian of %s", K, K,
                               c->desc->name);
    }
    uint16_t *bf16 = malloc((size_t)n_tokens * K * sizeof *bf16);
    if (!bf16) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the inputs of %s", c->desc->name);
    gemm_round_to_bf16(x, bf16, (size_t)n_tokens * K);
    strata_status status = gemm_gram_bf16(bf16, n_tokens, (int64_t)K, hg->h);
    free(bf16);
    if (status != STRATA_OK) return strata_fail_context(status, "accumulating the Hessian of %s", c->desc->name);
    hg->tokens += n_tokens;
    return STRATA_OK;
}

static void finish_one(calib_hessian *hg)
{
    if (!hg->h || hg->finished) return;
    float scale = (float)(2.0 / (double)hg->tokens);
    size_t n = (size_t)hg->n_in * (size_t)hg->n_in;
    for (size_t i = 0; i < n; i++) hg->h[i] *= scale;
    hg->finished = true;
}

void layer_hessians_finish(layer_calib *lc)
{
    for (size_t g = 0; g < lc->n_hessians; g++) finish_one(&lc->hessians[g]);
}

void layer_hessians_finish_experts(layer_calib *lc, int first, int end)
{
    for (size_t g = 0; g < lc->n_hessians; g++) {
        int e = hessian_expert(lc, g);
        if (e >= first && e < end) finish_one(&lc->hessians[g]);
    }
}

void layer_hessians_free_experts(layer_calib *lc, int first, int end)
{
    for (size_t g = 0; g < lc->n_hessians; g++) {
        int e = hessian_expert(lc, g);
        if (e < first || e >= end) continue;
        free(lc->hessians[g].h);
        lc->hessians[g].h = NULL;
    }
}

void layer_hessians_free(layer_calib *lc)
{
    for (size_t g = 0; lc->hessians && g < lc->n_hessians; g++) free(lc->hessians[g].h);
    free(lc->hessians);
    lc->hessians = NULL;
    lc->n_hessians = 0;
}
