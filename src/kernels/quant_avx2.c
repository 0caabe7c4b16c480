/*
 * quant_avx2.c — AVX2 twins of quant_generic.c, bit-identical to it (see quant_avx512.c
 * for the method); tails shorter than a vector go through the generic kernels.
 */
#include <float.h>
#include <immintrin.h>
#include <string.h>

#include "kernels/variants.h"

#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

/* Magnitudes are below 2^31, so signed 32-bit compares order them correctly. */
AVX2_TARGET static inline __m256i e4m3_encode8(__m256 y)
{
    __m256i bits = _mm256_castps_si256(y);
    __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
    __m256i sign = _mm256_srli_epi32(_mm256_andnot_si256(_mm256_set1_epi32(0x7fffffff), bits), 24);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(magnitude, 20), _mm256_set1_epi32(1));
    __m256i normal = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(magnitude, _mm256_set1_epi32((int)0xC407FFFFu)), odd), 20);
    const __m256i denorm_magic = _mm256_set1_epi32(141 << 23);
    __m256 shifted = _mm256_add_ps(_mm256_castsi256_ps(magnitude), _mm256_castsi256_ps(denorm_magic));
    __m256i subnormal = _mm256_sub_epi32(_mm256_castps_si256(shifted), denorm_magic);
    __m256i is_subnormal = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), magnitude);
    __m256i saturates = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x43e80000 - 1));
    __m256i r = _mm256_blendv_epi8(normal, subnormal, is_subnormal);
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7e), saturates);
    return _mm256_and_si256(_mm256_or_si256(r, sign), _mm256_set1_epi32(0xff));
}

/* The low byte of each of 8 int32 lanes, stored as 8 bytes. */
AVX2_TARGET static inline void store_low_bytes8(uint8_t *out, __m256i v)
{
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i packed = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pick), _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
    _mm_storel_epi64((__m128i *)out, _mm256_castsi256_si128(packed));
}

AVX2_TARGET static inline __m256 bf16_round8(__m256 y)
{
    __m256i bits = _mm256_castps_si256(y);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    bits = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb);
    return _mm256_castsi256_ps(_mm256_and_si256(bits, _mm256_set1_epi32((int)0xffff0000u)));
}

AVX2_TARGET static inline float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

AVX2_TARGET bool avx2_block_absmax(const float *x, size_t n, size_t block, float *out)
{
    const __m256 sign_mask = _mm256_set1_ps(-0.0f), max_finite = _mm256_set1_ps(FLT_MAX);
    __m256 bad = _mm256_setzero_ps();
    bool finite = true;
    for (size_t start = 0, b = 0; start < n; start += block, b++) {
        size_t end = start + block < n ? start + block : n, i = start;
        __m256 acc = _mm256_setzero_ps();
        for (; i + 8 <= end; i += 8) {
            __m256 a = _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(x + i));
            __m256 not_finite = _mm256_cmp_ps(a, max_finite, _CMP_NLE_UQ);
            bad = _mm256_or_ps(bad, not_finite);
            acc = _mm256_max_ps(acc, _mm256_andnot_ps(not_finite, a));
        }
        float a = hmax8(acc), tail;
        if (i < end) {
            finite &= generic_block_absmax(x + i, end - i, end - i, &tail);
            a = tail > a ? tail : a;
        }
        out[b] = a;
    }
    return finite && _mm256_movemask_ps(bad) == 0;
}

AVX2_TARGET void avx2_e4m3_divide(const float *x, size_t n, float divisor, bool round_bf16, uint8_t *out)
{
    const __m256 d = _mm256_set1_ps(divisor);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_div_ps(_mm256_loadu_ps(x + i), d);
        if (round_bf16) y = bf16_round8(y);
        store_low_bytes8(out + i, e4m3_encode8(y));
    }
    if (i < n) generic_e4m3_divide(x + i, n - i, divisor, round_bf16, out + i);
}

