/*
 * moe.h — a routed mixture-of-experts MLP block over a chunk of tokens.
 *
 * The router scores every token; topk.c picks its experts and weights; tokens are then
 * grouped by expert (in token order), so each expert runs one product per projection over
 * exactly its tokens and an expert with no tokens costs nothing. Expert outputs, scaled by
 * the routing weights, are summed per token in ascending expert order (as transformers'
 * index_add_ loop does). qwen2_moe adds a shared expert scaled by a sigmoid gate.
 *
 * For calibration with every expert (observe_all), each expert afterwards also runs over
 * the tokens not routed to it, so the hooks observe every token; those outputs are
 * discarded and the block's output is exactly the top-k one.
 */
#ifndef STRATA_FORWARD_MOE_H
#define STRATA_FORWARD_MOE_H

#include "forward/layer_weights.h"
#include "forward/linear_run.h"

/* Buffers for up to max_rows tokens. */
typedef struct moe_scratch {
    float *logits;        /* (max_rows, n_experts) */
    int32_t *experts;     /* (max_rows, top_k) */
    float *weights;       /* (max_rows, top_k) */
    int64_t *offsets;     /* (n_experts + 1) start of each expert's group */
    int64_t *token_index; /* (max_rows * top_k) grouped token rows */
    float *token_weight;  /* (max_rows * top_k) their routing weights */
    float *gathered;      /* (max_rows, hidden) one expert's tokens */
    float *gate, *up;     /* (max_rows, widest expert) */
    float *expert_out;    /* (max_rows, hidden) */
    int64_t *tokens_per_expert; /* (n_experts) counts of the last chunk */
    bool observe_all;     /* hooks also observe every expert on the tokens routed elsewhere */
    int64_t *other_index; /* (max_rows) the tokens not routed to one expert */
    float *other_weight;  /* (max_rows) zeros: their routing weight */
} moe_scratch;

/* Bytes of moe_scratch per token (excluding what is shared with the dense path). */
size_t moe_scratch_row_bytes(const strata_arch *arch);
strata_status moe_scratch_init(moe_scratch *s, const strata_arch *arch, int64_t max_rows, bool observe_all);
void moe_scratch_free(moe_scratch *s);

/* out (rows, hidden) = MoE(xn), xn (rows, hidden) the post-attention-normed tokens. */
strata_status moe_forward(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn, int64_t rows,
                          float *out);

/* moe_forward in three steps, for a caller that runs groups of experts over several chunks
 * of tokens (the same arithmetic in the same order per token):
 *   moe_route: the router's choice for xn, experts and weights (rows, top_k) each;
 *   moe_run_experts: experts [first, first + count) over their tokens of that choice,
 *     added into out in ascending expert order (out zeroed by the caller before the first);
 *   moe_add_shared: the shared expert(s), added into out last. */
strata_status moe_route(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn, int64_t rows,
                        int32_t *experts, float *weights);
strata_status moe_run_experts(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn,
                              int64_t rows, const int32_t *experts, const float *weights, int first, int count,
                              float *out);
strata_status moe_add_shared(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn,
                             int64_t rows, float *out);

/* Expert parallelism (pipeline/expert_parallel.c) runs an expert over rows gathered from
 * several ranks and adds its outputs on the rows' own ranks:
 *   moe_run_expert_rows: y (n, hidden) = expert e over x (n, hidden), unweighted;
 *     token_index (the rows' tokens, relative to the scratch's chunk_first_token) and
 *     weights (their routing weights) are for the hooks; n <= the scratch's rows;
 *   moe_add_weighted: out_row += y_row * w, the one accumulation moe_run_experts does
 *     (so a token's sum is the same bytes however its experts were run). */
strata_status moe_run_expert_rows(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, int e, const float *x,
                                  int64_t n, const int64_t *token_index, const float *weights, float *y);
static inline void moe_add_weighted(float *out_row, const float *y_row, float w, int64_t hidden)
{
    for (int64_t c = 0; c < hidden; c++) out_row[c] += y_row[c] * w;
}

#endif
