/*
 * linalg.h — dense linear algebra from LAPACK: the Cholesky factorizations GPTQ needs.
 */
#ifndef STRATA_KERNELS_LINALG_H
#define STRATA_KERNELS_LINALG_H

#include <stdint.h>

/* Replaces the symmetric positive definite a (n, n), row-major, by the upper triangular U
 * with a^-1 = U^T U (the rest zeroed). Returns 0, or LAPACK's info (> 0: a is not
 * positive definite; a is then garbage). Call outside pool tasks. */
int linalg_inverse_cholesky_upper(float *a, int64_t n);

#endif