AVX2_TARGET void avx2_e2m1_divide_blocks(const float *x, size_t n_blocks, const float *divisors, uint8_t *codes)
{
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    const __m256i one = _mm256_set1_epi32(1);
    for (size_t b = 0; b < n_blocks; b++) {
        const __m256 d = _mm256_set1_ps(divisors[b]);
        for (size_t half = 0; half < 2; half++) {
            __m256 y = _mm256_div_ps(_mm256_loadu_ps(x + 16 * b + 8 * half), d);
            __m256 a = _mm256_andnot_ps(sign_mask, y);
            __m256i code = _mm256_setzero_si256();
#define COUNT_IF(threshold, predicate) \
    code = _mm256_add_epi32(code, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(threshold), predicate)), one))
            COUNT_IF(0.25f, _CMP_GT_OQ);
            COUNT_IF(0.75f, _CMP_GE_OQ);
            COUNT_IF(1.25f, _CMP_GT_OQ);
            COUNT_IF(1.75f, _CMP_GE_OQ);
            COUNT_IF(2.5f, _CMP_GT_OQ);
            COUNT_IF(3.5f, _CMP_GE_OQ);
            COUNT_IF(5.0f, _CMP_GT_OQ);
#undef COUNT_IF
            __m256i negative = _mm256_castps_si256(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_LT_OQ));
            code = _mm256_or_si256(code, _mm256_and_si256(negative, _mm256_set1_epi32(8)));
            __m256i pairs = _mm256_and_si256(_mm256_or_si256(code, _mm256_srli_epi64(code, 28)), _mm256_set1_epi64x(0xff));
            /* Low byte of each 64-bit lane -> 4 bytes. */
            const __m256i pick = _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                  0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
            __m256i gathered = _mm256_shuffle_epi8(pairs, pick);
            uint32_t lo = (uint32_t)_mm256_extract_epi16(gathered, 0), hi = (uint32_t)_mm256_extract_epi16(gathered, 8);
            uint32_t word = lo | hi << 16;
            uint8_t *dst = codes + 8 * b + 4 * half;
            dst[0] = (uint8_t)word;
            dst[1] = (uint8_t)(word >> 8);
            dst[2] = (uint8_t)(word >> 16);
            dst[3] = (uint8_t)(word >> 24);
        }
    }
}

AVX2_TARGET bool avx2_bf16_block_absmax(const void *src, size_t n, size_t block, float *out)
{
    const uint8_t *bytes = src;
    const __m256i magnitude_mask = _mm256_set1_epi16(0x7fff), exponent = _mm256_set1_epi16(0x7f80);
    __m256i bad = _mm256_setzero_si256();
    bool finite = true;
    for (size_t start = 0, b = 0; start < n; start += block, b++) {
        size_t end = start + block < n ? start + block : n, i = start;
        __m256i acc = _mm256_setzero_si256();
        for (; i + 16 <= end; i += 16) {
            __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(bytes + 2 * i)), magnitude_mask);
            __m256i not_finite = _mm256_cmpeq_epi16(_mm256_and_si256(v, exponent), exponent);
            bad = _mm256_or_si256(bad, not_finite);
            acc = _mm256_max_epu16(acc, _mm256_andnot_si256(not_finite, v));
        }
        __m128i h = _mm_max_epu16(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        uint32_t top = 0xffffu - (uint32_t)(_mm_cvtsi128_si32(_mm_minpos_epu16(_mm_xor_si128(h, _mm_set1_epi16(-1)))) & 0xffff);
        float a, tail;
        uint32_t bits = top << 16;
        memcpy(&a, &bits, sizeof a);
        if (i < end) {
            finite &= generic_bf16_block_absmax(bytes + 2 * i, end - i, end - i, &tail);
            a = tail > a ? tail : a;
        }
        out[b] = a;
    }
    return finite && _mm256_testz_si256(bad, bad);
}
