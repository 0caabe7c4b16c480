/*
 * topk.c — softmax and top-k selection for MoE routers (see topk.h).
 */
#include "kernels/topk.h"

#include <math.h>

#include "kernels/pool.h"

enum { MAX_EXPERTS = 4096 }; /* config.c refuses more */

typedef struct route_job {
    const routing_rule *rule;
    const float *logits;
    int32_t *experts;
    float *weights;
} route_job;

/* In-place softmax over n values. */
static void softmax(float *x, int n)
{
    float max = -INFINITY;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* The index of the largest of values[0..n) not taken (ties to the lower index; NaN never wins
 * over a number). */
static int best_untaken(const float *values, const bool *taken, int n)
{
    int best = -1;
    for (int e = 0; e < n; e++)
        if (!taken[e] && (best < 0 || values[e] > values[best] || (isnan(values[best]) && !isnan(values[e])))) best = e;
    return best;
}

static void route_sigmoid(const routing_rule *rule, const float *logits, int32_t *experts, float *weights)
{
    int E = rule->n_experts, k = rule->top_k, G = rule->n_group > 0 ? rule->n_group : 1, per = E / G;
    float scores[MAX_EXPERTS], choice[MAX_EXPERTS], group_score[MAX_EXPERTS];
    bool taken[MAX_EXPERTS], group_taken[MAX_EXPERTS];
    for (int e = 0; e < E; e++) {
        scores[e] = 1.0f / (1.0f + expf(-logits[e]));
        choice[e] = scores[e] + (rule->bias ? rule->bias[e] : 0.0f);
    }
    for (int g = 0; g < G; g++) { /* sum of the group's two best */
        float first = -INFINITY, second = -INFINITY;
        for (int e = g * per; e < (g + 1) * per; e++) {
            if (choice[e] > first) {
                second = first;
                first = choice[e];
            } else if (choice[e] > second) {
                second = choice[e];
            }
        }
        group_score[g] = first + second;
        group_taken[g] = false;
    }
    for (int n = 0; n < rule->topk_group && n < G; n++) group_taken[best_untaken(group_score, group_taken, G)] = true;
    for (int e = 0; e < E; e++) taken[e] = !group_taken[e / per]; /* ineligible experts count as taken */
    float sum = 0.0f;
    for (int slot = 0; slot < k; slot++) {
        int best = best_untaken(choice, taken, E);
        taken[best] = true;
        experts[slot] = best;
        weights[slot] = scores[best];
        sum += scores[best];
    }
    for (int slot = 0; slot < k; slot++) {
        if (rule->renormalize) weights[slot] /= sum + 1e-20f;
        weights[slot] *= rule->scaling;
    }
}

static void route_range(void *ctx, int64_t begin, int64_t end)
{
    const route_job *job = ctx;
    const routing_rule *rule = job->rule;
    if (rule->sigmoid) {
        for (int64_t r = begin; r < end; r++)
            route_sigmoid(rule, job->logits + r * rule->n_experts, job->experts + r * rule->top_k,
                          job->weights + r * rule->top_k);
        return;
    }
    int E = rule->n_experts, k = rule->top_k;
    float values[MAX_EXPERTS];
    bool taken[MAX_EXPERTS];
    for (int64_t r = begin; r < end; r++) {
        for (int e = 0; e < E; e++) {
            values[e] = job->logits[r * E + e];
            taken[e] = false;
        }
        if (rule->softmax_first) softmax(values, E);
        int32_t *experts = job->experts + r * k;
        float *weights = job->weights + r * k;
        for (int slot = 0; slot < k; slot++) {
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!taken[e] && (best < 0 || values[e] > values[best] || (isnan(values[best]) && !isnan(values[e]))))
                    best = e;
            taken[best] = true;
            experts[slot] = best;
            weights[slot] = values[best];
        }
        if (!rule->softmax_first) {
            softmax(weights, k);
        } else if (rule->renormalize) {
            float sum = 0.0f;
            for (int slot = 0; slot < k; slot++) sum += weights[slot];
            for (int slot = 0; slot < k; slot++) weights[slot] /= sum;
        }
    }
}

void route_tokens(const routing_rule *rule, const float *logits, int64_t rows, int32_t *experts, float *weights)
{
    route_job job = {rule, logits, experts, weights};
    pool_parallel_for(rows, 256, route_range, &job);
}
