/*
 * weight_layout.c — the ModelOpt and compressed-tensors layout tables and their one writer
 * and one reader (see weight_layout.h).
 */
#include "quant/weight_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/minifloat.h"

#define DIMS0 {.n_dims = 0}
#define DIMS1(a) {.n_dims = 1, .extents = {a}}
#define DIMS2(a, b) {.n_dims = 2, .extents = {a, b}}
#define DIMS4(a, b, c, d) {.n_dims = 4, .extents = {a, b, c, d}}
#define NO_DIMS {.n_dims = -1}

/* Codes of (N, K) one byte per element. */
#define BYTE_CODES(dtype_) \
    {.suffix = "weight", .part = PART_CODES, .dtype = dtype_, .dims = DIMS2(EXTENT_N, EXTENT_K), .read_dims = NO_DIMS}
/* Codes of (N, K) two per byte along a row. */
#define NIBBLE_CODES \
    {.suffix = "weight", .part = PART_CODES, .dtype = STRATA_DTYPE_U8, \
     .dims = DIMS2(EXTENT_N, EXTENT_CODE_ROW_BYTES), .read_dims = NO_DIMS}
#define SCALES(dtype_, dims_, read_dims_) \
    {.suffix = "weight_scale", .read_alias = "weight_scale_inv", .part = PART_SCALES, .dtype = dtype_, \
     .dims = dims_, .read_dims = read_dims_}
#define GRID DIMS2(EXTENT_SCALE_ROWS, EXTENT_SCALE_COLS)

/* compressed-tensors' scales, in the weight's dtype. */
#define CT_SCALES(dims_) \
    {.suffix = "weight_scale", .part = PART_SCALES, .dtype = STRATA_DTYPE_F32, .weight_dtype = true, .dims = dims_, \
     .read_dims = NO_DIMS}
#define CT_PACKED_NIBBLES \
    {.suffix = "weight_packed", .part = PART_CODES, .dtype = STRATA_DTYPE_U8, \
     .dims = DIMS2(EXTENT_N, EXTENT_CODE_ROW_BYTES), .read_dims = NO_DIMS}
#define CT_PACKED_WORDS \
    {.suffix = "weight_packed", .part = PART_CODES, .dtype = STRATA_DTYPE_I32, \
     .dims = DIMS2(EXTENT_N, EXTENT_CODE_WORDS), .read_dims = NO_DIMS}
#define CT_WEIGHT_SHAPE \
    {.suffix = "weight_shape", .part = PART_SHAPE, .dtype = STRATA_DTYPE_I64, .dims = DIMS1(EXTENT_TWO), \
     .read_dims = NO_DIMS}
/* grouped: the group size is read from the scales' columns */
#define CT(format_, name_, codes_, grouped_, n_, ...) \
    {.family = LAYOUT_COMPRESSED_TENSORS, .name = name_, .format = format_, \
     .convention = STRATA_CONVENTION_COMPRESSED_TENSORS, .codes = codes_, .group_from_scales = grouped_, \
     .n_tensors = n_, .tensors = {__VA_ARGS__}}

/* In the order readers try them: int4 with zero points before int4 without (whose tensors
 * it has too). */
enum {
    CT_FP8_TENSOR = 0, CT_FP8_CHANNEL, CT_FP8_BLOCK, CT_INT8_W8A8, CT_INT8_PACKED, CT_INT4_ASYM, CT_INT4, CT_NVFP4,
    CT_MXFP4, CT_COUNT
};

