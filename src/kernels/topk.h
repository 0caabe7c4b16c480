/*
 * topk.h — MoE routing: which experts each token goes to, and with what weight.
 *
 * softmax_first (mixtral, qwen2_moe, qwen3_moe): probabilities = softmax over all experts
 * in fp32, keep the top_k largest (ties to the lower expert index, in descending order),
 * and when renormalize divide them by their sum. Otherwise the top_k logits are chosen
 * and softmaxed among themselves (which equals the renormalized case). At most 4096
 * experts (the limit config.c enforces).
 */
#ifndef STRATA_KERNELS_TOPK_H
#define STRATA_KERNELS_TOPK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct routing_rule {
    int n_experts, top_k;
    bool softmax_first, renormalize;
} routing_rule;

/* logits (rows, n_experts); experts and weights (rows, top_k). */
void route_tokens(const routing_rule *rule, const float *logits, int64_t rows, int32_t *experts, float *weights);

#endif
