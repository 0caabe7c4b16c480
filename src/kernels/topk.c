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

static void route_range(void *ctx, int64_t begin, int64_t end)
{
    const route_job *job = ctx;
    const routing_rule *rule = job->rule;
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