static const weight_layout CT_LAYOUTS[CT_COUNT] = {
    [CT_FP8_TENSOR] = CT(STRATA_FORMAT_FP8_TENSOR, "float-quantized", CODES_CANONICAL, false, 2,
                         BYTE_CODES(STRATA_DTYPE_F8_E4M3), CT_SCALES(DIMS1(EXTENT_ONE))),
    [CT_FP8_CHANNEL] = CT(STRATA_FORMAT_FP8_CHANNEL, "float-quantized", CODES_CANONICAL, false, 2,
                          BYTE_CODES(STRATA_DTYPE_F8_E4M3), CT_SCALES(DIMS2(EXTENT_N, EXTENT_ONE))),
    /* weight-only block FP8: llm-compressor names it naive-quantized */
    [CT_FP8_BLOCK] = CT(STRATA_FORMAT_FP8_BLOCK, "naive-quantized", CODES_CANONICAL, false, 2,
                        BYTE_CODES(STRATA_DTYPE_F8_E4M3), CT_SCALES(GRID)),
    [CT_INT8_W8A8] = CT(STRATA_FORMAT_INT8_CHANNEL, "int-quantized", CODES_CANONICAL, false, 2,
                        BYTE_CODES(STRATA_DTYPE_I8), CT_SCALES(DIMS2(EXTENT_N, EXTENT_ONE))),
    [CT_INT8_PACKED] = CT(STRATA_FORMAT_INT8_CHANNEL, "pack-quantized", CODES_INT32_WORDS, false, 3,
                          CT_PACKED_WORDS, CT_SCALES(DIMS2(EXTENT_N, EXTENT_ONE)), CT_WEIGHT_SHAPE),
    [CT_INT4] = CT(STRATA_FORMAT_INT4_GROUP, "pack-quantized", CODES_INT32_WORDS, true, 3,
                   CT_PACKED_WORDS, CT_SCALES(GRID), CT_WEIGHT_SHAPE),
    [CT_INT4_ASYM] = CT(STRATA_FORMAT_INT4_GROUP_ASYM, "pack-quantized", CODES_INT32_WORDS, true, 4,
                        CT_PACKED_WORDS, CT_SCALES(GRID), CT_WEIGHT_SHAPE,
                        {.suffix = "weight_zero_point", .part = PART_ZERO_POINTS, .dtype = STRATA_DTYPE_I32,
                         .dims = DIMS2(EXTENT_ZERO_POINT_WORDS, EXTENT_SCALE_COLS), .read_dims = NO_DIMS}),
    [CT_NVFP4] = CT(STRATA_FORMAT_NVFP4, "nvfp4-pack-quantized", CODES_CANONICAL, false, 3,
                    CT_PACKED_NIBBLES, SCALES(STRATA_DTYPE_F8_E4M3, GRID, NO_DIMS),
                    {.suffix = "weight_global_scale", .part = PART_GLOBAL, .dtype = STRATA_DTYPE_F32,
                     .dims = DIMS1(EXTENT_ONE), .read_dims = DIMS0}),
    [CT_MXFP4] = CT(STRATA_FORMAT_MXFP4, "mxfp4-pack-quantized", CODES_CANONICAL, false, 2,
                    CT_PACKED_NIBBLES, SCALES(STRATA_DTYPE_U8, GRID, NO_DIMS)),
};

static const weight_layout LAYOUTS[STRATA_FORMAT_COUNT] = {
    [STRATA_FORMAT_FP8_TENSOR] = {
        .format = STRATA_FORMAT_FP8_TENSOR, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_F8_E4M3), SCALES(STRATA_DTYPE_F32, DIMS0, DIMS1(EXTENT_ONE))},
    },
    [STRATA_FORMAT_FP8_CHANNEL] = {
        .format = STRATA_FORMAT_FP8_CHANNEL, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_F8_E4M3),
                    SCALES(STRATA_DTYPE_F32, DIMS1(EXTENT_N), DIMS2(EXTENT_N, EXTENT_ONE))},
    },
    [STRATA_FORMAT_INT8_CHANNEL] = {
        .format = STRATA_FORMAT_INT8_CHANNEL, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_I8), SCALES(STRATA_DTYPE_F32, DIMS1(EXTENT_N), DIMS2(EXTENT_N, EXTENT_ONE))},
    },
    [STRATA_FORMAT_FP8_BLOCK] = {
        .format = STRATA_FORMAT_FP8_BLOCK, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_F8_E4M3),
                    {.suffix = "weight_scale", .read_alias = "weight_scale_inv", .part = PART_SCALES,
                     .dtype = STRATA_DTYPE_F32, .read_bf16 = true,
                     .dims = DIMS4(EXTENT_SCALE_ROWS, EXTENT_ONE, EXTENT_SCALE_COLS, EXTENT_ONE), .read_dims = GRID}},
    },
    [STRATA_FORMAT_NVFP4] = {
        .format = STRATA_FORMAT_NVFP4, .n_tensors = 3,
        .tensors = {NIBBLE_CODES, SCALES(STRATA_DTYPE_F8_E4M3, GRID, NO_DIMS),
                    {.suffix = "weight_scale_2", .part = PART_GLOBAL, .dtype = STRATA_DTYPE_F32, .dims = DIMS0,
                     .read_dims = DIMS1(EXTENT_ONE)}},
    },
    [STRATA_FORMAT_MXFP4] = {
        .format = STRATA_FORMAT_MXFP4, .n_tensors = 2,
        .tensors = {NIBBLE_CODES, SCALES(STRATA_DTYPE_U8, GRID, NO_DIMS)},
    },
    [STRATA_FORMAT_INT4_GROUP] = {
        .format = STRATA_FORMAT_INT4_GROUP, .codes = CODES_ROWS_PAIRED, .group_from_scales = true, .n_tensors = 2,
        .tensors = {{.suffix = "weight", .part = PART_CODES, .dtype = STRATA_DTYPE_U8,
                     .dims = DIMS2(EXTENT_HALF_N, EXTENT_K), .read_dims = NO_DIMS},
                    SCALES(STRATA_DTYPE_F32, GRID, NO_DIMS)},
    },
};

