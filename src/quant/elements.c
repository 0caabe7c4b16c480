/*
 * elements.c — per-row element quantization and dequantization: the scalar reference that
 * defines every code strata writes.
 */
#include <math.h>

#include "quant/format.h"
#include "kernels/cpu.h"
#include "kernels/minifloat.h"

/* ModelOpt's MXFP4 cast: ties toward zero (the count of midpoints strictly below |y|),
 * and the sign bit set for y <= 0, so zero encodes as 0x8. */
static uint8_t mxfp4_encode(float y)
{
    static const float MIDPOINTS[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    float a = fabsf(y);
    uint8_t code = 0;
    for (int i = 0; i < 7; i++) code += a > MIDPOINTS[i];
    return (uint8_t)((y <= 0 ? 0x8 : 0) | code);
}

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

static void put_nibble(uint8_t *codes, int64_t i, uint8_t nibble)
{
    if (i & 1) codes[i >> 1] = (uint8_t)((codes[i >> 1] & 0x0f) | (nibble << 4));
    else codes[i >> 1] = (uint8_t)((codes[i >> 1] & 0xf0) | (nibble & 0x0f));
}

static uint8_t get_nibble(const uint8_t *codes, int64_t i) { return (codes[i >> 1] >> ((i & 1) * 4)) & 0x0f; }

static int signed_nibble(uint8_t v) { return v & 0x8 ? (int)v - 16 : (int)v; }

/* The fp32 scale of the block holding element c of row r (block formats with F32 scales). */
static float f32_scale(const quant_plan *plan, const quant_scales *s, int64_t row, int64_t c)
{
    const float *stored = s->stored;
    return stored[(row / plan->block_rows) * plan->shape.scale_cols + c / plan->block_cols];
}

static uint8_t byte_scale(const quant_plan *plan, const quant_scales *s, int64_t row, int64_t c)
{
    const uint8_t *stored = s->stored;
    return stored[row * plan->shape.scale_cols + c / plan->block_cols];
}

/* NVFP4: the divisor of a block's elements (ModelOpt: scale * weight_scale_2;
 * compressed-tensors: scale / global_scale). */
static float nvfp4_divisor(const quant_plan *plan, const quant_scales *s, uint8_t block_scale)
{
    float decoded = e4m3_decode(block_scale);
    return plan->convention == STRATA_CONVENTION_MODELOPT ? decoded * s->global : decoded / s->global;
}

/* x holds the row's cols values followed by zeros up to padded_cols. */
/* compressed-tensors' _quantize on CPU: x / scale in the weight's dtype, clamp, then round
 * (integers) or cast (FP8). */
static void quant_row_compressed_tensors(const quant_plan *plan, const quant_scales *s, int64_t row, const float *x,
                                         uint8_t *codes)
{
    int64_t cols = plan->cols;
    for (int64_t c = 0; c < cols; c++) {
        float y = quant_round_to_source(plan, x[c] / f32_scale(plan, s, row, c));
        y += 0.0f; /* the reference adds its (zero) zero point, which turns -0 into +0 */
        switch (plan->format) {
        case STRATA_FORMAT_INT8_CHANNEL: codes[c] = (uint8_t)(int8_t)nearbyintf(clampf(y, -128, 127)); break;
        case STRATA_FORMAT_INT4_GROUP: put_nibble(codes, c, (uint8_t)((int)nearbyintf(clampf(y, -8, 7)) & 0xf)); break;
        default: codes[c] = e4m3_encode(clampf(y, -448.0f, 448.0f)); break;
        }
    }
    if (plan->format == STRATA_FORMAT_INT4_GROUP && (cols & 1)) put_nibble(codes, cols, 0);
}

/* compressed-tensors' MX path: x / 2^(E-127) (exact), plus the zero zero point, clamped to
 * the element range, then the FP8 cast or the NVFP4-style E2M1 rounding (ties to even). */
static void quant_row_mx_compressed_tensors(const quant_plan *plan, const quant_scales *s, int64_t row, const float *x,
                                            uint8_t *codes)
{
    bool fp4 = plan->format == STRATA_FORMAT_MXFP4;
    int64_t n = fp4 ? plan->shape.padded_cols : plan->cols;
    for (int64_t c = 0; c < n; c++) {
        float multiplier = ldexpf(1.0f, 127 - (int)byte_scale(plan, s, row, c));
        float y = (c < plan->cols ? x[c] * multiplier : 0.0f) + 0.0f;
        if (fp4) put_nibble(codes, c, e2m1_encode(clampf(y, -6.0f, 6.0f)));
        else codes[c] = e4m3_encode(clampf(y, -448.0f, 448.0f));
    }
}

void quant_row(const quant_plan *plan, const quant_scales *s, int64_t row, const float *x, uint8_t *codes)
{
    int64_t cols = plan->cols, padded = plan->shape.padded_cols;
    const kernel_set *k = kernels();
    if (plan->convention == STRATA_CONVENTION_COMPRESSED_TENSORS && plan->format != STRATA_FORMAT_NVFP4 &&
        plan->format != STRATA_FORMAT_INT4_GROUP_ASYM) {
        if (plan->format == STRATA_FORMAT_MXFP8 || plan->format == STRATA_FORMAT_MXFP4) quant_row_mx_compressed_tensors(plan, s, row, x, codes);
        else quant_row_compressed_tensors(plan, s, row, x, codes);
        return;
    }
    switch (plan->format) {
    case STRATA_FORMAT_FP8_TENSOR:
        /* ModelOpt divides a 2-D weight by a 0-dim scale in the weight's dtype, so the
         * quotient is rounded to bf16/fp16 before the FP8 cast. */
        if (plan->source_dtype == STRATA_DTYPE_F16) {
            for (int64_t c = 0; c < cols; c++)
                codes[c] = e4m3_encode(quant_round_to_source(plan, x[c] / f32_scale(plan, s, row, c)));
        } else {
            k->e4m3_divide(x, (size_t)cols, f32_scale(plan, s, row, 0), plan->source_dtype == STRATA_DTYPE_BF16, codes);
        }
        break;
    case STRATA_FORMAT_FP8_CHANNEL:
    case STRATA_FORMAT_FP8_BLOCK:
        for (int64_t c = 0; c < cols; c += plan->block_cols) {
            int64_t n = c + plan->block_cols < cols ? plan->block_cols : cols - c;
            k->e4m3_divide(x + c, (size_t)n, f32_scale(plan, s, row, c), false, codes + c);
        }
        break;
    case STRATA_FORMAT_INT8_CHANNEL:
        for (int64_t c = 0; c < cols; c++)
            codes[c] = (uint8_t)(int8_t)clampf(nearbyintf(x[c] / f32_scale(plan, s, row, c)), -128, 127);
        break;
    case STRATA_FORMAT_INT4_GROUP:
        for (int64_t c = 0; c < cols; c++) {
            int q = (int)clampf(nearbyintf(x[c] / f32_scale(plan, s, row, c)), -8, 7);
            put_nibble(codes, c, (uint8_t)(q & 0xf));
        }
        if (cols & 1) put_nibble(codes, cols, 0);
        break;
    case STRATA_FORMAT_INT4_GROUP_ASYM:
        for (int64_t c = 0; c < cols; c++) {
            int64_t index = row * plan->shape.scale_cols + c / plan->block_cols;
            /* compressed-tensors divides and adds in the weight's dtype, clamps, then rounds. */
            float y = quant_round_to_source(plan, x[c] / f32_scale(plan, s, row, c));
            y = quant_round_to_source(plan, y + (float)s->zero_points[index]);
            int q = (int)nearbyintf(clampf(y, -8, 7));
            put_nibble(codes, c, (uint8_t)(q & 0xf));
        }
        if (cols & 1) put_nibble(codes, cols, 0);
        break;
    case STRATA_FORMAT_NVFP4: {
        /* x holds padded_cols values, zeros past cols. The compressed-tensors convention
         * clamps to +-6 first, which leaves the saturating codes unchanged. */
        float divisors[64];
        int64_t n_blocks = padded / 16;
        const uint8_t *block_scales = (const uint8_t *)s->stored + row * plan->shape.scale_cols;
        for (int64_t b0 = 0; b0 < n_blocks; b0 += 64) {
            int64_t n = n_blocks - b0 < 64 ? n_blocks - b0 : 64;
            for (int64_t b = 0; b < n; b++) divisors[b] = nvfp4_divisor(plan, s, block_scales[b0 + b]);
            k->e2m1_divide_blocks(x + b0 * 16, (size_t)n, divisors, codes + b0 * 8);
        }
        break;
    }
    case STRATA_FORMAT_MXFP8:
        for (int64_t c = 0; c < cols; c++) {
            float multiplier = ldexpf(1.0f, 127 - (int)byte_scale(plan, s, row, c)); /* 2^-e, exact */
            codes[c] = e4m3_encode(clampf(x[c] * multiplier, -448.0f, 448.0f));
        }
        break;
    case STRATA_FORMAT_MXFP4:
        for (int64_t c = 0; c < padded; c++) {
            /* ModelOpt pads with zeros, which this cast encodes as 0x8. */
            float multiplier = ldexpf(1.0f, 127 - (int)byte_scale(plan, s, row, c));
            put_nibble(codes, c, mxfp4_encode(c < cols ? x[c] * multiplier : 0.0f));
        }
        break;
    case STRATA_FORMAT_COUNT: break;
    }
}

void dequant_row(const quant_plan *plan, const quant_scales *s, int64_t row, const uint8_t *codes, float *out)
{
    int64_t cols = plan->cols;
    for (int64_t c = 0; c < cols; c++) {
        switch (plan->format) {
        case STRATA_FORMAT_FP8_TENSOR:
        case STRATA_FORMAT_FP8_CHANNEL:
        case STRATA_FORMAT_FP8_BLOCK: out[c] = e4m3_decode(codes[c]) * f32_scale(plan, s, row, c); break;
        case STRATA_FORMAT_INT8_CHANNEL: out[c] = (float)(int8_t)codes[c] * f32_scale(plan, s, row, c); break;
        case STRATA_FORMAT_INT4_GROUP:
            out[c] = (float)signed_nibble(get_nibble(codes, c)) * f32_scale(plan, s, row, c);
            break;
        case STRATA_FORMAT_INT4_GROUP_ASYM: {
            int64_t index = row * plan->shape.scale_cols + c / plan->block_cols;
            out[c] = (float)(signed_nibble(get_nibble(codes, c)) - s->zero_points[index]) * f32_scale(plan, s, row, c);
            break;
        }
        case STRATA_FORMAT_NVFP4:
            out[c] = e2m1_decode(get_nibble(codes, c)) * nvfp4_divisor(plan, s, byte_scale(plan, s, row, c));
            break;
        case STRATA_FORMAT_MXFP8:
            out[c] = e4m3_decode(codes[c]) * ldexpf(1.0f, (int)byte_scale(plan, s, row, c) - 127);
            break;
        case STRATA_FORMAT_MXFP4:
            out[c] = e2m1_decode(get_nibble(codes, c)) * ldexpf(1.0f, (int)byte_scale(plan, s, row, c) - 127);
            break;
        case STRATA_FORMAT_COUNT: break;
        }
    }
}
