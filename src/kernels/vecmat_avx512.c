/*
 * vecmat_avx512.c — the AVX-512 vector-matrix product (see vecmat_simd.h).
 */
#include <immintrin.h>

#include "kernels/variants.h"

#define VECMAT_NAME avx512_vecmat
#define TARGET __attribute__((target("avx512f")))
#define VEC __m512
#define LANES 16
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps(p, x)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#include "kernels/vecmat_simd.h"