/* The order readers try: per tensor before per row before tiles, so that a shape two
 * layouts could share resolves as it always has. */
static const strata_format READ_ORDER[] = {
    STRATA_FORMAT_FP8_TENSOR, STRATA_FORMAT_FP8_CHANNEL, STRATA_FORMAT_INT8_CHANNEL, STRATA_FORMAT_FP8_BLOCK,
    STRATA_FORMAT_NVFP4,      STRATA_FORMAT_MXFP4,       STRATA_FORMAT_INT4_GROUP,
};

const weight_layout *weight_layout_get(strata_format format)
{
    return (unsigned)format < STRATA_FORMAT_COUNT && LAYOUTS[format].n_tensors > 0 ? &LAYOUTS[format] : NULL;
}

const weight_layout *weight_layout_compressed_tensors(strata_format format, bool inputs_quantized)
{
    if (format == STRATA_FORMAT_INT8_CHANNEL) return &CT_LAYOUTS[inputs_quantized ? CT_INT8_W8A8 : CT_INT8_PACKED];
    for (int i = 0; i < CT_COUNT; i++)
        if (CT_LAYOUTS[i].format == format) return &CT_LAYOUTS[i];
    return NULL;
}

static int code_bits(strata_format format) { return strata_format_get(format)->element_bits; }

static int64_t extent_value(layout_extent e, int64_t N, int64_t K, int bits, const strata_quant_shape *shape)
{
    switch (e) {
    case EXTENT_N: return N;
    case EXTENT_K: return K;
    case EXTENT_HALF_N: return N / 2;
    case EXTENT_CODE_ROW_BYTES: return shape->code_row_bytes;
    case EXTENT_SCALE_ROWS: return shape->scale_rows;
    case EXTENT_SCALE_COLS: return shape->scale_cols;
    case EXTENT_ONE: return 1;
    case EXTENT_CODE_WORDS: return (K * bits + 31) / 32;
    case EXTENT_ZERO_POINT_WORDS: return (shape->scale_rows + 7) / 8;
    case EXTENT_TWO: return 2;
    }
    return 0;
}

static int dims_values(const weight_layout *layout, const layout_dims *d, int64_t N, int64_t K,
                       const strata_quant_shape *shape, int64_t *out)
{
    for (int i = 0; i < d->n_dims; i++) out[i] = extent_value(d->extents[i], N, K, code_bits(layout->format), shape);
    return d->n_dims;
}

/* Canonical 8-bit or 4-bit codes of (N, K) -> compressed-tensors' int32 words (N, words):
 * offset binary, element i of a row at bits [bits*i, bits*i + bits) of its little-endian
 * words. */
static void pack_int32_words(const uint8_t *codes, const strata_quant_shape *shape, int64_t N, int64_t K, int bits,
                             uint8_t *out)
{
    int64_t words = (K * bits + 31) / 32, per_word = 32 / bits;
    uint32_t mask = (1u << bits) - 1, offset = 1u << (bits - 1);
    for (int64_t r = 0; r < N; r++) {
        const uint8_t *row = codes + r * shape->code_row_bytes;
        for (int64_t w = 0; w < words; w++) {
            uint32_t word = 0;
            for (int64_t i = 0; i < per_word && w * per_word + i < K; i++) {
                int64_t c = w * per_word + i;
                uint32_t code = bits == 8 ? row[c] : (uint32_t)(row[c / 2] >> (4 * (c & 1)));
                word |= ((code ^ offset) & mask) << (bits * i); /* two's complement + offset = code ^ sign bit */
            }
            uint8_t *at = out + (r * words + w) * 4;
            at[0] = (uint8_t)word, at[1] = (uint8_t)(word >> 8), at[2] = (uint8_t)(word >> 16), at[3] = (uint8_t)(word >> 24);
        }
    }
}

