/*
 * scales.c — from block statistics to stored scales, per format and convention.
 *
 * Each formula follows the reference library operation for operation (which values are
 * divided, in which order, in which precision); docs/FORMAT-NUMERICS.md records what the
 * references do and docs/FORMATS.md what strata does where they leave a gap (zero blocks,
 * all-zero tensors, exponents out of range).
 */
#include <math.h>

#include "quant/format.h"
#include "kernels/minifloat.h"

float quant_round_to_source(const quant_plan *plan, float x)
{
    switch (plan->source_dtype) {
    case STRATA_DTYPE_BF16: return bf16_round(x);
    case STRATA_DTYPE_F16: return f16_round(x);
    default: return x;
    }
}

/* Smallest normal and machine epsilon of the source dtype (torch.finfo). */
static float source_tiny(const quant_plan *plan)
{
    return plan->source_dtype == STRATA_DTYPE_F16 ? 0x1p-14f : 0x1p-126f;
}

static float source_eps(const quant_plan *plan)
{
    switch (plan->source_dtype) {
    case STRATA_DTYPE_BF16: return 0x1p-7f;
    case STRATA_DTYPE_F16: return 0x1p-10f;
    default: return 0x1p-23f;
    }
}

/* The MX exponent as torch computes ceil(log2(d)): log2 rounded to fp32 first, so values
 * just above a power of two get that power's exponent. */
static int mx_exponent(float d)
{
    if (!(d > 0)) return -127;
    float e = ceilf((float)log2((double)d));
    if (e < -127) e = -127;
    if (e > 127) e = 127; /* strata: the largest finite E8M0 scale (ModelOpt would wrap) */
    return (int)e;
}

/* compressed-tensors' E8M0 scale: amax rounded to a power of two (up only when its
 * significand is at least 1.75), minus an offset (2 for FP4, 8 for FP8), clamped to a byte. */
static uint8_t compressed_tensors_mx_scale(float amax, int offset)
{
    if (!(amax > 0)) return 0;
    uint32_t power_of_two = (f32_bits(amax) + (1u << 21)) & 0xff800000u;
    int exponent = (int)(power_of_two >> 23);
    if (exponent == 0) return 0;        /* rounded down to zero: log2 is -inf */
    if (exponent == 0xff) return 0xff;  /* rounded up to infinity */
    int e = exponent - offset;
    return (uint8_t)(e < 0 ? 0 : e > 255 ? 255 : e);
}

/* Formats whose compressed-tensors scale is the symmetric amax / (range / 2). */
static bool compressed_tensors_symmetric(const quant_plan *plan)
{
    switch (plan->format) {
    case STRATA_FORMAT_FP8_TENSOR:
    case STRATA_FORMAT_FP8_CHANNEL:
    case STRATA_FORMAT_FP8_BLOCK:
    case STRATA_FORMAT_INT8_CHANNEL:
    case STRATA_FORMAT_INT4_GROUP: return true;
    default: return false;
    }
}

void quant_global_from_amax(const quant_plan *plan, float amax, quant_scales *scales)
{
    scales->tensor_amax = amax;
    scales->global = 0;
    if (plan->format != STRATA_FORMAT_NVFP4) return;
    if (plan->convention == STRATA_CONVENTION_MODELOPT) {
        float g = amax / NVFP4_GLOBAL_RANGE; /* weight_scale_2 = amax / (6 * 448), one fp32 division */
        scales->global = g > 0 ? g : 1.0f;
    } else {
        /* generate_gparam: 2688 / clamp(amax, tiny), evaluated as reciprocal * 2688 in the
         * source precision; an infinite result becomes 1. */
        float a = quant_round_to_source(plan, amax);
        if (a < source_tiny(plan)) a = source_tiny(plan);
        float reciprocal = quant_round_to_source(plan, 1.0f / a);
        float g = quant_round_to_source(plan, reciprocal * NVFP4_GLOBAL_RANGE);
        scales->global = isfinite(g) ? g : 1.0f;
    }
}

