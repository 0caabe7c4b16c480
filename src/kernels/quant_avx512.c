/*
 * quant_avx512.c — AVX-512 twins of quant_generic.c, bit-identical to it: the same
 * division, the same integer steps of PyTorch's E4M3 conversion, and E2M1 as a count of
 * threshold comparisons.
 */
#include <float.h>
#include <immintrin.h>
#include <string.h>

#include "kernels/variants.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

AVX512_TARGET static inline __m512i e4m3_encode16(__m512 y)
{
    __m512i bits = _mm512_castps_si512(y);
    __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
    __m512i sign = _mm512_srli_epi32(_mm512_andnot_si512(_mm512_set1_epi32(0x7fffffff), bits), 24);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(magnitude, 20), _mm512_set1_epi32(1));
    __m512i normal = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(magnitude, _mm512_set1_epi32((int)0xC407FFFFu)), odd), 20);
    const __m512i denorm_magic = _mm512_set1_epi32(141 << 23);
    __m512 shifted = _mm512_add_ps(_mm512_castsi512_ps(magnitude), _mm512_castsi512_ps(denorm_magic));
    __m512i subnormal = _mm512_sub_epi32(_mm512_castps_si512(shifted), denorm_magic);
    __mmask16 is_subnormal = _mm512_cmplt_epu32_mask(magnitude, _mm512_set1_epi32(0x3c800000));
    __mmask16 saturates = _mm512_cmpge_epu32_mask(magnitude, _mm512_set1_epi32(0x43e80000));
    __m512i r = _mm512_mask_blend_epi32(is_subnormal, normal, subnormal);
    r = _mm512_mask_blend_epi32(saturates, r, _mm512_set1_epi32(0x7e));
    return _mm512_and_si512(_mm512_or_si512(r, sign), _mm512_set1_epi32(0xff));
}

AVX512_TARGET static inline __m512 bf16_round16(__m512 y)
{
    __m512i bits = _mm512_castps_si512(y);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    bits = _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb);
    return _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32((int)0xffff0000u)));
}

AVX512_TARGET bool avx512_block_absmax(const float *x, size_t n, size_t block, float *out)
{
    const __m512 max_finite = _mm512_set1_ps(FLT_MAX);
    __mmask16 bad = 0;
    for (size_t start = 0, b = 0; start < n; start += block, b++) {
        size_t end = start + block < n ? start + block : n;
        __m512 acc = _mm512_setzero_ps();
        for (size_t i = start; i < end; i += 16) {
            size_t left = end - i;
            __m512 a = _mm512_abs_ps(left >= 16 ? _mm512_loadu_ps(x + i)
                                                : _mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1), x + i));
            bad |= _mm512_cmp_ps_mask(a, max_finite, _CMP_NLE_UQ); /* NaN or infinite */
            a = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, max_finite, _CMP_NLE_UQ), a, _mm512_setzero_ps());
            acc = _mm512_max_ps(acc, a);
        }
        out[b] = _mm512_reduce_max_ps(acc);
    }
    return bad == 0;
}

AVX512_TARGET void avx512_e4m3_divide(const float *x, size_t n, float divisor, bool round_bf16, uint8_t *out)
{
    const __m512 d = _mm512_set1_ps(divisor);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        if (left >= 16) {
            __m512 y = _mm512_div_ps(_mm512_loadu_ps(x + i), d);
            if (round_bf16) y = bf16_round16(y);
            _mm_storeu_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(e4m3_encode16(y)));
            continue;
        }
        __mmask16 m = (__mmask16)((1u << left) - 1);
        __m512 y = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), d);
        if (round_bf16) y = bf16_round16(y);
        _mm512_mask_cvtepi32_storeu_epi8(out + i, m, e4m3_encode16(y));
    }
}

