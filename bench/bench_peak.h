/*
 * bench_peak.h — the oneDNN matmul peak of this machine, measured in the benchmark's own
 * run: the best of three (m, k) x (k, n) products through gemm_linear.
 */
#ifndef STRATA_BENCH_PEAK_H
#define STRATA_BENCH_PEAK_H

#include <stdlib.h>

#include "bench_clock.h"
#include "kernels/gemm.h"

static inline double matmul_peak(gemm_precision precision, int64_t m, int64_t n, int64_t k)
{
    size_t element = precision == GEMM_BF16 ? 2 : 4;
    void *w = calloc((size_t)(n * k), element), *x = calloc((size_t)(m * k), element);
    float *y = malloc((size_t)(m * n) * sizeof *y);
    gemm_weight *g;
    double best = 0;
    if (gemm_weight_create(precision, precision == GEMM_BF16 ? STRATA_DTYPE_BF16 : STRATA_DTYPE_F32, w, n, k, "peak",
                           &g) == STRATA_OK) {
        for (int r = 0; r < 3; r++) {
            double t = now();
            gemm_linear(g, x, k, m, y, n);
            double gf = 2.0 * (double)m * (double)n * (double)k / (now() - t) * 1e-9;
            if (gf > best) best = gf;
        }
        gemm_weight_free(g);
    }
    free(w);
    free(x);
    free(y);
    return best;
}

#endif
