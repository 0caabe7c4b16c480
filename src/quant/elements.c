/*
 * elements.c — per-row element quantization and dequantization: the scalar reference that
 * defines every code strata writes.
 */
#include <math.h>
#include <pthread.h>

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

/* The code of element (row, c) holding x (a nibble for 4-bit formats): the definition
 * every quantizer follows; quant_row's SIMD kernels for FP8 and NVFP4 compute the same. */
static uint8_t encode_element(const quant_plan *plan, const quant_scales *s, int64_t row, int64_t c, float x)
{
    bool mx = plan->format == STRATA_FORMAT_MXFP8 || plan->format == STRATA_FORMAT_MXFP4;
    if (plan->convention == STRATA_CONVENTION_COMPRESSED_TENSORS && plan->format != STRATA_FORMAT_NVFP4 &&
        plan->format != STRATA_FORMAT_INT4_GROUP_ASYM) {
        if (mx) {
            /* x / 2^(E-127) (exact), plus the zero zero point, clamped to the element range,
             * then the FP8 cast or the NVFP4-style E2M1 rounding (ties to even). */
            float y = x * ldexpf(1.0f, 127 - (int)byte_scale(plan, s, row, c)) + 0.0f;
            if (plan->format == STRATA_FORMAT_MXFP4) return e2m1_encode(clampf(y, -6.0f, 6.0f));
            return e4m3_encode(clampf(y, -E4M3_MAX, E4M3_MAX));
        }
        /* _quantize on CPU: x / scale in the weight's dtype, plus the (zero) zero point,
         * which turns -0 into +0, clamp, then round (integers) or cast (FP8). */
        float y = quant_round_to_source(plan, x / f32_scale(plan, s, row, c)) + 0.0f;
        switch (plan->format) {
        case STRATA_FORMAT_INT8_CHANNEL: return (uint8_t)(int8_t)nearbyintf(clampf(y, -128, 127));
        case STRATA_FORMAT_INT4_GROUP: return (uint8_t)((int)nearbyintf(clampf(y, -8, 7)) & 0xf);
        default: return e4m3_encode(clampf(y, -E4M3_MAX, E4M3_MAX));
        }
    }
    switch (plan->format) {
    case STRATA_FORMAT_FP8_TENSOR:
        /* ModelOpt divides a 2-D weight by a 0-dim scale in the weight's dtype. */
        return e4m3_encode(quant_round_to_source(plan, x / f32_scale(plan, s, row, c)));
    case STRATA_FORMAT_FP8_CHANNEL:
    case STRATA_FORMAT_FP8_BLOCK: return e4m3_encode(x / f32_scale(plan, s, row, c));
    case STRATA_FORMAT_INT8_CHANNEL:
        return (uint8_t)(int8_t)clampf(nearbyintf(x / f32_scale(plan, s, row, c)), -128, 127);
    case STRATA_FORMAT_INT4_GROUP:
        return (uint8_t)((int)clampf(nearbyintf(x / f32_scale(plan, s, row, c)), -8, 7) & 0xf);
    case STRATA_FORMAT_INT4_GROUP_ASYM: {
        /* compressed-tensors divides and adds in the weight's dtype, clamps, then rounds. */
        int64_t index = row * plan->shape.scale_cols + c / plan->block_cols;
        float y = quant_round_to_source(plan, x / f32_scale(plan, s, row, c));
        y = quant_round_to_source(plan, y + (float)s->zero_points[index]);
        return (uint8_t)((int)nearbyintf(clampf(y, -8, 7)) & 0xf);
    }
    case STRATA_FORMAT_NVFP4:
        /* The compressed-tensors convention clamps to +-6 first, which changes no code. */
        return e2m1_encode(x / nvfp4_divisor(plan, s, byte_scale(plan, s, row, c)));
    case STRATA_FORMAT_MXFP8:
        return e4m3_encode(clampf(x * ldexpf(1.0f, 127 - (int)byte_scale(plan, s, row, c)), -E4M3_MAX, E4M3_MAX));
    case STRATA_FORMAT_MXFP4:
        /* ModelOpt pads with zeros, which this cast encodes as 0x8. */
        return mxfp4_encode(x * ldexpf(1.0f, 127 - (int)byte_scale(plan, s, row, c)));
    case STRATA_FORMAT_COUNT: break;
    }
    return 0;
}

