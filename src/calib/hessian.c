/*
 * hessian.c — GPTQ's Hessians of one layer (see layer_calib.h).
 *
 * Linears that read the same input share one Hessian: q/k/v, gate/up, and each expert's
 * gate/up (the fused groups of observer.c); every other linear has its own. Only the
 * group's first quantized linear accumulates, so the shared input is counted once. An
 * expert's Hessian sees only the tokens routed to it, since its input hook only receives
 * those.
 *
 * Accumulation, the same in any order: the input rows are rounded to bf16, as the layer's
 * bf16 GEMM consumes them, and each calibration window's rows give one Gram product
 * g_w = x_w^T x_w (bf16 products are exact; fp32 sums inside the window). The windows'
 * products are added with a reproducible binned sum (Demmel and Nguyen's, as ReproBLAS
 * does it):
 *   - bin k holds multiples of 2^(32 k); every value is split at these fixed boundaries
 *     into slices, each rounded to its bin's quantum;
 *   - only the top bin (the lowest one above every value seen) and the one below it are
 *     kept, as integers in double, so their sums are exact (below 2^51 for up to 2^19
 *     windows); raising the top bin drops the lowest one whole.
 * The result is the sum of the slices in the two bins the largest value decides, whatever
 * the order or grouping of the windows. So N ranks, each adding its own windows and then
 * each other's bins (sum_exact_f64, after agreeing on the top bin), get the bytes of one
 * process, and chunking or a resume change nothing either. It keeps at least 31 bits below
 * the largest entry, finer than the fp32 sum it replaces. finish() turns the bins into
 * H = 2/n sum x x^T in fp32, in place.
 *
 * ModelOpt's AWQ loss on a routed expert weighs each calibration window's mean error the
 * same, whatever number of tokens the window routed to it (layer_calib.hessian_window_mean):
 * there each window's Gram product is divided by its rows and n counts windows, so
 * H = 2/w sum_w x_w^T x_w / n_w. The forward hands an expert a chunk's routed rows in one
 * call, so a window's rows are never split.
 *
 * Scope: a layer whose routed experts are materialized in groups would need every expert's
 * Hessian at once (two doubles per entry: 784 MiB at hidden 7168) if they were accumulated
 * in its regular passes. The engine instead accumulates only the other linears' there,
 * then one group of experts' at a time, and decides and frees each group's before the
 * next (pipeline/layerwise.c).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/layer_calib.h"
#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/pool.h"

enum {
    BIN_BITS = 32,         /* bin k holds multiples of 2^(32 k) */
    NO_BIN = INT_MIN / 2,  /* the top bin of a Hessian without values */
};

strata_status layer_hessians_init(layer_calib *lc, int64_t seq_len)
{
    size_t n = lc->layer->n_linears;
    lc->hessians = calloc(n ? n : 1, sizeof *lc->hessians);
    if (!lc->hessians) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the Hessians of layer %d", lc->index);
    lc->hessian_seq_len = seq_len;
    int64_t widest = 0;
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
        lc->hessians[lc->n_hessians++] = (calib_hessian){.n_in = c->desc->n_in, .owner = (int)i, .top = NO_BIN};
        if (c->desc->n_in > widest) widest = c->desc->n_in;
    }
    lc->hessian_gram = malloc((size_t)(widest * widest) * sizeof *lc->hessian_gram + 1);
    if (!lc->hessian_gram)
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the Hessians of layer %d", lc->index);
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

/* The lowest bin k whose slices hold every value of magnitude m or less: m < 2^(32 (k + 1) - 1),
 * so no value has a slice above bin k. */
static int top_bin(double m)
{
    if (!(m > 0)) return NO_BIN;
    int e = 0;
    frexp(m, &e); /* m < 2^e; k = ceil((e + 1) / 32) - 1 = floor((e + 32) / 32) - 1 */
    int k = e + BIN_BITS;
    return (k >= 0 ? k / BIN_BITS : -((-k + BIN_BITS - 1) / BIN_BITS)) - 1;
}

/* The Hessian's bins moved up to top (n entries each): the bins that fall below the two
 * kept ones are dropped whole. */
static void raise_top(calib_hessian *hg, int top, size_t n)
{
    if (hg->top == NO_BIN || top <= hg->top) {
        if (hg->top == NO_BIN) hg->top = top;
        return;
    }
    double *high = hg->bins, *low = hg->bins + n;
    if (top == hg->top + 1) {
        memcpy(low, high, n * sizeof *low);
        memset(high, 0, n * sizeof *high);
    } else {
        memset(hg->bins, 0, 2 * n * sizeof *hg->bins);
    }
    hg->top = top;
}

