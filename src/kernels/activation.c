/*
 * activation.c — SiLU-gated products on the thread pool (see activation.h).
 */
#include "kernels/activation.h"

#include <math.h>

#include "kernels/pool.h"

typedef struct silu_job {
    const float *gate, *up;
    int64_t ldg, ldu, n, ldo;
    float *out;
} silu_job;

float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

static void silu_range(void *ctx, int64_t begin, int64_t end)
{
    const silu_job *job = ctx;
    for (int64_t r = begin; r < end; r++) {
        const float *g = job->gate + r * job->ldg;
        const float *u = job->up + r * job->ldu;
        float *o = job->out + r * job->ldo;
        for (int64_t i = 0; i < job->n; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

void silu_mul_rows(const float *gate, int64_t ldg, const float *up, int64_t ldu, int64_t rows, int64_t n, float *out,
                   int64_t ldo)
{
    silu_job job = {gate, up, ldg, ldu, n, ldo, out};
    pool_parallel_for(rows, n >= 4096 ? 2 : 16384 / (n + 1) + 1, silu_range, &job);
}