/* The value code of element (row, c) stands for. */
static float decode_element(const quant_plan *plan, const quant_scales *s, int64_t row, int64_t c, uint8_t code)
{
    switch (plan->format) {
    case STRATA_FORMAT_FP8_TENSOR:
    case STRATA_FORMAT_FP8_CHANNEL:
    case STRATA_FORMAT_FP8_BLOCK: return e4m3_decode(code) * f32_scale(plan, s, row, c);
    case STRATA_FORMAT_INT8_CHANNEL: return (float)(int8_t)code * f32_scale(plan, s, row, c);
    case STRATA_FORMAT_INT4_GROUP: return (float)signed_nibble(code) * f32_scale(plan, s, row, c);
    case STRATA_FORMAT_INT4_GROUP_ASYM: {
        int64_t index = row * plan->shape.scale_cols + c / plan->block_cols;
        return (float)(signed_nibble(code) - s->zero_points[index]) * f32_scale(plan, s, row, c);
    }
    case STRATA_FORMAT_NVFP4: return e2m1_decode(code) * nvfp4_divisor(plan, s, byte_scale(plan, s, row, c));
    case STRATA_FORMAT_MXFP8: return e4m3_decode(code) * ldexpf(1.0f, (int)byte_scale(plan, s, row, c) - 127);
    case STRATA_FORMAT_MXFP4: return e2m1_decode(code) * ldexpf(1.0f, (int)byte_scale(plan, s, row, c) - 127);
    case STRATA_FORMAT_COUNT: break;
    }
    return 0;
}

float quant_element(const quant_plan *plan, const quant_scales *s, int64_t row, int64_t col, float x)
{
    return decode_element(plan, s, row, col, encode_element(plan, s, row, col, x));
}

void quant_row(const quant_plan *plan, const quant_scales *s, int64_t row, const float *x, uint8_t *codes)
{
    int64_t cols = plan->cols, padded = plan->shape.padded_cols;
    const kernel_set *k = kernels();
    bool nibbles = plan->info->element_bits == 4;
    bool modelopt_fp8 = plan->convention == STRATA_CONVENTION_MODELOPT &&
                        (plan->format == STRATA_FORMAT_FP8_TENSOR || plan->format == STRATA_FORMAT_FP8_CHANNEL ||
                         plan->format == STRATA_FORMAT_FP8_BLOCK);
    if (modelopt_fp8 && !(plan->format == STRATA_FORMAT_FP8_TENSOR && plan->source_dtype == STRATA_DTYPE_F16)) {
        /* The SIMD kernel of encode_element: x / scale (rounded to bf16 for a bf16 tensor
         * with one scale), then the E4M3 cast. */
        bool round_bf16 = plan->format == STRATA_FORMAT_FP8_TENSOR && plan->source_dtype == STRATA_DTYPE_BF16;
        for (int64_t c = 0; c < cols; c += plan->block_cols) {
            int64_t n = c + plan->block_cols < cols ? plan->block_cols : cols - c;
            k->e4m3_divide(x + c, (size_t)n, f32_scale(plan, s, row, c), round_bf16, codes + c);
        }
        return;
    }
    if (plan->format == STRATA_FORMAT_NVFP4) {
        /* The SIMD kernel of encode_element over whole 16-element blocks; x holds
         * padded_cols values, zeros past cols. */
        float divisors[64];
        int64_t n_blocks = padded / 16;
        const uint8_t *block_scales = (const uint8_t *)s->stored + row * plan->shape.scale_cols;
        for (int64_t b0 = 0; b0 < n_blocks; b0 += 64) {
            int64_t n = n_blocks - b0 < 64 ? n_blocks - b0 : 64;
            for (int64_t b = 0; b < n; b++) divisors[b] = nvfp4_divisor(plan, s, block_scales[b0 + b]);
            k->e2m1_divide_blocks(x + b0 * 16, (size_t)n, divisors, codes + b0 * 8);
        }
        return;
    }
    if (plan->format == STRATA_FORMAT_INT4_GROUP && plan->convention == STRATA_CONVENTION_MODELOPT) {
        /* encode_element's INT4 case a byte at a time: clamping first changes no code (the
         * bounds are integers), and adding and subtracting 1.5 x 2^23 rounds |y| <= 8 to the
         * nearest integer, ties to even, as nearbyintf does. */
        const float round = 12582912.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += plan->block_cols) {
            int64_t c1 = c0 + plan->block_cols < cols ? c0 + plan->block_cols : cols;
            float scale = f32_scale(plan, s, row, c0);
            for (int64_t c = c0; c < c1; c++) {
                float y = clampf(x[c] / scale, -8, 7);
                uint8_t code = (uint8_t)((int)((y + round) - round) & 0xf);
                if (c & 1) codes[c >> 1] = (uint8_t)((codes[c >> 1] & 0x0f) | (code << 4));
                else codes[c >> 1] = code;
            }
        }
        return;
    }
    /* MX formats pad their last block with encoded zeros; int4 pads an odd row with 0. */
    bool mx_padding = plan->format == STRATA_FORMAT_MXFP4;
    int64_t n = mx_padding ? padded : cols;
    for (int64_t c = 0; c < n; c++) {
        uint8_t code = encode_element(plan, s, row, c, c < cols ? x[c] : 0.0f);
        if (nibbles) put_nibble(codes, c, code);
        else codes[c] = code;
    }
    if (nibbles && !mx_padding && (cols & 1)) put_nibble(codes, cols, 0);
}