/* |v| < 2^51 rounded to an integer, ties to even: adding and removing 1.5 * 2^52. */
static inline double round_integer(double v)
{
    const double shift = 0x1.8p52;
    return (v + shift) - shift;
}

/* high[i], low[i] += the slices of gram[i] in the top bin and the one below, over a range
 * of i: s_high = round(v / q_high), s_low = round((v - s_high q_high) / q_low); what is
 * left, below q_low / 2, is dropped. */
typedef struct fold_job {
    double *high, *low;
    const float *gram;
    double q_high, inverse_high, inverse_low;
} fold_job;

static void fold_task(void *ctx, int64_t begin, int64_t end)
{
    const fold_job *job = ctx;
    for (int64_t i = begin; i < end; i++) {
        double v = job->gram[i], high = round_integer(v * job->inverse_high);
        job->high[i] += high;
        job->low[i] += round_integer((v - high * job->q_high) * job->inverse_low);
    }
}

static float max_abs(const float *g, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(g[i]) > m ? fabsf(g[i]) : m;
    return m;
}

/* One window's rows x (rows, K) bf16: its Gram product (divided by rows for a window mean),
 * folded into the bins. */
static strata_status add_window(layer_calib *lc, calib_hessian *hg, const uint16_t *x, int64_t rows, bool window_mean)
{
    size_t K = (size_t)hg->n_in, n = K * K;
    memset(lc->hessian_gram, 0, n * sizeof *lc->hessian_gram);
    strata_status status = gemm_gram_bf16(x, rows, (int64_t)K, lc->hessian_gram);
    if (status != STRATA_OK) return status;
    for (size_t i = 0; window_mean && i < n; i++) lc->hessian_gram[i] /= (float)rows;
    int top = top_bin(max_abs(lc->hessian_gram, n));
    if (top == NO_BIN) return STRATA_OK; /* a window of zeros adds nothing */
    raise_top(hg, top, n);
    fold_job job = {.high = hg->bins, .low = hg->bins + n, .gram = lc->hessian_gram,
                    .q_high = ldexp(1.0, BIN_BITS * hg->top), .inverse_high = ldexp(1.0, -BIN_BITS * hg->top),
                    .inverse_low = ldexp(1.0, -BIN_BITS * (hg->top - 1))};
    pool_parallel_for((int64_t)n, 1 << 16, fold_task, &job);
    return STRATA_OK;
}

int64_t layer_calib_row_window(const layer_calib *lc, const int64_t *token_index, int64_t chunk_first_token, int64_t i)
{
    return (chunk_first_token + (token_index ? token_index[i] : i)) / lc->hessian_seq_len;
}

strata_status layer_hessians_add(layer_calib *lc, const linear_calib *c, const float *x, int64_t n_tokens,
                                 const int64_t *token_index, int64_t chunk_first_token)
{
    if (!layer_hessians_accumulates(lc, c) || n_tokens == 0) return STRATA_OK;
    calib_hessian *hg = &lc->hessians[c->hessian];
    if (hg->finished)
        return strata_fail(STRATA_ERR_INTERNAL, "the Hessian of %s is already finished", c->desc->name);
    size_t K = (size_t)hg->n_in;
    if (!hg->bins) {
        hg->bins = calloc(2 * K * K, sizeof *hg->bins);
        if (!hg->bins)
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the (%zu, %zu) Hessian of %s", K, K,
                               c->desc->name);
    }
    uint16_t *bf16 = malloc((size_t)n_tokens * K * sizeof *bf16);
    if (!bf16) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the inputs of %s", c->desc->name);
    gemm_round_to_bf16(x, bf16, (size_t)n_tokens * K);
    strata_status status = STRATA_OK;
    bool window_mean = lc->hessian_window_mean && c->desc->expert >= 0;
    /* Rows arrive in token order: each run of one window's rows is one Gram product (the
     * window mean's: all its rows, the forward hands an expert a chunk's rows at once). */
    for (int64_t first = 0, i = 1; status == STRATA_OK && first < n_tokens; i++) {
        if (i < n_tokens && layer_calib_row_window(lc, token_index, chunk_first_token, i) ==
                                layer_calib_row_window(lc, token_index, chunk_first_token, first))
            continue;
        status = add_window(lc, hg, bf16 + (size_t)first * K, i - first, window_mean);
        hg->tokens += window_mean ? 1 : i - first;
        first = i;
    }
    free(bf16);
    if (status != STRATA_OK) return strata_fail_context(status, "accumulating the Hessian of %s", c->desc->name);
    return STRATA_OK;
}