/* The inverse: int32 words -> canonical codes (padding columns zero). */
static void unpack_int32_words(const uint8_t *in, const strata_quant_shape *shape, int64_t N, int64_t K, int bits,
                               uint8_t *codes)
{
    int64_t words = (K * bits + 31) / 32, per_word = 32 / bits;
    uint32_t mask = (1u << bits) - 1, offset = 1u << (bits - 1);
    memset(codes, 0, shape->code_bytes);
    for (int64_t r = 0; r < N; r++) {
        uint8_t *row = codes + r * shape->code_row_bytes;
        for (int64_t w = 0; w < words; w++) {
            const uint8_t *at = in + (r * words + w) * 4;
            uint32_t word = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
            for (int64_t i = 0; i < per_word && w * per_word + i < K; i++) {
                int64_t c = w * per_word + i;
                uint8_t code = (uint8_t)(((word >> (bits * i)) & mask) ^ offset);
                if (bits == 8) row[c] = code;
                else row[c / 2] |= (uint8_t)(code << (4 * (c & 1)));
            }
        }
    }
}

/* int4 zero points (rows, cols) packed along rows in int32 words -> int8. */
static void unpack_zero_points(const uint8_t *in, int64_t rows, int64_t cols, int8_t *out)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const uint8_t *at = in + ((r / 8) * cols + c) * 4;
            uint32_t word = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
            out[r * cols + c] = (int8_t)((int)((word >> (4 * (r % 8))) & 0xf) - 8);
        }
}

/* F32 scales in the weight's dtype (exact: the compressed-tensors convention computes them
 * in that dtype). */
static void scales_to_dtype(const float *scales, size_t n, strata_dtype dtype, void *out)
{
    uint16_t *half = out;
    for (size_t i = 0; i < n; i++)
        half[i] = dtype == STRATA_DTYPE_BF16 ? bf16_bits_from_f32(scales[i]) : f16_bits_from_f32(scales[i]);
}

strata_status weight_layout_write(const weight_layout *layout, const char *module, int64_t N, int64_t K,
                                  strata_dtype weight_dtype, const strata_qtensor *q, const strata_quant_shape *shape,
                                  layout_emit_fn emit, void *ctx)
{
    uint8_t *packed = NULL;
    void *scales = NULL;
    int32_t *zero_points = NULL;
    int bits = code_bits(layout->format);
    strata_status status = STRATA_OK;
    if (layout->codes == CODES_ROWS_PAIRED) {
        size_t bytes = strata_pack_int4_size(STRATA_INT4_MODELOPT_AWQ, N, K);
        if (bytes == 0)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: int4 export packs two rows per byte; %lld rows is odd",
                               module, (long long)N);
        packed = malloc(bytes);
        status = packed ? strata_pack_int4(STRATA_INT4_MODELOPT_AWQ, q->codes, N, K, packed)
                        : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory packing %s", module);
    } else if (layout->codes == CODES_INT32_WORDS) {
        packed = malloc((size_t)N * (size_t)((K * bits + 31) / 32) * 4);
        if (packed) pack_int32_words(q->codes, shape, N, K, bits, packed);
        else status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory packing %s", module);
    }
    int64_t weight_shape[2] = {N, K};
    for (int i = 0; status == STRATA_OK && i < layout->n_tensors; i++) {
        const layout_tensor *t = &layout->tensors[i];
        const void *data = NULL;
        strata_dtype dtype = t->dtype;
        int64_t dims[4];
        int n_dims = dims_values(layout, &t->dims, N, K, shape, dims);
        switch (t->part) {
        case PART_CODES: data = packed ? (const void *)packed : q->codes; break;
        case PART_SCALES:
            data = q->scales;
            if (t->weight_dtype && (weight_dtype == STRATA_DTYPE_BF16 || weight_dtype == STRATA_DTYPE_F16)) {
                size_t n = (size_t)(shape->scale_rows * shape->scale_cols);
                free(scales);
                scales = malloc(n * 2 + 1);
                if (!scales) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory writing %s", module);
                else scales_to_dtype(q->scales, n, weight_dtype, scales);
                data = scales, dtype = weight_dtype;
            }
            break;
        case PART_GLOBAL: data = &q->global_scale; break;
        case PART_ZERO_POINTS:
            zero_points = malloc((size_t)(dims[0] * dims[1]) * sizeof *zero_points + 1);
            status = zero_points ? strata_pack_zero_points_int4(q->zero_points, shape->scale_rows, shape->scale_cols,
                                                                zero_points)
                                 : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory writing %s", module);
            data = zero_points;
            break;
        case PART_SHAPE: data = weight_shape; break;
        }
        if (status == STRATA_OK) status = emit(ctx, t->suffix, dtype, n_dims, dims, data);
    }
    free(packed);
    free(scales);
    free(zero_points);
    return status;
}

