/*
 * moe.c — routed experts over a chunk of tokens (see moe.h).
 */
#include "forward/moe.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/activation.h" /* sigmoidf */
#include "kernels/topk.h"

static int64_t widest_expert(const strata_arch *arch)
{
    int64_t w = arch->moe.intermediate_size;
    return arch->moe.shared_intermediate_size > w ? arch->moe.shared_intermediate_size : w;
}

size_t moe_scratch_row_bytes(const strata_arch *arch)
{
    size_t E = (size_t)arch->moe.n_experts, k = (size_t)arch->moe.top_k, H = (size_t)arch->hidden_size;
    size_t I = (size_t)widest_expert(arch);
    return E * 4 + k * (4 + 4 + 8 + 4) + H * 4 * 2 + I * 4 * 2 + 8 + 4;
}

strata_status moe_scratch_init(moe_scratch *s, const strata_arch *arch, int64_t max_rows, bool observe_all)
{
    size_t rows = (size_t)max_rows, E = (size_t)arch->moe.n_experts, k = (size_t)arch->moe.top_k;
    size_t H = (size_t)arch->hidden_size, I = (size_t)widest_expert(arch);
    *s = (moe_scratch){
        .logits = malloc(rows * E * sizeof(float)),
        .experts = malloc(rows * k * sizeof(int32_t)),
        .weights = malloc(rows * k * sizeof(float)),
        .offsets = malloc((E + 1) * sizeof(int64_t)),
        .token_index = malloc(rows * k * sizeof(int64_t)),
        .token_weight = malloc(rows * k * sizeof(float)),
        .gathered = malloc(rows * H * sizeof(float)),
        .gate = malloc(rows * I * sizeof(float)),
        .up = malloc(rows * I * sizeof(float)),
        .expert_out = malloc(rows * H * sizeof(float)),
        .tokens_per_expert = calloc(E, sizeof(int64_t)),
        .observe_all = observe_all,
        .other_index = observe_all ? malloc(rows * sizeof(int64_t)) : NULL,
        .other_weight = observe_all ? calloc(rows, sizeof(float)) : NULL,
    };
    if (!s->logits || !s->experts || !s->weights || !s->offsets || !s->token_index || !s->token_weight ||
        !s->gathered || !s->gate || !s->up || !s->expert_out || !s->tokens_per_expert ||
        (observe_all && (!s->other_index || !s->other_weight))) {
        moe_scratch_free(s);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for MoE scratch of %lld tokens",
                           (long long)max_rows);
    }
    return STRATA_OK;
}

void moe_scratch_free(moe_scratch *s)
{
    free(s->logits);
    free(s->experts);
    free(s->weights);
    free(s->offsets);
    free(s->token_index);
    free(s->token_weight);
    free(s->gathered);
    free(s->gate);
    free(s->up);
    free(s->expert_out);
    free(s->tokens_per_expert);
    free(s->other_index);
    free(s->other_weight);
    *s = (moe_scratch){0};
}

/* Groups the (token, slot) choices by expert, tokens ascending within each group. */
static void group_by_expert(moe_scratch *s, int n_experts, int top_k, int64_t rows)
{
    memset(s->tokens_per_expert, 0, (size_t)n_experts * sizeof *s->tokens_per_expert);
    for (int64_t i = 0; i < rows * top_k; i++) s->tokens_per_expert[s->experts[i]]++;
    s->offsets[0] = 0;
    for (int e = 0; e < n_experts; e++) s->offsets[e + 1] = s->offsets[e] + s->tokens_per_expert[e];
    int64_t *fill = s->offsets; /* advanced below, then restored */
    for (int64_t t = 0; t < rows; t++) {
        for (int slot = 0; slot < top_k; slot++) {
            int e = s->experts[t * top_k + slot];
            s->token_index[fill[e]] = t;
            s->token_weight[fill[e]] = s->weights[t * top_k + slot];
            fill[e]++;
        }
    }
    for (int e = n_experts; e > 0; e--) s->offsets[e] = s->offsets[e - 1];
    s->offsets[0] = 0;
}

/* observe_all: expert e over the tokens not routed to it, for the hooks only (its routed
 * tokens are s->token_index[begin, begin + n), ascending). */
static strata_status observe_unrouted(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, int e,
                                      const float *xn, int64_t rows)
{
    int64_t H = lw->arch->hidden_size, begin = s->offsets[e], end = s->offsets[e + 1], m = 0;
    for (int64_t t = 0, j = begin; t < rows; t++) {
        if (j < end && s->token_index[j] == t) {
            j++;
            continue;
        }
        memcpy(s->gathered + m * H, xn + t * H, (size_t)H * sizeof(float));
        s->other_index[m++] = t;
    }
    if (m == 0) return STRATA_OK;
    linear_input group = linear_input_make(ls, s->gathered, m, H);
    group.token_index = s->other_index;
    group.weights = s->other_weight;
    return linear_run_gated_mlp(ls, lw->expert_gate[e], lw->expert_up[e], lw->expert_down[e], &group, s->gate, s->up,
                                s->expert_out);
}

/* Expert e over its routed tokens, its output added into out scaled by their routing
 * weights; with observe_all, also over the others for the hooks. */