/* Every participant's bins added, after all move to the highest top bin among them (exact),
 * on every participant (root -1) or on root alone, the others dropping theirs (with local,
 * root alone accumulated it: nothing is sent, and the others have nothing); then
 * H = 2/n (high q_high + low q_low) in fp32, written over the front of the bins' buffer
 * (float i never reaches a double not yet read). Every participant calls it for the same
 * Hessians, with or without tokens. */
static strata_status finish_one(calib_hessian *hg, const calib_collective *coll, int root, bool local)
{
    if (hg->finished) return STRATA_OK;
    size_t n = (size_t)hg->n_in * (size_t)hg->n_in;
    if (local && coll->rank != root) {
        free(hg->bins);
        hg->bins = NULL;
    } else if (coll->n_ranks > 1 && !local) {
        float top = hg->top == NO_BIN ? -1e9f : (float)hg->top; /* small integers: exact in float */
        strata_status status = coll->sum_i64(coll->ctx, &hg->tokens, 1);
        if (status == STRATA_OK) status = coll->max_f32(coll->ctx, &top, 1);
        if (status == STRATA_OK && top > -1e9f) {
            if (!hg->bins && !(hg->bins = calloc(2 * n, sizeof *hg->bins)))
                return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for a (%lld, %lld) Hessian",
                                   (long long)hg->n_in, (long long)hg->n_in);
            raise_top(hg, (int)top, n);
            status = coll->sum_exact_f64(coll->ctx, hg->bins, 2 * n, root);
        }
        if (status != STRATA_OK) return status;
        if (root >= 0 && root != coll->rank) {
            free(hg->bins);
            hg->bins = NULL;
        }
    }
    hg->finished = true;
    if (!hg->bins) return STRATA_OK;
    if (hg->top == NO_BIN) hg->top = 0; /* every value was 0 */
    double scale = 2.0 / (double)hg->tokens, q_high = ldexp(scale, BIN_BITS * hg->top),
           q_low = ldexp(scale, BIN_BITS * (hg->top - 1));
    const double *high = hg->bins, *low = hg->bins + n;
    float *h = (float *)(void *)hg->bins;
    for (size_t i = 0; i < n; i++) h[i] = (float)(high[i] * q_high + low[i] * q_low);
    float *shrunk = realloc(h, n * sizeof *h);
    hg->h = shrunk ? shrunk : h;
    hg->bins = NULL;
    return STRATA_OK;
}

strata_status layer_hessians_finish(layer_calib *lc, const calib_collective *coll, bool to_deciders)
{
    strata_status status = STRATA_OK;
    for (size_t g = 0; status == STRATA_OK && g < lc->n_hessians; g++) {
        const linear_calib *owner = &lc->linears[lc->hessians[g].owner];
        bool local = lc->expert_holder && hessian_expert(lc, g) >= 0;
        int root = to_deciders || local ? linear_calib_decider(lc, owner, coll->n_ranks) : -1;
        status = finish_one(&lc->hessians[g], coll, root, local);
    }
    return status;
}

strata_status layer_hessians_finish_experts(layer_calib *lc, int first, int end, const calib_collective *coll)
{
    strata_status status = STRATA_OK;
    for (size_t g = 0; status == STRATA_OK && g < lc->n_hessians; g++) {
        int e = hessian_expert(lc, g);
        if (e >= first && e < end) status = finish_one(&lc->hessians[g], coll, -1, false);
    }
    return status;
}

void layer_hessians_free_experts(layer_calib *lc, int first, int end)
{
    for (size_t g = 0; g < lc->n_hessians; g++) {
        int e = hessian_expert(lc, g);
        if (e < first || e >= end) continue;
        free(lc->hessians[g].h);
        free(lc->hessians[g].bins);
        lc->hessians[g].h = NULL;
        lc->hessians[g].bins = NULL;
    }
}

void layer_hessians_free(layer_calib *lc)
{
    for (size_t g = 0; lc->hessians && g < lc->n_hessians; g++) {
        free(lc->hessians[g].h);
        free(lc->hessians[g].bins);
    }
    free(lc->hessians);
    free(lc->hessian_gram);
    lc->hessians = NULL;
    lc->hessian_gram = NULL;
    lc->n_hessians = 0;
}
