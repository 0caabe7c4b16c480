/*
 * topk.h — MoE routing: which experts each token goes to, and with what weight.
 *
 * softmax_first (mixtral, qwen2_moe, qwen3_moe): probabilities = softmax over all experts
 * in fp32, keep the top_k largest (ties to the lower expert index, in descending order),
 * and when renormalize divide them by their sum. Otherwise the top_k logits are chosen
 * and softmaxed among themselves (which equals the renormalized case). At most 4096
 * experts (the limit config.c enforces).
 *
 * sigmoid (glm4_moe, as transformers' Glm4MoeTopkRouter): scores = sigmoid(logits) in fp32;
 * the choice ranks scores + bias[e]; experts form n_group consecutive groups, each scored by
 * the sum of its two best, and only the topk_group best groups (ties to the lower index)
 * are eligible; the top_k eligible experts are chosen (descending, ties to the lower
 * index); their weights are their plain scores, divided by (sum + 1e-20) when renormalize,
 * times scaling.
 */
#ifndef STRATA_KERNELS_TOPK_H
#define STRATA_KERNELS_TOPK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct routing_rule {
    int n_experts, top_k;
    bool softmax_first, renormalize;
    /* sigmoid routing: */
    bool sigmoid;
    const float *bias;     /* (n_experts) correction bias for the choice, or NULL */
    int n_group, topk_group;
    float scaling;
} routing_rule;

/* logits (rows, n_experts); experts and weights (rows, top_k). */
void route_tokens(const routing_rule *rule, const float *logits, int64_t rows, int32_t *experts, float *weights);

#endif