static bool shape_is(const weight_layout *layout, const strata_tensor *t, const layout_dims *d, int64_t N, int64_t K,
                     const strata_quant_shape *shape)
{
    if (d->n_dims < 0 || t->n_dims != d->n_dims) return false;
    int64_t want[4];
    dims_values(layout, d, N, K, shape, want);
    for (int i = 0; i < d->n_dims; i++)
        if (t->shape[i] != want[i]) return false;
    return true;
}

/* The INT4 group of a row of K columns with `groups` scales: the config's group when it
 * fits (the last group of a row may be short), else K / groups when that divides. */
static int64_t group_for(int64_t K, int64_t groups, int64_t hint)
{
    int64_t g = hint > 0 ? hint : 128;
    if (groups > 0 && (K + g - 1) / g == groups) return g;
    return groups > 0 && K % groups == 0 ? K / groups : 0;
}

static const strata_tensor *find_tensor(layout_find_fn find, void *ctx, const layout_tensor *t)
{
    const strata_tensor *found = find(ctx, t->suffix);
    return found || !t->read_alias ? found : find(ctx, t->read_alias);
}

/* Whether layout holds the weight; fills out when it does. */
static bool matches(const weight_layout *layout, layout_find_fn find, void *ctx, int64_t N, int64_t K,
                    int64_t group_hint, stored_weight *out)
{
    *out = (stored_weight){.layout = layout, .N = N, .K = K,
                           .params = {.format = layout->format, .convention = layout->convention}};
    for (int i = 0; i < layout->n_tensors; i++) {
        out->tensors[i] = find_tensor(find, ctx, &layout->tensors[i]);
        if (!out->tensors[i]) return false;
    }
    if (layout->group_from_scales) {
        for (int i = 0; i < layout->n_tensors; i++) {
            const strata_tensor *t = out->tensors[i];
            if (layout->tensors[i].part == PART_SCALES && t->n_dims == 2)
                out->params.group_size = group_for(K, t->shape[1], group_hint);
        }
        if (out->params.group_size == 0) return false;
    }
    strata_quant_params probe = out->params;
    if (strata_quant_shape_get(&probe, N, K, &out->shape) != STRATA_OK) return false;
    for (int i = 0; i < layout->n_tensors; i++) {
        const layout_tensor *spec = &layout->tensors[i];
        const strata_tensor *t = out->tensors[i];
        bool dtype_ok = t->dtype == spec->dtype || (spec->read_bf16 && t->dtype == STRATA_DTYPE_BF16) ||
                        (spec->weight_dtype && (t->dtype == STRATA_DTYPE_BF16 || t->dtype == STRATA_DTYPE_F16));
        if (!dtype_ok) return false;
        if (!shape_is(layout, t, &spec->dims, N, K, &out->shape) &&
            !shape_is(layout, t, &spec->read_dims, N, K, &out->shape))
            return false;
        if (spec->part == PART_SHAPE) { /* compressed-tensors' weight_shape must name this linear's */
            int64_t stored[2];
            memcpy(stored, t->data, sizeof stored);
            if (stored[0] != N || stored[1] != K) return false;
        }
    }
    return true;
}