AVX512_TARGET void avx512_e2m1_divide_blocks(const float *x, size_t n_blocks, const float *divisors, uint8_t *codes)
{
    const __m512i one = _mm512_set1_epi32(1);
    for (size_t b = 0; b < n_blocks; b++) {
        __m512 y = _mm512_div_ps(_mm512_loadu_ps(x + 16 * b), _mm512_set1_ps(divisors[b]));
        __m512 a = _mm512_abs_ps(y);
        __m512i code = _mm512_setzero_si512();
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.25f), _CMP_GT_OQ), code, one);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.75f), _CMP_GE_OQ), code, one);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.25f), _CMP_GT_OQ), code, one);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.75f), _CMP_GE_OQ), code, one);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(a, _mm512_set1_ps(2.5f), _CMP_GT_OQ), code, one);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.5f), _CMP_GE_OQ), code, one);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(a, _mm512_set1_ps(5.0f), _CMP_GT_OQ), code, one);
        __mmask16 negative = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ);
        code = _mm512_mask_or_epi32(code, negative, code, _mm512_set1_epi32(8));
        /* Pairs (even, odd) share a 64-bit lane: low nibble even, high nibble odd. */
        __m512i pairs = _mm512_or_si512(code, _mm512_srli_epi64(code, 28));
        _mm_storel_epi64((__m128i *)(codes + 8 * b), _mm512_cvtepi64_epi8(pairs));
    }
}

/* Horizontal maximum of 32 unsigned 16-bit lanes (minpos on the complement). */
AVX512_TARGET static inline uint16_t hmax_epu16(__m512i v)
{
    __m256i m = _mm256_max_epu16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i h = _mm_max_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    return (uint16_t)(0xffff - (_mm_cvtsi128_si32(_mm_minpos_epu16(_mm_xor_si128(h, _mm_set1_epi16(-1)))) & 0xffff));
}

/* Maximum within each group of 16 u16 lanes, left in every lane of the group: swap and
 * compare at distances 8, 4, 2 and 1 lanes. */
AVX512_TARGET static inline __m512i group16_max_epu16(__m512i v)
{
    v = _mm512_max_epu16(v, _mm512_shuffle_i64x2(v, v, 0xb1));            /* 128-bit halves of each group */
    v = _mm512_max_epu16(v, _mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0x4e)); /* 64-bit halves */
    v = _mm512_max_epu16(v, _mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0xb1)); /* 32-bit words */
    v = _mm512_max_epu16(v, _mm512_shufflehi_epi16(_mm512_shufflelo_epi16(v, 0xb1), 0xb1)); /* neighbours */
    return v;
}

AVX512_TARGET bool avx512_bf16_block_absmax(const void *src, size_t n, size_t block, float *out)
{
    const uint16_t *h = src;
    const __m512i magnitude_mask = _mm512_set1_epi16(0x7fff), exponent = _mm512_set1_epi16(0x7f80);
    __mmask32 bad = 0;
    if (block == 16 && n % 32 == 0) {
        /* NVFP4: two blocks per vector. */
        for (size_t i = 0; i < n; i += 32) {
            __m512i v = _mm512_and_si512(_mm512_loadu_si512(h + i), magnitude_mask);
            __mmask32 not_finite = _mm512_cmpeq_epi16_mask(_mm512_and_si512(v, exponent), exponent);
            bad |= not_finite;
            v = group16_max_epu16(_mm512_maskz_mov_epi16(~not_finite, v));
            uint32_t lo = (uint32_t)_mm_extract_epi16(_mm512_castsi512_si128(v), 0) << 16;
            uint32_t hi = (uint32_t)_mm_extract_epi16(_mm512_extracti32x4_epi32(v, 2), 0) << 16;
            memcpy(&out[i / 16], &lo, sizeof lo);
            memcpy(&out[i / 16 + 1], &hi, sizeof hi);
        }
        return bad == 0;
    }
    for (size_t start = 0, b = 0; start < n; start += block, b++) {
        size_t end = start + block < n ? start + block : n;
        __m512i acc = _mm512_setzero_si512();
        for (size_t i = start; i < end; i += 32) {
            size_t left = end - i;
            /* Plain loads for whole vectors; a masked load only for the tail. */
            __m512i v = left >= 32 ? _mm512_loadu_si512(h + i)
                                   : _mm512_maskz_loadu_epi16((__mmask32)((1u << left) - 1), h + i);
            v = _mm512_and_si512(v, magnitude_mask);
            __mmask32 not_finite = _mm512_cmpeq_epi16_mask(_mm512_and_si512(v, exponent), exponent);
            bad |= not_finite;
            acc = _mm512_max_epu16(acc, _mm512_maskz_mov_epi16(~not_finite, v));
        }
        uint32_t bits = (uint32_t)hmax_epu16(acc) << 16;
        memcpy(&out[b], &bits, sizeof bits);
    }
    return bad == 0;
}
