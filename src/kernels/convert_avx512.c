/*
 * convert_avx512.c — AVX-512 twins of the generic conversions (bit-identical).
 */
#include <immintrin.h>

#include "kernels/variants.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw")))

AVX512_TARGET void avx512_bf16_to_f32(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(p + 2 * i));
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(w));
    }
    if (i < n) generic_bf16_to_f32(p + 2 * i, dst + i, n - i);
}

AVX512_TARGET void avx512_f16_to_f32(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(p + 2 * i));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    }
    if (i < n) generic_f16_to_f32(p + 2 * i, dst + i, n - i);
}
