/*
 * linalg.c — the one file that calls LAPACK (OpenBLAS's build of it; see linalg.h).
 *
 * LAPACK is column-major; a symmetric matrix stored row-major is the same matrix read
 * column-major, and the row-major upper triangle is LAPACK's lower one. So the GPTQ
 * factor (upper U with H^-1 = U^T U, row-major) is: spotrf('L') (H = L L^T), spotri('L')
 * (H^-1 in LAPACK's lower = our upper triangle), spotrf('L') again (H^-1 = L2 L2^T, and
 * L2^T is our upper triangle). This is the sequence torch runs for llm-compressor:
 * cholesky, cholesky_inverse, cholesky(upper=True).
 *
 * OpenBLAS picks its kernels when it loads (OPENBLAS_CORETYPE overrides its choice; on
 * this project's machines it detects Haswell kernels on AVX-512 CPUs, correct but about
 * half the speed). Its thread count is set to the pool's before each call.
 */
#include "kernels/linalg.h"

#include <stddef.h>
#include <string.h>

#include "kernels/pool.h"

/* Fortran LAPACK with gfortran's hidden string-length arguments. */
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
extern void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
extern void openblas_set_num_threads(int n);

int linalg_inverse_cholesky_upper(float *a, int64_t n)
{
    if (n <= 0 || n > INT32_MAX) return -1;
    int dim = (int)n, info = 0;
    openblas_set_num_threads(pool_thread_count());
    spotrf_("L", &dim, a, &dim, &info, 1);
    if (info == 0) spotri_("L", &dim, a, &dim, &info, 1);
    if (info == 0) spotrf_("L", &dim, a, &dim, &info, 1);
    if (info != 0) return info;
    /* LAPACK left our lower triangle as it was; the factor is upper triangular. */
    for (int64_t r = 1; r < n; r++) memset(a + r * n, 0, (size_t)r * sizeof *a);
    return 0;
}
