/*
 * rmsnorm.c — RMSNorm over rows (see rmsnorm.h). The mean of squares is accumulated in
 * double, so the result does not depend on how a vectorizing compiler orders the sum.
 */
#include "kernels/rmsnorm.h"

#include <math.h>

#include "kernels/pool.h"

typedef struct rmsnorm_job {
    const float *x;
    int64_t ldx, n;
    const float *weight;
    float eps;
    float *y;
    int64_t ldy;
} rmsnorm_job;

static void rmsnorm_range(void *ctx, int64_t begin, int64_t end)
{
    const rmsnorm_job *job = ctx;
    for (int64_t r = begin; r < end; r++) {
        const float *x = job->x + r * job->ldx;
        float *y = job->y + r * job->ldy;
        double sum = 0.0;
        for (int64_t i = 0; i < job->n; i++) sum += (double)x[i] * (double)x[i];
        float mean = (float)(sum / (double)job->n);
        float inv = 1.0f / sqrtf(mean + job->eps);
        for (int64_t i = 0; i < job->n; i++) y[i] = job->weight[i] * (x[i] * inv);
    }
}

void rmsnorm_rows(const float *x, int64_t ldx, int64_t rows, int64_t n, const float *weight, float eps, float *y,
                  int64_t ldy)
{
    rmsnorm_job job = {x, ldx, n, weight, eps, y, ldy};
    int64_t grain = n >= 4096 ? 4 : 16384 / (n + 1) + 1;
    pool_parallel_for(rows, grain, rmsnorm_range, &job);
}
