/*
 * vecmat_avx2.c — the AVX2 vector-matrix product (see vecmat_simd.h).
 */
#include <immintrin.h>

#include "kernels/variants.h"

#define VECMAT_NAME avx2_vecmat
#define TARGET __attribute__((target("avx2")))
#define VEC __m256
#define LANES 8
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps(p, x)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#include "kernels/vecmat_simd.h"
