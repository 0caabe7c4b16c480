/*
 * convert.c — element conversions to fp32: the generic reference kernels and
 * strata_convert_to_f32, which dispatches the wide types to the selected kernel set.
 *
 * Policies (the SIMD twins in convert_avx2.c / convert_avx512.c match them bit for bit):
 * - BF16 and F8_E4M3/E5M2 widen exactly; F16 widens exactly, and a signalling NaN comes
 *   out quiet (the quiet bit set), as the F16C instruction does.
 * - F8_E8M0 is the MX scale byte: 2^(e - 127), 0xFF is NaN.
 * - F64 rounds to nearest even.
 */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/minifloat.h"
#include "kernels/variants.h"
#include "strata.h"

static uint16_t load_u16(const void *src, size_t i)
{
    uint16_t v;
    memcpy(&v, (const uint8_t *)src + 2 * i, sizeof v);
    return v;
}

static uint32_t f16_bits_to_f32_bits(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    if (exponent == 0x1f) return sign | 0x7f800000u | (mantissa ? 0x400000u | (mantissa << 13) : 0);
    if (exponent != 0) return sign | ((exponent + 112) << 23) | (mantissa << 13);
    if (mantissa == 0) return sign;
    /* Subnormal half: normalize. */
    int shift = 0;
    while (!(mantissa & 0x400)) {
        mantissa <<= 1;
        shift++;
    }
    mantissa &= 0x3ff;
    return sign | ((uint32_t)(113 - shift) << 23) | (mantissa << 13);
}

/* float8_e5m2 is the top byte of an IEEE half. */
static float e5m2_to_f32(uint8_t v) { return f32_from_bits(f16_bits_to_f32_bits((uint16_t)(v << 8))); }

void generic_bf16_to_f32(const void *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = f32_from_bits((uint32_t)load_u16(src, i) << 16);
}

void generic_f16_to_f32(const void *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = f32_from_bits(f16_bits_to_f32_bits(load_u16(src, i)));
}

strata_status strata_convert_to_f32(strata_dtype dtype, const void *src, size_t n, float *dst)
{
    if ((n > 0 && (!src || !dst)))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_convert_to_f32: NULL buffer");
    const uint8_t *bytes = src;
    switch (dtype) {
    case STRATA_DTYPE_F32: memmove(dst, src, n * sizeof(float)); return STRATA_OK;
    case STRATA_DTYPE_BF16: kernels()->bf16_to_f32(src, dst, n); return STRATA_OK;
    case STRATA_DTYPE_F16: kernels()->f16_to_f32(src, dst, n); return STRATA_OK;
    case STRATA_DTYPE_F8_E4M3:
        for (size_t i = 0; i < n; i++) dst[i] = e4m3_decode(bytes[i]);
        return STRATA_OK;
    case STRATA_DTYPE_F8_E5M2:
        for (size_t i = 0; i < n; i++) dst[i] = e5m2_to_f32(bytes[i]);
        return STRATA_OK;
    case STRATA_DTYPE_F8_E8M0:
        for (size_t i = 0; i < n; i++) dst[i] = e8m0_decode(bytes[i]);
        return STRATA_OK;
    case STRATA_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, bytes + 8 * i, sizeof d);
            dst[i] = (float)d;
        }
        return STRATA_OK;
    default:
        return strata_fail(STRATA_ERR_UNSUPPORTED, "cannot convert %s elements to F32 (not a floating-point dtype)",
                           strata_dtype_name(dtype));
    }
}