strata_status weight_layout_match(layout_find_fn find, void *ctx, int64_t N, int64_t K, int64_t group_hint,
                                  stored_weight *out)
{
    for (size_t i = 0; i < sizeof READ_ORDER / sizeof READ_ORDER[0]; i++)
        if (matches(&LAYOUTS[READ_ORDER[i]], find, ctx, N, K, group_hint, out)) return STRATA_OK;
    for (int i = 0; i < CT_COUNT; i++)
        if (matches(&CT_LAYOUTS[i], find, ctx, N, K, group_hint, out)) return STRATA_OK;
    const strata_tensor *weight = find(ctx, "weight"), *scale = find(ctx, "weight_scale");
    if (!scale) scale = find(ctx, "weight_scale_inv");
    char shape[64] = "";
    for (int d = 0; scale && d < scale->n_dims && d < 4; d++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "",
                 (long long)scale->shape[d]);
    if (!scale)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "tensor %s is %s without a weight_scale strata can read",
                           weight ? weight->name : "weight", weight ? strata_dtype_name(weight->dtype) : "missing");
    return strata_fail(STRATA_ERR_UNSUPPORTED,
                       "tensor %s (%s) of a (%lld, %lld) linear with %s %s (%s): a layout strata cannot read",
                       weight ? weight->name : "weight", weight ? strata_dtype_name(weight->dtype) : "missing",
                       (long long)N, (long long)K, scale->name, strata_dtype_name(scale->dtype), shape);
}

/* ModelOpt INT4 AWQ (N / 2, K) bytes -> canonical (N, ceil(K / 2)) nibbles. */
static void unpair_rows(const uint8_t *paired, int64_t N, int64_t K, uint8_t *codes)
{
    int64_t row_bytes = (K + 1) / 2;
    memset(codes, 0, (size_t)(N * row_bytes));
    for (int64_t r = 0; r < N; r++)
        for (int64_t c = 0; c < K; c++) {
            uint8_t v = (uint8_t)(paired[(r / 2) * K + c] >> (4 * (r & 1))) & 0xF;
            codes[r * row_bytes + c / 2] |= (uint8_t)(v << (4 * (c & 1)));
        }
}

strata_status weight_layout_dequantize(const stored_weight *w, float *out)
{
    const weight_layout *layout = w->layout;
    strata_qtensor q = {0};
    uint8_t *codes = NULL;
    float *scales_f32 = NULL;
    int8_t *zero_points = NULL;
    strata_status status = STRATA_OK;
    for (int i = 0; status == STRATA_OK && i < layout->n_tensors; i++) {
        const strata_tensor *t = w->tensors[i];
        switch (layout->tensors[i].part) {
        case PART_CODES:
            q.codes = (uint8_t *)(uintptr_t)t->data;
            if (layout->codes == CODES_CANONICAL) break;
            codes = malloc(w->shape.code_bytes + 1);
            if (!codes) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", t->name);
            else if (layout->codes == CODES_ROWS_PAIRED) unpair_rows(t->data, w->N, w->K, codes);
            else unpack_int32_words(t->data, &w->shape, w->N, w->K, code_bits(layout->format), codes);
            q.codes = codes;
            break;
        case PART_SCALES:
            q.scales = (void *)(uintptr_t)t->data;
            if (t->dtype != layout->tensors[i].dtype) { /* BF16 block scales, compressed-tensors' weight dtype */
                scales_f32 = malloc((size_t)t->n_elements * sizeof *scales_f32);
                status = scales_f32 ? strata_convert_to_f32(t->dtype, t->data, (size_t)t->n_elements, scales_f32)
                                    : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", t->name);
                q.scales = scales_f32;
            }
            break;
        case PART_GLOBAL: memcpy(&q.global_scale, t->data, sizeof q.global_scale); break;
        case PART_ZERO_POINTS:
            zero_points = malloc((size_t)(w->shape.scale_rows * w->shape.scale_cols) + 1);
            if (!zero_points) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", t->name);
            else unpack_zero_points(t->data, w->shape.scale_rows, w->shape.scale_cols, zero_points);
            q.zero_points = zero_points;
            break;
        case PART_SHAPE: break; /* checked by weight_layout_match */
        }
    }
    if (status == STRATA_OK) status = strata_dequantize(&w->params, &q, w->N, w->K, out);
    free(codes);
    free(scales_f32);
    free(zero_points);
    return status;
}