/* Every code's value before its block's scale, for dequant_row: E4M3 and int8 codes
 * (256), E2M1 and int4 nibbles (16). */
static struct {
    pthread_once_t once;
    float e4m3[256], int8[256], e2m1[16], int4[16];
} code_values = {.once = PTHREAD_ONCE_INIT};

static void code_values_init(void)
{
    for (int v = 0; v < 256; v++) {
        code_values.e4m3[v] = e4m3_decode((uint8_t)v);
        code_values.int8[v] = (float)(int8_t)v;
    }
    for (int v = 0; v < 16; v++) {
        code_values.e2m1[v] = e2m1_decode((uint8_t)v);
        code_values.int4[v] = (float)signed_nibble((uint8_t)v);
    }
}

/* What a block's code values are multiplied by in decode_element. */
static float block_multiplier(const quant_plan *plan, const quant_scales *s, int64_t row, int64_t c)
{
    switch (plan->format) {
    case STRATA_FORMAT_NVFP4: return nvfp4_divisor(plan, s, byte_scale(plan, s, row, c));
    case STRATA_FORMAT_MXFP8:
    case STRATA_FORMAT_MXFP4: return ldexpf(1.0f, (int)byte_scale(plan, s, row, c) - 127);
    default: return f32_scale(plan, s, row, c);
    }
}

/* decode_element over a row, a block at a time: the code's value (from a table of the
 * same decodes) times the block's multiplier, the very product decode_element forms. */
void dequant_row(const quant_plan *plan, const quant_scales *s, int64_t row, const uint8_t *codes, float *out)
{
    pthread_once(&code_values.once, code_values_init);
    int64_t cols = plan->cols, block = plan->block_cols;
    bool nibbles = plan->info->element_bits == 4;
    const float *values;
    switch (plan->format) {
    case STRATA_FORMAT_INT8_CHANNEL: values = code_values.int8; break;
    case STRATA_FORMAT_INT4_GROUP:
    case STRATA_FORMAT_INT4_GROUP_ASYM: values = code_values.int4; break;
    case STRATA_FORMAT_NVFP4:
    case STRATA_FORMAT_MXFP4: values = code_values.e2m1; break;
    default: values = code_values.e4m3; break;
    }
    for (int64_t c0 = 0; c0 < cols; c0 += block) {
        int64_t end = c0 + block < cols ? c0 + block : cols;
        float multiplier = block_multiplier(plan, s, row, c0);
        if (plan->format == STRATA_FORMAT_INT4_GROUP_ASYM) {
            /* (code - zero point) in integers, then to float, as decode_element. */
            int zero = s->zero_points[row * plan->shape.scale_cols + c0 / block];
            for (int64_t c = c0; c < end; c++) out[c] = (float)(signed_nibble(get_nibble(codes, c)) - zero) * multiplier;
        } else if (nibbles) {
            for (int64_t c = c0; c < end; c++) out[c] = values[get_nibble(codes, c)] * multiplier;
        } else {
            for (int64_t c = c0; c < end; c++) out[c] = values[codes[c]] * multiplier;
        }
    }
}