void quant_scales_from_stats(const quant_plan *plan, const float *absmax, const float *min, const float *max,
                             int64_t scale_row, quant_scales *scales)
{
    int64_t n = plan->shape.scale_cols;
    float *f32_out = (float *)scales->stored + scale_row * n;
    uint8_t *byte_out = (uint8_t *)scales->stored + scale_row * n;
    if (plan->convention == STRATA_CONVENTION_COMPRESSED_TENSORS && compressed_tensors_symmetric(plan)) {
        /* calculate_qparams: amax / (range / 2) in the weight's dtype; zero becomes eps. */
        float half_range = plan->format == STRATA_FORMAT_INT8_CHANNEL ? 127.5f
                           : plan->format == STRATA_FORMAT_INT4_GROUP ? 7.5f
                                                                      : E4M3_MAX;
        for (int64_t b = 0; b < n; b++) {
            float s = quant_round_to_source(plan, absmax[b] / half_range);
            f32_out[b] = s != 0 ? s : source_eps(plan);
        }
        return;
    }
    for (int64_t b = 0; b < n; b++) {
        float a = absmax[b];
        switch (plan->format) {
        case STRATA_FORMAT_FP8_TENSOR:
        case STRATA_FORMAT_FP8_CHANNEL:
        case STRATA_FORMAT_FP8_BLOCK: {
            float s = a / E4M3_MAX;
            f32_out[b] = s > 0 ? s : 1.0f;
            break;
        }
        case STRATA_FORMAT_INT8_CHANNEL: {
            float s = a / 127.0f;
            f32_out[b] = s > 0 ? s : 1.0f;
            break;
        }
        case STRATA_FORMAT_INT4_GROUP: {
            float s = a / 7.0f;
            f32_out[b] = s > 0 ? s : 1.0f;
            break;
        }
        case STRATA_FORMAT_INT4_GROUP_ASYM: {
            /* calculate_qparams: the range always includes 0; zero point rounded after clamping. */
            /* Each step rounds to the weight's dtype, as the reference computes in it. */
            float lo = min[b] < 0 ? min[b] : 0, hi = max[b] > 0 ? max[b] : 0;
            float s = quant_round_to_source(plan, quant_round_to_source(plan, hi - lo) / 15.0f), zp = 0;
            if (s == 0) s = source_eps(plan); /* the reference's zero point is then NaN, stored as 0 */
            else {
                zp = quant_round_to_source(plan, -8.0f - quant_round_to_source(plan, lo / s));
                zp = nearbyintf(zp < -8 ? -8 : zp > 7 ? 7 : zp);
            }
            f32_out[b] = s;
            scales->zero_points[scale_row * n + b] = (int8_t)zp;
            break;
        }
        case STRATA_FORMAT_NVFP4: {
            float s;
            if (plan->convention == STRATA_CONVENTION_MODELOPT) {
                s = a / (6.0f * scales->global);
                if (s == 0) s = 1.0f;
                s = s < 0x1p-9f ? 0x1p-9f : s > E4M3_MAX ? E4M3_MAX : s;
                byte_out[b] = e4m3_encode(s);
            } else {
                s = scales->global * quant_round_to_source(plan, a / 6.0f);
                s = s > E4M3_MAX ? E4M3_MAX : s;
                uint8_t code = e4m3_encode(s);
                byte_out[b] = (code & 0x7f) == 0 ? 0x20 : code; /* a zero scale becomes 0.125 */
            }
            break;
        }
        case STRATA_FORMAT_MXFP8:
            byte_out[b] = plan->convention == STRATA_CONVENTION_MODELOPT ? (uint8_t)(mx_exponent(a / E4M3_MAX) + 127)
                                                                         : compressed_tensors_mx_scale(a, 8);
            break;
        case STRATA_FORMAT_MXFP4:
            byte_out[b] = plan->convention == STRATA_CONVENTION_MODELOPT ? (uint8_t)(mx_exponent(a / 6.0f) + 127)
                                                                         : compressed_tensors_mx_scale(a, 2);
            break;
        case STRATA_FORMAT_COUNT: break;
        }
    }
}
