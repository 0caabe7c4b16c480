/*
 * convert_avx512.c — AVX-512 twins of the generic conversions (bit-identical).
 */
#include <immintrin.h>

#include "kernels/cpu.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw")))

AVX512_TARGET static void avx512_bf16_to_f32(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(p + 2 * i));
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(w));
    }
    if (i < n) KERNELS_GENERIC.bf16_to_f32(p + 2 * i, dst + i, n - i);
}

AVX512_TARGET static void avx512_f16_to_f32(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(p + 2 * i));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    }
    if (i < n) KERNELS_GENERIC.f16_to_f32(p + 2 * i, dst + i, n - i);
}

static bool avx512_supported(const cpu_features *f) { return f->avx512f && f->avx512bw; }

const kernel_set KERNELS_AVX512 = {
    .name = "avx512",
    .supported = avx512_supported,
    .bf16_to_f32 = avx512_bf16_to_f32,
    .f16_to_f32 = avx512_f16_to_f32,
};
