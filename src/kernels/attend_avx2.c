/*
 * attend_avx2.c — AVX2 twins of attend_generic.c (bit-identical): 32 outputs are
 * accumulated in four registers across the whole reduction, with a separate multiply
 * and add per step as the reference does.
 */
#include <immintrin.h>

#include "kernels/variants.h"

#define AVX2_TARGET __attribute__((target("avx2")))

enum { LANES = 8, UNROLL = 4 };

/* out[j] for j in [j0, j0 + LANES * k) with k <= UNROLL full vectors. */
AVX2_TARGET static inline void dot_block(const float *a, const float *m, size_t ld, size_t depth, size_t j0, int k,
                                           float *out)
{
    __m256 acc[UNROLL];
    for (int u = 0; u < UNROLL; u++) acc[u] = _mm256_setzero_ps();
    for (size_t d = 0; d < depth; d++) {
        __m256 ad = _mm256_set1_ps(a[d]);
        const float *row = m + d * ld + j0;
        for (int u = 0; u < k; u++) acc[u] = _mm256_add_ps(acc[u], _mm256_mul_ps(ad, _mm256_loadu_ps(row + u * LANES)));
    }
    for (int u = 0; u < k; u++) _mm256_storeu_ps(out + j0 + u * LANES, acc[u]);
}

AVX2_TARGET void avx2_dot_columns(const float *a, const float *m, size_t ld, size_t depth, size_t n, float *out)
{
    size_t j = 0;
    for (; j + UNROLL * LANES <= n; j += UNROLL * LANES) dot_block(a, m, ld, depth, j, UNROLL, out);
    if (j + LANES <= n) {
        int k = (int)((n - j) / LANES);
        dot_block(a, m, ld, depth, j, k, out);
        j += (size_t)k * LANES;
    }
    if (j < n) generic_dot_columns(a, m + j, ld, depth, n - j, out + j);
}

AVX2_TARGET void avx2_weighted_rows(const float *w, const float *m, size_t ld, size_t n_rows, size_t width,
                                        float *out)
{
    size_t c = 0;
    for (; c + LANES <= width; c += UNROLL * LANES) {
        int k = (int)((width - c) / LANES < UNROLL ? (width - c) / LANES : UNROLL);
        __m256 acc[UNROLL];
        for (int u = 0; u < UNROLL; u++) acc[u] = _mm256_setzero_ps();
        for (size_t r = 0; r < n_rows; r++) {
            __m256 wr = _mm256_set1_ps(w[r]);
            const float *row = m + r * ld + c;
            for (int u = 0; u < k; u++)
                acc[u] = _mm256_add_ps(acc[u], _mm256_mul_ps(wr, _mm256_loadu_ps(row + u * LANES)));
        }
        for (int u = 0; u < k; u++) _mm256_storeu_ps(out + c + u * LANES, acc[u]);
        if (k < UNROLL) {
            c += (size_t)k * LANES;
            break;
        }
    }
    if (c < width) generic_weighted_rows(w, m + c, ld, n_rows, width - c, out + c);
}