static strata_status run_expert(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, int e, const float *xn,
                                int64_t rows, float *out)
{
    int64_t H = lw->arch->hidden_size, begin = s->offsets[e], n = s->offsets[e + 1] - begin;
    strata_status status = STRATA_OK;
    if (n > 0) {
        for (int64_t i = 0; i < n; i++)
            memcpy(s->gathered + i * H, xn + s->token_index[begin + i] * H, (size_t)H * sizeof(float));
        linear_input group = linear_input_make(ls, s->gathered, n, H);
        group.token_index = s->token_index + begin;
        group.weights = s->token_weight + begin;
        status = linear_run_gated_mlp(ls, lw->expert_gate[e], lw->expert_up[e], lw->expert_down[e], &group, s->gate,
                                      s->up, s->expert_out);
        for (int64_t i = 0; status == STRATA_OK && i < n; i++)
            moe_add_weighted(out + s->token_index[begin + i] * H, s->expert_out + i * H, s->token_weight[begin + i], H);
    }
    if (status == STRATA_OK && s->observe_all) status = observe_unrouted(lw, ls, s, e, xn, rows);
    return status;
}

strata_status moe_route(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn, int64_t rows,
                        int32_t *experts, float *weights)
{
    const strata_arch *arch = lw->arch;
    int E = arch->moe.n_experts;
    linear_input in = linear_input_make(ls, xn, rows, arch->hidden_size);
    strata_status status = linear_run(ls, lw->router, &in, s->logits, E);
    if (status != STRATA_OK) return status;
    routing_rule rule = {.n_experts = E, .top_k = arch->moe.top_k, .softmax_first = arch->moe.softmax_before_topk,
                         .renormalize = arch->moe.renormalize, .sigmoid = arch->routing.sigmoid,
                         .bias = lw->router_bias, .n_group = arch->routing.n_group,
                         .topk_group = arch->routing.topk_group, .scaling = (float)arch->routing.scaling};
    route_tokens(&rule, s->logits, rows, experts, weights);
    return STRATA_OK;
}

strata_status moe_run_experts(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn,
                              int64_t rows, const int32_t *experts, const float *weights, int first, int count,
                              float *out)
{
    int E = lw->arch->moe.n_experts, k = lw->arch->moe.top_k;
    memcpy(s->experts, experts, (size_t)(rows * k) * sizeof *experts);
    memcpy(s->weights, weights, (size_t)(rows * k) * sizeof *weights);
    group_by_expert(s, E, k, rows);
    strata_status status = STRATA_OK;
    for (int e = first; e < first + count && status == STRATA_OK; e++) {
        if (s->offsets[e + 1] == s->offsets[e] && !s->observe_all) continue; /* no tokens: nothing to run */
        status = layer_weights_materialize_experts(lw, e, 1);
        if (status == STRATA_OK) status = run_expert(lw, ls, s, e, xn, rows, out);
    }
    return status;
}

strata_status moe_run_expert_rows(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, int e, const float *x,
                                  int64_t n, const int64_t *token_index, const float *weights, float *y)
{
    if (n == 0) return STRATA_OK;
    strata_status status = layer_weights_materialize_experts(lw, e, 1);
    if (status != STRATA_OK) return status;
    linear_input group = linear_input_make(ls, x, n, lw->arch->hidden_size);
    group.token_index = token_index;
    group.weights = weights;
    return linear_run_gated_mlp(ls, lw->expert_gate[e], lw->expert_up[e], lw->expert_down[e], &group, s->gate, s->up, y);
}

strata_status moe_add_shared(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn,
                             int64_t rows, float *out)
{
    if (!lw->shared_gate) return STRATA_OK;
    int64_t H = lw->arch->hidden_size;
    /* qwen2_moe: out += sigmoid(shared_expert_gate(x)) * shared_expert(x); glm4_moe's and
     * deepseek_v3's shared experts have no gate: out += shared_experts(x). */
    linear_input in = linear_input_make(ls, xn, rows, H);
    strata_status status = linear_run_gated_mlp(ls, lw->shared_gate, lw->shared_up, lw->shared_down, &in, s->gate,
                                                s->up, s->expert_out);
    if (status == STRATA_OK && lw->shared_expert_gate) status = linear_run(ls, lw->shared_expert_gate, &in, s->logits, 1);
    if (status != STRATA_OK) return status;
    for (int64_t t = 0; t < rows; t++) {
        float g = lw->shared_expert_gate ? sigmoidf(s->logits[t]) : 1.0f;
        for (int64_t c = 0; c < H; c++) out[t * H + c] += g * s->expert_out[t * H + c];
    }
    return STRATA_OK;
}

strata_status moe_forward(const layer_weights *lw, linear_scratch *ls, moe_scratch *s, const float *xn, int64_t rows,
                          float *out)
{
    int E = lw->arch->moe.n_experts;
    strata_status status = moe_route(lw, ls, s, xn, rows, s->experts, s->weights);
    if (status != STRATA_OK) return status;
    memset(out, 0, (size_t)(rows * lw->arch->hidden_size) * sizeof *out);
    /* Experts in ascending order; a grouped layer materializes them a group at a time. */
    int group = lw->experts_per_group > 0 ? lw->experts_per_group : E;
    for (int g = 0; g < E && status == STRATA_OK; g += group) {
        int count = E - g < group ? E - g : group;
        status = moe_run_experts(lw, ls, s, xn, rows, s->experts, s->weights, g, count, out);
        layer_weights_release_experts(lw, g, count);
    }
    return status == STRATA_OK ? moe_add_shared(lw, ls, s, xn, rows, out) : status;
}
