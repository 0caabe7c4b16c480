/*
 * convert_avx2.c — AVX2 + F16C twins of the generic conversions (bit-identical).
 */
#include <immintrin.h>

#include "kernels/variants.h"

#define AVX2_TARGET __attribute__((target("avx2,f16c")))

AVX2_TARGET void avx2_bf16_to_f32(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
    }
    if (i < n) generic_bf16_to_f32(p + 2 * i, dst + i, n - i);
}

AVX2_TARGET void avx2_f16_to_f32(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    if (i < n) generic_f16_to_f32(p + 2 * i, dst + i, n - i);
}
