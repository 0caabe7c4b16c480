/*
 * rmsnorm.h — RMSNorm as transformers' LlamaRMSNorm computes it in fp32:
 * y = w * (x / sqrt(mean(x^2) + eps)).
 */
#ifndef STRATA_KERNELS_RMSNORM_H
#define STRATA_KERNELS_RMSNORM_H

#include <stdint.h>

/* Normalizes rows of n elements: x row r at x + r * ldx, y row r at y + r * ldy (y may be
 * x with the same stride). weight (n). Runs on the thread pool over rows. */
void rmsnorm_rows(const float *x, int64_t ldx, int64_t rows, int64_t n, const float *weight, float eps, float *y,
                  int64_t ldy);

#endif
