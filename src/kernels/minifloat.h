/*
 * minifloat.h — the element codecs every format is built from, as scalar reference
 * functions: the bytes on disk are defined here.
 *
 * E4M3 (float8_e4m3fn): encode is PyTorch's fp32 -> float8_e4m3fn conversion (round to
 *   nearest even, subnormals down to 2^-9) with strata's saturation policy: finite inputs
 *   beyond the format (|x| > 464, which PyTorch turns into NaN) become +-448. Callers
 *   reject NaN/Inf before encoding.
 * E2M1 (FP4): magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}; round to nearest with ties to the
 *   even code, saturating at 6, exactly as ModelOpt's _cast_fp4 (comparison against the
 *   midpoints 0.25 .. 5); the sign bit is set for every negative input, so a negative
 *   value that rounds to zero encodes as 0x8 (ModelOpt does the same).
 * E8M0: the MX scale byte, 2^(e - 127); 0xFF is NaN.
 */
#ifndef STRATA_KERNELS_MINIFLOAT_H
#define STRATA_KERNELS_MINIFLOAT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define E4M3_MAX 448.0f
#define E2M1_MAX 6.0f
/* 2688: the amax one unit of NVFP4's fp32 global scale stands for (block scales reach 448,
 * elements 6). */
#define NVFP4_GLOBAL_RANGE (E2M1_MAX * E4M3_MAX)

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* fp32 -> float8_e4m3fn, round to nearest even, saturating at +-448. x must be finite. */
static inline uint8_t e4m3_encode(float x)
{
    uint32_t bits = f32_bits(x);
    uint8_t sign = (uint8_t)((bits >> 24) & 0x80);
    bits &= 0x7fffffffu;
    uint8_t magnitude;
    if (bits >= 0x43e80000u) {                 /* |x| > 464 would round to 480 (NaN): saturate */
        magnitude = 0x7e;
    } else if (bits < 0x3c800000u) {           /* below 2^-6: subnormal, as PyTorch does it */
        const uint32_t denorm_magic = 141u << 23;
        uint32_t r = f32_bits(f32_from_bits(bits) + f32_from_bits(denorm_magic));
        magnitude = (uint8_t)(r - denorm_magic);
    } else {
        uint32_t mantissa_odd = (bits >> 20) & 1;
        bits += ((uint32_t)(7 - 127) << 23) + 0x7ffff + mantissa_odd;
        magnitude = (uint8_t)(bits >> 20);
    }
    return (uint8_t)(sign | magnitude);
}

static inline float e4m3_decode(uint8_t v)
{
    uint32_t sign = (uint32_t)(v & 0x80) << 24;
    uint32_t exponent = (v >> 3) & 0xf, mantissa = v & 0x7;
    if (exponent == 0xf && mantissa == 0x7) return f32_from_bits(sign | 0x7fc00000u);
    if (exponent) return f32_from_bits(sign | ((exponent + 120) << 23) | (mantissa << 20));
    float magnitude = (float)mantissa * 0x1p-9f;
    return sign ? -magnitude : magnitude;
}

/* fp32 -> E2M1 code (sign << 3 | index), ties to even, saturating. x must not be NaN. */
static inline uint8_t e2m1_encode(float x)
{
    uint8_t sign = x < 0 ? 0x8 : 0;
    float a = fabsf(x);
    uint8_t code;
    if (a <= 0.25f) code = 0;        /* 0.25 ties to 0 */
    else if (a < 0.75f) code = 1;
    else if (a <= 1.25f) code = 2;   /* 0.75 ties up to 1.0, 1.25 down to 1.0 */
    else if (a < 1.75f) code = 3;
    else if (a <= 2.5f) code = 4;    /* 1.75 up to 2, 2.5 down to 2 */
    else if (a < 3.5f) code = 5;
    else if (a <= 5.0f) code = 6;    /* 3.5 up to 4, 5 down to 4 */
    else code = 7;
    return (uint8_t)(sign | code);
}

/* Code 0x8 decodes to +0, as in ModelOpt's table. */
static const float E2M1_VALUES[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};

static inline float e2m1_decode(uint8_t code) { return E2M1_VALUES[code & 0xf]; }

static inline float e8m0_decode(uint8_t v)
{
    return v == 0xff ? f32_from_bits(0x7fc00000u) : ldexpf(1.0f, (int)v - 127);
}

/* fp32 -> bf16 bits, nearest with ties to even; NaN stays NaN (quiet). */
static inline uint16_t bf16_bits_from_f32(float x)
{
    uint32_t bits = f32_bits(x);
    bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
    return nan ? (uint16_t)((bits >> 16) | 0x40u) : (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* fp32 rounded to the nearest bf16 (ties to even), returned as fp32. Finite x. */
static inline float bf16_round(float x)
{
    uint32_t bits = f32_bits(x);
    bits += 0x7fffu + ((bits >> 16) & 1);
    return f32_from_bits(bits & 0xffff0000u);
}

/* fp32 -> IEEE half bits, nearest with ties to even, overflow to infinity; NaN stays NaN. */
static inline uint16_t f16_bits_from_f32(float x)
{
    uint32_t bits = f32_bits(x);
    uint32_t sign = bits & 0x80000000u;
    bits ^= sign;
    uint32_t half;
    if (bits >= 0x7f800000u) half = bits > 0x7f800000u ? 0x7e00u : 0x7c00u;
    else if (bits >= 0x477ff000u) half = 0x7c00u;          /* >= 65520 rounds to infinity */
    else if (bits < 0x38800000u) {                          /* below 2^-14: subnormal half */
        uint32_t r = f32_bits(f32_from_bits(bits) + 0.5f);   /* the sum's low bits are the RNE result */
        half = r - 0x3f000000u;
    } else {
        uint32_t mantissa_odd = (bits >> 13) & 1;
        bits += ((uint32_t)(15 - 127) << 23) + 0xfffu + mantissa_odd;
        half = bits >> 13;
    }
    return (uint16_t)(half | (sign >> 16));
}

/* fp32 rounded to the nearest IEEE half (ties to even, overflow to infinity), as fp32. */
static inline float f16_round(float x)
{
    uint32_t half = f16_bits_from_f32(x);
    uint32_t exponent = (half >> 10) & 0x1f, mantissa = half & 0x3ff;
    float value;
    if (exponent == 0x1f) value = mantissa ? f32_from_bits(0x7fc00000u) : f32_from_bits(0x7f800000u);
    else if (exponent) value = f32_from_bits(((exponent + 112) << 23) | (mantissa << 13));
    else value = (float)mantissa * 0x1p-24f;
    return half & 0x8000u ? -value : value;
}

#endif
